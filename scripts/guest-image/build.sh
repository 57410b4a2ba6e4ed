#!/usr/bin/env bash
# Builds ferrostack's tiny guest image (our CirrOS): a BIOS-bootable qcow2
# (MBR + FAT16 + SYSLINUX) holding a Debian kernel and a busybox + dropbear
# initramfs, plus the same kernel and initramfs as separate files for
# kernel/ramdisk boots. Everything comes from the machine's own Debian packages.
#
#   build.sh [OUTDIR]
#
# The result is cached in $FERROSTACK_CACHE/guest-image/<key>, where <key>
# hashes this directory's files and the versions of every package used; an
# unchanged key is not rebuilt. Prints the output directory (OUTDIR when given,
# the files are then copied there). Logs go to stderr. Meant to run as root:
# it installs missing build tools with apt-get (without that need, any user
# can build).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache="${FERROSTACK_CACHE:-$HOME/.cache/ferrostack}/guest-image"
kernel_meta=${GUEST_KERNEL_PACKAGE:-linux-image-cloud-amd64}
# console=ttyS0 last: it becomes /dev/console (the console log); tty0 keeps
# kernel messages on a VGA screen when the VM has one.
cmdline="console=tty0 console=ttyS0,115200n8 quiet"
# Drivers the Debian kernel builds as modules (their dependencies are added below).
modules="virtio_pci virtio_mmio virtio_net virtio_blk virtio_scsi virtio_console
  virtio-rng virtio_balloon sd_mod sr_mod ata_piix isofs vfat nls_cp437 nls_ascii
  nls_iso8859-1 nls_utf8 evdev button"
# dropbear's libraries come from packages too, never from the build host.
guest_pkgs="busybox-static dropbear-bin libc6 libcrypt1 libtomcrypt1 libtommath1 libgmp10 zlib1g"

log() { echo "guest-image: $*" >&2; }
die() { log "$*"; exit 1; }
t0=$(date +%s.%N)
need_root() { [ "$(id -u)" = 0 ] || die "run as root: $*"; }

apt_updated=
apt_update_once() {
    [ -n "$apt_updated" ] && return 0
    need_root "apt-get update is needed"
    log "apt-get update"
    apt-get update -qq >&2
    apt_updated=1
}

# --- build tools on the host ----------------------------------------------------
declare -A tool_pkg=([dpkg-deb]=dpkg [cpio]=cpio [sfdisk]=fdisk [mkfs.fat]=dosfstools
    [mcopy]=mtools [syslinux]=syslinux [qemu-img]=qemu-utils [flock]=util-linux [ldd]=libc-bin)
missing=()
for t in "${!tool_pkg[@]}"; do command -v "$t" >/dev/null || missing+=("${tool_pkg[$t]}"); done
[ -f /usr/lib/syslinux/mbr/mbr.bin ] || missing+=(syslinux-common)
if [ ${#missing[@]} -gt 0 ]; then
    need_root "${missing[*]} must be installed"
    apt_update_once
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# --- the exact package versions (they are part of the cache key) --------------------
# One apt-cache call (each costs ~0.5 s). The kernel metapackage names the
# versioned kernel package and its exact version in its Depends.
declare -A ver=()
kpkg=
resolve() {
    local line
    while read -r line; do
        case "$line" in
            kernel\ *) set -- $line; kpkg=$2; ver[$2]=$3 ;;
            *) set -- $line; ver[$1]=$2 ;;
        esac
    done < <(apt-cache show --no-all-versions "$kernel_meta" $guest_pkgs 2>/dev/null | awk -v meta="$kernel_meta" '
        /^Package:/ { p = $2 }
        /^Version:/ && p != meta { print p, $2 }
        /^Depends:/ && p == meta && match($0, /linux-image-[^ ,]+ \(= [^)]+\)/) {
            split(substr($0, RSTART, RLENGTH), d, /[ ()=]+/); print "kernel", d[1], d[2] }')
}
resolve
[ -n "$kpkg" ] || { apt_update_once; resolve; }
[ -n "$kpkg" ] || die "apt knows no $kernel_meta"
for p in $guest_pkgs; do
    [ -n "${ver[$p]:-}" ] || { apt_update_once; resolve; }
    [ -n "${ver[$p]:-}" ] || die "apt knows no $p"
done
pkgs_sorted=$(printf '%s\n' "${!ver[@]}" | LC_ALL=C sort)

key=$(
    cd "$here"
    echo "$cmdline"; echo "$modules"
    for p in $pkgs_sorted; do echo "$p=${ver[$p]}"; done
    dpkg-query -W -f '${Package}=${Version}\n' syslinux syslinux-common  # bootloader code in the image
    find build.sh rootfs -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    find rootfs -type f -perm -u+x | LC_ALL=C sort
) && key=$(echo "$key" | sha256sum | cut -c1-16)
out="$cache/$key"

