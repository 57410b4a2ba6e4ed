#!/usr/bin/env bash
# Prints the path of the Python venv holding upstream Glance and a WSGI server for
# scripts/bench-image.sh (pinned in scripts/bench/glance-requirements.txt), built on first
# use.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$here/../pyvenv.sh" glance "$here/glance-requirements.txt" --wsgi
