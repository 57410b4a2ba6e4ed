#!/usr/bin/env bash
# Installs what the Networking service's real backend runs, when missing: Open vSwitch
# (ovsdb-server, ovs-vswitchd, ovs-vsctl), OVN (ovn-northd, the NB/SB schemas, ovn-nbctl,
# ovn-sbctl, ovn-trace; ovn-controller), iproute2 (ip netns, veth), ethtool (the tests
# turn tx offload off on veth ports) and ping (the tests' traffic check). Debian's packages
# only. Run as root; a no-op once
# everything is there.
#
# The packages' maintainer scripts would start their daemons through invoke-rc.d. Ours are
# started per test or per cloud by scripts/ovn.sh, under a directory of their own, so none
# may be left running by the install: a policy-rc.d that refuses every start is in place
# while apt runs (the machine's own one is kept if it has one), and whatever still got
# started is stopped afterwards through the pidfiles the packages use.
set -euo pipefail
log() { echo "install-ovn: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

need=()
for bin in ovsdb-server ovs-vswitchd ovs-vsctl ovsdb-tool; do
    command -v "$bin" >/dev/null || { need+=(openvswitch-switch); break; }
done
for bin in ovn-northd ovn-nbctl ovn-sbctl ovn-trace; do
    command -v "$bin" >/dev/null || { need+=(ovn-central); break; }
done
[ -f /usr/share/ovn/ovn-nb.ovsschema ] || need+=(ovn-central)
command -v ovn-controller >/dev/null || need+=(ovn-host)
command -v ip >/dev/null || need+=(iproute2)
command -v ethtool >/dev/null || need+=(ethtool)
command -v ping >/dev/null || need+=(iputils-ping)
# De-duplicate, keep the order.
mapfile -t need < <(printf '%s\n' "${need[@]}" | awk 'NF && !seen[$0]++')
[ ${#need[@]} -gt 0 ] || exit 0
[ "$(id -u)" = 0 ] || die "missing ${need[*]}; run this script as root to install them"

policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# Temporary, from install-ovn.sh: no daemon starts during the install.\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
fi
cleanup() { [ "$own_policy" = 0 ] || rm -f "$policy"; }
trap cleanup EXIT

apt-get update -qq >&2
log "installing ${need[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2

# Anything a maintainer script started anyway (no systemd here: it would be the init.d
# scripts, which keep their pidfiles in the packages' run directories).
for pidfile in /run/openvswitch/*.pid /run/ovn/*.pid /var/run/openvswitch/*.pid /var/run/ovn/*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile" 2>/dev/null || true)
    case "$pid" in '' | *[!0-9]*) continue ;; esac
    if kill -0 "$pid" 2>/dev/null; then
        log "stopping $(basename "$pidfile" .pid) (pid $pid) that the package started"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
done

for bin in ovsdb-server ovs-vswitchd ovs-vsctl ovsdb-tool ovn-northd ovn-controller ovn-nbctl ovn-sbctl ip ethtool ping; do
    command -v "$bin" >/dev/null || die "$bin is still missing after the install"
done
log "installed: $(ovs-vswitchd --version | head -n1), $(ovn-northd --version | head -n1)"
