#!/usr/bin/env bash
# Networking benchmark (docs/benchmarks/network.md), driver scripts/bench/network-bench.py:
#  1. through the API: a fresh `ferrostack up` (its own OVS/OVN, fake compute driver) on a
#     free loopback port; as admin, BENCH_PORTS ports on one network, then BENCH_ROUTERS
#     routers each with its own network, subnet, gateway on `public` and interface, by
#     BENCH_CONCURRENCY clients; per-request latency p50/p99 and the time until OVN has it
#     all (rows in the Northbound database, then `ovn-nbctl --wait=hv sync`).
#  2. the same rows by ovn-nbctl alone against a fresh OVS/OVN stack (scripts/ovn.sh), one
#     transaction per API request through an ovn-nbctl daemon, same concurrency, timed to
#     the same `--wait=hv sync`; and the ports again batched 100 per transaction.
#  3. (BENCH_FIP_SERVERS > 0, default 3) server create to floating-IP reachability: a
#     fresh `ferrostack up` with the QEMU driver and the guest image; servers on `private`
#     as the demo user, a floating IP on each, timed from POST /servers until the floating
#     IP answers ping from the host (br-ex, 172.24.4.1/24).
# Stages 1 and 2 run their Open vSwitch in network namespaces of their own
# (FERROSTACK_OVN_NETNS, which `up` passes to scripts/ovn.sh), so they can run beside other
# stacks. Stage 3 needs the host's namespace (the floating IPs are reached from the host
# and QEMU's taps are made there): it refuses to start while another ovs-vswitchd runs in
# this namespace. Everything started here is stopped on exit.
# Usage: scripts/bench-network.sh   (BENCH_PORTS=1000 BENCH_ROUTERS=100 BENCH_CONCURRENCY=10
#                                    BENCH_FIP_SERVERS=3 BENCH_OUT=results.json)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${FERROSTACK_CACHE:-$HOME/.cache/ferrostack}/target}"
ports=${BENCH_PORTS:-1000}
routers=${BENCH_ROUTERS:-100}
conc=${BENCH_CONCURRENCY:-10}
fips=${BENCH_FIP_SERVERS:-3}
[ "$routers" -le 230 ] || { echo "BENCH_ROUTERS: at most 230 (each gateway takes an address of public's /24)" >&2; exit 2; }

other_vswitchd_here() {
    local me p
    me=$(readlink /proc/self/ns/net)
    for p in $(pgrep -x ovs-vswitchd || true); do
        [ "$(readlink "/proc/$p/ns/net" 2>/dev/null)" = "$me" ] && return 0
    done
    return 1
}
if [ "$fips" -gt 0 ] && other_vswitchd_here; then
    echo "another ovs-vswitchd runs in this network namespace; the floating-IP stage needs it for its own stack." >&2
    echo "stop it (scripts/ovn.sh stop DIR) or run with BENCH_FIP_SERVERS=0" >&2
    exit 1
fi

"$root/scripts/install-ovn.sh" >/dev/null
cargo build --release -q -p ferrostack
bin=$CARGO_TARGET_DIR/release/ferrostack
if [ "$fips" -gt 0 ]; then
    "$root/scripts/install-qemu.sh"
    guest=$("$root/scripts/guest-image/build.sh")
fi
# Short: unix socket paths under it must stay below 107 bytes.
work=$(mktemp -d /tmp/fsbn.XXXXXX)
tag=fsbn$$
pid=
ovn_dirs=()
stop() { [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; pid=; }
cleanup() {
    stop
    local d
    for d in "${ovn_dirs[@]}"; do bash "$root/scripts/ovn.sh" stop "$d" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start() { # NAME [up options...]
    local name=$1 port
    shift
    port=$(free_port)
    ovn_dirs+=("$work/$name/ovn")
    HOME=$work "$bin" up --data-dir "$work/$name" --bind "127.0.0.1:$port" --no-user-clouds-yaml "$@" >"$work/$name.log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do grep -q "ferrostack is up" "$work/$name.log" && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    grep -q "ferrostack is up" "$work/$name.log" || { cat "$work/$name.log" >&2; exit 1; }
    base=http://127.0.0.1:$port
    data_dir=$work/$name
}

# 1. through the API
FERROSTACK_OVN_NETNS=$tag-a FERROSTACK_COMPUTE_AGENT__DRIVER=fake start api
api=$(python3 scripts/bench/network-bench.py api "$base" "$data_dir" "$data_dir/ovn" "$ports" "$routers" "$conc")
stop
bash scripts/ovn.sh stop "$data_dir/ovn" >/dev/null

# 2. ovn-nbctl alone
ovn_dirs+=("$work/nbctl")
bash scripts/ovn.sh start "$work/nbctl" --netns "$tag-b" --system-id bench >/dev/null
nbctl=$(python3 scripts/bench/network-bench.py nbctl "$work/nbctl" "$ports" "$routers" "$conc")
bash scripts/ovn.sh stop "$work/nbctl" >/dev/null

# 3. server create to floating IP reachability
fip=null
if [ "$fips" -gt 0 ]; then
    start fip --register-image "ferrostack-guest=$guest/disk.qcow2"
    accel=$(grep -o 'accel [a-z]*' "$work/fip.log" | head -1 | cut -d' ' -f2)
    fip=$(python3 scripts/bench/network-bench.py fip "$base" "$data_dir" "$fips")
    fip=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["accel"]=sys.argv[2]; print(json.dumps(d))' "$fip" "$accel")
    stop
fi

python3 - "$api" "$nbctl" "$fip" "${BENCH_OUT:-}" <<'PY'
import json, sys
api, nb, fip, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
if out:
    json.dump({"api": api, "nbctl": nb, "fip": fip}, open(out, "w"), indent=1)
lat = lambda d: ", ".join(f"{k} p50 {v['p50_ms']:.1f} ms p99 {v['p99_ms']:.1f} ms" for k, v in d.items())
for phase, what in [("ports_phase", f"{api['ports']} ports"), ("routers_phase", f"{api['routers']} routers")]:
    a, n = api[phase], nb[phase]
    print(f"{what} at {api['concurrency']} clients: API {a['api_s']:.2f} s of requests, in NB at {a['in_nb_s']:.2f} s, "
          f"--wait=hv done at {a['total_s']:.2f} s; ovn-nbctl alone {n['written_s']:.2f} s of transactions, "
          f"--wait=hv done at {n['total_s']:.2f} s; ratio {a['total_s'] / n['total_s']:.2f}")
    print(f"  API latency: {lat(a['latency'])}")
    print(f"  ovn-nbctl latency: {lat(n['latency'])}")
b = nb["ports_batched_100"]
print(f"ovn-nbctl, ports batched 100 per transaction: written {b['written_s']:.2f} s, --wait=hv done at {b['total_s']:.2f} s")
print(f"all API requests: p50 {api['all_requests']['p50_ms']:.1f} ms, p99 {api['all_requests']['p99_ms']:.1f} ms ({api['all_requests']['count']})")
print(f"NB rows after the API run: {api['nb_rows']}; after ovn-nbctl: {nb['nb_rows']}")
if fip:
    print(f"server create to floating IP answering ping ({fip['accel']}): " + ", ".join(f"{r['server_create_to_ping_s']:.1f} s" for r in fip["runs"])
          + f"; median {fip['median_s']:.1f} s (ACTIVE at " + ", ".join(f"{r['to_active_s']} s" for r in fip["runs"]) + ")")
PY
