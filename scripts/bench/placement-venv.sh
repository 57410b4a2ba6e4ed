#!/usr/bin/env bash
# Prints the path of the Python venv holding upstream Placement and a WSGI server for
# scripts/bench-placement.sh (and scripts/gabbi/check-upstream.sh) (pinned in
# scripts/bench/placement-requirements.txt), built on first use.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$here/../pyvenv.sh" placement "$here/placement-requirements.txt" --wsgi
