#!/usr/bin/env bash
# Packs what gpu_train.sh needs on a GPU machine that has PyTorch but not this machine's Debian data
# packages: the autoencoder's latents (fp16, 3.8 MB instead of the 23 MB of images), captions and
# the split, into .gpu/train.txz (git-ignored through .git/info/exclude). The model itself travels
# as tracked files (models/default), and training resumes from its ONNX weights.
#
#   models/recipe/gpu_pack.sh      # after build_dataset.py and the autoencoder stage
set -euo pipefail
cd "$(dirname "$0")/../.."
W=models/recipe/work
[ -f "$W/latents.pt" ] || { echo "no $W/latents.pt: run build_dataset.py and train.py --stage ae first" >&2; exit 2; }
mkdir -p .gpu
grep -qxF '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >>.git/info/exclude
tmp=$(mktemp -d)
/usr/bin/python3 -c '
import sys, torch
L = torch.load(sys.argv[1])
torch.save({"latents": L["latents"].half(), "scale": float(L["scale"])}, sys.argv[2])
' "$W/latents.pt" "$tmp/latents.pt"
cp "$W/meta.json" "$W/split.json" "$tmp/"
tar cf - -C "$tmp" latents.pt meta.json split.json | xz -9 -T0 >.gpu/train.txz
rm -rf "$tmp"
ls -l .gpu/train.txz
