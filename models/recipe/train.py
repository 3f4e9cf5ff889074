#!/usr/bin/python3
"""Train the AdaDiff default model (autoencoder, then text encoder + latent UNet) and export it.

  OPENBLAS_NUM_THREADS=1 nice -n 10 /usr/bin/python3 models/recipe/train.py --stage ae --minutes 12
  OPENBLAS_NUM_THREADS=1 nice -n 10 /usr/bin/python3 models/recipe/train.py --stage unet --minutes 90 --chunk-minutes 12
  ... --device cuda   (same recipe on a GPU; use a larger --batch and more --minutes of work per chunk)

Resumable: each stage continues from models/recipe/checkpoints/<stage>.pt; if that is missing but
models/default holds an exported model, the weights are read back from the ONNX files (EMA weights;
optimiser state starts fresh). Every --chunk-minutes the unet stage writes a checkpoint AND exports
a usable model to --out (default models/default).
"""
import argparse
import copy
import json
import math
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
import nets  # noqa: E402
from nets import AutoEncoder, TextEncoder, UNet, WordTokenizer  # noqa: E402

# model sizes (the shipped model); --tiny shrinks them for the smoke test
AE_CH = (32, 64, 128)
TE = dict(dim=128, layers=3, heads=4, ff_mult=2)
UNET = dict(ch=(64, 96, 128), attn=(False, True, True), heads=4, layers_up=1, ff_mult=2)
TINY_AE_CH = (8, 16, 16)
TINY_TE = dict(dim=32, layers=1, heads=2, ff_mult=2)
TINY_UNET = dict(ch=(16, 32, 32), attn=(False, True, True), heads=2, layers_up=1, ff_mult=2)


def log(args, msg):
    line = time.strftime("%H:%M:%S ") + msg
    print(line, flush=True)
    with open(os.path.join(args.work, "train_log.txt"), "a") as f:
        f.write(line + "\n")


def seed_all(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_data(args, images=True):
    images = np.load(os.path.join(args.work, "images.npy")) if images else None
    meta = json.load(open(os.path.join(args.work, "meta.json")))
    split = json.load(open(os.path.join(args.work, "split.json")))
    return images, meta, split


def to_tensor(images):
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def autocast(args):
    return torch.autocast(args.device if args.device != "cuda" else "cuda", dtype=torch.bfloat16,
                          enabled=not args.fp32)


def psnr(a, b):
    mse = ((a.clamp(-1, 1) - b) ** 2).mean(dim=(1, 2, 3))
    return (10 * torch.log10(4.0 / mse)).mean().item()


def make_models(args, vocab_size=None, eos_id=None):
    tiny = args.tiny
    ae = AutoEncoder(TINY_AE_CH if tiny else AE_CH)
    if vocab_size is None:
        return ae, None, None
    tcfg = TINY_TE if tiny else TE
    te = TextEncoder(vocab_size, eos_id=eos_id, **tcfg)
    unet = UNet(ctx_dim=tcfg["dim"], **(TINY_UNET if tiny else UNET))
    return ae, te, unet


# ---------------------------------------------------------------------------------------------
def train_ae(args):
    import export
    images, meta, split = load_data(args)
    x_all = to_tensor(images)
    x_train, x_hold = x_all[split["train"]], x_all[split["holdout"] or split["train"][:16]]
    seed_all(args.seed)
    ae, _, _ = make_models(args)
    ae.to(args.device)
    opt = torch.optim.AdamW(ae.parameters(), lr=args.ae_lr, weight_decay=0.0)
    ck = os.path.join(args.ckpt, "ae.pt")
    step, spent = 0, 0.0
    if os.path.exists(ck):
        s = torch.load(ck, map_location="cpu")
        ae.load_state_dict(s["ae"])
        opt.load_state_dict(s["opt"])
        step, spent = s["step"], s["spent"]
        for pg in opt.param_groups:
            pg["lr"] = args.ae_lr
        log(args, f"ae: resumed from {ck} at step {step}")
    elif export.onnx_available(args.out, "vae_decoder"):
        export.load_ae_from_onnx(ae, args.out)
        log(args, f"ae: initialised from ONNX in {args.out}")
    log(args, f"ae: encoder {nets.n_params(ae.encoder)} params, decoder {nets.n_params(ae.decoder)} params")
    g = torch.Generator().manual_seed(args.seed + step)
    t_end = time.time() + args.minutes * 60
    t0 = time.time()
    run_loss = None
    while time.time() < t_end and (not args.max_steps or step < args.max_steps):
        idx = torch.randint(0, len(x_train), (args.ae_batch,), generator=g)
        x = x_train[idx].to(args.device)
        with autocast(args):
            mean, logvar = ae.encoder(x)
            logvar = logvar.float().clamp(-30, 20)
            z = mean.float() + torch.randn_like(mean.float()) * (0.5 * logvar).exp()
            rec = ae.decoder(z).float()
        kl = 0.5 * (mean.float() ** 2 + logvar.exp() - 1 - logvar).mean()
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x) + args.kl * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        run_loss = loss.item() if run_loss is None else 0.98 * run_loss + 0.02 * loss.item()
        if step % 50 == 0:
            log(args, f"ae step {step} loss {run_loss:.4f} ({(time.time() - t0) / 50:.2f} s/step)")
            t0 = time.time()
    spent += args.minutes * 60
    ae.eval()
    with torch.no_grad():
        ph = psnr(ae.decoder(ae.encoder(x_hold.to(args.device))[0]).float().cpu(), x_hold)
        pt = psnr(ae.decoder(ae.encoder(x_train[:256].to(args.device))[0]).float().cpu(), x_train[:256])
    log(args, f"ae: step {step}, PSNR held-out {ph:.2f} dB, train {pt:.2f} dB")
    os.makedirs(args.ckpt, exist_ok=True)
    torch.save({"ae": ae.state_dict(), "opt": opt.state_dict(), "step": step, "spent": spent,
                "psnr_holdout": ph, "psnr_train": pt}, ck)
    encode_latents(args, ae, x_all)


