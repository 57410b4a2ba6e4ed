#!/usr/bin/env bash
# One OVS + OVN stack (a single chassis that is also the OVN central node), every file of it
# under DIR, for the tests and the all-in-one cloud. Userspace (netdev) datapath: no kernel
# module is needed, and no systemd.
#
#   ovn.sh start DIR [options]  start what is not running yet, wait until it answers, print env
#   ovn.sh env DIR              print the shell lines that point ovn-nbctl & co. at DIR
#   ovn.sh stop DIR             stop the daemons started under DIR (by their pidfiles), delete
#                               their network devices; the databases in DIR/db are kept
#
# Options of start (each also read from the environment variable named beside it):
#   --system-id ID        chassis name (FERROSTACK_OVN_SYSTEM_ID; default: the host name)
#   --bridge-suffix SFX   bridges are br-int-SFX and br-ex-SFX (FERROSTACK_OVN_BRIDGE_SUFFIX)
#   --netns NAME          run ovs-vswitchd and ovn-controller in network namespace NAME,
#                         created if missing and then deleted by stop (FERROSTACK_OVN_NETNS).
#   --br-ex-cidr CIDR     host address on br-ex (FERROSTACK_OVN_BR_EX_CIDR; default
#                         172.24.4.1/24, as DevStack's public network; "none": no address)
#   --no-br-ex            no br-ex and no bridge mapping at all (FERROSTACK_OVN_NO_BR_EX=1)
#
# Several stacks on one host: with the netdev datapath, ovs-vswitchd makes every bridge's
# internal port a tap device, plus one tap for the datapath itself that is always named
# "ovs-netdev". A second ovs-vswitchd in the same network namespace cannot open its datapath
# ("creating tap device failed: Device or resource busy"), whatever its bridges are called.
# So only one stack per namespace: the all-in-one cloud uses the host's, each test stack
# gets --netns of its own (its ports live there; the databases are unix sockets in DIR/run,
# reachable from anywhere). Its bridge names then need no suffix either.
# The taps are persistent: they outlive a killed ovs-vswitchd (br-ex keeps its address), so
# stop deletes the ones this stack made.
#
# Layout: DIR/db (conf.db, ovnnb_db.db, ovnsb_db.db), DIR/run (sockets, pidfiles, control
# sockets: see ctl_of), DIR/log (one log per daemon), DIR/ovn.conf (what start chose, read by env/stop).
# Unix socket paths are limited to 107 bytes, so DIR must be short (a directory under /tmp).
set -euo pipefail
log() { echo "ovn.sh: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }
usage() {
    echo "usage: $0 start DIR [--system-id ID] [--bridge-suffix SFX] [--netns NAME]" \
        "[--br-ex-cidr CIDR|none] [--no-br-ex] | env DIR | stop DIR" >&2
    exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$(realpath -m "$2")
shift 2
db=$dir/db run=$dir/run logs=$dir/log conf=$dir/ovn.conf
nb_sock=$run/ovnnb_db.sock sb_sock=$run/ovnsb_db.sock ovs_sock=$run/db.sock

# The tools find the daemons through these (ovs-vsctl: $OVS_RUNDIR/db.sock; ovs-appctl and
# ovn-appctl: pidfiles in the run directories; ovn-controller puts its control socket there).
export OVS_RUNDIR=$run OVS_LOGDIR=$logs OVS_DBDIR=$db OVS_SYSCONFDIR=$db
export OVN_RUNDIR=$run OVN_LOGDIR=$logs OVN_DBDIR=$db OVN_SYSCONFDIR=$db
export OVN_NB_DB=unix:$nb_sock OVN_SB_DB=unix:$sb_sock

# What start chose (ovn.conf) and what it created (marker files in DIR/run).
system_id= br_int= br_ex= br_ex_cidr= netns=
load_conf() {
    # shellcheck disable=SC1090
    [ -f "$conf" ] && . "$conf"
    return 0
}

# Runs a command in the stack's network namespace.
in_ns() { if [ -n "$netns" ]; then ip netns exec "$netns" "$@"; else "$@"; fi; }

print_env() {
    cat <<EOF
export OVS_RUNDIR=$run OVS_LOGDIR=$logs OVS_DBDIR=$db
export OVN_RUNDIR=$run OVN_LOGDIR=$logs OVN_DBDIR=$db
export OVN_NB_DB=unix:$nb_sock OVN_SB_DB=unix:$sb_sock
export FERROSTACK_OVN_SYSTEM_ID=$system_id FERROSTACK_OVN_BR_INT=$br_int FERROSTACK_OVN_BR_EX=$br_ex FERROSTACK_OVN_NETNS=$netns
EOF
}

# A process that exists and has not exited. Daemons that --detach are reparented to PID 1,
# which may take seconds to reap them: a zombie counts as gone.
alive() { # PID
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# pid of a daemon from its pidfile, if that process is alive and runs that program.
live_pid() { # NAME (pidfile DIR/run/NAME.pid) PROGRAM
    local pid
    pid=$(cat "$run/$1.pid" 2>/dev/null) || return 1
    case "$pid" in '' | *[!0-9]*) return 1 ;; esac
    alive "$pid" || return 1
    tr '\0' '\n' <"/proc/$pid/cmdline" | head -n1 | grep -q "$2\$" || return 1
    echo "$pid"
}

# Polls a command until it succeeds, up to SECONDS.
wait_for() { # SECONDS WHAT CMD...
    local limit=$1 what=$2 i
    shift 2
    for ((i = 0; i < limit * 10; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "$what did not answer within ${limit}s (logs in $logs)"
}

# Control sockets: the daemons named after their program use the tools' default,
# DIR/run/NAME.PID.ctl, so that `ovs-appctl -t ovs-vswitchd` and `ovn-appctl -t ovn-northd`
# find them through OVS_RUNDIR/OVN_RUNDIR; the NB and SB servers (both ovsdb-server) have
# fixed names, DIR/run/ovnnb_db.ctl and DIR/run/ovnsb_db.ctl, as ovn-ctl makes them.
ctl_of() { # NAME PID
    case "$1" in
    ovnnb_db | ovnsb_db) echo "$run/$1.ctl" ;;
    *) echo "$run/$1.$2.ctl" ;;
    esac
}

# Stops a daemon: its own "exit" command first (it cleans up), then SIGTERM, then SIGKILL.
stop_daemon() { # NAME PROGRAM
    local pid i
    pid=$(live_pid "$1" "$2") || { rm -f "$run/$1.pid"; return 0; }
    timeout 5 ovs-appctl -t "$(ctl_of "$1" "$pid")" exit >/dev/null 2>&1 || true
    for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
        log "$1 (pid $pid) ignored exit; terminating it"
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 30; i++)); do alive "$pid" || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$run/$1.pid"
}

