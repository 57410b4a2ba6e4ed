#!/usr/bin/env bash
# Side-by-side benchmark of image data through the Image API: a 1 GiB upload and download
# on ferrostack and on upstream Glance (from PyPI, under uWSGI), set against `cp` of the
# same file to the same disk. Also samples each server's resident memory during the
# transfers, with a 64 MiB image first, to show whether it grows with the image size.
# Prints a table and writes it, with the method's facts, into docs/benchmarks/image.md
# (between the results markers).
#
# Usage: scripts/bench-image.sh
#   BENCH_SIZE_MIB=1024   size of the big image; BENCH_SMALL_MIB=64 the small one
#   BENCH_RUNS=6          rounds of cp + uploads + downloads of the big image (medians and
#                         bests reported); keep it even, so each server goes first as often
#   BENCH_DIR=dir         where the work directory goes (default $TMPDIR or /tmp); the
#                         copies, both servers' stores and the downloads all live there,
#                         so they are on one filesystem; needs about 6 x the big size free
#   BENCH_GLANCE=0        skip upstream Glance
#   BENCH_FAST_HASH=0     skip the second ferrostack, which runs with the cheapest hashing
#                         an operator can choose (hashing_algorithm = "sha256",
#                         md5_checksum = false) and is measured on uploads only
#   BENCH_GLANCE_WORKERS=2  uWSGI worker processes for Glance
#   BENCH_DOC=path        where to write the results; BENCH_DOC= (empty) writes nothing
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
size_mib=${BENCH_SIZE_MIB:-1024}
small_mib=${BENCH_SMALL_MIB:-64}
runs=${BENCH_RUNS:-6}
base=${BENCH_DIR:-${TMPDIR:-/tmp}}
want_glance=${BENCH_GLANCE:-1}
want_fast=${BENCH_FAST_HASH:-1}
workers=${BENCH_GLANCE_WORKERS:-2}
doc=${BENCH_DOC-$root/docs/benchmarks/image.md}
password="bench-$RANDOM$RANDOM"
say() { echo "bench-image: $*" >&2; }

missing=()
for p in curl python3 openssl; do command -v "$p" >/dev/null || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Glance is optional: if its venv cannot be built, say why and still measure cp and
# ferrostack.
glance_why=""
venv=""
if [ "$want_glance" = 1 ]; then
    if ! venv=$("$root/scripts/bench/glance-venv.sh"); then
        glance_why="its venv could not be built (scripts/bench/glance-venv.sh failed; see above)"
        venv=""
    fi
else
    glance_why="skipped (BENCH_GLANCE=0)"
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release -q -p ferrostack
ferrostack="$CARGO_TARGET_DIR/release/ferrostack"

mkdir -p "$base"
work=$(mktemp -d "$base/bench-image.XXXXXX")
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
    rm -rf "$work" # the 1 GiB files, the stores, the downloads
}
trap stop_all EXIT
trap 'exit 130' INT TERM

bytes=$((size_mib * 1048576))
small_bytes=$((small_mib * 1048576))
# Everything below is written under $work: the source, cp's copy, the two stores and the
# downloads never exist all at once, but a round holds up to 4 big files plus slack.
avail_mib=$(df -Pm "$work" | awk 'NR == 2 { print $4 }')
if [ "$avail_mib" -lt $((size_mib * 6 + small_mib * 4)) ]; then
    say "$work has $avail_mib MiB free; $((size_mib * 6 + small_mib * 4)) MiB needed"
    exit 1
fi

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

declare -A pid api hdr name store
name=([cp]=cp [fs]=ferrostack [ff]="ferrostack (sha256 only)" [gl]=glance)

