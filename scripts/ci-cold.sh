#!/usr/bin/env bash
# The README's test command as a new user runs it: a fresh clone of this repository's HEAD (what
# is committed, not the working tree), then ./.ci/run there with an empty HOME. So the npm cache,
# ~/.npmrc, the e2e tools (Node 24 and code-server in ~/.cache/adadiff-e2e) and the calibration
# cache all start empty, and no npm_* variable of a calling npm leaks in. Debian packages are
# the machine's: .ci/run installs what is missing.
#
#   scripts/ci-cold.sh [--keep]     (--keep leaves the temporary folder for a look afterwards)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
keep=$([ "${1:-}" = --keep ] && echo 1 || echo 0)
work=$(mktemp -d "${TMPDIR:-/tmp}/adadiff-cold.XXXXXX")
[ "$keep" = 1 ] || trap 'rm -rf "$work"' EXIT

git clone -q --no-hardlinks "$repo" "$work/adadiff"
mkdir "$work/home"
echo "cold run of $(git -C "$work/adadiff" log -1 --format='%h %s') in $work"

# A login's environment and nothing else, except what the machine needs to reach the npm
# registry (proxy and CA settings).
keepvars=(PATH LANG TERM)
for v in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy NODE_EXTRA_CA_CERTS; do
  [ -n "${!v:-}" ] && keepvars+=("$v")
done
envargs=(HOME="$work/home" TMPDIR="$work/tmp")
for v in "${keepvars[@]}"; do envargs+=("$v=${!v}"); done
mkdir "$work/tmp"

start=$SECONDS
status=0
(cd "$work/adadiff" && env -i "${envargs[@]}" ./.ci/run) || status=$?
echo
echo "ci-cold: .ci/run exited $status after $((SECONDS - start)) s (cold HOME $work/home)"
exit "$status"
