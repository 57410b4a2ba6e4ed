#!/usr/bin/env bash
# Boots the guest image (build.sh) under QEMU the way the compute driver will,
# and checks what a cloud relies on: the ready line, hostname and SSH key from
# metadata, user_data, SSH login, and a clean ACPI powerdown over QMP.
#
#   smoke.sh [SCENARIO...]     scenarios: config-drive metadata-service ec2
#                              reboot (default: all four)
#
# config-drive      ISO9660 disk labelled config-2 (virtio-blk, read-only)
# metadata-service  no config drive; http://169.254.169.254 answered by this
#                   script through QEMU's guestfwd (no socket on the host)
# ec2               the same service with only the EC2-style paths
# reboot            config-drive, booted twice: the SSH host keys must stay
#
# Networking is QEMU user mode with restrict=on: the guest reaches nothing but
# the forwarded ports, and SSH goes to a hostfwd on 127.0.0.1. Exits non-zero
# on the first failure. Env: SMOKE_ACCEL=tcg|kvm (default: auto),
# SMOKE_READY_TIMEOUT (s, default 120), SMOKE_CONFIG_DRIVE_BUS=virtio|scsi,
# SMOKE_CONFIG_DRIVE_FORMAT=iso9660|vfat (Nova's two formats),
# SMOKE_BOOT=disk|kernel (kernel: -kernel/-initrd/-append instead of the
# disk's bootloader, the kernel/ramdisk variant).
set -euo pipefail

# --- inetd-style metadata responder, run by QEMU per guest connection -----------
if [ "${1:-}" = --serve ]; then
    root=$2
    read -r _ path _ || exit 0
    while read -r line && [ -n "${line%$'\r'}" ]; do :; done
    path=${path%%\?*}
    case "$path" in *..*) path=/ ;; esac
    f="$root$path"
    if [ -f "$f" ]; then
        printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %s\r\n\r\n' "$(stat -c %s "$f")"
        cat "$f"
    else
        printf 'HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n'
    fi
    exit 0
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ready_timeout=${SMOKE_READY_TIMEOUT:-120}
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(config-drive metadata-service ec2 reboot)

