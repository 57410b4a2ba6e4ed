#!/usr/bin/env bash
# Runs upstream Placement's gabbi files (scripts/gabbi/run.sh) against ferrostack's
# Placement API, each file on a fresh service as upstream runs them: ferrostack is started
# once (`ferrostack up`, SQLite), an admin token and a member's token are issued, the
# server is stopped and its data directory kept as the pristine copy; before every file
# the server is stopped, given the pristine copy back and started again (a second or so).
# The tokens stay valid across restarts: the Fernet keys and the users are in the copy.
#
# Usage: scripts/gabbi/check-ferrostack.sh   (other GABBI_* variables go to run.sh)
#   FERROSTACK_BIN   the binary (default: a release build, honouring CARGO_TARGET_DIR)
#   GABBI_RESET=0    run all files against one service instead
#   GABBI_MIN_PASSED=N  exit non-zero when fewer than N tests pass (the suite's floor);
#                    without it, the exit status is run.sh's (0 only when all pass)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

# _restart WORK PORT: (re)start ferrostack there on a fresh copy of the pristine data.
if [ "${1:-}" = _restart ]; then
    work=$2 port=$3
    if [ -s "$work/server.pid" ]; then
        pid=$(cat "$work/server.pid")
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do [ -e "/proc/$pid" ] || break; sleep 0.05; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$work/data" "$work/server.pid"
    cp -a "$work/pristine" "$work/data"
    # No compute agent: upstream's tests expect a Placement with no providers of its own.
    FERROSTACK_LOG_LEVEL=warn FERROSTACK_COMPUTE_AGENT__ENABLED=false FERROSTACK_NETWORK__BACKEND=fake setsid "$(cat "$work/bin")" up --data-dir "$work/data" \
        --bind "127.0.0.1:$port" --no-user-clouds-yaml >>"$work/server.log" 2>&1 </dev/null &
    echo $! >"$work/server.pid"
    for _ in $(seq 200); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/healthcheck" && exit 0
        sleep 0.05
    done
    echo "check-ferrostack: ferrostack did not start; its log ends:" >&2
    tail -20 "$work/server.log" >&2
    exit 1
fi

bin=${FERROSTACK_BIN:-}
if [ -z "$bin" ]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
    cargo build --release -q -p ferrostack
    bin="$CARGO_TARGET_DIR/release/ferrostack"
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/gabbi-ferrostack.XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
stop() {
    if [ -s "$work/server.pid" ]; then
        kill -TERM "$(cat "$work/server.pid")" 2>/dev/null || true
        sleep 0.5
    fi
    rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT TERM
realpath "$bin" >"$work/bin"

# The first start bootstraps the data directory; its tokens are taken, then it stops.
mkdir -p "$work/pristine"
"$here/check-ferrostack.sh" _restart "$work" "$port"
token() { # user password project
    local body
    body='{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"'$1'","domain":{"id":"default"},"password":"'$2'"}}},"scope":{"project":{"name":"'$3'","domain":{"id":"default"}}}}}'
    curl -sS -D - -o /dev/null -H 'Content-Type: application/json' -d "$body" \
        "http://127.0.0.1:$port/identity/v3/auth/tokens" |
        tr -d '\r' | awk 'tolower($1) == "x-subject-token:" { print $2 }'
}
admin_token=$(token admin "$(cat "$work/data/admin-password")" admin)
user_token=$(token demo "$(cat "$work/data/demo-password")" demo)
[ -n "$admin_token" ] && [ -n "$user_token" ] || { echo "check-ferrostack: no tokens" >&2; exit 1; }
kill -TERM "$(cat "$work/server.pid")"
for _ in $(seq 100); do [ -e "/proc/$(cat "$work/server.pid")" ] || break; sleep 0.05; done
rm -rf "$work/pristine"
cp -a "$work/data" "$work/pristine"
rm -f "$work/server.pid"
"$here/check-ferrostack.sh" _restart "$work" "$port"

if [ "${GABBI_RESET:-1}" = 1 ]; then
    export GABBI_BEFORE_EACH="'$here/check-ferrostack.sh' _restart '$work' '$port'"
fi
out="$work/run.out"
set +e
GABBI_USER_TOKEN="$user_token" "$here/run.sh" "http://127.0.0.1:$port/placement" "$admin_token" | tee "$out"
rc=${PIPESTATUS[0]}
set -e
if [ -n "${GABBI_MIN_PASSED:-}" ]; then
    passed=$(awk '/^gabbi: / { print $2 }' "$out")
    if [ "${passed:-0}" -lt "$GABBI_MIN_PASSED" ]; then
        echo "check-ferrostack: $passed passed, fewer than the floor of $GABBI_MIN_PASSED" >&2
        exit 1
    fi
    echo "check-ferrostack: $passed passed (floor $GABBI_MIN_PASSED)"
    exit 0
fi
exit "$rc"
