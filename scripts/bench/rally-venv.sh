#!/usr/bin/env bash
# Prints the path of the Python venv holding Rally and its OpenStack plugins for
# scripts/bench-compute.sh (pinned in scripts/bench/rally-requirements.txt), built on first
# use.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$here/../pyvenv.sh" rally "$here/rally-requirements.txt"
