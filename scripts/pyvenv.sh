#!/usr/bin/env bash
# Prints the path of a Python venv built from a pinned requirements file, building it on
# first use; every tool venv of the project (conformance tools, gabbi, the upstream
# services the benchmarks compare against) comes from here. Only the path goes to stdout.
#
# Usage: scripts/pyvenv.sh NAME REQUIREMENTS [--wsgi]
#   NAME          prefix of the venv's directory under the cache (FERROSTACK_CACHE, else
#                 ~/.cache/ferrostack); the rest of the name is a hash of REQUIREMENTS
#                 and of this script, so editing the pins makes a new venv and an
#                 unchanged file reuses the cached one
#   --wsgi        also install a WSGI server for an upstream service: uWSGI, what
#                 deployments (devstack, distro packages) run OpenStack services under;
#                 it compiles from source, so gunicorn is the fallback where there is no C
#                 compiler or Python headers
set -euo pipefail

name=${1:?usage: scripts/pyvenv.sh NAME REQUIREMENTS [--wsgi]}
req=${2:?usage: scripts/pyvenv.sh NAME REQUIREMENTS [--wsgi]}
wsgi=${3:-}
uwsgi_pin="uWSGI==2.0.31"
gunicorn_pin="gunicorn==27.0.1"
cache="${FERROSTACK_CACHE:-$HOME/.cache/ferrostack}"
venv="$cache/$name-$(cat "$req" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)"
mkdir -p "$cache"

# One builder at a time (tests may call this in parallel); the others wait.
exec 9>"$cache/$name-venv.lock"
flock 9

# A venv counts as built only once its stamp exists (an interrupted install is redone)
# and its interpreter still runs (python3 may have been replaced).
if [ ! -f "$venv/.installed" ] || ! "$venv/bin/python" -c '' 2>/dev/null; then
    # Debian splits venv/ensurepip into python3-venv.
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends python3-venv >&2
    fi
    echo "pyvenv.sh: building $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    # Every package is pinned in the file, so this resolves to the same set everywhere.
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
    if [ "$wsgi" = --wsgi ] &&
        ! "$venv/bin/pip" install --quiet --disable-pip-version-check "$uwsgi_pin" >&2; then
        echo "pyvenv.sh: uWSGI did not build; using gunicorn" >&2
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$gunicorn_pin" >&2
    fi
    touch "$venv/.installed"
fi
echo "$venv"
