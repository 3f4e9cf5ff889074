"""Networks, tokenizer, captions and noise schedule for the AdaDiff default model.

Everything here is shared by train.py, export.py, evaluate.py and test_recipe.py.
"""
import json
import math
import random
import re
import unicodedata

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# tokenizer (WordLevel; written as a tokenizer.json that @huggingface/tokenizers reads)
BOS, EOS, UNK = "<|startoftext|>", "<|endoftext|>", "<|unk|>"
MAX_LEN = 77
_WORD = re.compile(r"[A-Za-z0-9_]+|[^A-Za-z0-9_\s]+")


def normalize(text):
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return text.lower()


def pre_tokenize(text):
    return _WORD.findall(normalize(text))


class WordTokenizer:
    def __init__(self, vocab):
        self.vocab = vocab  # word -> id
        self.bos, self.eos, self.unk = vocab[BOS], vocab[EOS], vocab[UNK]

    @classmethod
    def build(cls, texts, min_count=1):
        counts = {}
        for t in texts:
            for w in pre_tokenize(t):
                counts[w] = counts.get(w, 0) + 1
        words = sorted(w for w, c in counts.items() if c >= min_count)
        vocab = {UNK: 0}
        for w in words:
            vocab[w] = len(vocab)
        vocab[BOS] = len(vocab)
        vocab[EOS] = len(vocab)  # highest id, as in CLIP
        return cls(vocab)

    def __len__(self):
        return len(self.vocab)

    def encode(self, text):
        ids = [self.bos] + [self.vocab.get(w, self.unk) for w in pre_tokenize(text)][: MAX_LEN - 2] + [self.eos]
        return ids + [self.eos] * (MAX_LEN - len(ids))

    def batch(self, texts):
        return torch.tensor([self.encode(t) for t in texts], dtype=torch.long)

    def tokenizer_json(self):
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [
                {"id": self.vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                 "normalized": False, "special": True} for t in (UNK, BOS, EOS)],
            "normalizer": {"type": "Sequence", "normalizers": [
                {"type": "NFKD"}, {"type": "StripAccents"}, {"type": "Lowercase"}]},
            "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": BOS, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                           {"SpecialToken": {"id": EOS, "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": BOS, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"Sequence": {"id": "B", "type_id": 1}}, {"SpecialToken": {"id": EOS, "type_id": 0}}],
                "special_tokens": {
                    BOS: {"id": BOS, "ids": [self.vocab[BOS]], "tokens": [BOS]},
                    EOS: {"id": EOS, "ids": [self.vocab[EOS]], "tokens": [EOS]}}},
            "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
            "model": {"type": "WordLevel", "vocab": self.vocab, "unk_token": UNK},
        }

    @staticmethod
    def tokenizer_config():
        return {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": MAX_LEN,
                "bos_token": BOS, "eos_token": EOS, "pad_token": EOS, "unk_token": UNK,
                "do_lower_case": True, "clean_up_tokenization_spaces": True,
                "padding_side": "right", "model_input_names": ["input_ids"],
                "adadiff_note": "WordLevel tokenizer; pad to 77 with <|endoftext|> as CLIP does"}

    @classmethod
    def from_json(cls, path):
        return cls(json.load(open(path))["model"]["vocab"])


# ---------------------------------------------------------------------------------------------
# captions
def clean(s):
    return re.sub(r"\s+", " ", re.sub(r"[:,()“”\"!]", " ", s)).strip()


def canonical_caption(m):
    return f"{clean(m['name'])} emoji"


def all_caption_words(meta):
    texts = ["emoji clip art , icon picture image"]
    for m in meta:
        texts += [m["name"], clean(m["name"]), m["group"], m["subgroup"].replace("-", " ")] + m["keywords"]
    return texts


def random_caption(m, rng):
    name = clean(m["name"])
    kws = [clean(k) for k in m["keywords"] if clean(k)]
    sub = m["subgroup"].replace("-", " ")
    r = rng.random()
    if r < 0.25:
        return name + " emoji"
    if r < 0.40:
        return name
    if r < 0.60 and kws:
        k = rng.sample(kws, min(len(kws), rng.randint(1, 3)))
        return " ".join([name] + k + (["emoji"] if rng.random() < 0.5 else []))
    if r < 0.75:
        return f"{name}, {sub}, emoji"
    if r < 0.87 and kws:
        k = rng.sample(kws, min(len(kws), rng.randint(1, 3)))
        return ", ".join([name] + k) + (" emoji" if rng.random() < 0.5 else "")
    if kws:
        k = rng.sample(kws, min(len(kws), rng.randint(1, 3)))
        return " ".join(k + [sub] + (["emoji"] if rng.random() < 0.5 else []))
    return f"{name} {sub} emoji"


