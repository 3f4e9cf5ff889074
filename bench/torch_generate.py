#!/usr/bin/python3
"""The PyTorch side of `npm run bench -- torch`: one text-to-image generation with the recipe's own
torch modules (models/recipe/nets.py), weights read back from the exported ONNX files (so both
sides run the very same weights), the recipe's DDIM loop with classifier-free guidance at batch 2,
then the VAE decoder. Prints one JSON line with the timings; run by bench/torch.ts.

  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/torch_generate.py --model models/default \
      --prompt "red apple emoji" --steps 25 --guidance 7 --repeats 3
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE = os.path.join(HERE, "..", "models", "recipe")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt", default="red apple emoji")
    ap.add_argument("--negative", default="")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--guidance", type=float, default=7.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    try:
        import torch
    except ImportError as e:
        print(json.dumps({"skipped": f"PyTorch is not installed for {sys.executable} ({e}); Debian/Ubuntu: apt install python3-torch"}))
        return
    torch.set_num_threads(args.threads)
    sys.path.insert(0, RECIPE)
    import nets
    import export

    unet_cfg = json.load(open(os.path.join(args.model, "unet", "config.json")))
    if unet_cfg.get("adadiff_architecture") != "AdaDiffUNet":
        print(json.dumps({"skipped": f"{args.model} is not a models/recipe export (its unet/config.json has no adadiff_architecture): "
                                     "the PyTorch side only rebuilds the recipe's networks"}))
        return
    te_cfg, _, vae_cfg = export.config_from_onnx_dir(args.model)
    unet_init = export.read_initializers(os.path.join(args.model, "unet", "model.onnx"))
    ch = unet_cfg["block_out_channels"]
    ff_mult = unet_init["unet.mid_attn.ff.fc1.weight"].shape[0] // ch[-1]
    tok = nets.WordTokenizer.from_json(os.path.join(args.model, "tokenizer", "tokenizer.json"))
    te = nets.TextEncoder(te_cfg["vocab_size"], dim=te_cfg["hidden_size"], layers=te_cfg["num_hidden_layers"],
                          heads=te_cfg["num_attention_heads"], ff_mult=te_cfg["intermediate_size"] // te_cfg["hidden_size"],
                          eos_id=te_cfg["eos_token_id"])
    unet = nets.UNet(ch=tuple(ch), attn=tuple(unet_cfg["attention_levels"]), ctx_dim=unet_cfg["cross_attention_dim"],
                     heads=unet_cfg.get("num_attention_heads", unet_cfg.get("attention_head_dim")), in_ch=unet_cfg["in_channels"],
                     layers_up=unet_cfg["up_layers_per_block"], ff_mult=ff_mult)
    ae = nets.AutoEncoder(tuple(vae_cfg["block_out_channels"]), vae_cfg["latent_channels"])
    export.load_te_unet_from_onnx(te, unet, args.model)
    export.load_module_from_onnx(ae.decoder, os.path.join(args.model, "vae_decoder", "model.onnx"), "decoder.")
    te, unet, ae = te.eval(), unet.eval(), ae.eval()
    scale = vae_cfg["scaling_factor"]
    ac = nets.alphas_cumprod()
    latent = (unet_cfg["in_channels"], unet_cfg["sample_size"], unet_cfg["sample_size"])

    def generate(seed):
        times = {}
        t0 = time.perf_counter()
        with torch.inference_mode():
            t = time.perf_counter()
            hidden = te(tok.batch([args.negative, args.prompt]))[0]
            times["text_encoder_ms"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            g = torch.Generator().manual_seed(seed)
            z = nets.ddim_sample(unet, hidden[1:], hidden[:1], steps=args.steps, guidance=args.guidance, generator=g, ac=ac,
                                 shape=latent)
            times["loop_ms"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            img = ae.decoder(z / scale).clamp(-1, 1)
            rgb = ((img[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
            times["vae_ms"] = (time.perf_counter() - t) * 1000
        times["total_ms"] = (time.perf_counter() - t0) * 1000
        return times, rgb

    generate(args.seed)  # warm-up: first-call allocations and kernel selection
    runs = [generate(args.seed + 1 + i)[0] for i in range(args.repeats)]
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "ff_mult": ff_mult,
                      "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "runs": runs}))


if __name__ == "__main__":
    main()
