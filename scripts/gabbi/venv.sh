#!/usr/bin/env bash
# Prints the path of the Python venv holding gabbi (scripts/gabbi/requirements.txt) for
# scripts/gabbi/run.sh, built on first use.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$here/../pyvenv.sh" gabbi "$here/requirements.txt"