# $1 key (fs: the default settings, Glance's hashes; ff: SHA-256 multihash, no MD5), then
# extra environment for the server.
start_ferrostack() {
    local key=$1 port; shift
    port=$(free_port)
    launch "$work/$key.pid" env FERROSTACK_ADMIN_PASSWORD="$password" FERROSTACK_LOG_LEVEL=warn "$@" \
        FERROSTACK_NETWORK__BACKEND=fake "$ferrostack" up --data-dir "$work/ferrostack-$key" --bind "127.0.0.1:$port" \
        --no-user-clouds-yaml >"$work/ferrostack-$key.log" 2>&1
    pid[$key]=${pids[-1]}
    wait_ready "http://127.0.0.1:$port/healthcheck" "${pid[$key]}" "$work/ferrostack-$key.log"
    local body tok
    body='{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"'$password'"}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}'
    tok=$(curl -sS -D - -o /dev/null -H 'Content-Type: application/json' -d "$body" \
        "http://127.0.0.1:$port/identity/v3/auth/tokens" |
        tr -d '\r' | awk 'tolower($1) == "x-subject-token:" { print $2 }')
    [ -n "$tok" ] || { say "no token from ferrostack"; exit 1; }
    api[$key]="http://127.0.0.1:$port/image/v2/images"
    hdr[$key]="X-Auth-Token: $tok"
}

# Upstream Glance as devstack configures it, less Keystone: SQLite, the filesystem store
# (multi-store syntax, with the reserved staging and tasks stores), and the paste pipeline
# without a flavor, whose unauthenticated-context middleware makes every request an admin
# one (is_admin, but no roles and no project: the new secure-RBAC defaults answer 403 to
# that, so noauth needs the legacy policy, enforce_new_defaults = false). Returns non-zero
# (with glance_why set) when it won't start.
start_glance() {
    local dir="$work/glance" port; port=$(free_port)
    mkdir -p "$dir/etc" "$dir/store" "$dir/staging" "$dir/tasks"
    store[gl]="$dir/store"
    # The paste pipeline as glance ships it (pip puts it under the venv's etc/).
    cp "$venv/etc/glance/glance-api-paste.ini" "$dir/etc/" ||
        { glance_why="glance-api-paste.ini is not in $venv/etc/glance"; return 1; }
    cat >"$dir/etc/glance-api.conf" <<EOF
[DEFAULT]
enabled_backends = fs:file
[database]
connection = sqlite:///$dir/glance.db
[paste_deploy]
flavor =
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $dir/store
[os_glance_staging_store]
filesystem_store_datadir = $dir/staging
[os_glance_tasks_store]
filesystem_store_datadir = $dir/tasks
[oslo_policy]
enforce_new_defaults = false
EOF
    "$venv/bin/glance-manage" --config-file "$dir/etc/glance-api.conf" db_sync >"$dir/setup.log" 2>&1 ||
        { tail -20 "$dir/setup.log" >&2; glance_why="glance-manage db_sync failed: $(tail -1 "$dir/setup.log")"; return 1; }
    # As devstack runs glance-api: uWSGI master with prefork workers, each loading the app
    # itself (lazy-apps), HTTP straight on the workers with the raw-body and chunked-input
    # options devstack sets for image uploads. No Apache in front (devstack has one), which
    # only spares Glance a proxy hop. The app is glance.wsgi.api (what glance-wsgi-api ran).
    if [ -x "$venv/bin/uwsgi" ]; then
        OS_GLANCE_CONFIG_DIR="$dir/etc" launch "$dir/server.pid" "$venv/bin/uwsgi" --master \
            --http-socket "127.0.0.1:$port" --module glance.wsgi.api:application \
            --processes "$workers" --threads 1 --enable-threads --lazy-apps --die-on-term \
            --need-app --http-raw-body --http-chunked-input --http-auto-chunked \
            --buffer-size 65535 --disable-logging >"$dir/server.log" 2>&1
    else
        OS_GLANCE_CONFIG_DIR="$dir/etc" launch "$dir/server.pid" "$venv/bin/gunicorn" \
            --bind "127.0.0.1:$port" --workers "$workers" glance.wsgi.api:application \
            >"$dir/server.log" 2>&1
    fi
    pid[gl]=${pids[-1]}
    wait_ready "http://127.0.0.1:$port/healthcheck" "${pid[gl]}" "$dir/server.log" ||
        { glance_why="it did not answer (log: $(tail -1 "$dir/server.log"))"; return 1; }
    api[gl]="http://127.0.0.1:$port/v2/images"
    hdr[gl]="X-Roles: admin" # not read by the noauth pipeline; kept so both sides send one header
}

