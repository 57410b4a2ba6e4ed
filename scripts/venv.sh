#!/usr/bin/env bash
# Prints the path of a Python venv holding the conformance tools (openstack CLI,
# tempest, osc-placement), building it on first use. The venv is named after a
# hash of scripts/conformance-requirements.txt, so editing the pins makes a new
# one and an unchanged file reuses the cached one. Only the path goes to stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
req="$here/conformance-requirements.txt"
cache="${FERROSTACK_CACHE:-$HOME/.cache/ferrostack}"
venv="$cache/venv-$(sha256sum "$req" | cut -c1-12)"
mkdir -p "$cache"

# One builder at a time (tests may call this in parallel); the others wait.
exec 9>"$cache/venv.lock"
flock 9

# A venv counts as built only once its stamp exists (an interrupted install is
# redone) and its interpreter still runs (python3 may have been replaced).
if [ ! -f "$venv/.installed" ] || ! "$venv/bin/python" -c '' 2>/dev/null; then
    # Debian splits venv/ensurepip into python3-venv.
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends python3-venv >&2
    fi
    echo "venv.sh: building $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    # Every package is pinned in the file, so this resolves to the same set everywhere.
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
    touch "$venv/.installed"
fi
echo "$venv"
