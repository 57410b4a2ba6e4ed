#!/usr/bin/env bash
# Side-by-side benchmark of the Placement API: the scheduler's two calls per server boot,
# GET /allocation_candidates for a typical flavor and the claim PUT /allocations/{uuid},
# on ferrostack and on upstream Placement (from PyPI, under uWSGI), with 1,000 and then
# 10,000 compute-node resource providers filled through the API
# (scripts/bench/placement-load.py). Samples each server's resident memory and CPU time.
# Prints a table and writes it, with the method's facts, into docs/benchmarks/placement.md
# (between the results markers).
#
# Usage: scripts/bench-placement.sh
#   BENCH_PROVIDERS="1000 10000"  provider counts, ascending: each step adds providers to
#                         the ones already there, then measures
#   BENCH_REQUESTS=100    timed GET /allocation_candidates?...&limit=1000 per step
#   BENCH_REQUESTS_ALL=20 timed GETs of the same without limit per step (0: none)
#   BENCH_CLAIMS=200      timed claims per step
#   BENCH_FILL_CONCURRENCY=2  connections the fill uses (upstream has 2 workers)
#   BENCH_FERROSTACK=0    skip ferrostack (until its /placement exists)
#   BENCH_UPSTREAM=0      skip upstream Placement
#   BENCH_UPSTREAM_WORKERS=2  uWSGI worker processes for upstream Placement
#   BENCH_DIR=dir         where the work directory goes (default $TMPDIR or /tmp)
#   BENCH_DOC=path        where to write the results; BENCH_DOC= (empty) writes nothing
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
read -r -a sizes <<<"${BENCH_PROVIDERS:-1000 10000}"
requests=${BENCH_REQUESTS:-100}
requests_all=${BENCH_REQUESTS_ALL:-20}
claims=${BENCH_CLAIMS:-200}
fill_conc=${BENCH_FILL_CONCURRENCY:-2}
want_fs=${BENCH_FERROSTACK:-1}
want_up=${BENCH_UPSTREAM:-1}
workers=${BENCH_UPSTREAM_WORKERS:-2}
base=${BENCH_DIR:-${TMPDIR:-/tmp}}
doc=${BENCH_DOC-$root/docs/benchmarks/placement.md}
password="bench-$RANDOM$RANDOM"
driver="$root/scripts/bench/placement-load.py"
say() { echo "bench-placement: $*" >&2; }

missing=()
for p in curl python3; do command -v "$p" >/dev/null || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Upstream is optional: if its venv cannot be built, say why and still measure ferrostack.
up_why=""
venv=""
if [ "$want_up" = 1 ]; then
    if ! venv=$("$root/scripts/bench/placement-venv.sh"); then
        up_why="its venv could not be built (scripts/bench/placement-venv.sh failed; see above)"
        venv=""
    fi
else
    up_why="skipped (BENCH_UPSTREAM=0)"
fi
fs_why=""
if [ "$want_fs" = 1 ]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ferrostack/target}"
    cargo build --release -q -p ferrostack
    ferrostack="$CARGO_TARGET_DIR/release/ferrostack"
else
    fs_why="skipped (BENCH_FERROSTACK=0)"
fi

