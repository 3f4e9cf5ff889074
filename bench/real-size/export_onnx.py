#!/usr/bin/python3
"""The ONNX side of the full-size fixtures (bench/real-size/make-fixtures.ts runs it): the text
encoder(s), UNet and VAE decoder of SD 1.5 or SDXL at their published sizes (sd_nets.py), random
weights, in the files `optimum-cli export onnx` writes: <part>/model.onnx, model.onnx_data beside it
when the part is over 2 GB, and <part>/config.json.

  /usr/bin/python3 bench/real-size/export_onnx.py --arch sd15 --dtype fp32 --out DIR [--seed 0]

How, so that a 2.6B-parameter UNet is written on a 24 GB machine (peak 1.5 GB for SD 1.5's):
  1. torch traces each network with placeholder parameters that take no memory and exports the
     graph without them (opset 17, no constant folding): they become graph inputs named by their
     state_dict keys.
  2. this script then streams the parameters one at a time into initialisers: random values drawn
     from (seed, name) - `weights()`, which bench/real-size/torch_unet.py calls to give PyTorch the
     very same weights - cast to float16 for fp16; a Transpose of a weight (a Linear's MatMul) is
     folded into the weight, as optimum's constant folding leaves it; written inline, or appended to
     model.onnx_data when the part is over 2 GB.
fp16 is a conversion of the fp32 graph (PyTorch 1.13 has no float16 kernels on the CPU to trace
with): every float tensor, input, output and constant becomes float16, except Resize's scales,
which ONNX requires in float32. Unlike a CUDA export of diffusers, the timestep sinusoids are then
computed in float16 too; with random weights that changes no figure the bench reports.
"""
import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
import zlib

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import sd_nets as nets  # noqa: E402

OPSET = 17
TWO_GB = 2 ** 31
DIFFUSERS = "0.30.0"