# ---------------------------------------------------------------------------------------------
# noise schedule (diffusers DDIMScheduler: scaled_linear 0.00085..0.012, 1000 steps)
def alphas_cumprod(T=1000, beta_start=0.00085, beta_end=0.012):
    betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, T, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


def ddim_timesteps(steps, T=1000, spacing="trailing", steps_offset=1):
    """diffusers' DDIMScheduler.set_timesteps. models/default uses "trailing": every schedule starts
    at t = T-1, where the initial noise really is pure noise, so fewer steps stay close to the image
    50 steps make ("leading" starts 20-50 timesteps lower, depending on the step count)."""
    if spacing == "trailing":
        return (torch.round(torch.arange(T, 0, -T / steps, dtype=torch.float64)) - 1).long()[:steps]
    ratio = T // steps
    return ((torch.arange(0, steps) * ratio).round().flip(0) + steps_offset).long()


@torch.no_grad()
def ddim_sample(unet, cond, uncond, steps=25, guidance=7.0, generator=None, ac=None, latents=None,
                shape=(4, 16, 16)):
    """Plain DDIM (eta 0, set_alpha_to_one False, trailing spacing), the schedule the pipeline uses."""
    ac = alphas_cumprod() if ac is None else ac
    B = cond.shape[0]
    x = latents if latents is not None else torch.randn((B,) + shape, generator=generator)
    ratio = 1000 // steps
    for t in ddim_timesteps(steps):
        t = int(t)
        xin = torch.cat([x, x])
        tt = torch.full((2 * B,), float(t))
        eps = unet(xin, tt, torch.cat([uncond, cond]))
        e_u, e_c = eps.chunk(2)
        eps = e_u + guidance * (e_c - e_u)
        prev = t - ratio
        a_t = ac[t]
        a_p = ac[prev] if prev >= 0 else ac[0]  # set_alpha_to_one False -> final alpha = alphas_cumprod[0]
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        x = a_p.sqrt() * x0 + (1 - a_p).sqrt() * eps
    return x