@torch.no_grad()
def encode_latents(args, ae, x_all):
    ae.eval()
    lat = []
    for i in range(0, len(x_all), 128):
        lat.append(ae.encoder(x_all[i:i + 128].to(args.device))[0].float().cpu())
    lat = torch.cat(lat)
    split = json.load(open(os.path.join(args.work, "split.json")))
    scale = 1.0 / lat[split["train"]].std().item()
    torch.save({"latents": lat, "scale": scale}, os.path.join(args.work, "latents.pt"))
    log(args, f"ae: latents {tuple(lat.shape)}, std {1 / scale:.4f}, scaling_factor {scale:.4f}")


# ---------------------------------------------------------------------------------------------
class EMA:
    def __init__(self, model, decay):
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model, step):
        d = min(self.decay, (1 + step) / (10 + step))
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.mul_(d).add_(p.detach(), alpha=1 - d)


def get_tokenizer(args, meta):
    path = os.path.join(args.work, "tokenizer.json")
    shipped = os.path.join(args.out, "tokenizer", "tokenizer.json")
    if os.path.exists(path):
        return WordTokenizer.from_json(path)
    if os.path.exists(shipped) and not args.tiny:
        tok = WordTokenizer.from_json(shipped)  # keep the vocabulary of the shipped model
    else:
        tok = WordTokenizer.build(nets.all_caption_words(meta))
    json.dump(tok.tokenizer_json(), open(path, "w"), ensure_ascii=False)
    return tok