def weights(name, shape, seed):
    """The random value of parameter `name`: uniform +-1/sqrt(fan_in) for weights (PyTorch's
    default scale), N(0, 0.02) for embeddings, ones for norm scales, small uniform biases. Drawn
    from (seed, crc32(name)), so any process rebuilds it without reading the ONNX file."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    if "embedding" in name and len(shape) == 2 and "linear" not in name:
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)
    if len(shape) == 1:
        if "norm" in name and name.endswith("weight"):
            return np.ones(shape, np.float32)
        return rng.uniform(-0.02, 0.02, shape).astype(np.float32)
    bound = 1 / math.sqrt(int(np.prod(shape[1:])))
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def placeholder_parameters(make):
    """Build a module whose parameters take no memory: each is an overlapping view (all strides 1)
    of one small random buffer, at its own offset, so no two are equal (the exporter merges equal
    initialisers) and tracing reads kilobytes, not gigabytes. Their values are never exported."""
    layers = (nn.Linear, nn.Conv2d, nn.Embedding, nn.LayerNorm, nn.GroupNorm)
    saved = [cls.reset_parameters for cls in layers]
    for cls in layers:
        cls.reset_parameters = lambda self: None
    try:
        module = make().eval()
    finally:
        for cls, fn in zip(layers, saved):
            cls.reset_parameters = fn
    params = list(module.parameters())
    base = torch.randn(len(params) + sum(max(p.shape) for p in params) * 4 + 1024, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for i, p in enumerate(params):
            p.data = base.as_strided(p.shape, [1] * p.dim(), i)
    return module


@contextlib.contextmanager
def no_parameter_clones(module):
    """torch 1.13's tracer clones every traced input, the parameters included, only to return copies
    the ONNX exporter never reads (torch/jit/_trace.py ONNXTracedModule): 2x the weights in memory,
    20 GB for SDXL. While tracing, a clone of a parameter is the parameter itself."""
    ptrs = {p.data_ptr() for p in module.parameters()}
    clone = torch.Tensor.clone

    def cheap(self, *args, **kwargs):
        return self if self.data_ptr() in ptrs else clone(self, *args, **kwargs)

    torch.Tensor.clone = cheap
    try:
        yield
    finally:
        torch.Tensor.clone = clone


# --- the parts -----------------------------------------------------------------------------------
class TextEncoderExport(nn.Module):
    def __init__(self, te, hidden_states):
        super().__init__()
        self.te, self.hidden_states = te, hidden_states

    def forward(self, input_ids):
        out = self.te(input_ids)
        return out if self.hidden_states else out[:2]


def text_encoder_part(cfg, hidden_states):
    te = placeholder_parameters(lambda: nets.CLIPTextModel(**cfg))
    pooled = "text_embeds" if cfg["projection"] else "pooler_output"
    outputs = ["last_hidden_state", pooled] + ([f"hidden_states.{i}" for i in range(cfg["layers"] + 1)] if hidden_states else [])
    dyn = {"input_ids": {0: "batch_size", 1: "sequence_length"}, "last_hidden_state": {0: "batch_size", 1: "sequence_length"}, pooled: {0: "batch_size"}}
    dyn.update({o: {0: "batch_size", 1: "sequence_length"} for o in outputs[2:]})
    config = {
        "_name_or_path": "adadiff full-size fixture",
        "architectures": ["CLIPTextModelWithProjection" if cfg["projection"] else "CLIPTextModel"],
        "model_type": "clip_text_model", "hidden_act": cfg["act"], "hidden_size": cfg["width"], "intermediate_size": cfg["mlp"],
        "num_attention_heads": cfg["heads"], "num_hidden_layers": cfg["layers"], "max_position_embeddings": nets.POSITIONS,
        "vocab_size": nets.VOCAB, "layer_norm_eps": 1e-5, "output_hidden_states": hidden_states,
        **({"projection_dim": cfg["projection"]} if cfg["projection"] else {}),
    }
    ids = torch.ones(1, nets.POSITIONS, dtype=torch.int32)
    return TextEncoderExport(te, hidden_states), (ids,), ["input_ids"], outputs, dyn, config


def unet_part(arch):
    cfg = nets.SD15_UNET if arch == "sd15" else nets.SDXL_UNET
    unet = placeholder_parameters(lambda: nets.UNet2DConditionModel(**cfg))
    b, lat = 1, 8
    args = [torch.zeros(b, 4, lat, lat), torch.ones(b), torch.zeros(b, nets.POSITIONS, cfg["cross_attention_dim"])]
    inputs = ["sample", "timestep", "encoder_hidden_states"]
    dyn = {"sample": {0: "batch_size", 2: "height", 3: "width"}, "timestep": {0: "steps"},
           "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"}, "out_sample": {0: "batch_size", 2: "height", 3: "width"}}
    if arch == "sdxl":
        args += [torch.zeros(b, cfg["text_embeds_dim"]), torch.zeros(b, cfg["time_ids"])]
        inputs += ["text_embeds", "time_ids"]
        dyn.update({"text_embeds": {0: "batch_size"}, "time_ids": {0: "batch_size"}})
    heads = list(cfg["heads"])
    config = {
        "_class_name": "UNet2DConditionModel", "_diffusers_version": DIFFUSERS, "sample_size": 64 if arch == "sd15" else 128,
        "in_channels": 4, "out_channels": 4, "layers_per_block": 2, "block_out_channels": list(cfg["block_out_channels"]),
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in cfg["attention"]],
        "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(cfg["attention"])],
        "mid_block_type": "UNetMidBlock2DCrossAttn", "attention_head_dim": heads[0] if arch == "sd15" else heads,
        "cross_attention_dim": cfg["cross_attention_dim"], "norm_num_groups": 32, "use_linear_projection": cfg["linear_projection"],
        **({"transformer_layers_per_block": [max(d, 1) for d in cfg["depth"]], "addition_embed_type": "text_time",
            "addition_time_embed_dim": cfg["addition_time_embed_dim"],
            "projection_class_embeddings_input_dim": cfg["time_ids"] * cfg["addition_time_embed_dim"] + cfg["text_embeds_dim"]} if arch == "sdxl" else {}),
    }
    return unet, tuple(args), inputs, ["out_sample"], dyn, config


def vae_part(arch):
    vae = placeholder_parameters(lambda: nets.VAEDecoder(**nets.SD_VAE))
    dyn = {"latent_sample": {0: "batch_size", 2: "height", 3: "width"}, "sample": {0: "batch_size", 2: "height", 3: "width"}}
    config = {"_class_name": "AutoencoderKL", "_diffusers_version": DIFFUSERS, "in_channels": 3, "out_channels": 3,
              "latent_channels": 4, "block_out_channels": list(nets.SD_VAE["block_out_channels"]), "layers_per_block": 2,
              "norm_num_groups": 32, "sample_size": 512 if arch == "sd15" else 1024,
              "scaling_factor": 0.18215 if arch == "sd15" else 0.13025}
    return vae, (torch.zeros(1, 4, 8, 8),), ["latent_sample"], ["sample"], dyn, config


def parts(arch):
    if arch == "sd15":
        yield "text_encoder", text_encoder_part(nets.CLIP_L, hidden_states=False)
    else:
        # optimum exports an SDXL pipeline's encoders with every hidden state (the UNet reads the penultimate).
        yield "text_encoder", text_encoder_part(nets.CLIP_L, hidden_states=True)
        yield "text_encoder_2", text_encoder_part(nets.CLIP_BIGG, hidden_states=True)
    yield "unet", unet_part(arch)
    yield "vae_decoder", vae_part(arch)


# --- writing -------------------------------------------------------------------------------------
def to_fp16_graph(graph):
    """Every float tensor type of the graph to float16, but Resize's scales and roi."""
    # The scales are computed (Shape, Gather, Cast, Concat ...): everything upstream of them stays float32.
    producer = {out: node for node in graph.node for out in node.output}
    keep, todo = set(), [n.input[i] for n in graph.node if n.op_type == "Resize" for i in (1, 2) if len(n.input) > i and n.input[i]]
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        if name in producer and producer[name].op_type != "Shape":
            todo.extend(i for i in producer[name].input if i)
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT and vi.name not in keep:
            vi.type.tensor_type.elem_type = TensorProto.FLOAT16
    for node in graph.node:
        if set(node.output) & keep:
            continue
        for a in node.attribute:
            if node.op_type == "Cast" and a.name == "to" and a.i == TensorProto.FLOAT:
                a.i = TensorProto.FLOAT16
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == TensorProto.FLOAT:
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16), a.t.name))
    return keep