# A database file from its schema, or converted when the installed schema is newer.
ensure_db() { # FILE SCHEMA
    if [ ! -s "$1" ]; then
        ovsdb-tool create "$1" "$2"
    elif [ "$(ovsdb-tool needs-conversion "$1" "$2")" = yes ]; then
        log "converting $(basename "$1") to $(ovsdb-tool schema-version "$2")"
        ovsdb-tool convert "$1" "$2"
    fi
}

# The daemons log to DIR/log; on the console only warnings (before they detach).
daemon_opts() { # NAME
    echo -vconsole:warn --pidfile="$run/$1.pid" --log-file="$logs/$1.log" --detach --no-chdir
}

start_ovsdb() { # NAME DBFILE SOCKET EXTRA-REMOTE
    live_pid "$1" ovsdb-server >/dev/null && return 0
    # shellcheck disable=SC2046
    local ctl=()
    [ "$1" = ovsdb-server ] || ctl=(--unixctl="$run/$1.ctl")
    ovsdb-server "$2" --remote="punix:$3" --remote="$4" "${ctl[@]}" $(daemon_opts "$1")
}

# Another netdev ovs-vswitchd in the namespace we are about to use owns "ovs-netdev".
other_vswitchd_in_ns() {
    local mine pid
    mine=$(in_ns readlink /proc/self/ns/net)
    for pid in $(pgrep -x ovs-vswitchd || true); do
        alive "$pid" || continue
        [ "$pid" = "$(live_pid ovs-vswitchd ovs-vswitchd || true)" ] && continue
        [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$mine" ] && return 0
    done
    return 1
}

start() {
    local want_id=${FERROSTACK_OVN_SYSTEM_ID:-} suffix=${FERROSTACK_OVN_BRIDGE_SUFFIX:-}
    local want_cidr=${FERROSTACK_OVN_BR_EX_CIDR:-172.24.4.1/24} want_ns=${FERROSTACK_OVN_NETNS:-}
    local with_br_ex=1
    [ "${FERROSTACK_OVN_NO_BR_EX:-0}" = 1 ] && with_br_ex=0
    while [ $# -gt 0 ]; do
        case "$1" in
        --system-id) want_id=${2:?}; shift 2 ;;
        --bridge-suffix) suffix=${2?}; shift 2 ;;
        --netns) want_ns=${2:?}; shift 2 ;;
        --br-ex-cidr) want_cidr=${2:?}; shift 2 ;;
        --no-br-ex) with_br_ex=0; shift ;;
        *) usage ;;
        esac
    done
    [ -n "$want_id" ] || want_id=$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)
    local want_int=br-int want_ex=br-ex
    if [ -n "$suffix" ]; then
        # Interface names have at most 15 bytes: "br-int-" leaves 8.
        [[ "$suffix" =~ ^[A-Za-z0-9_]{1,8}$ ]] || die "--bridge-suffix must be 1-8 letters, digits or _"
        want_int=br-int-$suffix want_ex=br-ex-$suffix
    fi
    [ "$with_br_ex" = 1 ] || want_ex=
    [ -z "$want_ns" ] || [[ "$want_ns" =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || die "bad --netns name"
    [ ${#sb_sock} -le 107 ] || die "DIR is too long for unix socket paths ($sb_sock)"
    for c in ovsdb-server ovsdb-tool ovs-vswitchd ovs-vsctl ovs-appctl ovn-northd ovn-controller \
        ovn-nbctl ovn-sbctl ip; do
        command -v "$c" >/dev/null || die "$c is missing: run scripts/install-ovn.sh (as root)"
    done
    [ "$(id -u)" = 0 ] || die "ovs-vswitchd needs root (tap devices, namespaces)"

    # A stack that still runs under DIR keeps what it was started with.
    load_conf
    if live_pid ovs-vswitchd ovs-vswitchd >/dev/null &&
        { [ "$want_id" != "$system_id" ] || [ "$want_int" != "$br_int" ] ||
            [ "$want_ex" != "$br_ex" ] || [ "$want_ns" != "$netns" ]; }; then
        die "a stack with other settings runs under $dir; stop it first"
    fi
    system_id=$want_id br_int=$want_int br_ex=$want_ex br_ex_cidr=$want_cidr netns=$want_ns
    mkdir -p "$db" "$run" "$logs"
    printf 'system_id=%q\nbr_int=%q\nbr_ex=%q\nbr_ex_cidr=%q\nnetns=%q\n' \
        "$system_id" "$br_int" "$br_ex" "$br_ex_cidr" "$netns" >"$conf"

    local started_ns
    started_ns=$(date +%s%N)
    # Any failure from here on: show the logs' tails and stop what this run started.
    trap 'rc=$?; if [ $rc != 0 ]; then log "start failed; stopping the stack";
        for f in "$logs"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 5 "$f" >&2; }; done
        stop_all; fi' EXIT

    if [ -n "$netns" ] && ! ip netns exec "$netns" true 2>/dev/null; then
        ip netns add "$netns"
        touch "$run/created-netns"
        ip netns exec "$netns" ip link set lo up
    fi

    # --- Open vSwitch: its database, then the switch daemon ---
    ensure_db "$db/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    start_ovsdb ovsdb-server "$db/conf.db" "$ovs_sock" db:Open_vSwitch,Open_vSwitch,manager_options
    wait_for 10 ovsdb-server ovs-vsctl --timeout=2 --no-wait get Open_vSwitch . _uuid
    ovs-vsctl --timeout=5 --no-wait -- init -- set Open_vSwitch . \
        external_ids:system-id="$system_id" \
        external_ids:hostname="$system_id" \
        external_ids:ovn-remote="unix:$sb_sock" \
        external_ids:ovn-encap-type=geneve \
        external_ids:ovn-encap-ip=127.0.0.1 \
        external_ids:ovn-bridge="$br_int" \
        external_ids:ovn-bridge-datapath-type=netdev \
        external_ids:ovn-cms-options=enable-chassis-as-gw
    if [ -n "$br_ex" ]; then
        ovs-vsctl --timeout=5 --no-wait set Open_vSwitch . external_ids:ovn-bridge-mappings="public:$br_ex"
    else
        ovs-vsctl --timeout=5 --no-wait remove Open_vSwitch . external_ids ovn-bridge-mappings
    fi
    if ! live_pid ovs-vswitchd ovs-vswitchd >/dev/null; then
        if in_ns ip link show dev ovs-netdev >/dev/null 2>&1; then
            local where="the host network namespace"
            [ -z "$netns" ] || where="network namespace $netns"
            other_vswitchd_in_ns && die "another ovs-vswitchd with the netdev datapath runs in $where: use --netns"
            log "deleting the leftover ovs-netdev tap of a vswitchd that is gone"
            in_ns ip link del ovs-netdev
        fi
        # Without --mlockall (the packaged scripts' default): ~19 MB resident instead of ~70 MB.
        # --monitor: a crash (Open vSwitch 3.1.0's userspace conntrack can hit an assertion
        # under NAT load) restarts the switch, which re-reads its ports from the database
        # while ovn-controller puts the flows back; `exit` and SIGTERM still stop it.
        # shellcheck disable=SC2046
        in_ns ovs-vswitchd "unix:$ovs_sock" $(daemon_opts ovs-vswitchd) --monitor
        touch "$run/created-datapath"
    fi
    wait_for 10 ovs-vswitchd ovs-appctl -t ovs-vswitchd version
    ovs-vsctl --timeout=10 -- --may-exist add-br "$br_int" \
        -- set Bridge "$br_int" datapath_type=netdev fail-mode=secure other-config:disable-in-band=true
    # ovs-vsctl does not fail when vswitchd could not make the bridge: its tap tells.
    wait_for 10 "bridge $br_int" in_ns ip link show dev "$br_int"
    if [ -n "$br_ex" ]; then
        ovs-vsctl --timeout=10 -- --may-exist add-br "$br_ex" -- set Bridge "$br_ex" datapath_type=netdev
        wait_for 10 "bridge $br_ex" in_ns ip link show dev "$br_ex"
        if [ "$br_ex_cidr" != none ]; then
            in_ns ip addr replace "$br_ex_cidr" dev "$br_ex"
            in_ns ip link set "$br_ex" up
        fi
    fi

    # --- OVN central: NB and SB databases, northd ---
    ensure_db "$db/ovnnb_db.db" /usr/share/ovn/ovn-nb.ovsschema
    ensure_db "$db/ovnsb_db.db" /usr/share/ovn/ovn-sb.ovsschema
    start_ovsdb ovnnb_db "$db/ovnnb_db.db" "$nb_sock" db:OVN_Northbound,NB_Global,connections
    start_ovsdb ovnsb_db "$db/ovnsb_db.db" "$sb_sock" db:OVN_Southbound,SB_Global,connections
    wait_for 10 "NB ovsdb-server" ovn-nbctl --timeout=2 show
    wait_for 10 "SB ovsdb-server" ovn-sbctl --timeout=2 show
    ovn-nbctl --timeout=5 init
    ovn-sbctl --timeout=5 init
    if ! live_pid ovn-northd ovn-northd >/dev/null; then
        # shellcheck disable=SC2046
        ovn-northd --ovnnb-db="unix:$nb_sock" --ovnsb-db="unix:$sb_sock" $(daemon_opts ovn-northd)
    fi
    wait_for 10 ovn-northd ovs-appctl -t ovn-northd status

    # --- OVN chassis: ovn-controller ---
    if ! live_pid ovn-controller ovn-controller >/dev/null; then
        # shellcheck disable=SC2046
        in_ns ovn-controller "unix:$ovs_sock" $(daemon_opts ovn-controller)
    fi
    wait_for 20 "chassis $system_id in the SB database" \
        sh -c 'ovn-sbctl --timeout=2 --bare --columns=name find Chassis name="$1" | grep -q .' _ "$system_id"
    # NB -> northd -> SB -> ovn-controller -> back: the whole chain answers.
    ovn-nbctl --timeout=20 --wait=hv sync || die "ovn-nbctl --wait=hv sync did not complete in 20s"
    trap - EXIT
    log "stack up under $dir in $((($(date +%s%N) - started_ns) / 1000000)) ms" \
        "(chassis $system_id, bridges $br_int${br_ex:+ $br_ex}${netns:+, netns $netns})"
    print_env
}

stop_all() {
    load_conf
    stop_daemon ovn-controller ovn-controller
    stop_daemon ovn-northd ovn-northd
    stop_daemon ovnnb_db ovsdb-server
    stop_daemon ovnsb_db ovsdb-server
    # Bridges go while vswitchd still runs, so that it closes their taps itself.
    if live_pid ovs-vswitchd ovs-vswitchd >/dev/null && live_pid ovsdb-server ovsdb-server >/dev/null; then
        local br
        for br in $br_int $br_ex; do
            ovs-vsctl --timeout=5 --if-exists del-br "$br" >/dev/null 2>&1 || true
        done
    fi
    stop_daemon ovs-vswitchd ovs-vswitchd
    stop_daemon ovsdb-server ovsdb-server
    if [ -n "$netns" ] && [ -f "$run/created-netns" ]; then
        # Deleting the namespace takes every device left in it.
        ip netns del "$netns" 2>/dev/null || true
    elif [ -f "$run/created-datapath" ]; then
        # Persistent taps outlive a killed vswitchd. Only when it was ours: a start refused
        # because another stack runs in the namespace must not touch that stack's devices.
        local l
        for l in $br_int $br_ex ovs-netdev; do
            if in_ns ip link show dev "$l" >/dev/null 2>&1; then
                log "deleting leftover link $l"
                in_ns ip link del "$l" 2>/dev/null || true
            fi
        done
    fi
    rm -f "$run"/*.ctl "$run"/*.sock "$run"/*.mgmt "$run"/*.snoop "$run/created-netns" "$run/created-datapath"
}

case "$cmd" in
start) start "$@" ;;
env)
    [ -f "$conf" ] || die "no stack was started under $dir"
    load_conf
    print_env
    ;;
stop)
    [ $# -eq 0 ] || usage
    [ -d "$dir" ] || exit 0
    stop_all
    ;;
*) usage ;;
esac
