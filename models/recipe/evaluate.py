#!/usr/bin/python3
"""Evaluate the default model.

  /usr/bin/python3 models/recipe/evaluate.py [--n 200] [--steps 25] [--guidance 5] [--onnx]

1. Retrieval: for N training captions ("<name> emoji", a fixed random sample of the training emoji),
   generate one image each with DDIM (the scheduler the pipeline uses: scaled_linear, trailing spacing,
   steps_offset 1, eta 0) and classifier-free guidance, then rank all training images by L2 distance to
   the generated image in two feature spaces: 16x16 downscaled pixels, and the autoencoder latent.
   Reported: share of captions whose own image is in the top 5 (and top 1).
2. Autoencoder reconstruction PSNR on the held-out emoji (models/recipe/holdout.json), and on
   training emoji for comparison.
Results go to models/recipe/eval_results.json; a sheet of generated | own image pairs to
models/recipe/work/eval_sheet.png. Uses the checkpoints (EMA weights) when present, else the
ONNX weights in models/default (read back into PyTorch).
"""
import argparse
import json
import os
import random
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export  # noqa: E402
import nets  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--ckpt", default=os.path.join(HERE, "checkpoints"))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "default"))
    ap.add_argument("--onnx", action="store_true", help="use the exported ONNX weights even if checkpoints exist")
    ap.add_argument("--threads", type=int, default=2, help="1 on a busy machine")
    ap.add_argument("--results", default=os.path.join(HERE, "eval_results.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    ck = "/nonexistent" if args.onnx else args.ckpt
    ae, te, unet, tok, scale, info = export.load_trained(False, ck, args.out, args.work)
    images = np.load(os.path.join(args.work, "images.npy"))
    meta = json.load(open(os.path.join(args.work, "meta.json")))
    split = json.load(open(os.path.join(args.work, "split.json")))
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    train_idx = split["train"]
    x_train = x_all[train_idx]

    with torch.no_grad():
        def enc(x):
            return torch.cat([ae.encoder(x[i:i + 128])[0] for i in range(0, len(x), 128)])

        def psnr(x):
            rec = torch.cat([ae.decoder(ae.encoder(x[i:i + 128])[0]).clamp(-1, 1) for i in range(0, len(x), 128)])
            mse = ((rec - x) ** 2).mean(dim=(1, 2, 3))
            return float((10 * torch.log10(4.0 / mse)).mean())

        hold = x_all[split["holdout"]] if split["holdout"] else x_train[:64]
        psnr_hold, psnr_train = psnr(hold), psnr(x_train[:256])
        feats_pix = F.interpolate(x_train, size=16, mode="area").flatten(1)
        feats_lat = enc(x_train).flatten(1)

        rng = random.Random(args.seed)
        pick = sorted(rng.sample(range(len(train_idx)), min(args.n, len(train_idx))))
        caps = [nets.canonical_caption(meta[train_idx[i]]) for i in pick]
        gen = []
        g = torch.Generator().manual_seed(args.seed)
        uncond1 = te(tok.batch([""]))[0]
        for b in range(0, len(caps), 50):
            cc = caps[b:b + 50]
            cond = te(tok.batch(cc))[0]
            z = nets.ddim_sample(unet, cond, uncond1.expand(len(cc), -1, -1), steps=args.steps,
                                 guidance=args.guidance, generator=g)
            gen.append(ae.decoder(z / scale).clamp(-1, 1))
        gen = torch.cat(gen)
        res = {}
        for name, feats, fg in [("pixels16", feats_pix, F.interpolate(gen, size=16, mode="area").flatten(1)),
                                ("latent", feats_lat, enc(gen).flatten(1))]:
            d = torch.cdist(fg, feats)
            rank = d.argsort(1)
            own = torch.tensor(pick)
            top5 = (rank[:, :5] == own[:, None]).any(1).float().mean().item()
            top1 = (rank[:, 0] == own).float().mean().item()
            res[name] = {"top5": round(top5, 4), "top1": round(top1, 4)}
    out = {"retrieval": res, "n_captions": len(caps), "steps": args.steps, "guidance": args.guidance,
           "seed": args.seed, "ae_psnr_holdout_db": round(psnr_hold, 2), "ae_psnr_train_db": round(psnr_train, 2),
           "n_holdout": len(hold), "model": info, "eval_seconds": round(time.time() - t0),
           "weights": "onnx" if args.onnx or not os.path.exists(os.path.join(args.ckpt, "unet.pt")) else "checkpoint-ema"}
    json.dump(out, open(args.results, "w"), indent=1)
    print(json.dumps(out, indent=1))
    # sheet: generated (top) and own training image (bottom), first 32 captions
    from PIL import Image
    n = min(32, len(caps))
    top = gen[:n]
    bot = x_train[pick[:n]]
    arr = torch.cat([torch.cat(list(top), 2), torch.cat(list(bot), 2)], 1)
    arr = ((arr.permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    Image.fromarray(arr).save(os.path.join(args.work, "eval_sheet.png"))
    with open(os.path.join(args.work, "eval_sheet_captions.txt"), "w") as f:
        f.write("\n".join(caps[:n]) + "\n")


if __name__ == "__main__":
    main()
