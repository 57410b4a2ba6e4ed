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
# Usage: scripts/bench-compute.sh   (BENCH_RUNS=20 BENCH_SERVERS=500 BENCH_CONCURRENCY=20)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${FERROSTACK_CACHE:-$HOME/.cache/ferrostack}/target}"
runs=${BENCH_RUNS:-20}
servers=${BENCH_SERVERS:-500}
conc=${BENCH_CONCURRENCY:-20}
"$root/scripts/install-qemu.sh"
cargo build --release -q -p ferrostack
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
    FERROSTACK_COMPUTE_AGENT__DRIVER=$2 HOME=$work "$bin" up --data-dir "$data" --bind "127.0.0.1:$port" \
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
python3 - "$accel" "$boot" "$churn" <<'PY'
import json, sys
accel, boot, churn = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"accelerator: {accel}")
print(f"boot to ready line, median of {boot['runs']}: ferrostack {boot['api_to_ready_median_s']:.2f} s, bare QEMU {boot['bare_qemu_to_ready_median_s']:.2f} s, ratio {boot['ratio']:.3f}")
print(f"POST /servers to QEMU started: median {boot['post_to_qemu_started_median_ms']:.0f} ms")
print(f"fake driver: {churn['servers']} servers at {churn['concurrency']} clients: {churn['boots_per_s']:.1f} boots/s, {churn['deletes_per_s']:.1f} deletes/s, {churn['boot_and_delete_per_s']:.1f} boot+delete/s; control plane RSS with all alive {churn['rss_mib_with_servers']} MiB; left: {churn['servers_left']} servers, {churn['allocations_left']} allocated units")
PY
