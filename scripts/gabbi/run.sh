#!/usr/bin/env bash
# Runs upstream Placement's own API tests (its gabbi files) against a live Placement
# service, and prints per file how many tests passed, failed, erred and were skipped,
# then a total.
#
# Usage: scripts/gabbi/run.sh BASE_URL [TOKEN]
#   BASE_URL   the Placement endpoint: http://127.0.0.1:PORT/placement for ferrostack,
#              http://127.0.0.1:PORT for upstream served at the root
#   TOKEN      an admin token (default `admin`: upstream with [api] auth_strategy =
#              noauth2, where the files' own `x-auth-token: admin` headers are kept)
#   GABBI_USER_TOKEN=tok   a non-admin token for the files' `x-auth-token: user` requests
#              (default: `user`, right for noauth2; with Keystone give a member's token,
#              else the tests that expect a 403 for non-admins fail)
#   GABBI_FILES="a.yaml b.yaml"   run only these files
#   GABBI_BEFORE_EACH='command'  run (bash -c) before every file, for example to give the
#              service an empty database again: the files were written for one fresh
#              service each, and some of them list all providers or resource classes
#              and expect to find only their own
#   GABBI_VERBOSE=1  print gabbi's output of failing files
#
# The files come from the openstack-placement wheel at the version pinned in
# scripts/bench/placement-requirements.txt (downloaded from the package registry once
# and cached; none are kept in this repository). Only those whose sole fixture is the
# plain APIFixture are run: the others (AllocationFixture, SharedStorageFixture,
# GranularFixture, the NUMA and policy fixtures, ...) fill the database in-process,
# which a live service cannot be given. Like APIFixture, the script sets the
# environment each file reads ($ENVIRON['RP_UUID'], ...), fresh for every file.
# Exit status: 0 when every test passed, 1 otherwise.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
url=${1:?usage: scripts/gabbi/run.sh BASE_URL [TOKEN]}
url=${url%/}
token=${2:-admin}
user_token=${GABBI_USER_TOKEN:-user}
say() { echo "gabbi: $*" >&2; }

venv=$("$here/venv.sh")
version=$(awk -F'==' '$1 == "openstack-placement" { print $2 }' "$root/scripts/bench/placement-requirements.txt")
[ -n "$version" ] || { say "no openstack-placement pin in scripts/bench/placement-requirements.txt"; exit 1; }
cache="${FERROSTACK_CACHE:-$HOME/.cache/ferrostack}/placement-wheel-$version"
wheel=$(ls "$cache"/openstack_placement-"$version"-*.whl 2>/dev/null | head -1 || true)
if [ -z "$wheel" ]; then
    mkdir -p "$cache"
    "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
        --only-binary :all: -d "$cache" "openstack-placement==$version" >&2
    wheel=$(ls "$cache"/openstack_placement-"$version"-*.whl | head -1)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/gabbi.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).path)' "$url")
mkdir -p "$work/gabbits"
"$venv/bin/python" "$here/gabbits.py" "$wheel" "$work/gabbits" "$prefix" "$token" "$user_token" \
    >"$work/list" 2>"$work/left-out"
say "openstack-placement $version: $(wc -l <"$work/list") files use only APIFixture" \
    "($(awk '{ s += $2 } END { print s }' "$work/list") tests); $(wc -l <"$work/left-out") left out (other fixtures)"

# What APIFixture puts in the environment (placement/tests/functional/fixtures/gabbits.py).
fixture_env() {
    python3 - <<'EOF'
import uuid
for k in ("RP_UUID RP_NAME RP_UUID1 RP_NAME1 RP_UUID2 RP_NAME2 PROJECT_ID ADMIN_PROJECT_ID "
          "SERVICE_PROJECT_ID USER_ID PROJECT_ID_ALT USER_ID_ALT INSTANCE_UUID MIGRATION_UUID "
          "CONSUMER_UUID PARENT_PROVIDER_UUID ALT_PARENT_PROVIDER_UUID").split():
    print(f"{k}={uuid.uuid4()}")
print("CUSTOM_RES_CLASS=CUSTOM_IRON_NFV")
print("CUSTOM_RES_CLASS1=CUSTOM_IRON_NFV1")
print("CUSTOM_RES_CLASS2=CUSTOM_IRON_NFV2")
EOF
}

files=$(awk '{ print $1 }' "$work/list")
[ -z "${GABBI_FILES:-}" ] || files=$GABBI_FILES
tp=0 tf=0 te=0 ts=0 tx=0 nfiles=0 nclean=0
printf '%-44s %6s %6s %6s %6s\n' file passed failed errors skipped
for f in $files; do
    [ -f "$work/gabbits/$f" ] || { say "no such runnable file: $f"; exit 1; }
    [ -z "${GABBI_BEFORE_EACH:-}" ] || bash -c "$GABBI_BEFORE_EACH" >&2
    mapfile -t envs < <(fixture_env)
    env "${envs[@]}" "$venv/bin/gabbi-run" "$url" -- "$work/gabbits/$f" >"$work/out" 2>&1 || true
    # gabbi's runner writes one line per test: "... ✓ name", "... ✗", "... E", "... -"
    # (skipped), "... o" (expected failure), "... !" (unexpected success).
    sed 's/\x1b\[[0-9;]*m//g' "$work/out" >"$work/plain"
    count() { grep -c "^\.\.\. $1 " "$work/plain" || true; }
    p=$(count '✓'); x=$(count 'o'); fl=$(count '✗'); e=$(count 'E'); s=$(count '-')
    fl=$((fl + $(count '!')))
    if [ $((p + fl + e + s + x)) = 0 ]; then e=1; fi # the file did not load: count it as one error
    printf '%-44s %6s %6s %6s %6s\n' "$f" "$((p + x))" "$fl" "$e" "$s"
    if [ $((fl + e)) -gt 0 ] && [ "${GABBI_VERBOSE:-0}" = 1 ]; then sed 's/^/    /' "$work/plain"; fi
    tp=$((tp + p + x)) tf=$((tf + fl)) te=$((te + e)) ts=$((ts + s)) nfiles=$((nfiles + 1))
    [ $((fl + e)) -gt 0 ] || nclean=$((nclean + 1))
done
printf '%-44s %6s %6s %6s %6s\n' "total ($nclean of $nfiles files clean)" "$tp" "$tf" "$te" "$ts"
echo "gabbi: $tp passed, $((tf + te)) failed, $ts skipped"
[ $((tf + te)) = 0 ]