mkdir -p "$base"
work=$(mktemp -d "$base/bench-placement.XXXXXX")
pids=()
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
# Each server leads its own session (setsid), so its PID also names its workers.
stop_all() {
    local pid _
    for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do alive "$pid" || break; sleep 0.2; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    if [ -n "${sampler_pid:-}" ]; then kill "$sampler_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# $1 pidfile, then the command. Runs the command as leader of a new session and writes its
# PID: setsid forks when the caller already leads a process group, so $! is not always it.
launch() {
    local pidfile=$1 _; shift
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    setsid sh -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" &
    for _ in $(seq 100); do [ -s "$pidfile" ] && break; sleep 0.05; done
    pids+=("$(cat "$pidfile")")
}

# $1 URL, $2 PID, $3 log: waits until the URL answers 200; fails if the server dies.
wait_ready() {
    local _
    for _ in $(seq 600); do
        curl -sf -o /dev/null "$1" && return 0
        alive "$2" || break
        sleep 0.5
    done
    say "no answer from $1; its log ends:"
    tail -20 "$3" >&2
    return 1
}

declare -A pid api tok name
name=([fs]=ferrostack [up]=upstream)

# ferrostack as bench-image.sh starts it; the Placement API under /placement on the same
# listener as /identity, a project-scoped admin token from the Identity API.
start_ferrostack() {
    local port; port=$(free_port)
    launch "$work/fs.pid" env FERROSTACK_ADMIN_PASSWORD="$password" FERROSTACK_LOG_LEVEL=warn \
        FERROSTACK_NETWORK__BACKEND=fake "$ferrostack" up --data-dir "$work/ferrostack" --bind "127.0.0.1:$port" \
        --no-user-clouds-yaml >"$work/ferrostack.log" 2>&1
    pid[fs]=${pids[-1]}
    wait_ready "http://127.0.0.1:$port/healthcheck" "${pid[fs]}" "$work/ferrostack.log" ||
        { fs_why="it did not answer (log: $(tail -1 "$work/ferrostack.log"))"; return 1; }
    local body t code
    body='{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"'$password'"}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}'
    t=$(curl -sS -D - -o /dev/null -H 'Content-Type: application/json' -d "$body" \
        "http://127.0.0.1:$port/identity/v3/auth/tokens" |
        tr -d '\r' | awk 'tolower($1) == "x-subject-token:" { print $2 }')
    [ -n "$t" ] || { fs_why="no token from ferrostack"; return 1; }
    api[fs]="http://127.0.0.1:$port/placement"
    tok[fs]=$t
    code=$(curl -sS -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $t" "${api[fs]}/resource_providers")
    [ "$code" = 200 ] ||
        { fs_why="GET /placement/resource_providers answered $code (no Placement API in this build?)"; return 1; }
}

# Upstream Placement as devstack configures it, less Keystone: [api] auth_strategy =
# noauth2 (the token `admin` then gives an admin context), SQLite in the work directory
# (switched to WAL with synchronous=NORMAL, as ferrostack's is), served by uWSGI with a master and $workers
# workers. Returns non-zero (with up_why set) when it won't start.
start_upstream() {
    local dir="$work/upstream" port; port=$(free_port)
    mkdir -p "$dir/etc"
    cat >"$dir/etc/placement.conf" <<EOF
[api]
auth_strategy = noauth2
[placement_database]
connection = sqlite:///$dir/placement.db
EOF
    export OS_PLACEMENT_CONFIG_DIR="$dir/etc" PLACEMENT_BENCH_DB="$dir/placement.db"
    "$venv/bin/placement-manage" --config-dir "$dir/etc" db sync >"$dir/setup.log" 2>&1 ||
        { tail -20 "$dir/setup.log" >&2; up_why="placement-manage db sync failed: $(tail -1 "$dir/setup.log")"; return 1; }
    # WAL is a property of the database file: set once, every later connection has it.
    "$venv/bin/python" -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode=WAL")' \
        "$dir/placement.db"
    # Each process, when it loads the app, writes the standard traits and resource classes
    # into the database; two workers doing so at once on SQLite fail with "database is
    # locked" and the app does not load (devstack uses MySQL). Loading it once here first
    # leaves the workers nothing to write.
    "$venv/bin/python" "$root/scripts/bench/placement-wsgi.py" >>"$dir/setup.log" 2>&1 ||
        { tail -20 "$dir/setup.log" >&2; up_why="the app did not load: $(tail -1 "$dir/setup.log")"; return 1; }
    # As devstack runs placement-api: uWSGI master with prefork workers, each loading the
    # app itself (lazy-apps): placement.wsgi.api:application, the module devstack names,
    # through scripts/bench/placement-wsgi.py, which sets SQLite's synchronous=NORMAL as
    # ferrostack does. HTTP/1.1 with keep-alive straight on the workers (devstack puts
    # Apache in front; leaving it out spares a proxy hop).
    if [ -x "$venv/bin/uwsgi" ]; then
        launch "$dir/server.pid" "$venv/bin/uwsgi" --master \
            --http11-socket "127.0.0.1:$port" --wsgi-file "$root/scripts/bench/placement-wsgi.py" \
            --processes "$workers" --threads 1 --enable-threads --lazy-apps --die-on-term \
            --need-app --buffer-size 65535 --disable-logging >"$dir/server.log" 2>&1
    else
        launch "$dir/server.pid" env PYTHONPATH="$root/scripts/bench" "$venv/bin/gunicorn" \
            --bind "127.0.0.1:$port" --workers "$workers" placement-wsgi:application >"$dir/server.log" 2>&1
    fi
    pid[up]=${pids[-1]}
    wait_ready "http://127.0.0.1:$port/" "${pid[up]}" "$dir/server.log" ||
        { up_why="it did not answer (log: $(tail -1 "$dir/server.log"))"; return 1; }
    api[up]="http://127.0.0.1:$port"
    tok[up]=admin
}

# The server's processes: its session (uWSGI master and workers; ferrostack is one).
procs() { pgrep -s "${pid[$1]}" | tr '\n' ' '; }
# Resident memory (kB) summed over the processes named by their PIDs.
rss_kb() { local p f=(); for p; do f+=("/proc/$p/status"); done
    awk '$1 == "VmRSS:" { s += $2 } END { print s + 0 }' "${f[@]}" 2>/dev/null || true; }
hwm_reset() { local p; for p; do echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true; done; }
hwm_kb() { local p f=(); for p; do f+=("/proc/$p/status"); done
    awk '$1 == "VmHWM:" { s += $2 } END { print s + 0 }' "${f[@]}" 2>/dev/null || true; }
# CPU time (user + system, clock ticks) used so far by the processes.
ticks() { local p; for p; do sed 's/.*) //' "/proc/$p/stat" 2>/dev/null || true; done |
    awk '{ s += $12 + $13 } END { print s + 0 }'; }
hz=$(getconf CLK_TCK)

# Starts sampling the RSS of server $1 every 0.2 s into $work/rss; monitor_stop reads it.
monitor_start() {
    mon_procs=$(procs "$1")
    # shellcheck disable=SC2086 # a list of PIDs
    hwm_reset $mon_procs
    # shellcheck disable=SC2086
    mon_ticks=$(ticks $mon_procs)
    : >"$work/rss"
    # shellcheck disable=SC2086
    (while :; do rss_kb $mon_procs >>"$work/rss"; sleep 0.2; done) &
    sampler_pid=$!
}
# Sets mon_peak (the higher of the samples and the kernel's VmHWM, kB) and mon_cpu (s).
monitor_stop() {
    kill "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
    sampler_pid=""
    # shellcheck disable=SC2086
    rss_kb $mon_procs >>"$work/rss"
    # shellcheck disable=SC2086
    mon_peak=$( (sort -n "$work/rss" | tail -1; hwm_kb $mon_procs) | sort -n | tail -1)
    # shellcheck disable=SC2086
    mon_cpu=$(awk -v d=$(($(ticks $mon_procs) - mon_ticks)) -v hz="$hz" 'BEGIN { printf "%.1f", d / hz }')
}
j() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d = d.get(k, "-") if isinstance(d, dict) else "-"
print(d)' "$1" "$2"; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
say "starting servers"
servers=()
if [ "$want_fs" = 1 ]; then
    if start_ferrostack; then servers+=(fs); else say "ferrostack not measured: $fs_why"; fi
fi
if [ -n "$venv" ]; then
    if start_upstream; then servers+=(up); else say "upstream not measured: $up_why"; fi
fi
[ ${#servers[@]} -gt 0 ] || { say "no server to measure"; exit 1; }
declare -A idle
for k in "${servers[@]}"; do
    curl -sS -f -o /dev/null -H "X-Auth-Token: ${tok[$k]}" "${api[$k]}/resource_providers"
    # shellcheck disable=SC2046
    idle[$k]=$(rss_kb $(procs "$k"))
done

# Steps: fill up to the next size, then measure; servers one after the other, the order
# flipping each step, so background load (other users compiling) does not always land on
# the same one.
prev=0
step=0
declare -A fill_s fill_cpu fill_peak rss_after meas_peak meas_cpu
t_all=$(date +%s)
for n in "${sizes[@]}"; do
    order=("${servers[@]}")
    if [ $((step % 2)) = 1 ] && [ ${#servers[@]} = 2 ]; then order=(up fs); fi
    for k in "${order[@]}"; do
        say "${name[$k]}: filling providers $prev..$((n - 1))"
        monitor_start "$k"
        python3 "$driver" fill --url "${api[$k]}" --token "${tok[$k]}" --from "$prev" --to "$n" \
            --concurrency "$fill_conc" >"$work/fill-$k-$n.json"
        monitor_stop
        fill_s[$k,$n]=$(j "$work/fill-$k-$n.json" fill_s); fill_cpu[$k,$n]=$mon_cpu; fill_peak[$k,$n]=$mon_peak
        say "${name[$k]}: filled in ${fill_s[$k,$n]} s (server CPU $mon_cpu s); measuring at $n providers"
        monitor_start "$k"
        python3 "$driver" measure --url "${api[$k]}" --token "${tok[$k]}" --requests "$requests" \
            --requests-unlimited "$requests_all" --claims "$claims" >"$work/m-$k-$n.json"
        monitor_stop
        meas_peak[$k,$n]=$mon_peak; meas_cpu[$k,$n]=$mon_cpu
        # shellcheck disable=SC2046
        rss_after[$k,$n]=$(rss_kb $(procs "$k"))
        say "${name[$k]} at $n: $(cat "$work/m-$k-$n.json")"
    done
    prev=$n
    step=$((step + 1))
done
t_all=$(($(date +%s) - t_all))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report ----
has() { [[ " ${servers[*]} " == *" $1 "* ]]; }
val() { if has "$1"; then j "$work/m-$1-$2.json" "$3"; else echo "-"; fi; }
mib() { [ -n "${1:-}" ] && [ "${1:-}" != - ] && awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' || echo "-"; }
# How many times the upstream figure is ferrostack's (time, CPU, memory: higher is better).
times() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1fx", a / b; else print "-" }'; }
row() { echo "| $1 | $2 | $3 | $(times "$3" "$2") |"; }
table=$(
    echo "| metric | ferrostack | upstream Placement | upstream / ferrostack |"
    echo "| --- | ---: | ---: | ---: |"
    for n in "${sizes[@]}"; do
        nn=$(printf "%'d" "$n" 2>/dev/null || echo "$n")
        for p in p50 p90 p99; do
            row "$nn providers: GET /allocation_candidates limit=1000, $p ms" \
                "$(val fs "$n" "candidates_limit.$p")" "$(val up "$n" "candidates_limit.$p")"
        done
        row "$nn providers: candidates returned (limit=1000)" \
            "$(val fs "$n" candidates_limit.candidates)" "$(val up "$n" candidates_limit.candidates)" | sed 's/| [0-9.x-]* |$/| - |/'
        if [ "$requests_all" -gt 0 ]; then
            for p in p50 p99; do
                row "$nn providers: GET /allocation_candidates no limit, $p ms" \
                    "$(val fs "$n" "candidates_all.$p")" "$(val up "$n" "candidates_all.$p")"
            done
            row "$nn providers: candidates returned / response KiB (no limit)" \
                "$(val fs "$n" candidates_all.candidates) / $(mib "$(val fs "$n" candidates_all.bytes)")" \
                "$(val up "$n" candidates_all.candidates) / $(mib "$(val up "$n" candidates_all.bytes)")" | sed 's/| [0-9.x-]* |$/| - |/'
        fi
        for p in p50 p90 p99; do
            row "$nn providers: claim PUT /allocations/{uuid}, $p ms" \
                "$(val fs "$n" "claim.$p")" "$(val up "$n" "claim.$p")"
        done
        fv() { if has "$1"; then echo "$2"; else echo "-"; fi; }
        row "$nn providers: fill of this step through the API, s" "$(fv fs "${fill_s[fs,$n]:-}")" "$(fv up "${fill_s[up,$n]:-}")"
        row "$nn providers: server CPU for that fill, s" "$(fv fs "${fill_cpu[fs,$n]:-}")" "$(fv up "${fill_cpu[up,$n]:-}")"
        row "$nn providers: server CPU for the measured requests, s" "$(fv fs "${meas_cpu[fs,$n]:-}")" "$(fv up "${meas_cpu[up,$n]:-}")"
        row "$nn providers: RSS peak during fill / measurement, MiB" \
            "$(fv fs "$(mib "${fill_peak[fs,$n]:-}") / $(mib "${meas_peak[fs,$n]:-}")")" \
            "$(fv up "$(mib "${fill_peak[up,$n]:-}") / $(mib "${meas_peak[up,$n]:-}")")" | sed 's/| [0-9.x-]* |$/| - |/'
        row "$nn providers: RSS after, MiB" "$(fv fs "$(mib "${rss_after[fs,$n]:-}")")" "$(fv up "$(mib "${rss_after[up,$n]:-}")")"
    done
    row "RSS idle before the fill, MiB" "$(mib "${idle[fs]:-}")" "$(mib "${idle[up]:-}")"
)
# Memory and CPU rows compare the same way (upstream / ferrostack); the "x/y" cells have
# no ratio (the sed above blanks it).

verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo MISSED; fi; }
goals=$(
    if has fs; then
        for n in "${sizes[@]}"; do
            lim=""
            [ "$n" = 1000 ] && lim=10
            [ "$n" = 10000 ] && lim=50
            [ -n "$lim" ] || continue
            p50=$(val fs "$n" candidates_limit.p50)
            echo "- allocation candidates p50 < $lim ms at $n providers: $(verdict "$p50 < $lim") ($p50 ms; claim p50 $(val fs "$n" claim.p50) ms)"
        done
        if has up; then
            for n in "${sizes[@]}"; do
                a=$(times "$(val up "$n" candidates_limit.p50)" "$(val fs "$n" candidates_limit.p50)")
                c=$(times "$(val up "$n" claim.p50)" "$(val fs "$n" claim.p50)")
                echo "- >= 10x faster than upstream at $n providers (p50): candidates $(verdict "${a%x} >= 10") ($a), claim $(verdict "${c%x} >= 10") ($c)"
            done
        else
            echo "- upstream Placement not measured: $up_why"
        fi
    else
        echo "- ferrostack not measured: $fs_why"
    fi
)

facts=$(
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); all steps took ${t_all} s"
    echo "- machine: $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))," \
        "$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r);" \
        "load average $load_before before, $load_after after (the machine is shared)"
    if has fs; then
        echo "- ferrostack $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates Cargo.lock || echo '+changes')" \
            "(release build), FERROSTACK_LOG_LEVEL=warn, SQLite in its data dir; Keystone token"
    fi
    if has up; then
        server="uWSGI $("$venv/bin/uwsgi" --version 2>/dev/null) (HTTP/1.1 keep-alive)"
        [ -x "$venv/bin/uwsgi" ] || server="gunicorn (uWSGI did not build)"
        echo "- upstream: openstack-placement $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("openstack-placement"), "with SQLAlchemy", m.version("SQLAlchemy"))')" \
            "on $("$venv/bin/python" -V) under $server, $workers workers, noauth2, SQLite (WAL, synchronous=NORMAL)"
    fi
    echo "- load: $(python3 -V), scripts/bench/placement-load.py (http.client, one keep-alive connection," \
        "one request at a time); per step $requests timed candidate requests with limit=1000," \
        "$requests_all without, $claims claims, after 5 untimed of each; fill on $fill_conc connections"
    echo "- request: GET /allocation_candidates?resources=VCPU:2,MEMORY_MB:4096,DISK_GB:40&required=!COMPUTE_STATUS_DISABLED&limit=1000," \
        "OpenStack-API-Version: placement 1.39"
)

echo
echo "$table"
echo
echo "$goals"
echo
echo "$facts"

if [ -n "$doc" ]; then
    mkdir -p "$(dirname "$doc")"
    if ! grep -q '<!-- results:begin -->' "$doc" 2>/dev/null; then
        printf '# Placement benchmark\n\nWritten by scripts/bench-placement.sh.\n\n<!-- results:begin -->\n<!-- results:end -->\n' >"$doc"
    fi
    printf '%s\n\n%s\n\n%s\n' "$table" "$goals" "$facts" >"$work/results.md"
    awk -v f="$work/results.md" '
        /<!-- results:end -->/ { skip = 0 }
        !skip { print }
        /<!-- results:begin -->/ { while ((getline l < f) > 0) print l; skip = 1 }' \
        "$doc" >"$work/doc.md"
    cat "$work/doc.md" >"$doc"
    say "wrote $doc"
fi