def fold_transposes(graph, initialisers):
    """Transpose(weight) with perm [1, 0] whose weight feeds nothing else: the weight, transposed."""
    uses = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    folded, nodes = {}, []
    for node in graph.node:
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
        if node.op_type == "Transpose" and node.input[0] in initialisers and uses[node.input[0]] == 1 and perm == [1, 0]:
            folded[node.output[0]] = node.input[0]
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return folded


def write_part(raw_dir, out_dir, module, fp16, seed):
    """raw_dir/model.onnx (exported without parameters: they are graph inputs) -> out_dir/model.onnx
    with every parameter an initialiser of random values, streamed one at a time into the file or,
    over 2 GB in all, into model.onnx_data beside it."""
    model = onnx.load(os.path.join(raw_dir, "model.onnx"))
    graph = model.graph
    params = {n for n, _ in module.named_parameters()}
    buffers = {n: b.numpy() for n, b in module.named_buffers()}
    # What each weight-to-be is: a parameter or buffer the exporter made a graph input, or an initialiser it kept.
    shapes = {}
    for vi in graph.input:
        if vi.name in params or vi.name in buffers:
            shapes[vi.name] = tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)
    kept = {t.name: t for t in graph.initializer}
    inputs = [vi for vi in graph.input if vi.name not in shapes]
    del graph.input[:]
    graph.input.extend(inputs)
    folded = fold_transposes(graph, set(shapes) | set(kept))
    keep32 = to_fp16_graph(graph) if fp16 else set()
    sources = dict(folded)
    sources.update({n: n for n in list(shapes) + list(kept) if n not in folded.values()})

    def value(src):
        if src in params:
            return weights(src, shapes[src], seed)
        return buffers[src] if src in buffers else numpy_helper.to_array(kept[src])

    def nbytes(src):
        dims = shapes[src] if src in shapes else tuple(kept[src].dims)
        floating = src in params or (src in buffers and buffers[src].dtype == np.float32) or (src in kept and kept[src].data_type == TensorProto.FLOAT)
        return int(np.prod(dims)) * (2 if fp16 and floating else 4 if floating else 8)

    total = sum(nbytes(src) for src in sources.values())
    external = total > TWO_GB
    data = open(os.path.join(out_dir, "model.onnx_data"), "wb") if external else None
    written = []
    try:
        for name, src in sources.items():
            arr = value(src)
            if name != src:
                arr = np.ascontiguousarray(arr.T)
            if fp16 and arr.dtype == np.float32 and name not in keep32:
                arr = arr.astype(np.float16)
            tensor = numpy_helper.from_array(arr, name)
            if external:
                raw = tensor.raw_data
                tensor.ClearField("raw_data")
                tensor.data_location = TensorProto.EXTERNAL
                for k, v in (("location", "model.onnx_data"), ("offset", str(data.tell())), ("length", str(len(raw)))):
                    e = tensor.external_data.add()
                    e.key, e.value = k, v
                data.write(raw)
            written.append(tensor)
    finally:
        if data:
            data.close()
    del graph.initializer[:]
    graph.initializer.extend(written)
    onnx.save(model, os.path.join(out_dir, "model.onnx"))
    return total, external


