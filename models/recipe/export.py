#!/usr/bin/python3
"""Export the trained model to models/default in the diffusers ONNX layout, and read it back.

  /usr/bin/python3 models/recipe/export.py [--verify]      # export from the checkpoints (EMA weights)

--verify runs each ONNX file in onnxruntime-node (from the repo's node_modules) on random inputs and
checks it against PyTorch (max abs diff <= 1e-4), and checks the tokenizer.json in
@huggingface/tokenizers against the Python tokenizer.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import nets  # noqa: E402

OPSET = 17


def onnx_available(out, part):
    return os.path.exists(os.path.join(out, part, "model.onnx"))


# ---------------------------------------------------------------------------------------------
# export wrappers: attribute names chosen so ONNX initializer names equal the torch state_dict keys
class TextEncoderExport(nn.Module):
    def __init__(self, te):
        super().__init__()
        self.te = te

    def forward(self, input_ids):
        return self.te(input_ids)


class UNetExport(nn.Module):
    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.unet(sample, timestep, encoder_hidden_states)


class DecoderExport(nn.Module):
    def __init__(self, ae):
        super().__init__()
        self.decoder = ae.decoder

    def forward(self, latent_sample):
        return self.decoder(latent_sample).clamp(-1, 1)


class EncoderExport(nn.Module):
    def __init__(self, ae):
        super().__init__()
        self.encoder = ae.encoder

    def forward(self, sample):
        return self.encoder(sample)[0]


def _export(module, args, path, inputs, outputs, dyn):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    module.eval()
    with torch.no_grad():
        torch.onnx.export(module, args, tmp, opset_version=OPSET, input_names=inputs, output_names=outputs,
                          dynamic_axes=dyn, do_constant_folding=False, export_params=True,
                          custom_opsets={"com.microsoft": 1})  # nets.FusedAttention
    os.replace(tmp, path)


def _wjson(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def export_all(out, ae, te, unet, tok, scale, info, verify=False):
    """Write the whole model folder. Modules are used on CPU in fp32."""
    out = os.path.abspath(out)
    ae, te, unet = ae.float().eval(), te.float().eval(), unet.float().eval()
    D = te.cfg["dim"]
    ids = tok.batch(["red apple emoji", ""])
    _export(TextEncoderExport(te), (ids,), os.path.join(out, "text_encoder", "model.onnx"), ["input_ids"],
            ["last_hidden_state", "pooler_output"],
            {"input_ids": {0: "batch"}, "last_hidden_state": {0: "batch"}, "pooler_output": {0: "batch"}})
    x = torch.randn(2, 4, 16, 16)
    t = torch.tensor([999.0, 1.0])
    ctx = torch.randn(2, nets.MAX_LEN, D)
    _export(UNetExport(unet), (x, t, ctx), os.path.join(out, "unet", "model.onnx"),
            ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
            {"sample": {0: "batch"}, "timestep": {0: "batch"}, "encoder_hidden_states": {0: "batch"},
             "out_sample": {0: "batch"}})
    _export(DecoderExport(ae), (x,), os.path.join(out, "vae_decoder", "model.onnx"), ["latent_sample"], ["sample"],
            {"latent_sample": {0: "batch"}, "sample": {0: "batch"}})
    img = torch.rand(2, 3, 64, 64) * 2 - 1
    _export(EncoderExport(ae), (img,), os.path.join(out, "vae_encoder", "model.onnx"), ["sample"],
            ["latent_sample"], {"sample": {0: "batch"}, "latent_sample": {0: "batch"}})

    _wjson(os.path.join(out, "tokenizer", "tokenizer.json"), tok.tokenizer_json())
    _wjson(os.path.join(out, "tokenizer", "tokenizer_config.json"), tok.tokenizer_config())
    _wjson(os.path.join(out, "tokenizer", "special_tokens_map.json"),
           {"bos_token": nets.BOS, "eos_token": nets.EOS, "pad_token": nets.EOS, "unk_token": nets.UNK})
    c = te.cfg
    _wjson(os.path.join(out, "text_encoder", "config.json"), {
        "_class_name": "AdaDiffTextEncoder", "architectures": ["AdaDiffTextEncoder"], "model_type": "adadiff_text",
        "hidden_size": c["dim"], "num_hidden_layers": c["layers"], "num_attention_heads": c["heads"],
        "intermediate_size": c["dim"] * c["ff_mult"], "max_position_embeddings": nets.MAX_LEN,
        "vocab_size": c["vocab_size"], "bos_token_id": tok.bos, "eos_token_id": tok.eos, "pad_token_id": tok.eos,
        "causal_mask": True, "pooler": "state at the first eos token", "projection_dim": c["dim"]})
    u = unet.cfg
    _wjson(os.path.join(out, "unet", "config.json"), {
        "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.30.0", "adadiff_architecture": "AdaDiffUNet",
        "sample_size": 16, "in_channels": 4, "out_channels": 4, "cross_attention_dim": D,
        "block_out_channels": u["ch"], "layers_per_block": 1, "num_attention_heads": u["heads"],
        "attention_levels": u["attn"], "up_layers_per_block": u["layers_up"],
        "flip_sin_to_cos": True, "freq_shift": 0, "prediction_type": "epsilon"})
    a = ae.cfg
    vae = {"_class_name": "AutoencoderKL", "_diffusers_version": "0.30.0", "in_channels": 3, "out_channels": 3,
           "latent_channels": a["z"], "sample_size": 64, "block_out_channels": a["ch"],
           "scaling_factor": round(float(scale), 6), "downsample_factor": 4}
    _wjson(os.path.join(out, "vae_decoder", "config.json"), vae)
    _wjson(os.path.join(out, "vae_encoder", "config.json"), vae)
    _wjson(os.path.join(out, "scheduler", "scheduler_config.json"), {
        "_class_name": "DDIMScheduler", "_diffusers_version": "0.30.0", "num_train_timesteps": 1000,
        "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "prediction_type": "epsilon",
        "timestep_spacing": "trailing", "steps_offset": 1, "set_alpha_to_one": False, "clip_sample": False,
        "trained_betas": None})
    _wjson(os.path.join(out, "model_index.json"), {
        "_class_name": "OnnxStableDiffusionPipeline", "_diffusers_version": "0.30.0",
        "feature_extractor": [None, None], "requires_safety_checker": False, "safety_checker": [None, None],
        "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["diffusers", "OnnxRuntimeModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "OnnxRuntimeModel"],
        "vae_decoder": ["diffusers", "OnnxRuntimeModel"], "vae_encoder": ["diffusers", "OnnxRuntimeModel"]})
    tr = dict(info)
    tr.update({"image_size": 64, "latent_size": 16, "params": {
        "text_encoder": nets.n_params(te), "unet": nets.n_params(unet), "vae_encoder": nets.n_params(ae.encoder),
        "vae_decoder": nets.n_params(ae.decoder)}})
    _wjson(os.path.join(out, "training.json"), tr)
    if verify:
        verify_onnx(out, ae, te, unet, tok)


# ---------------------------------------------------------------------------------------------
# verification in onnxruntime-node and @huggingface/tokenizers
NODE_CHECK = r"""
const ort = require('onnxruntime-node');
const fs = require('fs');
(async () => {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const res = {};
  for (const job of spec.jobs) {
    const sess = await ort.InferenceSession.create(job.model, {intraOpNumThreads: 2});
    const feeds = {};
    for (const inp of job.inputs) {
      const buf = fs.readFileSync(inp.file);
      const data = inp.dtype === 'int64' ? new BigInt64Array(buf.buffer, buf.byteOffset, buf.length / 8)
                                         : new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
      feeds[inp.name] = new ort.Tensor(inp.dtype, data, inp.dims);
    }
    const out = await sess.run(feeds);
    for (const name of job.outputs) fs.writeFileSync(job.prefix + name + '.bin', Buffer.from(out[name].data.buffer));
    let times = [];
    for (let i = 0; i < (job.time || 0); i++) { const t0 = process.hrtime.bigint(); await sess.run(feeds);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6); }
    times.sort((a, b) => a - b);
    res[job.name] = {inputs: sess.inputNames, outputs: sess.outputNames, median_ms: times.length ? times[times.length >> 1] : null, min_ms: times.length ? times[0] : null};
  }
  console.log(JSON.stringify(res));
})().catch(e => { console.error(e); process.exit(1); });
"""

TOK_CHECK = r"""
import { Tokenizer } from '@huggingface/tokenizers';
import fs from 'fs';
const [tj, tc, tf] = process.argv.slice(2);
const tok = new Tokenizer(JSON.parse(fs.readFileSync(tj, 'utf8')), JSON.parse(fs.readFileSync(tc, 'utf8')));
const texts = JSON.parse(fs.readFileSync(tf, 'utf8'));
console.log(JSON.stringify(texts.map(t => tok.encode(t).ids)));
"""


def run_node(script, args, mjs=False):
    with tempfile.NamedTemporaryFile("w", suffix=".mjs" if mjs else ".cjs", dir=REPO, delete=False) as f:
        f.write(script)
        path = f.name
    try:
        env = dict(os.environ, NODE_PATH=os.path.join(REPO, "node_modules"))
        r = subprocess.run(["node", path] + args, capture_output=True, text=True, cwd=REPO, env=env)
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        return json.loads(r.stdout.strip().splitlines()[-1])
    finally:
        os.unlink(path)


def verify_tokenizer(out, tok, texts):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(texts, f)
    js = run_node(TOK_CHECK, [os.path.join(out, "tokenizer", "tokenizer.json"),
                              os.path.join(out, "tokenizer", "tokenizer_config.json"), f.name], mjs=True)
    os.unlink(f.name)
    bad = 0
    for t, ids in zip(texts, js):
        py = tok.encode(t)
        py = py[:py.index(tok.eos) + 1]
        if ids != py:
            bad += 1
            if bad <= 5:
                print("tokenizer mismatch:", repr(t), ids, py)
    return bad


def verify_onnx(out, ae, te, unet, tok, time_runs=0, batch=2):
    tmp = tempfile.mkdtemp()
    g = torch.Generator().manual_seed(0)
    ids = tok.batch(["red apple emoji", "cat face", ""][:batch] + [""] * max(0, batch - 3))
    x = torch.randn(batch, 4, 16, 16, generator=g)
    t = torch.tensor([981.0, 1.0] + [500.0] * max(0, batch - 2))[:batch]
    with torch.no_grad():
        ctx, pooled = te(ids)
        ref = {"text_encoder": {"last_hidden_state": ctx, "pooler_output": pooled},
               "unet": {"out_sample": unet(x, t, ctx)},
               "vae_decoder": {"sample": ae.decoder(x).clamp(-1, 1)},
               "vae_encoder": {"latent_sample": ae.encoder(ae.decoder(x).clamp(-1, 1))[0]}}
    img = ref["vae_decoder"]["sample"]

    def f32(name, arr):
        p = os.path.join(tmp, name + ".bin")
        arr.detach().numpy().astype(np.float32 if arr.dtype != torch.long else np.int64).tofile(p)
        return p
    jobs = [
        {"name": "text_encoder", "model": os.path.join(out, "text_encoder", "model.onnx"),
         "inputs": [{"name": "input_ids", "file": f32("ids", ids), "dtype": "int64", "dims": list(ids.shape)}],
         "outputs": ["last_hidden_state", "pooler_output"], "time": time_runs},
        {"name": "unet", "model": os.path.join(out, "unet", "model.onnx"),
         "inputs": [{"name": "sample", "file": f32("x", x), "dtype": "float32", "dims": list(x.shape)},
                    {"name": "timestep", "file": f32("t", t), "dtype": "float32", "dims": list(t.shape)},
                    {"name": "encoder_hidden_states", "file": f32("ctx", ctx), "dtype": "float32",
                     "dims": list(ctx.shape)}], "outputs": ["out_sample"], "time": time_runs},
        {"name": "vae_decoder", "model": os.path.join(out, "vae_decoder", "model.onnx"),
         "inputs": [{"name": "latent_sample", "file": f32("x2", x), "dtype": "float32", "dims": list(x.shape)}],
         "outputs": ["sample"], "time": time_runs},
        {"name": "vae_encoder", "model": os.path.join(out, "vae_encoder", "model.onnx"),
         "inputs": [{"name": "sample", "file": f32("img", img), "dtype": "float32", "dims": list(img.shape)}],
         "outputs": ["latent_sample"], "time": time_runs},
    ]
    for j in jobs:
        j["prefix"] = os.path.join(tmp, j["name"] + "_")
    spec = os.path.join(tmp, "spec.json")
    json.dump({"jobs": jobs}, open(spec, "w"))
    res = run_node(NODE_CHECK, [spec])
    report = {}
    for j in jobs:
        for o in j["outputs"]:
            r = ref[j["name"]][o].numpy()
            got = np.fromfile(j["prefix"] + o + ".bin", dtype=np.float32).reshape(r.shape)
            report[f"{j['name']}.{o}"] = float(np.abs(got - r).max())
        report[j["name"] + ".median_ms"] = res[j["name"]]["median_ms"]
        report[j["name"] + ".min_ms"] = res[j["name"]]["min_ms"]
    texts = ["red apple emoji", "Cat Face", "rocket clip art", "flag: Japan", "piñata, party!", "",
             "smiling face with heart-eyes", "man’s shoe", "zzz unknownword 123"]
    texts += [nets.random_caption(m, __import__("random").Random(i)) for i, m in enumerate(_meta_sample())]
    report["tokenizer_mismatches"] = verify_tokenizer(out, tok, texts)
    report["tokenizer_texts"] = len(texts)
    return report


def _meta_sample():
    p = os.path.join(HERE, "work", "meta.json")
    return json.load(open(p)) if os.path.exists(p) else []


# ---------------------------------------------------------------------------------------------
# reading initializers back from ONNX (minimal protobuf reader; no onnx package needed)
def _varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def _fields(b):
    i, n = 0, len(b)
    while i < n:
        key, i = _varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        elif wt == 2:
            ln, i = _varint(b, i)
            v, i = b[i:i + ln], i + ln
        else:
            raise ValueError("unsupported wire type %d" % wt)
        yield f, wt, v


_DT = {1: np.float32, 6: np.int32, 7: np.int64, 10: np.float16, 11: np.float64}


def read_initializers(path):
    data = open(path, "rb").read()
    graph = next(v for f, wt, v in _fields(data) if f == 7)
    out = {}
    for f, wt, v in _fields(graph):
        if f != 5:
            continue
        dims, name, raw, dt, fl = [], None, None, 1, []
        for f2, wt2, v2 in _fields(v):
            if f2 == 1:
                if wt2 == 0:
                    dims.append(v2)
                else:
                    j = 0
                    while j < len(v2):
                        d, j = _varint(v2, j)
                        dims.append(d)
            elif f2 == 2:
                dt = v2
            elif f2 == 8:
                name = bytes(v2).decode()
            elif f2 == 9:
                raw = bytes(v2)
            elif f2 == 4:
                fl.append(np.frombuffer(bytes(v2), dtype=np.float32) if wt2 == 2 else
                          np.frombuffer(bytes(v2), dtype=np.float32))
        if raw is not None:
            arr = np.frombuffer(raw, dtype=_DT[dt]).reshape(dims)
        elif fl:
            arr = np.concatenate(fl).reshape(dims)
        else:
            continue
        out[name] = arr.copy()
    return out


def load_module_from_onnx(module, path, prefix):
    init = read_initializers(path)
    sd = module.state_dict()
    new, missing = {}, []
    for k, v in sd.items():
        name = prefix + k
        if name in init and tuple(init[name].shape) == tuple(v.shape):
            new[k] = torch.from_numpy(init[name]).to(v.dtype)
        else:
            missing.append(k)
    if missing:
        raise RuntimeError(f"{path}: {len(missing)} tensors not found in the ONNX file, e.g. {missing[:5]}")
    module.load_state_dict(new)


def load_ae_from_onnx(ae, out):
    load_module_from_onnx(ae.decoder, os.path.join(out, "vae_decoder", "model.onnx"), "decoder.")
    load_module_from_onnx(ae.encoder, os.path.join(out, "vae_encoder", "model.onnx"), "encoder.")


def load_te_unet_from_onnx(te, unet, out):
    load_module_from_onnx(te, os.path.join(out, "text_encoder", "model.onnx"), "te.")
    load_module_from_onnx(unet, os.path.join(out, "unet", "model.onnx"), "unet.")


def config_from_onnx_dir(out):
    """Model sizes of an exported model (to rebuild the torch modules before loading the weights)."""
    te = json.load(open(os.path.join(out, "text_encoder", "config.json")))
    un = json.load(open(os.path.join(out, "unet", "config.json")))
    vae = json.load(open(os.path.join(out, "vae_decoder", "config.json")))
    return te, un, vae


# ---------------------------------------------------------------------------------------------
PREVIEW_PROMPTS = ["red apple emoji", "cat face", "rocket", "grinning face", "red heart", "sun", "pizza",
                   "dog face", "flag japan", "green apple", "banana", "fire", "ghost", "snowman", "house",
                   "tree"]


@torch.no_grad()
def preview(te, unet, ae, tok, scale, path, prompts=PREVIEW_PROMPTS, steps=20, guidance=5.0, seeds=(0, 1)):
    from PIL import Image
    te, unet, ae = te.eval(), unet.eval(), ae.eval()
    uncond = te(tok.batch([""] * len(prompts)))[0]
    cond = te(tok.batch(prompts))[0]
    rows = []
    for s in seeds:
        g = torch.Generator().manual_seed(s)
        z = nets.ddim_sample(unet, cond, uncond, steps=steps, guidance=guidance, generator=g)
        img = ae.decoder(z / scale).clamp(-1, 1)
        rows.append(img)
    img = torch.stack(rows)  # S,P,3,64,64
    S, P = img.shape[:2]
    arr = ((img.permute(0, 3, 1, 4, 2).reshape(S * 64, P * 64, 3) + 1) * 127.5).round().byte().numpy()
    Image.fromarray(arr).save(path)


def load_trained(args_tiny=False, ckpt=os.path.join(HERE, "checkpoints"), out=os.path.join(HERE, "..", "default"),
                 work=os.path.join(HERE, "work")):
    """Torch modules (EMA weights) from the checkpoints, else from the exported ONNX files."""
    import train
    ns = argparse.Namespace(tiny=args_tiny)
    tok_path = os.path.join(work, "tokenizer.json")
    if not os.path.exists(tok_path):
        tok_path = os.path.join(out, "tokenizer", "tokenizer.json")
    tok = nets.WordTokenizer.from_json(tok_path)
    ae, te, unet = train.make_models(ns, len(tok), tok.eos)
    ck_u, ck_a = os.path.join(ckpt, "unet.pt"), os.path.join(ckpt, "ae.pt")
    info = {}
    if os.path.exists(ck_u) and os.path.exists(ck_a):
        s = torch.load(ck_u, map_location="cpu")
        te.load_state_dict(s["ema_te"])
        unet.load_state_dict(s["ema_unet"])
        ae.load_state_dict(torch.load(ck_a, map_location="cpu")["ae"])
        info = {"unet_steps": s["step"], "unet_train_seconds": round(s["spent"]), "loss_ema": s.get("loss"),
                "lr": s["lr"] if "lr" in s else s["opt"]["param_groups"][0].get("lr")}
        info.update({k: s[k] for k in ("batch", "device", "resumed_from") if k in s})  # gpu_train.sh's slim checkpoint
        scale = torch.load(os.path.join(work, "latents.pt"))["scale"]
    else:
        load_ae_from_onnx(ae, out)
        load_te_unet_from_onnx(te, unet, out)
        scale = json.load(open(os.path.join(out, "vae_decoder", "config.json")))["scaling_factor"]
        info = json.load(open(os.path.join(out, "training.json")))
    return ae.eval(), te.eval(), unet.eval(), tok, scale, info


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "default"))
    ap.add_argument("--ckpt", default=os.path.join(HERE, "checkpoints"))
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--verify", action="store_true")
    ap.add_argument("--verify-only", action="store_true", help="check an existing export, do not rewrite it")
    ap.add_argument("--time", type=int, default=0, help="also time N onnxruntime-node runs per model (batch 2)")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ae, te, unet, tok, scale, info = load_trained(args.tiny, args.ckpt, args.out, args.work)
    if not args.verify_only:
        prev = os.path.join(args.out, "training.json")
        if os.path.exists(prev):  # keep fields the checkpoint does not hold (batch, device)
            old = json.load(open(prev))
            info = dict({k: old[k] for k in ("batch", "device") if k in old}, **info)
        info["device"] = info.get("device", "cpu")
        export_all(args.out, ae, te, unet, tok, scale, info)
    if args.verify or args.verify_only or args.time:
        rep = verify_onnx(os.path.abspath(args.out), ae, te, unet, tok, time_runs=args.time)
        print(json.dumps(rep, indent=1))
        worst = max(v for k, v in rep.items() if k.count(".") == 1 and not k.endswith("_ms"))
        ok = worst <= 1e-4 and rep["tokenizer_mismatches"] == 0
        print("OK" if ok else "FAILED", "max abs diff", worst)
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
