#!/usr/bin/env bash
# Compute benchmarks (docs/benchmarks/compute.md):
#  1. boot latency against the physical limit: the guest image booted by a bare
#     qemu-system-x86_64 with the same accelerator, devices and disk layout, from process
#     start to the guest's ready line, versus ferrostack from POST /servers to the same
#     line (warm image cache); medians of BENCH_RUNS each, alternating; and POST to QEMU
#     process start.
#  2. throughput with the fake driver: BENCH_SERVERS servers created (each waited for until
#     ACTIVE) by BENCH_CONCURRENCY clients, then deleted; leaks checked; control-plane RSS
#     with all of them alive.
#  3. the same load from Rally (BENCH_RALLY=0 skips it): NovaServers.boot_and_delete_server
#     BENCH_SERVERS times at BENCH_CONCURRENCY against a fresh fake-driver cloud, as the
#     existing demo user, polling every 20 ms (scripts/bench/rally.conf); per-iteration
#     durations from Rally's report, the cloud's per-route latencies from /metrics, leaks
#     checked. Rally signs in with a password on every iteration, so that cloud hashes
#     passwords at bcrypt cost BENCH_RALLY_HASH_ROUNDS (4; Keystone's default is 12, whose
#     ~0.3 s of CPU per sign-in would make this a bcrypt benchmark on 2 cores).
#     BENCH_RALLY_REPORT_DIR keeps Rally's JSON and HTML reports.
# Usage: scripts/bench-compute.sh   (BENCH_RUNS=20 BENCH_SERVERS=500 BENCH_CONCURRENCY=20
#                                    BENCH_RALLY=1 BENCH_RALLY_HASH_ROUNDS=4)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${FERROSTACK_CACHE:-$HOME/.cache/ferrostack}/target}"
runs=${BENCH_RUNS:-20}
servers=${BENCH_SERVERS:-500}
conc=${BENCH_CONCURRENCY:-20}
rally_on=${BENCH_RALLY:-1}
"$root/scripts/install-qemu.sh"
cargo build --release -q -p ferrostack
[ "$rally_on" = 0 ] || rally_venv=$("$root/scripts/bench/rally-venv.sh")
bin=$CARGO_TARGET_DIR/release/ferrostack
guest=$("$root/scripts/guest-image/build.sh")
work=$(mktemp -d "${TMPDIR:-/tmp}/ferrostack-bench-compute.XXXXXX")
pid=
stop() { [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; pid=; }
trap 'stop; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start() { # NAME DRIVER
    local data=$work/$1 port
    port=$(free_port)
    FERROSTACK_NETWORK__BACKEND=fake FERROSTACK_COMPUTE_AGENT__DRIVER=$2 HOME=$work "$bin" up --data-dir "$data" --bind "127.0.0.1:$port" \
        --no-user-clouds-yaml --register-image "ferrostack-guest=$guest/disk.qcow2" >"$work/$1.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do grep -q "ferrostack is up" "$work/$1.log" && break; sleep 0.1; done
    grep -q "ferrostack is up" "$work/$1.log" || { cat "$work/$1.log"; exit 1; }
    base=http://127.0.0.1:$port
    data_dir=$data
}

start qemu qemu
accel=$(grep -o 'accel [a-z]*' "$work/qemu.log" | head -1 | cut -d' ' -f2)
image=$(grep -o 'id [0-9a-f-]*)' "$work/qemu.log" | tail -1 | tr -d ')' | cut -d' ' -f2)
# One boot first so the image cache is warm and the first measured run is like the others.
python3 scripts/bench/compute-bench.py boot "$base" "$data_dir" "$image" 1 >/dev/null
boot=$(python3 scripts/bench/compute-bench.py boot "$base" "$data_dir" "$image" "$runs")
stop
start fake fake
churn=$(python3 scripts/bench/compute-bench.py churn "$base" "$servers" "$conc" "$data_dir")
stop
rally=null
if [ "$rally_on" != 0 ]; then
    # A fresh cloud: its users' passwords are hashed when it is first set up.
    FERROSTACK_IDENTITY__PASSWORD_HASH_ROUNDS=${BENCH_RALLY_HASH_ROUNDS:-4} start rally fake
    mkdir "$work/rally-run"
    rally=$(python3 scripts/bench/compute-bench.py rally "$base" "$data_dir" "$rally_venv" "$work/rally-run" \
        "$servers" "$conc" ${BENCH_RALLY_REPORT_DIR:+"$BENCH_RALLY_REPORT_DIR"})
    stop
fi
python3 - "$accel" "$boot" "$churn" "$rally" <<'PY'
import json, sys
accel, boot, churn, rally = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
print(f"accelerator: {accel}")
print(f"boot to ready line, median of {boot['runs']}: ferrostack {boot['api_to_ready_median_s']:.2f} s, bare QEMU {boot['bare_qemu_to_ready_median_s']:.2f} s, ratio {boot['ratio']:.3f}")
print(f"POST /servers to QEMU started: median {boot['post_to_qemu_started_median_ms']:.0f} ms")
print(f"fake driver: {churn['servers']} servers at {churn['concurrency']} clients: {churn['boots_per_s']:.1f} boots/s, {churn['deletes_per_s']:.1f} deletes/s, {churn['boot_and_delete_per_s']:.1f} boot+delete/s; control plane RSS with all alive {churn['rss_mib_with_servers']} MiB; left: {churn['servers_left']} servers, {churn['allocations_left']} allocated units")
if rally:
    t = lambda d: f"{d['median_s']:.2f}/{d['p90_s']:.2f}/{d['max_s']:.2f}" if d else "-"
    a = rally["atomics"]
    print(f"rally {rally['scenario']} (fake driver): {rally['iterations']} iterations at {rally['concurrency']} clients, {rally['failures']} failed, "
          f"load {rally['load_duration_s']:.1f} s: {rally['boots_per_s']:.1f} boots/s; per iteration median/p90/max s: "
          f"boot {t(a.get('nova.boot_server'))}, delete {t(a.get('nova.delete_server'))}, total {t(rally['total'])}; "
          f"left: {rally['servers_left']} servers, {rally['allocations_left']} allocated units")
    routes = [("sign-in", "POST /identity/v3/auth/tokens 201"), ("POST /servers", "POST /compute/v2.1/servers 202"),
              ("GET /servers/{id}", "GET /compute/v2.1/servers/{id} 200"), ("DELETE", "DELETE /compute/v2.1/servers/{id} 204")]
    print("rally, inside the cloud (requests, mean latency): " + ", ".join(
        f"{name} {rally['server_side'][k]['count']} {rally['server_side'][k]['mean_ms']:.1f} ms" for name, k in routes if k in rally["server_side"]))
    for e in rally["first_errors"]:
        print(f"rally error: {e[0]}: {e[1]}" if isinstance(e, list) else f"rally error: {e}", file=sys.stderr)
    if rally["failures"] or rally["servers_left"] or rally["allocations_left"]:
        sys.exit(1)
PY
