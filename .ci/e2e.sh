#!/usr/bin/env bash
# The browser layers, called by .ci/run after npm ci (needs Debian's chromium and, for the first
# code-server build, libkrb5-dev):
#   1. the preview webview in headless Chromium;
#   2. the platform .vsix for this machine (npm run package);
#   3. the extension in a real VS Code (code-server from npm, cached in $ADADIFF_E2E_CACHE or
#      ~/.cache/adadiff-e2e): extension tests in the extension host with the development copy,
#      then the UI test against the .vsix installed the way a user installs it, then the trust suite
#      in a second code-server with workspace trust enabled.
# Screenshots: test/webview/out/ and test/e2e/out/.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { echo; echo "=== $* ($(date -u +%T))"; }
start=$SECONDS

step build
npm run build

step "webview in headless Chromium"
npm run test:webview

step "package the .vsix"
# Until models/default is exported the .vsix ships without it; the e2e tests then point
# adadiff.model.path at the generated fixture model.
allow=$([ -f models/default/model_index.json ] || echo --allow-no-model)
out=".cache/adadiff-e2e.vsix"
mkdir -p .cache
npm run package -- --out "$out" $allow

step "extension tests and UI test in code-server"
npm run test:e2e -- --vsix "$out"

echo
echo "e2e layers passed in $((SECONDS - start)) s"