log() { echo "smoke: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
[ "$(id -u)" = 0 ] || die "run as root (it installs QEMU with apt-get)"

# QEMU, genisoimage and ssh when missing (QEMU 10 from backports).
"$here/../install-qemu.sh"

# KVM only where it can boot a stock kernel: a PVM /dev/kvm (nested without
# VMX/SVM) cannot, so such hosts run TCG.
accel=${SMOKE_ACCEL:-}
if [ -z "$accel" ]; then
    accel=tcg
    if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then accel=kvm; fi
fi
echo "accel: $accel"
cpu=max; [ "$accel" = kvm ] && cpu=host

build_t0=$(now)
img=$("$here/build.sh")
echo "build: $(since "$build_t0")s ($img)"
kver=$(sed -n 's/.*"kernel_version": "\([^"]*\)".*/\1/p' "$img/manifest.json")

work=$(mktemp -d /tmp/ferrostack-smoke.XXXXXX)
qemu_pid=
cleanup() {
    local rc=$?
    [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
    exec 3>&- 4<&- || true
    # Keep the console logs of a failed run for a look.
    if [ "$rc" = 0 ]; then rm -rf "$work"; else log "logs kept in $work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ssh-keygen -q -t ed25519 -N '' -C smoke -f "$work/id_ed25519"
pubkey=$(cat "$work/id_ed25519.pub")

# Metadata the way Nova writes it (keys end in "\n").
write_metadata() { # dir hostname marker
    mkdir -p "$1/openstack/latest"
    cat > "$1/openstack/latest/meta_data.json" <<EOF
{"uuid": "$(cat /proc/sys/kernel/random/uuid)", "name": "${2%%.*}", "hostname": "$2",
 "availability_zone": "nova", "launch_index": 0, "project_id": "smoke", "devices": [],
 "admin_pass": "smoke-Pa55",
 "meta": {"note": "quotes \" and \\\\ and \\u00e9"},
 "public_keys": {"smoke": "$pubkey\n"},
 "keys": [{"name": "smoke", "type": "ssh", "data": "$pubkey\n"}],
 "random_seed": "$(head -c 64 /dev/urandom | base64 -w0)"}
EOF
    printf '#!/bin/sh\necho "%s from $(hostname)"\n' "$3" > "$1/openstack/latest/user_data"
}

# A port for QEMU's hostfwd: below the kernel's ephemeral range, so no client connection
# (the suite's earlier stages leave thousands in TIME_WAIT) can hold it, and unused in any
# state.
free_port() {
    local p low
    low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    [ "$low" -gt 20100 ] || low=32768
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % (low - 20000)))
        ss -Htan "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
    die "no free port"
}

# QMP over a pipe chardev ($work/qmp.in/.out): bash can speak it, and no socket is opened.
qmp() { echo "$1" >&3; }
qmp_wait() { # regex timeout: read QMP lines until one matches
    local line end=$(( $(date +%s) + $2 ))
    while [ "$(date +%s)" -lt "$end" ]; do
        IFS= read -r -t 1 -u 4 line || continue
        echo "$line" >> "$work/qmp.log"
        [[ "$line" =~ $1 ]] && return 0
    done
    return 1
}

# Sets up scenario $1's metadata and devices, then boots and checks it (twice
# on the same disk for "reboot", which must keep its SSH host keys).
run_scenario() {
    local sc=$1 host="ferro-smoke-${1%%-*}" marker="SMOKE-USERDATA-$RANDOM$RANDOM"
    local dir="$work/$sc"
    mkdir -p "$dir"
    local netdev="user,id=n0,restrict=on"
    local extra=() boot=,bootindex=0
    if [ "${SMOKE_BOOT:-disk}" = kernel ]; then
        # -kernel takes boot index 0 itself; a disk asking for it too is an error.
        extra=(-kernel "$img/vmlinuz" -initrd "$img/initrd.img" -append "$(cat "$img/cmdline")")
        boot=
    fi
    case "$sc" in
        config-drive|reboot)
            write_metadata "$dir/cd" "$host.novalocal" "$marker"
            if [ "${SMOKE_CONFIG_DRIVE_FORMAT:-iso9660}" = vfat ]; then
                truncate -s 64M "$dir/config.iso"
                mkfs.fat -n config-2 "$dir/config.iso" >/dev/null 2>&1
                MTOOLS_SKIP_CHECK=1 mcopy -s -i "$dir/config.iso" "$dir/cd/openstack" ::/
            else
                genisoimage -quiet -J -r -V config-2 -o "$dir/config.iso" "$dir/cd"
            fi
            if [ "${SMOKE_CONFIG_DRIVE_BUS:-virtio}" = scsi ]; then
                # Nova attaches an ISO as a CD-ROM and a vfat drive as a disk.
                local kind=scsi-cd media=,media=cdrom
                [ "${SMOKE_CONFIG_DRIVE_FORMAT:-iso9660}" = vfat ] && kind=scsi-hd media=
                extra+=(-device virtio-scsi-pci,id=scsi0
                    -drive "file=$dir/config.iso,if=none,id=cd0,format=raw,readonly=on$media"
                    -device "$kind,drive=cd0,bus=scsi0.0")
            else
                extra+=(-drive "file=$dir/config.iso,if=none,id=cd0,format=raw,readonly=on"
                    -device virtio-blk-pci,drive=cd0)
            fi
            ;;
        metadata-service|ec2)
            write_metadata "$dir/md" "$host" "$marker"
            if [ "$sc" = ec2 ]; then
                # Only the EC2 layout: /latest/meta-data/..., /latest/user-data.
                mkdir -p "$dir/ec2/latest/meta-data/public-keys/0"
                echo "$pubkey" > "$dir/ec2/latest/meta-data/public-keys/0/openssh-key"
                echo "$host.ec2.internal" > "$dir/ec2/latest/meta-data/hostname"
                cp "$dir/md/openstack/latest/user_data" "$dir/ec2/latest/user-data"
                rm -rf "$dir/md"; mv "$dir/ec2" "$dir/md"
            fi
            # The metadata address must lie inside the user-mode network.
            netdev+=",net=169.254.0.0/16,guestfwd=tcp:169.254.169.254:80-cmd:bash '$here/smoke.sh' --serve '$dir/md'"
            ;;
        *) die "unknown scenario $sc" ;;
    esac
    # The compute driver boots a qcow2 overlay on the cached base image.
    qemu-img create -q -f qcow2 -b "$img/disk.qcow2" -F qcow2 "$dir/root.qcow2"
    if [ "$sc" = reboot ]; then
        boot_and_check 1
        mv "$dir/known_hosts" "$dir/known_hosts.1"
        boot_and_check 2
        # same keys, whatever the port in front of them
        cmp -s <(cut -d' ' -f2- "$dir/known_hosts.1") <(cut -d' ' -f2- "$dir/known_hosts") ||
            die "$sc: the SSH host keys changed across a reboot"
        echo "$sc: host keys kept across the reboot: ok"
    else
        boot_and_check
    fi
}

