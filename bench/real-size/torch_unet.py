#!/usr/bin/python3
"""The PyTorch side of `npm run bench -- real-size`: the UNet of a full-size fixture
(bench/real-size/make-fixtures.ts) rebuilt from sd_nets.py with the very weights its ONNX file
holds (export_onnx.weights(), from the seed in unet/config.json), timed per call at the shape the
bench asks. A process that stays up between blocks, so the weights are built once: one JSON
request a line on stdin, one JSON answer a line on stdout.

  {"cmd": "run", "calls": 2}             -> {"ms": [...]}           UNet calls on the bench input
  {"cmd": "output", "path": "/tmp/x"}    -> {"written": true}       the output for that input, raw float32

  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/real-size/torch_unet.py --model DIR --threads 2 \
      --batch 2 --latent 64
The bench input is deterministic and the TypeScript side builds the same (bench/real-size.ts benchInput).
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def bench_input(batch, latent, context, sequence=77):
    """sample[i] = sin(0.01 i), encoder_hidden_states[i] = 0.5 cos(0.003 i), timestep 500."""
    import numpy as np
    import torch
    n = batch * 4 * latent * latent
    sample = np.sin(np.arange(n, dtype=np.float64) * 0.01).astype(np.float32).reshape(batch, 4, latent, latent)
    m = batch * sequence * context
    hidden = (0.5 * np.cos(np.arange(m, dtype=np.float64) * 0.003)).astype(np.float32).reshape(batch, sequence, context)
    return torch.from_numpy(sample), torch.full((batch,), 500.0), torch.from_numpy(hidden)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--latent", type=int, default=64)
    args = ap.parse_args()
    try:
        import torch
    except ImportError as e:
        print(json.dumps({"skipped": f"PyTorch is not installed for {sys.executable} ({e}); Debian/Ubuntu: apt install python3-torch"}), flush=True)
        return
    import sd_nets as nets
    from export_onnx import weights

    torch.set_num_threads(args.threads)
    config = json.load(open(os.path.join(args.model, "unet", "config.json")))
    fixture = config.get("adadiff_fixture")
    if not fixture or fixture.get("arch") != "sd15" or config.get("torch_dtype") != "float32":
        print(json.dumps({"skipped": f"{args.model} is not an fp32 SD 1.5 full-size fixture (its unet/config.json has no adadiff_fixture of arch sd15)"}), flush=True)
        return
    t0 = time.perf_counter()
    unet = nets.UNet2DConditionModel(**nets.SD15_UNET).eval()
    with torch.no_grad():
        for name, p in unet.named_parameters():
            p.copy_(torch.from_numpy(weights(name, tuple(p.shape), fixture["seed"])))
    build_ms = (time.perf_counter() - t0) * 1000
    inputs = bench_input(args.batch, args.latent, nets.SD15_UNET["cross_attention_dim"])
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(), "build_ms": build_ms,
                      "parameters": nets.parameter_count(unet)}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        with torch.inference_mode():
            if req["cmd"] == "run":
                ms = []
                for _ in range(req["calls"]):
                    t = time.perf_counter()
                    unet(*inputs)
                    ms.append((time.perf_counter() - t) * 1000)
                print(json.dumps({"ms": ms}), flush=True)
            elif req["cmd"] == "output":
                unet(*inputs).numpy().astype("float32").tofile(req["path"])
                print(json.dumps({"written": True}), flush=True)
            else:
                print(json.dumps({"error": f"unknown cmd {req['cmd']}"}), flush=True)


if __name__ == "__main__":
    main()
