#!/usr/bin/env bash
# Continues training the default model's text encoder + UNet on a CUDA GPU, from the ONNX weights
# in models/default, and leaves a slim checkpoint (weights + EMA, no optimiser state) in pieces
# small enough for the way back. On this machine afterwards:
#
#   cat OUT/unet-slim.pt.part* > models/recipe/checkpoints/unet.pt
#   /usr/bin/python3 models/recipe/export.py --verify --time 50
#
# Export happens here, not there: it uses Debian's torch 1.13 exporter, whose graphs the rest of
# the recipe and the model card were measured with. The data comes from gpu_pack.sh.
#
#   models/recipe/gpu_train.sh OUT_DIR [MINUTES]     (BATCH, default 512; LR, default 5e-4; DEVICE, default cuda)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: gpu_train.sh OUT_DIR [MINUTES]}
minutes=${2:-6}
batch=${BATCH:-512}
lr=${LR:-5e-4}
device=${DEVICE:-cuda}
W=${TMPDIR:-/tmp}/adadiff-train
rm -rf "$W" && mkdir -p "$W/work" "$W/ck" "$out"
unxz() { if command -v xz >/dev/null; then xz -dc "$1"; else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi; }
unxz .gpu/train.txz | tar xf - -C "$W/work"
python3 -c '
import sys, torch
L = torch.load(sys.argv[1])
torch.save({"latents": L["latents"].float(), "scale": L["scale"]}, sys.argv[1])
print("torch", torch.__version__, "cuda", torch.cuda.is_available() and torch.cuda.get_device_name(0))
' "$W/work/latents.pt"
export PYTHONUNBUFFERED=1 OPENBLAS_NUM_THREADS=1
python3 models/recipe/train.py --stage unet --device "$device" --minutes "$minutes" --chunk-minutes 1000 \
  --batch "$batch" --lr "$lr" --threads 4 --work "$W/work" --ckpt "$W/ck" --no-export
python3 - "$W/ck/unet.pt" "$W/slim.pt" "$batch" <<'PY'
import json, sys, torch
s = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
s["lr"] = s["opt"]["param_groups"][0]["lr"]
del s["opt"]
s["batch"] = int(sys.argv[3])
s["device"] = (f"cuda ({torch.cuda.get_device_name(0)}, " if torch.cuda.is_available() else "cpu (") + f"torch {torch.__version__})"
s["resumed_from"] = json.load(open("models/default/training.json"))
torch.save(s, sys.argv[2])
print("slim checkpoint: step", s["step"], "seconds", round(s["spent"]), "loss", s["loss"])
PY
split -b 15M -d "$W/slim.pt" "$out/unet-slim.pt.part"
ls -l "$out"
