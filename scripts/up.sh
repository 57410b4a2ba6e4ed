#!/usr/bin/env bash
# The all-in-one start: installs what the cloud needs from the distribution,
# builds ferrostack (release) and the project's guest image, and runs `ferrostack up` in the
# foreground with that image registered.
# Arguments are passed to `ferrostack up` (e.g. --bind 0.0.0.0:5000).
# Data lives in ~/.local/share/ferrostack unless --data-dir says otherwise.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cache="${FERROSTACK_CACHE:-$HOME/.cache/ferrostack}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"

# System packages the cloud uses at run time; later services add theirs here
# (QEMU, OVN/Open vSwitch, qemu-img, swtpm).
packages=(ca-certificates curl)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# QEMU 10, qemu-img, genisoimage and ssh-keygen for the compute agent.
"$root/scripts/install-qemu.sh"
# Open vSwitch and OVN: `ferrostack up` starts its own under the data directory.
"$root/scripts/install-ovn.sh"
command -v cargo >/dev/null || { echo "ferrostack builds with Rust's cargo; install it (rustup) first" >&2; exit 1; }

cargo build --release -p ferrostack
# The project's own guest image (the role CirrOS plays for DevStack), built from Debian
# packages once and cached; `up` registers it as a public image (once).
guest=$("$root/scripts/guest-image/build.sh")
exec "$CARGO_TARGET_DIR/release/ferrostack" up --register-image "ferrostack-guest=$guest/disk.qcow2" "$@"