def train_unet(args):
    import export
    lat_path = os.path.join(args.work, "latents.pt")
    # The images are needed only to encode latents: a GPU machine gets the latents alone (gpu_pack.sh).
    images, meta, split = load_data(args, images=not os.path.exists(lat_path))
    ae, _, _ = make_models(args)
    ae_ck = os.path.join(args.ckpt, "ae.pt")
    if os.path.exists(ae_ck):
        ae.load_state_dict(torch.load(ae_ck, map_location="cpu")["ae"])
    elif export.onnx_available(args.out, "vae_decoder"):
        export.load_ae_from_onnx(ae, args.out)
    else:
        sys.exit("train the autoencoder first (--stage ae)")
    if not os.path.exists(lat_path):
        encode_latents(args, ae.to(args.device), to_tensor(images))
        ae.cpu()
    L = torch.load(lat_path)
    scale = L["scale"]
    lat = L["latents"][split["train"]] * scale
    train_meta = [meta[i] for i in split["train"]]
    tok = get_tokenizer(args, meta)
    seed_all(args.seed)
    _, te, unet = make_models(args, len(tok), tok.eos)
    log(args, f"unet: {nets.n_params(unet)} params, text encoder {nets.n_params(te)} params, vocab {len(tok)}, "
              f"{len(lat)} training images")
    params = list(te.parameters()) + list(unet.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    ck = os.path.join(args.ckpt, "unet.pt")
    step, spent = 0, 0.0
    warm_from = 0  # the step a fresh optimiser starts its learning-rate warm-up at
    ema_te = ema_unet = None
    if os.path.exists(ck):
        s = torch.load(ck, map_location="cpu")
        te.load_state_dict(s["te"])
        unet.load_state_dict(s["unet"])
        step, spent = s["step"], s["spent"]
        if "opt" in s:
            opt.load_state_dict(s["opt"])
        else:  # a slim checkpoint (gpu_train.sh drops the optimiser state to fit the way back)
            warm_from = step
            log(args, "unet: the checkpoint has no optimiser state: fresh optimiser, warm-up again")
        ema_te, ema_unet = EMA(te, args.ema), EMA(unet, args.ema)
        ema_te.model.load_state_dict(s["ema_te"])
        ema_unet.model.load_state_dict(s["ema_unet"])
        log(args, f"unet: resumed from {ck} at step {step}")
    elif export.onnx_available(args.out, "unet"):
        export.load_te_unet_from_onnx(te, unet, args.out)
        log(args, f"unet: initialised from ONNX in {args.out} (EMA weights; fresh optimiser)")
    if ema_te is None:
        ema_te, ema_unet = EMA(te, args.ema), EMA(unet, args.ema)
    te.to(args.device).train()
    unet.to(args.device).train()
    ema_te.model.to(args.device)
    ema_unet.model.to(args.device)
    ac = nets.alphas_cumprod().to(args.device)
    snr = ac / (1 - ac)
    w_t = torch.clamp(snr, max=args.min_snr) / snr  # min-SNR-gamma weighting for epsilon prediction
    rng = random.Random(args.seed + step)
    g = torch.Generator().manual_seed(args.seed + step)
    t_start = time.time()
    t_end = t_start + args.minutes * 60
    next_chunk = t_start + args.chunk_minutes * 60
    run_loss, t0 = None, time.time()
    perm, pi = torch.randperm(len(lat), generator=g), 0

    def checkpoint_and_export(final=False):
        nonlocal spent, t_start
        spent += time.time() - t_start
        t_start = time.time()
        os.makedirs(args.ckpt, exist_ok=True)
        torch.save({"te": te.state_dict(), "unet": unet.state_dict(), "opt": opt.state_dict(), "step": step,
                    "spent": spent, "ema_te": ema_te.model.state_dict(), "ema_unet": ema_unet.model.state_dict(),
                    "loss": run_loss}, ck + ".tmp")
        os.replace(ck + ".tmp", ck)
        info = {"unet_steps": step, "unet_train_seconds": round(spent), "batch": args.batch,
                "loss_ema": run_loss, "device": args.device}
        if not args.no_export:
            export.export_all(args.out, ae.cpu(), ema_te.model.cpu(), ema_unet.model.cpu(), tok, scale, info,
                              verify=False)
            ema_te.model.to(args.device)
            ema_unet.model.to(args.device)
            if args.preview:
                export.preview(ema_te.model.cpu(), ema_unet.model.cpu(), ae, tok, scale,
                               os.path.join(args.work, f"preview_{step:06d}.png"))
                ema_te.model.to(args.device)
                ema_unet.model.to(args.device)
        log(args, f"unet: checkpoint{' + export' if not args.no_export else ''} at step {step} "
                  f"({spent / 60:.1f} min trained)")

    while time.time() < t_end and (not args.max_steps or step < args.max_steps):
        if pi + args.batch > len(perm):
            perm, pi = torch.randperm(len(lat), generator=g), 0
        idx = perm[pi:pi + args.batch]
        pi += args.batch
        caps = ["" if rng.random() < args.drop else nets.random_caption(train_meta[i], rng) for i in idx.tolist()]
        ids = tok.batch(caps).to(args.device)
        x0 = lat[idx].to(args.device)
        noise = torch.randn(x0.shape, generator=g).to(args.device)
        t = torch.randint(0, 1000, (len(idx),), generator=g).to(args.device)
        a = ac[t][:, None, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        with autocast(args):
            ctx, _ = te(ids)
            eps = unet(xt, t.float(), ctx).float()
        loss = ((eps - noise) ** 2).mean(dim=(1, 2, 3))
        loss = (loss * w_t[t]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        for pg in opt.param_groups:
            pg["lr"] = args.lr * min(1.0, (step + 1 - warm_from) / args.warmup)
        opt.step()
        ema_te.update(te, step)
        ema_unet.update(unet, step)
        step += 1
        lv = loss.item()
        run_loss = lv if run_loss is None else 0.99 * run_loss + 0.01 * lv
        if step % 100 == 0:
            log(args, f"unet step {step} loss {run_loss:.4f} ({(time.time() - t0) / 100:.3f} s/step)")
            t0 = time.time()
        if time.time() >= next_chunk:
            checkpoint_and_export()
            next_chunk = time.time() + args.chunk_minutes * 60
    checkpoint_and_export(final=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", choices=["ae", "unet", "all"], default="all")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--ckpt", default=os.path.join(HERE, "checkpoints"))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "default"))
    ap.add_argument("--minutes", type=float, default=15, help="wall-clock budget of this run (per stage)")
    ap.add_argument("--ae-minutes", type=float, default=None, help="--stage all: AE budget (default --minutes)")
    ap.add_argument("--chunk-minutes", type=float, default=12, help="unet: checkpoint + export this often")
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--ae-batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--ae-lr", type=float, default=5e-4)
    ap.add_argument("--kl", type=float, default=1e-6)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--drop", type=float, default=0.1, help="caption dropout (classifier-free guidance)")
    ap.add_argument("--min-snr", type=float, default=5.0)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tiny", action="store_true", help="tiny networks (smoke test)")
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    ap.add_argument("--no-export", action="store_true")
    ap.add_argument("--preview", action="store_true", help="write work/preview_<step>.png at each export")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.work, exist_ok=True)
    log(args, "train.py " + " ".join(sys.argv[1:]))
    if args.stage in ("ae", "all"):
        m = args.minutes
        if args.stage == "all" and args.ae_minutes is not None:
            args.minutes = args.ae_minutes
        train_ae(args)
        args.minutes = m
    if args.stage in ("unet", "all"):
        train_unet(args)


if __name__ == "__main__":
    main()