# The server's processes: its session (uWSGI master and workers; ferrostack is one).
procs() { pgrep -s "${pid[$1]}" | tr '\n' ' '; }
# Resident memory (kB) summed over the processes named by their PIDs.
rss_kb() { local p f=(); for p; do f+=("/proc/$p/status"); done
    awk '$1 == "VmRSS:" { s += $2 } END { print s + 0 }' "${f[@]}" 2>/dev/null || true; }
# The kernel's own peak (VmHWM), reset by writing 5 to clear_refs: a cross-check on the
# 0.2 s samples, which can miss a short spike.
hwm_reset() { local p; for p; do echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true; done; }
hwm_kb() { local p f=(); for p; do f+=("/proc/$p/status"); done
    awk '$1 == "VmHWM:" { s += $2 } END { print s + 0 }' "${f[@]}" 2>/dev/null || true; }
# CPU time (user + system, clock ticks) used so far by the processes.
ticks() { local p; for p; do sed 's/.*) //' "/proc/$p/stat" 2>/dev/null || true; done |
    awk '{ s += $12 + $13 } END { print s + 0 }'; }
hz=$(getconf CLK_TCK)

# Starts sampling the RSS of server $1 every 0.2 s into $work/rss; monitor_stop reads it.
monitor_start() {
    local key=$1
    mon_procs=$(procs "$key")
    # shellcheck disable=SC2086 # a list of PIDs
    hwm_reset $mon_procs
    # shellcheck disable=SC2086
    mon_ticks=$(ticks $mon_procs)
    : >"$work/rss"
    # shellcheck disable=SC2086
    (while :; do rss_kb $mon_procs >>"$work/rss"; sleep 0.2; done) &
    sampler_pid=$!
}
# Sets mon_peak (sampled, kB), mon_hwm (kB) and mon_cpu (seconds) for what ran since.
monitor_stop() {
    kill "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
    sampler_pid=""
    # shellcheck disable=SC2086
    rss_kb $mon_procs >>"$work/rss"
    mon_peak=$(sort -n "$work/rss" | tail -1)
    # shellcheck disable=SC2086
    mon_hwm=$(hwm_kb $mon_procs)
    # shellcheck disable=SC2086
    mon_cpu=$(awk -v d=$(($(ticks $mon_procs) - mon_ticks)) -v hz="$hz" 'BEGIN { printf "%.2f", d / hz }')
}

# Before each timed step: first an untimed write of as many bytes into the page cache, in
# the way the step writes, deleted before it reaches the disk. In this VM, memory the
# guest has not touched for a while was handed back to the host and is slow to fill
# again, and how fast the page cache fills also depends on whether the memory was last
# used in small or in large pieces (large writes fill it in large folios): the first
# 1 GiB write after a pause or after a change of write size can take 3x as long. Without
# this, whichever contender came first after such a change paid for it, round after
# round. $1 says how: a write size for dd (curl writes about 8 KiB at a time,
# image-get.py 4 MiB), or cp:FILE for a cp of that file. Then the writeback of anything
# dirty on this filesystem (earlier steps, other users) is pushed out, so no step pays
# for the one before it. The timed steps themselves fsync only their own file (`sync
# FILE`, not `sync -f`, which would also wait for other users' writes).
settle() {
    case $1 in
        cp:*) cp "${1#cp:}" "$work/warm" ;;
        *) dd if=/dev/zero of="$work/warm" bs="$1" count=$((bytes / $1)) status=none ;;
    esac
    rm -f "$work/warm"
    sync -f "$work"
}
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
mbps() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", n / s / 1e6; else print "-" }'; }

# $1 source file: prints the seconds a cp to a new file plus its fsync takes.
time_cp() {
    settle "cp:$1"
    local t0 t1; t0=$(now)
    cp "$1" "$work/cp-copy"
    sync "$work/cp-copy"
    t1=$(now)
    rm -f "$work/cp-copy"
    elapsed "$t0" "$t1"
}

# $1 server key, $2 name: prints the new image's id.
create_image() {
    curl -sS -f -H "${hdr[$1]}" -H 'Content-Type: application/json' \
        -d '{"name":"'"$2"'","disk_format":"raw","container_format":"bare"}' "${api[$1]}" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'
}
delete_image() { curl -sS -f -o /dev/null -X DELETE -H "${hdr[$1]}" "${api[$1]}/$2"; }