publish() {
    if [ -n "${1:-}" ]; then
        mkdir -p "$1"
        cp -f "$out"/* "$1"/
        echo "$1"
    else
        echo "$out"
    fi
}

mkdir -p "$cache/debs"
if [ -f "$out/manifest.json" ]; then
    log "cached: $out"
    touch "$out"   # in use: spared by the pruning below
    publish "${1:-}"; exit 0
fi
# One build at a time per cache; whoever waited finds the result ready.
exec 9>"$cache/.lock"
flock 9
if [ -f "$out/manifest.json" ]; then publish "${1:-}"; exit 0; fi

# Scratch space (~150 MB, mostly the unpacked kernel modules) in RAM when
# possible: unpacking and deleting it on disk costs seconds.
rm -rf "$cache"/.build.* "$cache"/.new.*   # left by a killed build
scratch="$cache"; [ -d /dev/shm ] && [ -w /dev/shm ] && scratch=/dev/shm
work=$(mktemp -d "$scratch/.build.XXXXXX")
trap 'rm -rf "$work" "$cache/.new.$$"' EXIT
trap 'exit 1' INT TERM

# --- download (apt-get download keeps epochs as %3a in file names) ---------------
deb_of() { ls "$cache/debs/${1}_${ver[$1]//:/%3a}_"*.deb 2>/dev/null | head -n1 || true; }
want=()
for p in $pkgs_sorted; do [ -n "$(deb_of "$p")" ] || want+=("$p=${ver[$p]}"); done
if [ ${#want[@]} -gt 0 ]; then
    log "downloading ${want[*]}"
    # (as root, apt's _apt sandbox user could not write to this directory)
    sandbox=(); [ "$(id -u)" = 0 ] && sandbox=(-o APT::Sandbox::User=root)
    (cd "$cache/debs" && apt-get download -qq "${sandbox[@]}" "${want[@]}" >&2)
fi
pk="$work/pkgs"
for p in $pkgs_sorted; do
    f=$(deb_of "$p"); [ -n "$f" ] || die "download of $p failed"
    dpkg-deb -x "$f" "$pk"
done
kver=$(cd "$pk/boot" && ls vmlinuz-* | sed 's/^vmlinuz-//' | head -n1)
[ -n "$kver" ] || die "no kernel in $kpkg"

# --- root filesystem -------------------------------------------------------------
r="$work/root"
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc/ferrostack,proc,sys,dev,run,tmp,var,root/.ssh,lib64}
chmod 700 "$r/root" "$r/root/.ssh"; chmod 1777 "$r/tmp"
ln -s ../run "$r/var/run"
cp -a "$here/rootfs/." "$r/"
cp "$pk/bin/busybox" "$r/bin/busybox"
for a in $("$r/bin/busybox" --list-full); do
    [ -e "$r/$a" ] || [ -L "$r/$a" ] || ln -s /bin/busybox "$r/$a"
done
# The kernel starts /init from an initramfs; busybox then acts as init.
ln -s /bin/busybox "$r/init"

cp "$pk/usr/sbin/dropbear" "$r/usr/sbin/"
cp "$pk/usr/bin/dbclient" "$pk/usr/bin/dropbearkey" "$r/usr/bin/"
libpath="$pk/lib/x86_64-linux-gnu:$pk/usr/lib/x86_64-linux-gnu"
for lib in $(LD_LIBRARY_PATH=$libpath ldd "$r/usr/sbin/dropbear" "$r/usr/bin/dbclient" "$r/usr/bin/dropbearkey" |
    awk '/not found/ { print "MISSING:" $1 } $2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u); do
    case "$lib" in
        "$pk"/*) ;;
        *) die "dropbear needs $lib, which no package in the list provides" ;;
    esac
    dst="$r/${lib#"$pk"/}"
    mkdir -p "$(dirname "$dst")"; cp -L "$lib" "$dst"
done
cp "$pk/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$r/lib/x86_64-linux-gnu/"
ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$r/lib64/ld-linux-x86-64.so.2"

# Modules plus dependencies, in load order (a module after everything it needs).
"$r/bin/busybox" depmod -b "$pk" "$kver"
md="$pk/lib/modules/$kver"
awk -v want="$modules" '
    { m = $1; sub(/:$/, "", m); dep[m] = ""; for (i = 2; i <= NF; i++) dep[m] = dep[m] " " $i
      b = m; sub(/.*\//, "", b); sub(/\.ko$/, "", b); path[b] = m }
    function visit(m,    n, d, i) { if (seen[m]++) return; n = split(dep[m], d, " "); for (i = 1; i <= n; i++) visit(d[i]); print m }
    END { n = split(want, w, /[ \n]+/)
          for (i = 1; i <= n; i++) { if (w[i] == "") continue
              if (!(w[i] in path)) { print "module " w[i] " not found" > "/dev/stderr"; exit 1 }
              visit(path[w[i]]) } }' "$md/modules.dep" > "$r/etc/ferrostack/modules"
while read -r m; do
    mkdir -p "$(dirname "$r/lib/modules/$kver/$m")"; cp "$md/$m" "$r/lib/modules/$kver/$m"
done < "$r/etc/ferrostack/modules"
# modules.dep/alias for the subset, so modprobe works inside the guest too.
"$r/bin/busybox" depmod -b "$r" "$kver"

# Accounts: root only, no password (keys from metadata; dropbear runs with -s).
echo 'root:x:0:0:root:/root:/bin/sh' > "$r/etc/passwd"
printf 'root:x:0:\ntty:x:5:\n' > "$r/etc/group"
echo 'root:*:19000:0:99999:7:::' > "$r/etc/shadow"; chmod 600 "$r/etc/shadow"
printf '/bin/sh\n/bin/ash\n' > "$r/etc/shells"
echo ferrostack > "$r/etc/hostname"
printf '127.0.0.1\tlocalhost\n' > "$r/etc/hosts"
: > "$r/root/.ssh/authorized_keys"; chmod 600 "$r/root/.ssh/authorized_keys"
printf 'ferrostack-guest %s\nkernel %s\n' "$key" "$kver" > "$r/etc/ferrostack-guest-release"
printf 'ferrostack guest %s \\n \\l\n\n' "$key" > "$r/etc/issue"

# --- artifacts ---------------------------------------------------------------------
o="$work/out"; mkdir -p "$o"
find "$r" -exec touch -h -d @1700000000 {} +   # same inputs, same cpio bytes
(cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -6n > "$o/initrd.img"
cp "$pk/boot/vmlinuz-$kver" "$o/vmlinuz"
echo "$cmdline" > "$o/cmdline"

# Disk: MBR, one bootable FAT16 partition at 1 MiB with SYSLINUX. Built with
# mtools offsets, so no loop device or mount is needed.
raw="$work/disk.raw"
# Fixed ids and timestamps where the tools take them, so rebuilds differ only
# in the timestamps SYSLINUX gives its own files.
export SOURCE_DATE_EPOCH=1700000000
mib=$(( ( $(stat -c %s "$o/vmlinuz") + $(stat -c %s "$o/initrd.img") ) / 1048576 + 8 ))
[ "$mib" -ge 32 ] || mib=32
truncate -s "${mib}M" "$raw"
printf 'label-id: 0x46455252\nstart=2048, type=6, bootable\n' | sfdisk -q "$raw" >&2
mkfs.fat -F 16 -n FERROSTACK -i 46455252 --offset 2048 "$raw" $(( (mib * 2048 - 2048) / 2 )) >/dev/null
syslinux --offset $((2048 * 512)) --install "$raw"
cat > "$work/syslinux.cfg" <<EOF
SERIAL 0 115200
PROMPT 0
TIMEOUT 0
DEFAULT ferrostack
LABEL ferrostack
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND $cmdline
EOF
touch -d @$SOURCE_DATE_EPOCH "$o/vmlinuz" "$o/initrd.img" "$work/syslinux.cfg"
export MTOOLS_SKIP_CHECK=1
mcopy -m -i "$raw@@1M" "$o/vmlinuz" "$o/initrd.img" "$work/syslinux.cfg" ::/
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$raw" bs=440 count=1 conv=notrunc status=none
qemu-img convert -f raw -O qcow2 "$raw" "$o/disk.qcow2"

# manifest.json: what a cloud needs to register and boot the image.
{
    printf '{\n  "name": "ferrostack-guest",\n  "key": "%s",\n  "kernel_version": "%s",\n' "$key" "$kver"
    printf '  "cmdline": "%s",\n  "disk_format": "qcow2",\n  "container_format": "bare",\n' "$cmdline"
    printf '  "virtual_size": %s,\n  "min_ram_mib": 96,\n  "packages": {\n' "$((mib * 1048576))"
    sep=""
    for p in $pkgs_sorted; do printf '%s    "%s": "%s"' "$sep" "$p" "${ver[$p]}"; sep=$',\n'; done
    printf '\n  },\n  "files": {\n'
    sep=""
    for f in disk.qcow2 vmlinuz initrd.img; do
        printf '%s    "%s": {"size": %s, "sha256": "%s"}' "$sep" "$f" "$(stat -c %s "$o/$f")" \
            "$(sha256sum "$o/$f" | cut -d' ' -f1)"
        sep=$',\n'
    done
    printf '\n  }\n}\n'
} > "$o/manifest.json"

# Copy next to the target first, then rename: readers never see half a build.
cp -r "$o" "$cache/.new.$$"
mv "$cache/.new.$$" "$out"
# Keep only the packages of this build in the download cache.
for f in "$cache"/debs/*.deb; do
    keep=
    for p in $pkgs_sorted; do [ "$f" = "$(deb_of "$p")" ] && keep=1; done
    [ -n "$keep" ] || rm -f "$f"
done
# Builds not used for 30 days (older package versions) go.
find "$cache" -mindepth 1 -maxdepth 1 -type d -regex '.*/[0-9a-f]\{16\}' -mtime +30 -exec rm -rf {} +
log "built $out in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s" \
    "(disk.qcow2 $(du -h "$out/disk.qcow2" | cut -f1), initrd $(du -h "$out/initrd.img" | cut -f1))"
publish "${1:-}"