def export(arch, fp16, out, seed, only=None):
    report = {}
    for part, (module, args, inputs, outputs, dyn, config) in parts(arch):
        if only and part not in only:
            continue
        t0 = time.time()
        count = nets.parameter_count(module)
        part_dir = os.path.join(out, part)
        shutil.rmtree(part_dir, ignore_errors=True)
        os.makedirs(part_dir)
        with tempfile.TemporaryDirectory(dir=out, prefix=f".raw-{part}-") as raw:
            # Without parameters (they become graph inputs named by state_dict key): their values
            # are this script's to write, one at a time.
            with torch.no_grad(), no_parameter_clones(module):
                torch.onnx.export(module, args, os.path.join(raw, "model.onnx"), opset_version=OPSET, input_names=inputs,
                                  output_names=outputs, dynamic_axes=dyn, do_constant_folding=False, export_params=False)
            total, external = write_part(raw, part_dir, module, fp16, seed)
        config["torch_dtype"] = "float16" if fp16 else "float32"
        config["adadiff_fixture"] = {"arch": arch, "seed": seed, "note": "random weights: bench/real-size/export_onnx.py weights()"}
        with open(os.path.join(part_dir, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        report[part] = {"parameters": count, "bytes": total, "external_data": external, "seconds": round(time.time() - t0, 1)}
        print(f"  {part:15} {count / 1e6:9.2f}M parameters  {total / 2 ** 30:6.2f} GiB{' (model.onnx_data)' if external else ''}  {time.time() - t0:6.1f} s", flush=True)
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=["sd15", "sdxl"], required=True)
    ap.add_argument("--dtype", choices=["fp32", "fp16"], required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--parts", help="comma-separated subset (text_encoder,text_encoder_2,unet,vae_decoder)")
    ap.add_argument("--report", help="write the parameter counts and sizes as JSON here")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    report = export(args.arch, args.dtype == "fp16", args.out, args.seed, args.parts.split(",") if args.parts else None)
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
