#!/usr/bin/env bash
# Side-by-side benchmark of the Identity service: upstream Keystone (from PyPI, under
# uWSGI) against ferrostack, on this machine, with the same data, the same bcrypt cost
# and the same wrk load. Prints a table of ratios and writes it, with the machine facts,
# into docs/benchmarks/identity.md (between the results markers).
#
# Usage: scripts/bench-identity.sh
#   BENCH_DURATION=15     seconds each measured run lasts (after BENCH_WARMUP=3 s unmeasured)
#   BENCH_CONNECTIONS=8   wrk connections; BENCH_THREADS=2 wrk threads
#   BENCH_ROUNDS=12       bcrypt cost on both sides (Keystone's default)
#   BENCH_DOC=path        where to write the results; BENCH_DOC= (empty) writes nothing
#
# Keystone runs twice: as shipped (no cache: oslo.cache is off unless configured, and no
# memcached here) and with its in-process cache (dogpile.cache.memory, per worker), the
# best a single-node Keystone gets without memcached. All three servers stay up and each
# test runs on them back to back, so background load (e.g. a compile) hits them alike.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
duration=${BENCH_DURATION:-15}
warmup=${BENCH_WARMUP:-3}
conns=${BENCH_CONNECTIONS:-8}
threads=${BENCH_THREADS:-2}
rounds=${BENCH_ROUNDS:-12}
doc=${BENCH_DOC-$root/docs/benchmarks/identity.md}
cores=$(nproc)
password="bench-$RANDOM$RANDOM"

missing=()
for p in wrk curl; do command -v "$p" >/dev/null || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
venv=$("$root/scripts/bench/keystone-venv.sh")
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release -q -p ferrostack
ferrostack="$CARGO_TARGET_DIR/release/ferrostack"

work=$(mktemp -d)
pids=()
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
# Each server leads its own process group (setsid), so its PID also names its workers.
stop_all() {
    local pid i
    for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for i in $(seq 50); do alive "$pid" || break; sleep 0.2; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# $1 URL, $2 PID, $3 log: waits until the URL answers 200, showing the log if the server dies.
wait_ready() {
    local i
    for i in $(seq 600); do
        curl -sf -o /dev/null "$1" && return 0
        alive "$2" || break
        sleep 0.5
    done
    echo "bench-identity: no answer from $1; its log ends:" >&2
    tail -20 "$3" >&2
    exit 1
}

start_ferrostack() {
    local port; port=$(free_port)
    FERROSTACK_ADMIN_PASSWORD=$password FERROSTACK_IDENTITY__PASSWORD_HASH_ROUNDS=$rounds \
        FERROSTACK_LOG_LEVEL=warn FERROSTACK_NETWORK__BACKEND=fake setsid "$ferrostack" up --data-dir "$work/ferrostack" \
        --bind "127.0.0.1:$port" --no-user-clouds-yaml >"$work/ferrostack.log" 2>&1 &
    pids+=($!)
    pid[fs]=$!
    url[fs]="http://127.0.0.1:$port/identity/v3"
    wait_ready "http://127.0.0.1:$port/healthcheck" "$!" "$work/ferrostack.log"
}

# $1 key (ks or ksm), $2 "true" to turn on the in-process cache.
start_keystone() {
    local dir="$work/$1" port; port=$(free_port)
    mkdir -p "$dir/fernet" "$dir/credential"
    chmod 700 "$dir/fernet" "$dir/credential"
    cat >"$dir/keystone.conf" <<EOF
[database]
connection = sqlite:///$dir/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = $dir/fernet
[fernet_receipts]
key_repository = $dir/fernet
[credential]
key_repository = $dir/credential
[identity]
password_hash_algorithm = bcrypt
password_hash_rounds = $rounds
EOF
    if [ "$2" = true ]; then
        printf '[cache]\nenabled = true\nbackend = dogpile.cache.memory\n' >>"$dir/keystone.conf"
    fi
    local manage=("$venv/bin/keystone-manage" --config-file "$dir/keystone.conf")
    {
        "${manage[@]}" db_sync
        "${manage[@]}" fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
        "${manage[@]}" credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
        "${manage[@]}" bootstrap --bootstrap-password "$password" \
            --bootstrap-public-url "http://127.0.0.1:$port/v3" --bootstrap-region-id RegionOne
    } >"$dir/setup.log" 2>&1 || { tail -20 "$dir/setup.log" >&2; exit 1; }
    # As devstack runs it: prefork workers, one per core, each loading the app itself
    # (lazy-apps), behind a keep-alive HTTP front (uWSGI's router, in place of Apache).
    # Not --http11-socket: there each worker sticks to one keep-alive connection, so 2
    # workers would serve 2 of wrk's 8 connections and starve the rest unseen.
    if [ -x "$venv/bin/uwsgi" ]; then
        OS_KEYSTONE_CONFIG_FILES="$dir/keystone.conf" setsid "$venv/bin/uwsgi" --master \
            --http "127.0.0.1:$port" --http-keepalive --socket "$dir/uwsgi.sock" \
            --module keystone.wsgi.api:application \
            --processes "$cores" --threads 1 --lazy-apps --die-on-term --need-app \
            --disable-logging --buffer-size 65535 >"$dir/server.log" 2>&1 &
    else
        OS_KEYSTONE_CONFIG_FILES="$dir/keystone.conf" setsid "$venv/bin/gunicorn" \
            --bind "127.0.0.1:$port" --workers "$cores" keystone.wsgi.api:application \
            >"$dir/server.log" 2>&1 &
    fi
    pids+=($!)
    pid[$1]=$!
    url[$1]="http://127.0.0.1:$port/v3"
    wait_ready "${url[$1]}" "$!" "$dir/server.log"
}

body='{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin",
"domain":{"id":"default"},"password":"'$password'"}}},"scope":{"project":{"name":"admin",
"domain":{"id":"default"}}}}}'
body=$(tr -d '\n' <<<"$body")
export BENCH_BODY=$body # read by scripts/bench/issue.lua