# Boots $dir/root.qcow2 with run_scenario's devices, waits for the ready line,
# checks it, SSHes in, powers down over QMP. $1: boot number (reboot only).
boot_and_check() {
    local n=${1:-} port t0 ready=
    local console="$dir/console$n.log"
    port=$(free_port)
    rm -f "$work/qmp.in" "$work/qmp.out"; mkfifo "$work/qmp.in" "$work/qmp.out"
    log "$sc: booting (ssh on 127.0.0.1:$port)"
    t0=$(now)
    qemu-system-x86_64 -accel "$accel" -machine q35 -cpu "$cpu" -m 128 -smp 1 \
        -nodefaults -no-user-config -display none -no-reboot \
        -chardev "pipe,id=qmp0,path=$work/qmp" -mon chardev=qmp0,mode=control \
        -serial "file:$console" \
        -drive "file=$dir/root.qcow2,if=none,id=disk0,format=qcow2" \
        -device "virtio-blk-pci,drive=disk0$boot" \
        -netdev "$netdev,hostfwd=tcp:127.0.0.1:$port-:22" -device virtio-net-pci,netdev=n0,romfile= \
        -device virtio-rng-pci "${extra[@]}" \
        </dev/null >"$dir/qemu.log" 2>&1 &
    qemu_pid=$!
    # read-write opens never block, even if QEMU failed to start
    exec 3<>"$work/qmp.in" 4<>"$work/qmp.out"
    qmp_wait '"QMP"' 10 || die "$sc: no QMP greeting ($(cat "$dir/qemu.log"))"
    qmp '{"execute": "qmp_capabilities"}'
    qmp_wait '"return"' 10 || die "$sc: qmp_capabilities failed ($(cat "$dir/qemu.log"))"

    local end=$(( $(date +%s) + ready_timeout ))
    while [ "$(date +%s)" -lt "$end" ]; do
        ready=$(grep -a -m1 '^ferrostack-guest ready:' "$console" 2>/dev/null || true)
        [ -z "$ready" ] || break
        kill -0 "$qemu_pid" 2>/dev/null || die "$sc: QEMU exited before ready: $(cat "$dir/qemu.log")"
        sleep 0.2
    done
    [ -n "$ready" ] || { tail -n 30 "$console" >&2; die "$sc: no ready line within ${ready_timeout}s"; }
    local t_ready; t_ready=$(since "$t0")
    ready=${ready%$'\r'}
    log "$sc: $ready"
    [[ "$ready" == *"hostname=$host "* ]] || die "$sc: expected hostname=$host"
    grep -aq "^$marker from $host" "$console" || die "$sc: user_data marker missing from the console"

    # Pin the host key the guest printed on its console (cloud-init style block).
    sed -n '/^-----BEGIN SSH HOST KEY KEYS-----/,/^-----END SSH HOST KEY KEYS-----/p' "$console" |
        tr -d '\r' | grep -E '^(ssh-|ecdsa-)' | sed "s/^/[127.0.0.1]:$port /" > "$dir/known_hosts" || true
    [ -s "$dir/known_hosts" ] || die "$sc: no host keys on the console"
    local t1 out
    t1=$(now)
    out=$(ssh -q -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$dir/known_hosts" \
        -o IdentitiesOnly=yes -o ConnectTimeout=20 -i "$work/id_ed25519" -p "$port" root@127.0.0.1 \
        'uname -r; hostname; wc -l < /root/.ssh/authorized_keys; cut -d: -f2 /etc/shadow | cut -c1-3' \
        </dev/null) || die "$sc: ssh failed"
    local t_ssh; t_ssh=$(since "$t1")
    local res; mapfile -t res <<< "$out"
    set -- "${res[@]}"
    [ "${1:-}" = "$kver" ] || die "$sc: uname -r over ssh gave '${1:-}', want $kver"
    [ "${2:-}" = "$host" ] || die "$sc: hostname over ssh gave '${2:-}'"
    [ "${3:-}" = 1 ] || die "$sc: expected 1 authorized key (public_keys and keys deduplicated), got ${3:-}"
    # admin_pass sets root's (console) password; the EC2 layout has none.
    local want_pw='$6$'; [ "$sc" = ec2 ] && want_pw='*'
    [ "${4:-}" = "$want_pw" ] || die "$sc: root password hash starts with '${4:-}', want '$want_pw'"
    log "$sc: ssh ok: uname -r = $1"

    local t2; t2=$(now)
    qmp '{"execute": "system_powerdown"}'
    qmp_wait '"event": *"SHUTDOWN".*"guest": *true' 30 || die "$sc: no guest SHUTDOWN event within 30s after system_powerdown"
    local rc=
    for _ in $(seq 100); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$qemu_pid" 2>/dev/null && die "$sc: QEMU still running after the guest shut down"
    wait "$qemu_pid" && rc=0 || rc=$?
    qemu_pid=
    exec 3>&- 4<&-
    [ "$rc" = 0 ] || die "$sc: QEMU exited with $rc"
    grep -aq 'ACPI power button' "$console" || die "$sc: the guest did not see the power button"
    local t_off; t_off=$(since "$t2")
    local guest_up; guest_up=$(grep -a -o 'uptime=[0-9.]*s' "$console" | head -n1)
    echo "$sc${n:+ boot $n}: ready ${t_ready}s (guest ${guest_up#uptime=}), ssh ${t_ssh}s, powerdown ${t_off}s: ok"
}

for sc in "${scenarios[@]}"; do run_scenario "$sc"; done
echo "${#scenarios[@]} passed, 0 failed"