# $1 key, $2 file, $3 image id. Sets up_s (curl's time_total: ferrostack fsyncs before it
# answers), durable_s (up_s, plus for Glance, which does not fsync, the time a later fsync
# of the stored file takes) and the monitor_* figures.
upload() {
    settle 65536 # Glance writes 64 KiB at a time, ferrostack more
    monitor_start "$1"
    local out code
    out=$(curl -sS -o "$work/resp" -w '%{http_code} %{time_total}' -T "$2" -X PUT \
        -H "${hdr[$1]}" -H 'Content-Type: application/octet-stream' "${api[$1]}/$3/file")
    monitor_stop
    code=${out% *}
    up_s=${out#* }
    if [ "$code" != 204 ]; then say "upload to ${name[$1]} answered $code: $(head -c 300 "$work/resp")"; exit 1; fi
    durable_s=$up_s
    if [ "$1" = gl ]; then
        local t0 t1; t0=$(now)
        sync "${store[gl]}/$3"
        t1=$(now)
        durable_s=$(awk -v a="$up_s" -v b="$(elapsed "$t0" "$t1")" 'BEGIN { printf "%.3f", a + b }')
    fi
}

# $1 key, $2 image id, $3 expected source. Sets down_s (curl to a new file, then its fsync)
# and the monitor_* figures; checks the bytes came back unchanged.
download() {
    settle 8192
    monitor_start "$1"
    local t0 t1 code; t0=$(now)
    code=$(curl -sS -o "$work/download" -w '%{http_code}' -H "${hdr[$1]}" "${api[$1]}/$2/file")
    sync "$work/download"
    t1=$(now)
    monitor_stop
    down_s=$(elapsed "$t0" "$t1")
    if [ "$code" != 200 ]; then say "download from ${name[$1]} answered $code"; exit 1; fi
    cmp -s "$3" "$work/download" || { say "download from ${name[$1]} differs from the upload"; exit 1; }
    rm -f "$work/download"
}

# Reads numbers separated by spaces; $1 the printf format (default one decimal).
# $1 key, $2 image id, $3 expected source: prints the seconds a download to a new file
# with 4 MiB writes, then fsync, takes (scripts/bench/image-get.py): the server's download
# path to disk when the client's small writes are not the limit.
download_big_writes() {
    settle 4194304
    local t0 t1; t0=$(now)
    python3 "$root/scripts/bench/image-get.py" "${api[$1]}/$2/file" "$work/download" "${hdr[$1]}"
    t1=$(now)
    cmp -s "$3" "$work/download" || { say "download from ${name[$1]} differs from the upload"; exit 1; }
    rm -f "$work/download"
    elapsed "$t0" "$t1"
}

# $1 key, $2 image id: prints the seconds a download to /dev/null takes: what the server
# and loopback deliver when no client write or disk is in the way.
download_null() {
    curl -sS -f -o /dev/null -w '%{time_total}' -H "${hdr[$1]}" "${api[$1]}/$2/file"
}

median() { tr ' ' '\n' | { grep . || true; } | sort -g | awk -v f="${1:-%.1f}" '{ v[NR] = $1 } END {
    if (NR == 0) print "-"; else if (NR % 2) printf f, v[(NR + 1) / 2];
    else printf f, (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# The best of the numbers (highest MB/s): on a shared machine, the run least disturbed.
best() { tr ' ' '\n' | { grep . || true; } | sort -g | tail -1 | awk '{ printf "%.1f", $1 }'; }
maxof() { tr ' ' '\n' | { grep . || true; } | sort -g | tail -1; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
say "writing ${size_mib} MiB of random data"
# AES-CTR keystream is random-looking and far faster than /dev/urandom; dd from
# /dev/urandom in large blocks where openssl is missing. Once per run.
src="$work/source"
# (openssl ends on SIGPIPE when head has enough, hence the || true.)
{ openssl enc -aes-128-ctr -pass "pass:$password" -pbkdf2 -nosalt </dev/zero 2>/dev/null || true; } |
    head -c "$bytes" >"$src" || true
if [ "$(stat -c %s "$src")" != "$bytes" ]; then
    dd if=/dev/urandom of="$src" bs=1M count="$size_mib" iflag=fullblock status=none
fi
[ "$(stat -c %s "$src")" = "$bytes" ] || { say "could not write $src"; exit 1; }
head -c "$small_bytes" "$src" >"$work/small"
sync "$src" "$work/small"

say "starting servers"
start_ferrostack fs
servers=(fs)
if [ -n "$venv" ]; then
    if start_glance; then servers+=(gl); else say "glance not measured: $glance_why"; fi
fi
uploaders=("${servers[@]}")
if [ "$want_fast" = 1 ]; then
    start_ferrostack ff FERROSTACK_IMAGE__HASHING_ALGORITHM=sha256 FERROSTACK_IMAGE__MD5_CHECKSUM=false
    uploaders+=(ff)
fi
declare -A bigw null idle after up64 down64 peak_up64 peak_down64 up down dur peak_up peak_down hwm_up hwm_down cpu_up cpu_down
for k in "${uploaders[@]}"; do
    # One metadata call first, so both have served a request before the idle RSS is read.
    curl -sS -f -o /dev/null -H "${hdr[$k]}" "${api[$k]}"
    # shellcheck disable=SC2046
    idle[$k]=$(rss_kb $(procs "$k"))
done

say "${small_mib} MiB image"
cp64_s=$(time_cp "$work/small")
for k in "${servers[@]}"; do
    id=$(create_image "$k" small)
    upload "$k" "$work/small" "$id"
    up64[$k]=$(mbps "$small_bytes" "$up_s"); peak_up64[$k]=$mon_peak
    download "$k" "$id" "$work/small"
    down64[$k]=$(mbps "$small_bytes" "$down_s"); peak_down64[$k]=$mon_peak
    delete_image "$k" "$id"
done

# Rounds: cp, then each server's upload, then each server's download, back to back so
# background load (other users compiling) lands on all contenders alike; the servers'
# order flips every round, and the uploaders' order rotates.
cp_all=""
for r in $(seq "$runs"); do
    order=("${servers[@]}")
    if [ $((r % 2)) = 0 ] && [ ${#servers[@]} = 2 ]; then order=(gl fs); fi
    n=${#uploaders[@]}
    up_order=()
    for i in $(seq 0 $((n - 1))); do up_order+=("${uploaders[$(((i + r) % n))]}"); done
    s=$(time_cp "$src")
    cp_all+=" $(mbps "$bytes" "$s")"
    say "round $r: cp $(mbps "$bytes" "$s") MB/s"
    declare -A ids=()
    for k in "${up_order[@]}"; do
        ids[$k]=$(create_image "$k" "big-$r")
        upload "$k" "$src" "${ids[$k]}"
        up[$k]+=" $(mbps "$bytes" "$up_s")"
        dur[$k]+=" $(mbps "$bytes" "$durable_s")"
        peak_up[$k]+=" $mon_peak"; hwm_up[$k]+=" $mon_hwm"; cpu_up[$k]+=" $mon_cpu"
        say "round $r: ${name[$k]} upload $(mbps "$bytes" "$up_s") MB/s, peak RSS $((mon_peak / 1024)) MiB, CPU ${mon_cpu} s"
        # The sha256-only server is measured on uploads only (downloads run the same code).
        if [ "$k" = ff ]; then delete_image ff "${ids[ff]}"; unset 'ids[ff]'; fi
    done
    for k in "${order[@]}"; do
        download "$k" "${ids[$k]}" "$src"
        down[$k]+=" $(mbps "$bytes" "$down_s")"
        peak_down[$k]+=" $mon_peak"; hwm_down[$k]+=" $mon_hwm"; cpu_down[$k]+=" $mon_cpu"
        say "round $r: ${name[$k]} download $(mbps "$bytes" "$down_s") MB/s, peak RSS $((mon_peak / 1024)) MiB, CPU ${mon_cpu} s"
    done
    for k in "${order[@]}"; do
        s=$(download_big_writes "$k" "${ids[$k]}" "$src")
        bigw[$k]+=" $(mbps "$bytes" "$s")"
        say "round $r: ${name[$k]} download with 4 MiB writes $(mbps "$bytes" "$s") MB/s"
    done
    for k in "${order[@]}"; do null[$k]+=" $(mbps "$bytes" "$(download_null "$k" "${ids[$k]}")")"; done
    for k in "${order[@]}"; do delete_image "$k" "${ids[$k]}"; done
done
for k in "${uploaders[@]}"; do
    # shellcheck disable=SC2046
    after[$k]=$(rss_kb $(procs "$k"))
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# Both servers compute Glance's two checksums (MD5 and SHA-512) over every uploaded byte;
# one core's speed at each (OpenSSL's assembly, as Python's hashlib uses) bounds a
# single-threaded upload path, whatever the disk does.
hash_speed() { openssl speed -seconds 1 -bytes 16384 "$1" 2>/dev/null |
    awk -v a="$1" '$1 == a { v = $2; sub(/k$/, "", v); printf "%.0f", v / 1000 }'; }
md5_mbs=$(hash_speed md5)
sha_mbs=$(hash_speed sha512)
sha256_mbs=$(hash_speed sha256)
both_mbs=$(awk -v a="$md5_mbs" -v b="$sha_mbs" 'BEGIN { if (a > 0 && b > 0) printf "%.0f", 1 / (1 / a + 1 / b); else print "-" }')

# ---- report ----
mib() { [ -n "${1:-}" ] && awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' || echo "-"; }
ratio() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
times() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1fx", a / b; else print "-" }'; }
cp_med=$(median <<<"$cp_all")
cp_best=$(best <<<"$cp_all")
declare -A m
for k in "${uploaders[@]}"; do
    m[up,$k]=$(median <<<"${up[$k]:-}")
    m[dur,$k]=$(median <<<"${dur[$k]:-}")
    m[down,$k]=$(median <<<"${down[$k]:-}")
    m[null,$k]=$(median <<<"${null[$k]:-}")
    m[bigw,$k]=$(median <<<"${bigw[$k]:-}")
    m[upb,$k]=$(best <<<"${up[$k]:-}")
    m[downb,$k]=$(best <<<"${down[$k]:-}")
    m[bigwb,$k]=$(best <<<"${bigw[$k]:-}")
    m[cpuup,$k]=$(median %.2f <<<"${cpu_up[$k]:-}")
    m[cpudown,$k]=$(median %.2f <<<"${cpu_down[$k]:-}")
    m[pu,$k]=$(maxof <<<"${peak_up[$k]:-}")
    m[pd,$k]=$(maxof <<<"${peak_down[$k]:-}")
    m[hu,$k]=$(maxof <<<"${hwm_up[$k]:-}")
    m[hd,$k]=$(maxof <<<"${hwm_down[$k]:-}")
done
gl() { if [ ${#servers[@]} = 2 ]; then echo "${m[$1,gl]}"; else echo "-"; fi; }
glv() { if [ ${#servers[@]} = 2 ]; then echo "$1"; else echo "-"; fi; }
big="${size_mib} MiB"; [ "$size_mib" = 1024 ] && big="1 GiB"
# Throughput rows: MB/s, ratios to cp, and how many times ferrostack's is Glance's.
trow() { echo "| $1 | $2 | $3 | $4 | $(ratio "$3" "$2") | $(ratio "$4" "$2") | $(times "$3" "$4") |"; }
# Cost rows (CPU, memory): no cp column; the last says how many times less ferrostack uses.
crow() { echo "| $1 | - | $2 | $3 | - | - | $(times "$3" "$2") |"; }
table=$(
    echo "| metric | cp | ferrostack | glance | ferrostack / cp | glance / cp | ferrostack vs glance |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    trow "upload $big, MB/s (median of $runs)" "$cp_med" "${m[up,fs]}" "$(gl up)"
    trow "upload $big until on disk, MB/s (Glance: + fsync of its file)" "$cp_med" "${m[dur,fs]}" "$(gl dur)"
    trow "download $big to a file + fsync, MB/s (median of $runs)" "$cp_med" "${m[down,fs]}" "$(gl down)"
    trow "download $big, 4 MiB writes + fsync (image-get.py), MB/s (median)" "$cp_med" "${m[bigw,fs]}" "$(gl bigw)"
    trow "upload $big, MB/s (best of $runs)" "$cp_best" "${m[upb,fs]}" "$(gl upb)"
    trow "download $big to a file + fsync, MB/s (best of $runs)" "$cp_best" "${m[downb,fs]}" "$(gl downb)"
    trow "download $big, 4 MiB writes + fsync, MB/s (best of $runs)" "$cp_best" "${m[bigwb,fs]}" "$(gl bigwb)"
    echo "| download $big to /dev/null (server + loopback only), MB/s | - | ${m[null,fs]} | $(gl null) | - | - | $(times "${m[null,fs]}" "$(gl null)") |"
    trow "upload ${small_mib} MiB, MB/s (1 run)" "$(mbps "$small_bytes" "$cp64_s")" "${up64[fs]}" "$(glv "${up64[gl]:-}")"
    trow "download ${small_mib} MiB + fsync, MB/s (1 run)" "$(mbps "$small_bytes" "$cp64_s")" "${down64[fs]}" "$(glv "${down64[gl]:-}")"
    crow "server CPU per $big upload, s (median)" "${m[cpuup,fs]}" "$(gl cpuup)"
    crow "server CPU per $big download, s (median)" "${m[cpudown,fs]}" "$(gl cpudown)"
    crow "RSS idle before the uploads, MiB" "$(mib "${idle[fs]}")" "$(glv "$(mib "${idle[gl]:-}")")"
    crow "RSS peak during ${small_mib} MiB upload, MiB" "$(mib "${peak_up64[fs]}")" "$(glv "$(mib "${peak_up64[gl]:-}")")"
    crow "RSS peak during $big upload, MiB" "$(mib "${m[pu,fs]}")" "$(glv "$(mib "${m[pu,gl]:-}")")"
    crow "RSS peak during ${small_mib} MiB download, MiB" "$(mib "${peak_down64[fs]}")" "$(glv "$(mib "${peak_down64[gl]:-}")")"
    crow "RSS peak during $big download, MiB" "$(mib "${m[pd,fs]}")" "$(glv "$(mib "${m[pd,gl]:-}")")"
    crow "kernel peak (VmHWM) during $big upload / download, MiB" \
        "$(mib "${m[hu,fs]}") / $(mib "${m[hd,fs]}")" \
        "$(glv "$(mib "${m[hu,gl]:-}") / $(mib "${m[hd,gl]:-}")")"
    crow "RSS after all transfers, MiB" "$(mib "${after[fs]}")" "$(glv "$(mib "${after[gl]:-}")")"
    if [ "$want_fast" = 1 ]; then
        # The second ferrostack, in the ferrostack column; Glance always computes MD5, so
        # its column stays empty here.
        trow "upload $big, sha256 only (hashing_algorithm = sha256, md5_checksum = false), MB/s (median of $runs)" "$cp_med" "${m[up,ff]}" "-"
        trow "upload $big, sha256 only, MB/s (best of $runs)" "$cp_best" "${m[upb,ff]}" "-"
        crow "server CPU per $big upload, sha256 only, s (median)" "${m[cpuup,ff]}" "-"
        crow "RSS peak during $big upload, sha256 only, MiB" "$(mib "${m[pu,ff]}")" "-"
    fi
)

verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo MISSED; fi; }
# Not growing with size: the big image's peak is within 16 MiB of the small one's (the
# image is 16 times larger; the buffers in flight are the same).
grow_up=$(awk -v a="${m[pu,fs]}" -v b="${peak_up64[fs]}" 'BEGIN { print a - b }')
grow_down=$(awk -v a="${m[pd,fs]}" -v b="${peak_down64[fs]}" 'BEGIN { print a - b }')
goals=$(
    echo "- upload >= 80% of cp, default settings (Glance's MD5 + SHA-512): $(verdict "${m[up,fs]} >= 0.8 * $cp_med")" \
        "($(ratio "${m[up,fs]}" "$cp_med") of cp: ${m[up,fs]} vs $cp_med MB/s, medians;" \
        "best against best $(ratio "${m[upb,fs]}" "$cp_best"))"
    if [ "$want_fast" = 1 ]; then
        echo "- upload >= 80% of cp, sha256 only: $(verdict "${m[up,ff]} >= 0.8 * $cp_med")" \
            "($(ratio "${m[up,ff]}" "$cp_med") of cp: ${m[up,ff]} vs $cp_med MB/s, medians;" \
            "best against best $(ratio "${m[upb,ff]}" "$cp_best"))"
    fi
    echo "- download >= 80% of cp: $(verdict "${m[down,fs]} >= 0.8 * $cp_med")" \
        "($(ratio "${m[down,fs]}" "$cp_med") of cp with curl: ${m[down,fs]} vs $cp_med MB/s, medians;" \
        "best against best $(ratio "${m[downb,fs]}" "$cp_best"); with 4 MiB client writes" \
        "$(verdict "${m[bigw,fs]} >= 0.8 * $cp_med"), $(ratio "${m[bigw,fs]}" "$cp_med") of cp," \
        "best against best $(ratio "${m[bigwb,fs]}" "$cp_best"))"
    echo "- RSS does not grow with image size (peak for $big within 16 MiB of the peak for ${small_mib} MiB):" \
        "$(verdict "$grow_up < 16384 && $grow_down < 16384")" \
        "(upload $(mib "${peak_up64[fs]}") -> $(mib "${m[pu,fs]}") MiB, download $(mib "${peak_down64[fs]}") -> $(mib "${m[pd,fs]}") MiB)"
    if [ ${#servers[@]} = 2 ]; then
        echo "- against upstream Glance: upload $(times "${m[up,fs]}" "${m[up,gl]}") Glance's throughput" \
            "($(times "${m[dur,fs]}" "${m[dur,gl]}") counting until on disk), download $(times "${m[down,fs]}" "${m[down,gl]}")"
    else
        echo "- upstream Glance not measured: $glance_why"
    fi
)
runs_line=$(
    echo "- every run, MB/s: cp${cp_all};"
    for k in "${servers[@]}"; do
        echo "${name[$k]} upload${up[$k]}, download${down[$k]}, with 4 MiB writes${bigw[$k]}, to /dev/null${null[$k]};"
    done
    if [ "$want_fast" = 1 ]; then echo "${name[ff]} upload${up[ff]};"; fi
    if [ ${#servers[@]} = 2 ]; then echo "glance upload until on disk${dur[gl]}"; fi
)
runs_line=$(tr '\n' ' ' <<<"$runs_line" | sed 's/[; ]*$//')

dev=$(findmnt -no SOURCE -T "$work" 2>/dev/null || echo "?")
fstype=$(findmnt -no FSTYPE -T "$work" 2>/dev/null || echo "?")
facts=$(
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))," \
        "$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r);" \
        "load average $load_before before, $load_after after (the machine is shared)"
    echo "- disk: everything on one $fstype filesystem on $dev" \
        "($(lsblk -dno SIZE "$dev" 2>/dev/null | tr -d ' ' || echo '?'));" \
        "page cache not dropped (not possible here, and not needed: see Method)"
    echo "- ferrostack $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates Cargo.lock || echo '+changes')" \
        "(release build), FERROSTACK_LOG_LEVEL=warn, SQLite in its data dir"
    if [ ${#servers[@]} = 2 ]; then
        server="uWSGI $("$venv/bin/uwsgi" --version 2>/dev/null)"
        [ -x "$venv/bin/uwsgi" ] || server="gunicorn (uWSGI did not build)"
        echo "- glance $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("glance"), "with glance_store", m.version("glance_store"))')" \
            "on $("$venv/bin/python" -V) under $server, $workers workers, noauth, SQLite, filesystem store"
    fi
    echo "- one core hashes (openssl speed, 16 KiB blocks): MD5 $md5_mbs MB/s, SHA-512 $sha_mbs MB/s," \
        "both one after the other $both_mbs MB/s; SHA-256 $sha256_mbs MB/s" \
        "($(grep -qw sha_ni /proc/cpuinfo && echo 'the CPU has SHA extensions' || echo 'no SHA extensions'))"
    echo "- client: $(curl --version | head -1 | cut -d' ' -f1-2), one transfer at a time, all on 127.0.0.1;" \
        "MB = 10^6 bytes; $runs rounds of the $big image"
    echo "$runs_line"
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
        printf '# Image benchmark\n\nWritten by scripts/bench-image.sh.\n\n<!-- results:begin -->\n<!-- results:end -->\n' >"$doc"
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
