#!/usr/bin/env bash
# Checks scripts/gabbi/run.sh against upstream Placement itself (the version pinned in
# scripts/bench/placement-requirements.txt, from scripts/bench/placement-venv.sh): starts
# it on 127.0.0.1 with [api] auth_strategy = noauth2 and SQLite, under uWSGI with 2
# workers, and runs the gabbi files against it. Upstream runs each file on a fresh
# database; so does this (GABBI_RESET=1, the default): before every file the server is
# stopped, given back the database as it was after `placement-manage db sync`, and
# started again. GABBI_RESET=0 runs all files against one database, as run.sh does against
# a service it cannot reset.
#
# Usage: scripts/gabbi/check-upstream.sh   (other GABBI_* variables go to run.sh)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

# $1 work dir, $2 port: (re)start the server there on a fresh copy of the database.
if [ "${1:-}" = _restart ]; then
    work=$2 port=$3
    if [ -s "$work/server.pid" ]; then
        pid=$(cat "$work/server.pid")
        kill -TERM -- "-$pid" 2>/dev/null || true
        for _ in $(seq 100); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    cp "$work/pristine.db" "$work/placement.db"
    rm -f "$work/placement.db-wal" "$work/placement.db-shm" "$work/server.pid"
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    OS_PLACEMENT_CONFIG_DIR="$work/etc" setsid sh -c 'echo $$ >"$0"; exec "$@"' "$work/server.pid" \
        "$(cat "$work/venv")/bin/uwsgi" --master --http11-socket "127.0.0.1:$port" \
        --module placement.wsgi.api:application --processes 2 --threads 1 --enable-threads \
        --lazy-apps --die-on-term --need-app --buffer-size 65535 --disable-logging \
        >>"$work/server.log" 2>&1 </dev/null &
    for _ in $(seq 200); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/" && exit 0
        sleep 0.1
    done
    echo "check-upstream: upstream Placement did not start; its log ends:" >&2
    tail -20 "$work/server.log" >&2
    exit 1
fi

venv=$("$root/scripts/bench/placement-venv.sh")
[ -x "$venv/bin/uwsgi" ] || { echo "check-upstream: uWSGI is not in $venv" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/gabbi-upstream.XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
stop() {
    if [ -s "$work/server.pid" ]; then kill -TERM -- "-$(cat "$work/server.pid")" 2>/dev/null || true; sleep 1; fi
    rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT TERM
echo "$venv" >"$work/venv"
mkdir -p "$work/etc"
cat >"$work/etc/placement.conf" <<EOF
[api]
auth_strategy = noauth2
[placement_database]
connection = sqlite:///$work/placement.db
EOF
export OS_PLACEMENT_CONFIG_DIR="$work/etc"
"$venv/bin/placement-manage" --config-dir "$work/etc" db sync >"$work/setup.log" 2>&1 ||
    { tail -20 "$work/setup.log" >&2; exit 1; }
# Loading the app writes the standard traits and resource classes; done once here, so the
# two workers do not race to do it (SQLite answers one of them "database is locked").
"$venv/bin/python" -c 'import placement.wsgi.api' >>"$work/setup.log" 2>&1 ||
    { tail -20 "$work/setup.log" >&2; exit 1; }
cp "$work/placement.db" "$work/pristine.db"
"$here/check-upstream.sh" _restart "$work" "$port"
if [ "${GABBI_RESET:-1}" = 1 ]; then
    export GABBI_BEFORE_EACH="'$here/check-upstream.sh' _restart '$work' '$port'"
fi
"$here/run.sh" "http://127.0.0.1:$port" admin
