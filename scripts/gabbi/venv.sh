#!/usr/bin/env bash
# Prints the path of a Python venv holding gabbi (scripts/gabbi/requirements.txt) for
# scripts/gabbi/run.sh, building it on first use (same scheme as scripts/venv.sh: named
# after a hash of the pins, one builder at a time, a stamp marks it complete). Only the
# path goes to stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
req="$here/requirements.txt"
cache="${FERROSTACK_CACHE:-$HOME/.cache/ferrostack}"
venv="$cache/gabbi-$(cat "$req" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)"
mkdir -p "$cache"

exec 9>"$cache/gabbi-venv.lock"
flock 9

if [ ! -f "$venv/.installed" ] || ! "$venv/bin/python" -c '' 2>/dev/null; then
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends python3-venv >&2
    fi
    echo "gabbi/venv.sh: building $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
    touch "$venv/.installed"
fi
echo "$venv"
