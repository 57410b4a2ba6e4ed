#!/usr/bin/env bash
# Installs what the compute agent runs VMs with, when missing: QEMU 10 from
# <codename>-backports (on the mirror the machine's apt sources already use), qemu-img,
# genisoimage (config drives) and openssh-client (ssh-keygen for generated key pairs, ssh
# for the tests). Run as root; a no-op once everything is there.
set -euo pipefail
log() { echo "install-qemu: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }
# --- QEMU 10 from <codename>-backports, on the mirror the machine already uses ---
codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
add_backports() {
    grep -rqs -- "$codename-backports" /etc/apt/sources.list /etc/apt/sources.list.d/ && return 0
    # First deb822 stanza or one-line entry that serves "$codename" itself.
    local src
    src=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk -v s="$codename" '
        /^$/ { if (ok && uri) { print uri, key; exit } ok = 0; uri = ""; key = "" }
        /^URIs:/ { uri = $2 } /^Signed-By:/ { key = $2 }
        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
        END { if (ok && uri) print uri, key }' | head -n1)
    if [ -z "$src" ]; then
        src=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk -v s="$codename" '
            $1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++; if ($2 ~ /^\[/) i++
                          if ($(i + 1) == s) { print $i; exit } }')
    fi
    [ -n "$src" ] || die "no apt source for $codename found to derive the backports mirror from"
    set -- $src
    log "adding $codename-backports from $1"
    {
        printf 'Types: deb\nURIs: %s\nSuites: %s-backports\nComponents: main\n' "$1" "$codename"
        [ -z "${2:-}" ] || printf 'Signed-By: %s\n' "$2"
    } > "/etc/apt/sources.list.d/$codename-backports.sources"
}
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v genisoimage >/dev/null || need+=(genisoimage)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
    add_backports
    apt-get update -qq >&2
    log "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -t "$codename-backports" "${need[@]}" >&2
fi

