#!/usr/bin/env bash
# Throwaway PostgreSQL for tests (Debian's server package, one cluster per DIR).
#   pg.sh start DIR          -> prints postgres://ferrostack:PASS@127.0.0.1:PORT/ferrostack (also DIR/url)
#   pg.sh createdb DIR NAME  -> creates database NAME (one per parallel test), prints its URL
#   pg.sh stop DIR           -> fast shutdown via the cluster's own pidfile; files are kept
# Layout: DIR/data (PGDATA), DIR/server.log, DIR/port, DIR/superpass, DIR/url.
# Every command is safe to repeat; nothing but DIR is written.
set -euo pipefail
umask 077  # passwords and the URL are kept in DIR

usage() { echo "usage: $0 start DIR | createdb DIR NAME | stop DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1
dir=$(realpath -m "$2")
role=ferrostack

# Newest server installed by Debian (bookworm: 15); install it on a fresh machine.
pg_bin() {
    printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1
}
if [ ! -x "$(pg_bin)/initdb" ]; then
    export DEBIAN_FRONTEND=noninteractive
    echo "pg.sh: installing postgresql" >&2
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
fi
bin=$(pg_bin)

# The server refuses to run as root: as root, run server tools as the 'postgres'
# system user (created by the Debian package); otherwise as ourselves.
if [ "$(id -u)" = 0 ]; then
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

# Superuser SQL over TCP (no unix socket: its path length is limited and DIR may be long).
su_psql() {
    PGPASSWORD=$(cat "$dir/superpass") "$bin/psql" -X -q -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$(cat "$dir/port")" -U postgres -d postgres "$@"
}

url_for() { # DBNAME -> URL with the test role's credentials
    echo "postgres://$role:$(cat "$dir/rolepass")@127.0.0.1:$(cat "$dir/port")/$1"
}

running() { [ -f "$dir/data/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; }

free_port() { # let the kernel pick an unused port
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

randhex() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

case "$cmd" in
start)
    mkdir -p "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        rm -rf "$dir/data"
        [ -f "$dir/superpass" ] || randhex >"$dir/superpass"
        [ -f "$dir/rolepass" ] || randhex >"$dir/rolepass"
        if [ "$(id -u)" = 0 ]; then
            chown postgres: "$dir"
            runuser -u postgres -- test -w "$dir" || {
                echo "pg.sh: user postgres cannot reach $dir (pick a directory under /tmp)" >&2; exit 1; }
        fi
        chmod 644 "$dir/superpass"  # initdb (running as postgres) reads it
        as_pg "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/superpass" \
            --auth-local=reject --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
        chmod 600 "$dir/superpass"
        # Tests only: trade durability for speed; TCP on loopback only.
        cat >>"$dir/data/postgresql.conf" <<'EOF'
# --- ferrostack test settings (scripts/pg.sh) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
max_wal_size = 1GB
checkpoint_timeout = 30min
EOF
    fi
    if ! running; then
        # The port is given at start, so a restart can move to a new free port.
        for _ in 1 2 3 4 5; do
            port=$(free_port)
            echo "$port" >"$dir/port"
            as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "-p $port" -w -t 60 start >/dev/null \
                && break
        done
        running || { echo "pg.sh: server did not start; log:" >&2; tail -n 20 "$dir/server.log" >&2; exit 1; }
    fi
    # The test role (may create databases itself) and its database; idempotent.
    su_psql -v role="$role" -v pass="$(cat "$dir/rolepass")" <<'EOF'
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'pass')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('CREATE DATABASE ferrostack OWNER %I', :'role')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'ferrostack') \gexec
EOF
    url_for ferrostack >"$dir/url"
    cat "$dir/url"
    ;;
createdb)
    [ $# -eq 3 ] || usage
    name=$3
    [[ $name =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || { echo "pg.sh: bad database name '$name'" >&2; exit 2; }
    running || { echo "pg.sh: no running cluster in $dir (run: $0 start $dir)" >&2; exit 1; }
    su_psql -v role="$role" -v db="$name" <<'EOF'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
EOF
    url_for "$name"
    ;;
stop)
    # pg_ctl signals the PID in DIR/data/postmaster.pid: only this cluster stops.
    if running; then
        as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
    else
        echo "pg.sh: no running cluster in $dir" >&2
    fi
    ;;
*) usage ;;
esac
