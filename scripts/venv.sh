#!/usr/bin/env bash
# Prints the path of the Python venv holding the conformance tools (openstack CLI, tempest,
# osc-placement; pinned in scripts/conformance-requirements.txt), built on first use.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec "$here/pyvenv.sh" venv "$here/conformance-requirements.txt"
