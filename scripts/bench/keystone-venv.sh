#!/usr/bin/env bash
# Prints the path of the Python venv holding upstream Keystone and a WSGI server for
# scripts/bench-identity.sh (pinned in scripts/bench/keystone-requirements.txt), built on
# first use.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$here/../pyvenv.sh" keystone "$here/keystone-requirements.txt" --wsgi
