#!/usr/bin/python3
"""Smoke test of the recipe: tiny data set, tiny networks, a few steps of each stage, export, checks.

  /usr/bin/python3 models/recipe/test_recipe.py        (exit 0 = pass; about 30-60 s on 2 CPU cores)

Needs python3-torch, python3-numpy, python3-pil, python3-fonttools, fonts-noto-color-emoji, unicode-data,
unicode-cldr-core. Prints "SKIP: <reason>" and exits 0 when torch or the data files are missing (the
test suite reports that as skipped). The ONNX/tokenizer checks run when node and the repo's
node_modules (onnxruntime-node, @huggingface/tokenizers) are present.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))


def skip(why):
    print("SKIP:", why)
    sys.exit(0)


def main():
    try:
        import torch  # noqa: F401
        import numpy  # noqa: F401
        import PIL  # noqa: F401
        import fontTools  # noqa: F401
    except ImportError as e:
        skip(f"python module missing ({e.name}); install python3-torch python3-numpy python3-pil python3-fonttools")
    for p in ["/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf", "/usr/share/unicode/emoji/emoji-test.txt",
              "/usr/share/unicode/cldr/common/annotations/en.xml"]:
        if not os.path.exists(p):
            skip(f"{p} missing (fonts-noto-color-emoji, unicode-data, unicode-cldr-core)")
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="adadiff-recipe-")
    work, ckpt, out = (os.path.join(tmp, d) for d in ("work", "ckpt", "out"))
    py = sys.executable
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")

    def run(*a):
        r = subprocess.run([py] + list(a), cwd=REPO, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout[-3000:], r.stderr[-3000:])
            raise SystemExit(f"FAIL: {' '.join(a)}")
        return r.stdout

    try:
        run(os.path.join(HERE, "build_dataset.py"), "--out", work, "--limit", "24")
        common = ["--work", work, "--ckpt", ckpt, "--out", out, "--tiny", "--seed", "0"]
        run(os.path.join(HERE, "train.py"), "--stage", "ae", "--max-steps", "8", "--ae-batch", "8", *common)
        run(os.path.join(HERE, "train.py"), "--stage", "unet", "--max-steps", "6", "--batch", "8", *common)
        for f in ["model_index.json", "scheduler/scheduler_config.json", "tokenizer/tokenizer.json",
                  "tokenizer/tokenizer_config.json", "text_encoder/model.onnx", "text_encoder/config.json",
                  "unet/model.onnx", "unet/config.json", "vae_decoder/model.onnx", "vae_decoder/config.json",
                  "vae_encoder/model.onnx", "vae_encoder/config.json"]:
            assert os.path.exists(os.path.join(out, f)), f"missing {f}"
        assert json.load(open(os.path.join(out, "training.json")))["unet_steps"] == 6
        # resume from the checkpoint
        run(os.path.join(HERE, "train.py"), "--stage", "unet", "--max-steps", "8", "--batch", "8", *common)
        assert json.load(open(os.path.join(out, "training.json")))["unet_steps"] == 8
        # resume from the exported ONNX weights only (fresh machine): the weights must round-trip exactly
        sys.path.insert(0, HERE)
        import torch
        import export
        ae, te, unet, tok, scale, _ = export.load_trained(True, ckpt, out, work)
        shutil.rmtree(ckpt)
        ae2, te2, unet2, _, _, _ = export.load_trained(True, ckpt, out, work)
        for a, b in [(ae, ae2), (te, te2), (unet, unet2)]:
            for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items()):
                assert k == k2 and torch.equal(v, v2), f"ONNX round trip changed {k}"
        run(os.path.join(HERE, "train.py"), "--stage", "unet", "--max-steps", "2", "--batch", "8", *common)
        assert json.load(open(os.path.join(out, "training.json")))["unet_steps"] == 2
        if shutil.which("node") and os.path.isdir(os.path.join(REPO, "node_modules", "onnxruntime-node")):
            out_s = run(os.path.join(HERE, "export.py"), "--verify-only", "--tiny", "--out", out, "--ckpt", ckpt,
                        "--work", work)
            assert "OK" in out_s, out_s
            print("onnxruntime-node and tokenizer checks passed")
        else:
            print("node / onnxruntime-node missing: ONNX runtime checks skipped")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"PASS ({time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