# ---------------------------------------------------------------------------------------------
# building blocks
class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in fp32 (torch 1.13 CPU autocast needs it)."""

    def forward(self, x):
        if torch.onnx.is_in_onnx_export():
            return self._export_forward(x)
        with torch.autocast(x.device.type, enabled=False):
            return F.group_norm(x.float(), self.num_groups, self.weight, self.bias, self.eps)

    def _export_forward(self, x):
        # torch's group_norm symbolic reshapes back through Shape(x): one more node per norm, and a
        # dynamic shape. With C, H, W as Python ints the export gets constant Reshape shapes.
        C, H, W = (int(n) for n in x.shape[1:])
        G = self.num_groups
        one, zero = torch.ones(G, dtype=x.dtype), torch.zeros(G, dtype=x.dtype)  # the symbolic needs them
        y = F.instance_norm(x.reshape(-1, G, C // G * H * W), weight=one, bias=zero, eps=self.eps)
        y = y.reshape(-1, C, H, W)
        return y * self.weight[:, None, None] + self.bias[:, None, None]


class LayerNorm32(nn.LayerNorm):
    def forward(self, x):
        with torch.autocast(x.device.type, enabled=False):
            return F.layer_norm(x.float(), self.normalized_shape, self.weight, self.bias, self.eps)


def gn(c):
    return GroupNorm32(min(32, c // 4) if c >= 8 else 1, c, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb=0):
        super().__init__()
        self.norm1, self.conv1 = gn(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(temb, cout) if temb else None
        self.norm2, self.conv2 = gn(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, t=None):
        h = self.conv1(F.silu(self.norm1(x)))
        if self.temb is not None:
            h = h + self.temb(F.silu(t))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.skip(x) if self.skip is not None else x)


def attention(q, k, v, heads, mask=None):
    # Every dim but the batch as a Python int and the batch as -1: the ONNX export then gets constant
    # Reshape shapes instead of Shape -> Gather -> Unsqueeze -> Concat chains around every reshape
    # (~400 of the UNet's 800 nodes per call, a measurable share of a call on this small model).
    N, C, M = int(q.shape[1]), int(q.shape[2]), int(k.shape[1])
    d = C // heads
    q = q.reshape(-1, N, heads, d).transpose(1, 2)
    k = k.reshape(-1, M, heads, d).transpose(1, 2)
    v = v.reshape(-1, M, heads, d).transpose(1, 2)
    w = (q @ k.transpose(-1, -2)) * (d ** -0.5)
    if mask is not None:
        w = w + mask
    w = w.float().softmax(-1).to(v.dtype)
    return (w @ v).transpose(1, 2).reshape(-1, N, C)


class FusedAttention(torch.autograd.Function):
    """attention() without a mask, exported as one com.microsoft MultiHeadAttention node.

    onnxruntime has a CPU kernel for it (and WebGPU and CUDA ones): one node instead of the four
    Reshapes, four Transposes, two MatMuls, a Mul and a Softmax of each attention. With the
    constant GroupNorm shapes the UNet runs 447 nodes per call instead of 569, and a call took 4%
    less, measured interleaved with 2 threads. Eager PyTorch runs attention() itself, so training
    is unchanged, and export.py --verify compares the two."""

    @staticmethod
    def forward(ctx, q, k, v, heads):
        return attention(q, k, v, heads)

    @staticmethod
    def symbolic(g, q, k, v, heads):
        out = g.op("com.microsoft::MultiHeadAttention", q, k, v, num_heads_i=heads)
        out.setType(q.type())
        return out


class Attn(nn.Module):
    def __init__(self, dim, ctx_dim=None, heads=4):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(ctx_dim or dim, dim, bias=False)
        self.v = nn.Linear(ctx_dim or dim, dim, bias=False)
        self.o = nn.Linear(dim, dim)

    def forward(self, x, ctx=None, mask=None):
        ctx = x if ctx is None else ctx
        if mask is None and torch.onnx.is_in_onnx_export():
            return self.o(FusedAttention.apply(self.q(x), self.k(ctx), self.v(ctx), self.heads))
        return self.o(attention(self.q(x), self.k(ctx), self.v(ctx), self.heads, mask))


class FF(nn.Module):
    def __init__(self, dim, mult=2):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, dim * mult), nn.Linear(dim * mult, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class SpatialTransformer(nn.Module):
    """GroupNorm -> 1x1 -> [self-attn, cross-attn, FF] -> 1x1, residual (as in SD)."""

    def __init__(self, c, ctx_dim, heads=4, ff_mult=2):
        super().__init__()
        self.norm = gn(c)
        self.proj_in = nn.Conv2d(c, c, 1)
        self.ln1, self.attn1 = LayerNorm32(c), Attn(c, None, heads)
        self.ln2, self.attn2 = LayerNorm32(c), Attn(c, ctx_dim, heads)
        self.ln3, self.ff = LayerNorm32(c), FF(c, ff_mult)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x, ctx):
        C, H, W = (int(n) for n in x.shape[1:])  # constants in the export, as in attention()
        h = self.proj_in(self.norm(x)).reshape(-1, C, H * W).transpose(1, 2)
        h = h + self.attn1(self.ln1(h))
        h = h + self.attn2(self.ln2(h), ctx)
        h = h + self.ff(self.ln3(h))
        return x + self.proj_out(h.transpose(1, 2).reshape(-1, C, H, W))


# ---------------------------------------------------------------------------------------------
# text encoder
class TextEncoder(nn.Module):
    def __init__(self, vocab_size, dim=128, layers=4, heads=4, ff_mult=4, eos_id=None):
        super().__init__()
        self.cfg = dict(vocab_size=vocab_size, dim=dim, layers=layers, heads=heads, ff_mult=ff_mult, eos_id=eos_id)
        self.tok = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.randn(MAX_LEN, dim) * 0.01)
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            self.blocks.append(nn.ModuleDict(dict(ln1=LayerNorm32(dim), attn=Attn(dim, None, heads),
                                                  ln2=LayerNorm32(dim), ff=FF(dim, ff_mult))))
        self.ln_f = LayerNorm32(dim)
        mask = torch.full((MAX_LEN, MAX_LEN), -1e4).triu(1)  # causal: padding never changes earlier tokens
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, ids):
        L = ids.shape[1]
        h = self.tok(ids) + self.pos[:L]
        for b in self.blocks:
            h = h + b["attn"](b["ln1"](h), mask=self.mask[:L, :L])
            h = h + b["ff"](b["ln2"](h))
        h = self.ln_f(h)
        # pooled output: state at the first <|endoftext|> (CLIP: argmax of ids, eos has the highest id)
        idx = (ids == self.cfg["eos_id"]).int().argmax(-1)
        pooled = h[torch.arange(h.shape[0]), idx]
        return h, pooled


# ---------------------------------------------------------------------------------------------
# UNet (latent 16x16x4), epsilon prediction
def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    a = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(a), torch.sin(a)], -1)  # flip_sin_to_cos=True, freq_shift=0


class UNet(nn.Module):
    def __init__(self, ch=(64, 128, 128), attn=(False, True, True), ctx_dim=128, heads=4, in_ch=4,
                 layers_up=2, ff_mult=2):
        super().__init__()
        self.cfg = dict(ch=list(ch), attn=list(attn), ctx_dim=ctx_dim, heads=heads, in_ch=in_ch,
                        layers_up=layers_up, ff_mult=ff_mult)
        te = ch[0] * 4
        self.t_dim = ch[0]
        self.t_mlp = nn.Sequential(nn.Linear(ch[0], te), nn.SiLU(), nn.Linear(te, te))
        self.conv_in = nn.Conv2d(in_ch, ch[0], 3, padding=1)
        self.down = nn.ModuleList()
        # skips per level: [level input (conv_in / downsample output), res output]; the up path of a level
        # takes the last `layers_up` of them (layers_up 1: only the res output)
        skips = []
        c = ch[0]
        for i, co in enumerate(ch):
            blk = nn.ModuleDict(dict(res=ResBlock(c, co, te)))
            if attn[i]:
                blk["attn"] = SpatialTransformer(co, ctx_dim, heads, ff_mult)
            skips.append([c, co])
            c = co
            if i < len(ch) - 1:
                blk["down"] = nn.Conv2d(c, c, 3, stride=2, padding=1)
            self.down.append(blk)
        self.mid1 = ResBlock(c, c, te)
        self.mid_attn = SpatialTransformer(c, ctx_dim, heads, ff_mult)
        self.mid2 = ResBlock(c, c, te)
        self.up = nn.ModuleList()
        for i in reversed(range(len(ch))):
            co = ch[i]
            blks = nn.ModuleList()
            sk = skips[i][-layers_up:]
            for j in range(layers_up):
                b = nn.ModuleDict(dict(res=ResBlock(c + sk[-1 - j], co, te)))
                if attn[i]:
                    b["attn"] = SpatialTransformer(co, ctx_dim, heads, ff_mult)
                blks.append(b)
                c = co
            up = nn.Conv2d(c, c, 3, padding=1) if i > 0 else None
            self.up.append(nn.ModuleDict(dict(blocks=blks, **({"upconv": up} if up is not None else {}))))
        self.norm_out = gn(c)
        self.conv_out = nn.Conv2d(c, in_ch, 3, padding=1)

    def forward(self, x, t, ctx):
        temb = self.t_mlp(timestep_embedding(t, self.t_dim))
        h = self.conv_in(x)
        levels = []
        for blk in self.down:
            skip = [h]
            h = blk["res"](h, temb)
            if "attn" in blk:
                h = blk["attn"](h, ctx)
            skip.append(h)
            levels.append(skip)
            if "down" in blk:
                h = blk["down"](h)
        h = self.mid2(self.mid_attn(self.mid1(h, temb), ctx), temb)
        L = self.cfg["layers_up"]
        for up, skip in zip(self.up, reversed(levels)):
            skip = skip[-L:]
            for b in up["blocks"]:
                h = b["res"](torch.cat([h, skip.pop()], 1), temb)
                if "attn" in b:
                    h = b["attn"](h, ctx)
            if "upconv" in up:
                h = up["upconv"](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


# ---------------------------------------------------------------------------------------------
# autoencoder 64x64x3 <-> 16x16x4 (KL-regularised, as SD's AutoencoderKL, no attention)
class Encoder(nn.Module):
    def __init__(self, ch=(32, 64, 128), z=4):
        super().__init__()
        self.conv_in = nn.Conv2d(3, ch[0], 3, padding=1)
        layers, c = [], ch[0]
        for i, co in enumerate(ch):
            layers.append(ResBlock(c, co))
            c = co
            if i < len(ch) - 1:
                layers.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        layers.append(ResBlock(c, c))
        self.layers = nn.ModuleList(layers)
        self.norm, self.conv_out = gn(c), nn.Conv2d(c, 2 * z, 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for l in self.layers:
            h = l(h)
        mean, logvar = self.conv_out(F.silu(self.norm(h))).chunk(2, 1)
        return mean, logvar


class Decoder(nn.Module):
    def __init__(self, ch=(32, 64, 128), z=4):
        super().__init__()
        c = ch[-1]
        self.conv_in = nn.Conv2d(z, c, 3, padding=1)
        layers = [ResBlock(c, c)]
        for i in reversed(range(len(ch))):
            layers.append(ResBlock(c, ch[i]))
            c = ch[i]
            if i > 0:
                layers.append(nn.Upsample(scale_factor=2.0, mode="nearest"))
                layers.append(nn.Conv2d(c, c, 3, padding=1))
        self.layers = nn.ModuleList(layers)
        self.norm, self.conv_out = gn(c), nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, z):
        h = self.conv_in(z)
        for l in self.layers:
            h = l(h)
        return self.conv_out(F.silu(self.norm(h)))


class AutoEncoder(nn.Module):
    def __init__(self, ch=(32, 64, 128), z=4):
        super().__init__()
        self.cfg = dict(ch=list(ch), z=z)
        self.encoder, self.decoder = Encoder(ch, z), Decoder(ch, z)


def n_params(m):
    return sum(p.numel() for p in m.parameters())