# $1 base URL: prints a new project-scoped admin token.
issue_token() {
    curl -sS -D - -o /dev/null -H 'Content-Type: application/json' -d "$body" "$1/auth/tokens" |
        tr -d '\r' | awk 'tolower($1) == "x-subject-token:" { print $2 }'
}

# Prints a PID and all its descendants. Scans PPid because a kernel may lack
# /proc/PID/task/*/children.
tree_pids() {
    local -A parent=()
    local p q i=0
    for p in /proc/[0-9]*; do
        q=$(awk '/^PPid:/ { print $2 }' "$p/status" 2>/dev/null) && parent[${p#/proc/}]=$q
    done
    local -a tree=("$1")
    while [ $i -lt ${#tree[@]} ]; do
        for p in "${!parent[@]}"; do [ "${parent[$p]}" = "${tree[$i]}" ] && tree+=("$p"); done
        i=$((i + 1))
    done
    echo "${tree[@]}"
}
# $1 field, $2 /proc file, $3 PID: the field (kB) summed over the process tree.
tree_kb() {
    local p v total=0
    for p in $(tree_pids "$3"); do
        v=$(awk -v k="$1:" '$1 == k { print $2 }' "/proc/$p/$2" 2>/dev/null || true)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
# CPU time (user + system, clock ticks) the process tree of $1 has used so far. CPU per
# request holds up under background load where requests per second does not.
tree_ticks() {
    local p v total=0
    for p in $(tree_pids "$1"); do
        v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }' || true)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
hz=$(getconf CLK_TCK)

# wrk prints times as 12.34us / 1.20ms / 2.01s; this gives milliseconds.
to_ms() { awk -v t="$1" 'BEGIN { n = t + 0; u = t; sub(/^[0-9.]+/, "", u)
    f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : 0
    printf "%.2f", n * f }'; }

# $1 test name, $2 server key, then wrk's own arguments (URL last). Fills rps[], p99[], cpu[].
run_wrk() {
    local test=$1 key=$2; shift 2
    local out="$work/wrk-$test-$key.txt"
    wrk -t "$threads" -c "$conns" -d "${warmup}s" --timeout 10s "$@" >/dev/null
    sleep "$settle"
    local t0; t0=$(tree_ticks "${pid[$key]}")
    wrk -t "$threads" -c "$conns" -d "${duration}s" --timeout 10s --latency "$@" >"$out"
    local t1; t1=$(tree_ticks "${pid[$key]}")
    rps[$test,$key]=$(awk '/^Requests\/sec:/ { printf "%.1f", $2 }' "$out")
    cpu[$test,$key]=$(awk -v d=$((t1 - t0)) -v hz="$hz" '/ requests in / { v = d * 1000 / hz / $1; printf (v >= 10 ? "%.1f" : "%.3f"), v }' "$out")
    p99[$test,$key]=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    # A server answering errors fast would look good: flag any in the table.
    local bad
    bad=$(awk '/Non-2xx|Socket errors/ { sub(/^ +/, ""); printf "%s; ", $0 }' "$out")
    if [ -n "$bad" ]; then
        warnings+=("$test on ${name[$key]}: $bad")
        rps[$test,$key]="${rps[$test,$key]}!"
    fi
    echo "bench-identity: $test ${name[$key]}: ${rps[$test,$key]} req/s, p99 ${p99[$test,$key]} ms" >&2
}

declare -A pid url name rps p99 cpu rss pss tok sub
warnings=()
settle=0
keys=(ks ksm fs)
name=([ks]="keystone" [ksm]="keystone (in-process cache)" [fs]="ferrostack")
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

echo "bench-identity: starting servers" >&2
start_ferrostack
start_keystone ks false
start_keystone ksm true
for k in "${keys[@]}"; do
    tok[$k]=$(issue_token "${url[$k]}")
    sub[$k]=$(issue_token "${url[$k]}")
    [ -n "${tok[$k]}" ] && [ -n "${sub[$k]}" ] || { echo "bench-identity: no token from ${name[$k]}" >&2; exit 1; }
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: ${tok[$k]}" \
        -H "X-Subject-Token: ${sub[$k]}" "${url[$k]}/auth/tokens")
    [ "$code" = 200 ] || { echo "bench-identity: validation on ${name[$k]} answered $code" >&2; exit 1; }
done

# The CPU one bcrypt verification takes here bounds token issue at cores / that time on
# either side (pyca/bcrypt and ferrostack's bcrypt crate are the same Rust code).
bcrypt_ms=$("$venv/bin/python" - "$rounds" <<'EOF'
import bcrypt, statistics, sys, time
h = bcrypt.hashpw(b"x", bcrypt.gensalt(int(sys.argv[1])))
ts = []
for _ in range(5):
    t = time.process_time(); bcrypt.checkpw(b"x", h); ts.append(time.process_time() - t)
print(f"{statistics.median(ts) * 1000:.1f}")
EOF
)
bound=$(awk -v c="$cores" -v t="$bcrypt_ms" 'BEGIN { printf "%.1f", c * 1000 / t }')

for k in "${keys[@]}"; do
    run_wrk validate "$k" -H "X-Auth-Token: ${tok[$k]}" -H "X-Subject-Token: ${sub[$k]}" \
        "${url[$k]}/auth/tokens"
done
# The requests wrk drops at the end of a warm-up still cost the server a bcrypt each:
# let them finish so they don't eat into the measured run.
settle=$(awk -v c="$conns" -v t="$bcrypt_ms" -v n="$cores" 'BEGIN { printf "%d", 2 * c * t / n / 1000 + 1 }')
for k in "${keys[@]}"; do
    run_wrk issue "$k" -s "$root/scripts/bench/issue.lua" "${url[$k]}/auth/tokens"
done
settle=0
# Under wrk some issues are still in flight when the CPU is read; one at a time, the CPU
# each token costs is exact, to set against one bcrypt verification.
for k in "${keys[@]}"; do
    t0=$(tree_ticks "${pid[$k]}")
    for i in $(seq 10); do issue_token "${url[$k]}" >/dev/null; done
    cpu[issue,$k]=$(awk -v d=$(($(tree_ticks "${pid[$k]}") - t0)) -v hz="$hz" 'BEGIN { v = d * 1000 / hz / 10; printf (v >= 10 ? "%.1f" : "%.3f"), v }')
done
for k in "${keys[@]}"; do run_wrk version "$k" "${url[$k]}"; done
for k in "${keys[@]}"; do
    rss[$k]=$(tree_kb VmRSS status "${pid[$k]}")
    pss[$k]=$(tree_kb Pss smaps_rollup "${pid[$k]}")
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# Ratios say how many times better ferrostack is: throughput ferrostack/keystone,
# latency and memory keystone/ferrostack.
ratio() { awk -v a="${1%!}" -v b="${2%!}" 'BEGIN { if (b + 0 > 0) printf "%.1fx", a / b; else print "-" }'; }
row() { # $1 label, $2 "up" if more is better, then the ks, ksm and fs values
    local r1 r2
    if [ "$2" = up ]; then r1=$(ratio "$5" "$3"); r2=$(ratio "$5" "$4")
    else r1=$(ratio "$3" "$5"); r2=$(ratio "$4" "$5"); fi
    echo "| $1 | $3 | $4 | $5 | $r1 | $r2 |"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
table=$(
    echo "| metric | keystone | keystone (in-process cache) | ferrostack | ratio | ratio vs cached |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    for t in validate issue version; do
        label=$t; [ $t = validate ] && label="token validation"
        [ $t = issue ] && label="token issue"; [ $t = version ] && label="GET /v3"
        row "$label, req/s" up "${rps[$t,ks]}" "${rps[$t,ksm]}" "${rps[$t,fs]}"
        row "$label, p99 ms" down "${p99[$t,ks]}" "${p99[$t,ksm]}" "${p99[$t,fs]}"
        cpu_label="CPU ms per request"; [ $t = issue ] && cpu_label="CPU ms per token (10 one at a time)"
        row "$label, $cpu_label" down "${cpu[$t,ks]}" "${cpu[$t,ksm]}" "${cpu[$t,fs]}"
    done
    row "RSS after load, MiB (all processes)" down "$(mib "${rss[ks]}")" "$(mib "${rss[ksm]}")" "$(mib "${rss[fs]}")"
    row "PSS after load, MiB (all processes)" down "$(mib "${pss[ks]}")" "$(mib "${pss[ksm]}")" "$(mib "${pss[fs]}")"
)

verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo MISSED; fi; }
v_ratio=$(awk -v f="${rps[validate,fs]%!}" -v k="${rps[validate,ks]%!}" 'BEGIN { printf "%.1f", f / k }')
goals=$(
    echo "- token validation >= 20x Keystone's throughput with p99 < 5 ms:" \
        "$(verdict "$v_ratio >= 20 && ${p99[validate,fs]} < 5") (${v_ratio}x, p99 ${p99[validate,fs]} ms)"
    echo "- token issue bounded only by bcrypt (a token costs < 1.25 x the $bcrypt_ms ms CPU of one verification):" \
        "$(verdict "${cpu[issue,fs]} < 1.25 * $bcrypt_ms") (${cpu[issue,fs]} ms;" \
        "${rps[issue,fs]} req/s against an idle-machine bound of $bound = $cores cores / $bcrypt_ms ms)"
    echo "- RSS under a tenth of Keystone's:" \
        "$(verdict "${rss[fs]} * 10 < ${rss[ks]}") ($(mib "${rss[fs]}") vs $(mib "${rss[ks]}") MiB)"
    for w in "${warnings[@]}"; do echo "- error responses, results marked !: $w"; done
)

server=uWSGI; [ -x "$venv/bin/uwsgi" ] || server=gunicorn
facts=$(
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $cores cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))," \
        "$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r);" \
        "load average $load_before before, $load_after after"
    echo "- keystone $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("keystone"))')" \
        "on $("$venv/bin/python" -V) under $server ($cores workers, 1 thread each$([ $server = uWSGI ] && echo ', keep-alive HTTP router')), SQLite, fernet tokens"
    echo "- ferrostack $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates Cargo.lock || echo '+changes')" \
        "(release build), SQLite in its data dir, FERROSTACK_LOG_LEVEL=warn"
    echo "- bcrypt cost $rounds on both sides; one verification takes $bcrypt_ms ms of CPU here"
    echo "- load: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $threads threads, $conns connections," \
        "${warmup} s warm-up then ${duration} s measured per test, --timeout 10s, all on 127.0.0.1"
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
        printf '# Identity benchmark\n\nWritten by scripts/bench-identity.sh.\n\n<!-- results:begin -->\n<!-- results:end -->\n' >"$doc"
    fi
    printf '%s\n\n%s\n\n%s\n' "$table" "$goals" "$facts" >"$work/results.md"
    awk -v f="$work/results.md" '
        /<!-- results:end -->/ { skip = 0 }
        !skip { print }
        /<!-- results:begin -->/ { while ((getline l < f) > 0) print l; skip = 1 }' \
        "$doc" >"$work/doc.md"
    cat "$work/doc.md" >"$doc"
    echo "bench-identity: wrote $doc" >&2
fi
