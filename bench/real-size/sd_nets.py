"""The three networks of Stable Diffusion 1.5 and SDXL at their published sizes, written compactly
after diffusers' UNet2DConditionModel and AutoencoderKL decoder and transformers' CLIPTextModel,
with the same parameter names (state_dict keys) so that an export reads like optimum's.

Only what the published configs use is here: no dropout, no LoRA, no other block types. Shapes are
taken from the input at run time (x.shape), so a trace exports dynamic batch, height and width.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# --- published configs -------------------------------------------------------------------------
# runwayml/stable-diffusion-v1-5 unet/config.json and stabilityai/stable-diffusion-xl-base-1.0.
SD15_UNET = dict(block_out_channels=(320, 640, 1280, 1280), attention=(True, True, True, False), depth=(1, 1, 1, 0),
                 heads=(8, 8, 8, 8), mid_depth=1, cross_attention_dim=768, linear_projection=False, addition_time_embed_dim=None)
SDXL_UNET = dict(block_out_channels=(320, 640, 1280), attention=(False, True, True), depth=(0, 2, 10),
                 heads=(5, 10, 20), mid_depth=10, cross_attention_dim=2048, linear_projection=True, addition_time_embed_dim=256,
                 text_embeds_dim=1280, time_ids=6)
# openai/clip-vit-large-patch14 (SD 1.5's and SDXL's first encoder) and laion CLIP-ViT-bigG-14 (SDXL's second).
CLIP_L = dict(width=768, layers=12, heads=12, mlp=3072, act="quick_gelu", projection=None)
CLIP_BIGG = dict(width=1280, layers=32, heads=20, mlp=5120, act="gelu", projection=1280)
VOCAB, POSITIONS = 49408, 77
SD_VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4)


# --- UNet ----------------------------------------------------------------------------------------
def timestep_embedding(t, dim):
    """diffusers get_timestep_embedding with flip_sin_to_cos=True, downscale_freq_shift=0."""
    half = dim // 2
    # A constant in the graph, not a Range: ONNX's Range has no float16 form for the fp16 export.
    freqs = torch.tensor([math.exp(-math.log(10000) * i / half) for i in range(half)], dtype=torch.float32)
    args = t.reshape(-1, 1).float() * freqs.reshape(1, -1)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimestepEmbedding(nn.Module):
    def __init__(self, cin, dim):
        super().__init__()
        self.linear_1, self.linear_2 = nn.Linear(cin, dim), nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class ResnetBlock2D(nn.Module):
    def __init__(self, cin, cout, temb, eps=1e-5):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(32, cin, eps=eps), nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout) if temb else None
        self.norm2, self.conv2 = nn.GroupNorm(32, cout, eps=eps), nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb=None):
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_emb_proj is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.conv_shortcut(x) if self.conv_shortcut is not None else x) + h


class Attention(nn.Module):
    def __init__(self, dim, heads, context=None, bias=False):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=bias)
        self.to_k = nn.Linear(context or dim, dim, bias=bias)
        self.to_v = nn.Linear(context or dim, dim, bias=bias)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])

    def forward(self, x, context=None):
        b, n, c = x.shape
        ctx = x if context is None else context
        split = lambda t: t.reshape(b, -1, self.heads, c // self.heads).transpose(1, 2)
        q, k, v = split(self.to_q(x)), split(self.to_k(ctx)), split(self.to_v(ctx))
        w = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * (c // self.heads) ** -0.5, dim=-1)
        return self.to_out[0](torch.matmul(w, v).transpose(1, 2).reshape(b, n, c))


class GEGLU(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x):
        h, gate = self.proj(x).chunk(2, dim=-1)
        return h * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, dim * 4), nn.Identity(), nn.Linear(dim * 4, dim)])

    def forward(self, x):
        return self.net[2](self.net[0](x))


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, heads, context):
        super().__init__()
        self.norm1, self.attn1 = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.attn2 = nn.LayerNorm(dim), Attention(dim, heads, context)
        self.norm3, self.ff = nn.LayerNorm(dim), FeedForward(dim)

    def forward(self, x, context):
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class Transformer2DModel(nn.Module):
    def __init__(self, dim, heads, depth, context, linear):
        super().__init__()
        self.linear = linear
        self.norm = nn.GroupNorm(32, dim, eps=1e-6)
        self.proj_in = nn.Linear(dim, dim) if linear else nn.Conv2d(dim, dim, 1)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(dim, heads, context) for _ in range(depth)])
        self.proj_out = nn.Linear(dim, dim) if linear else nn.Conv2d(dim, dim, 1)

    def forward(self, x, context):
        b, c, h, w = x.shape
        tokens = lambda t: t.permute(0, 2, 3, 1).reshape(b, h * w, c)
        hs = self.norm(x)
        hs = self.proj_in(tokens(hs)) if self.linear else tokens(self.proj_in(hs))
        for block in self.transformer_blocks:
            hs = block(hs, context)
        if self.linear:
            hs = self.proj_out(hs).reshape(b, h, w, c).permute(0, 3, 1, 2)
        else:
            hs = self.proj_out(hs.reshape(b, h, w, c).permute(0, 3, 1, 2))
        return hs + x


class Downsample2D(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class Upsample2D(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Block(nn.Module):
    """A down or up block: resnets, each followed by a transformer when the level attends, then a resampler."""

    def __init__(self, cins, cout, temb, attn, depth, heads, context, linear, resample):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin, cout, temb) for cin in cins])
        if attn:
            self.attentions = nn.ModuleList([Transformer2DModel(cout, heads, depth, context, linear) for _ in cins])
        if resample == "down":
            self.downsamplers = nn.ModuleList([Downsample2D(cout)])
        elif resample == "up":
            self.upsamplers = nn.ModuleList([Upsample2D(cout)])


class UNetMidBlock2DCrossAttn(nn.Module):
    def __init__(self, ch, temb, heads, depth, context, linear):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(ch, ch, temb), ResnetBlock2D(ch, ch, temb)])
        self.attentions = nn.ModuleList([Transformer2DModel(ch, heads, depth, context, linear)])

    def forward(self, x, temb, context):
        x = self.resnets[0](x, temb)
        return self.resnets[1](self.attentions[0](x, context), temb)


class UNet2DConditionModel(nn.Module):
    def __init__(self, block_out_channels, attention, depth, heads, mid_depth, cross_attention_dim, linear_projection,
                 addition_time_embed_dim=None, text_embeds_dim=None, time_ids=None, layers=2):
        super().__init__()
        ch = block_out_channels
        temb = ch[0] * 4
        self.conv_in = nn.Conv2d(4, ch[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(ch[0], temb)
        self.addition_time_embed_dim = addition_time_embed_dim
        if addition_time_embed_dim:
            self.add_embedding = TimestepEmbedding(time_ids * addition_time_embed_dim + text_embeds_dim, temb)
        ctx, lin = cross_attention_dim, linear_projection
        self.down_blocks = nn.ModuleList()
        for i, cout in enumerate(ch):
            cin = ch[max(i - 1, 0)]
            last = i == len(ch) - 1
            self.down_blocks.append(Block([cin] + [cout] * (layers - 1), cout, temb, attention[i], depth[i], heads[i], ctx, lin,
                                          None if last else "down"))
        self.mid_block = UNetMidBlock2DCrossAttn(ch[-1], temb, heads[-1], mid_depth, ctx, lin)
        self.up_blocks = nn.ModuleList()
        rev = list(reversed(ch))
        for i, cout in enumerate(rev):
            prev = rev[max(i - 1, 0)]
            skip_in = rev[min(i + 1, len(ch) - 1)]
            cins = [(prev if j == 0 else cout) + (skip_in if j == layers else cout) for j in range(layers + 1)]
            level = len(ch) - 1 - i
            self.up_blocks.append(Block(cins, cout, temb, attention[level], depth[level], heads[level], ctx, lin,
                                        None if i == len(ch) - 1 else "up"))
        self.conv_norm_out = nn.GroupNorm(32, ch[0], eps=1e-5)
        self.conv_out = nn.Conv2d(ch[0], 4, 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds=None, time_ids=None):
        emb = self.time_embedding(timestep_embedding(timestep, self.conv_in.out_channels).to(sample.dtype))
        emb = emb.expand(sample.shape[0], -1) if emb.shape[0] == 1 else emb
        if self.addition_time_embed_dim:
            t = timestep_embedding(time_ids.flatten(), self.addition_time_embed_dim).reshape(text_embeds.shape[0], -1)
            emb = emb + self.add_embedding(torch.cat([text_embeds, t.to(text_embeds.dtype)], dim=-1))
        x = self.conv_in(sample)
        skips = [x]
        for block in self.down_blocks:
            for j, resnet in enumerate(block.resnets):
                x = resnet(x, emb)
                if hasattr(block, "attentions"):
                    x = block.attentions[j](x, encoder_hidden_states)
                skips.append(x)
            if hasattr(block, "downsamplers"):
                x = block.downsamplers[0](x)
                skips.append(x)
        x = self.mid_block(x, emb, encoder_hidden_states)
        for block in self.up_blocks:
            for j, resnet in enumerate(block.resnets):
                x = resnet(torch.cat([x, skips.pop()], dim=1), emb)
                if hasattr(block, "attentions"):
                    x = block.attentions[j](x, encoder_hidden_states)
            if hasattr(block, "upsamplers"):
                x = block.upsamplers[0](x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


# --- CLIP text encoder ---------------------------------------------------------------------------
class CLIPAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x, mask):
        b, n, c = x.shape
        split = lambda t: t.reshape(b, n, self.heads, c // self.heads).transpose(1, 2)
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        w = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * (c // self.heads) ** -0.5 + mask, dim=-1)
        return self.out_proj(torch.matmul(w, v).transpose(1, 2).reshape(b, n, c))


class CLIPMLP(nn.Module):
    def __init__(self, dim, mlp, act):
        super().__init__()
        self.fc1, self.fc2, self.act = nn.Linear(dim, mlp), nn.Linear(mlp, dim), act

    def forward(self, x):
        h = self.fc1(x)
        h = h * torch.sigmoid(1.702 * h) if self.act == "quick_gelu" else F.gelu(h)
        return self.fc2(h)


class CLIPEncoderLayer(nn.Module):
    def __init__(self, dim, heads, mlp, act):
        super().__init__()
        self.layer_norm1, self.self_attn = nn.LayerNorm(dim), CLIPAttention(dim, heads)
        self.layer_norm2, self.mlp = nn.LayerNorm(dim), CLIPMLP(dim, mlp, act)

    def forward(self, x, mask):
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class _Embeddings(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.token_embedding, self.position_embedding = nn.Embedding(VOCAB, dim), nn.Embedding(POSITIONS, dim)


class _Encoder(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = layers


class _TextModel(nn.Module):
    def __init__(self, width, layers, heads, mlp, act):
        super().__init__()
        self.embeddings = _Embeddings(width)
        self.encoder = _Encoder(nn.ModuleList([CLIPEncoderLayer(width, heads, mlp, act) for _ in range(layers)]))
        self.final_layer_norm = nn.LayerNorm(width)


class CLIPTextModel(nn.Module):
    """transformers' CLIPTextModel (projection=None) or CLIPTextModelWithProjection. forward returns
    (last_hidden_state, pooled, hidden_states...): pooled is pooler_output, or text_embeds with a projection."""

    def __init__(self, width, layers, heads, mlp, act, projection):
        super().__init__()
        self.text_model = _TextModel(width, layers, heads, mlp, act)
        self.text_projection = nn.Linear(width, projection, bias=False) if projection else None
        self.register_buffer("causal_mask", torch.full((POSITIONS, POSITIONS), float("-inf")).triu(1), persistent=False)

    def forward(self, input_ids):
        tm = self.text_model
        n = input_ids.shape[1]
        x = tm.embeddings.token_embedding(input_ids) + tm.embeddings.position_embedding.weight[:n]
        mask = self.causal_mask[:n, :n]
        hidden = [x]
        for layer in tm.encoder.layers:
            x = layer(x, mask)
            hidden.append(x)
        last = tm.final_layer_norm(x)
        # The end-of-text token has the largest id (CLIP's vocabulary order), as transformers pools.
        pooled = last[torch.arange(last.shape[0]), input_ids.to(torch.int64).argmax(dim=-1)]
        if self.text_projection is not None:
            pooled = self.text_projection(pooled)
        return (last, pooled, *hidden)


# --- VAE decoder ---------------------------------------------------------------------------------
class VAEAttention(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.group_norm = nn.GroupNorm(32, ch, eps=1e-6)
        self.to_q, self.to_k, self.to_v = nn.Linear(ch, ch), nn.Linear(ch, ch), nn.Linear(ch, ch)
        self.to_out = nn.ModuleList([nn.Linear(ch, ch)])

    def forward(self, x):
        b, c, h, w = x.shape
        t = self.group_norm(x).reshape(b, c, h * w).transpose(1, 2)
        q, k, v = self.to_q(t), self.to_k(t), self.to_v(t)
        a = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * c ** -0.5, dim=-1)
        return self.to_out[0](torch.matmul(a, v)).transpose(1, 2).reshape(b, c, h, w) + x


class _VAEMid(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.attentions = nn.ModuleList([VAEAttention(ch)])
        self.resnets = nn.ModuleList([ResnetBlock2D(ch, ch, None, eps=1e-6), ResnetBlock2D(ch, ch, None, eps=1e-6)])


class _Decoder(nn.Module):
    def __init__(self, block_out_channels, layers_per_block, latent_channels):
        super().__init__()
        rev = list(reversed(block_out_channels))
        self.conv_in = nn.Conv2d(latent_channels, rev[0], 3, padding=1)
        self.mid_block = _VAEMid(rev[0])
        self.up_blocks = nn.ModuleList()
        for i, cout in enumerate(rev):
            cin = rev[max(i - 1, 0)]
            block = nn.Module()
            block.resnets = nn.ModuleList([ResnetBlock2D(cin if j == 0 else cout, cout, None, eps=1e-6) for j in range(layers_per_block + 1)])
            if i < len(rev) - 1:
                block.upsamplers = nn.ModuleList([Upsample2D(cout)])
            self.up_blocks.append(block)
        self.conv_norm_out = nn.GroupNorm(32, rev[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(rev[-1], 3, 3, padding=1)


class VAEDecoder(nn.Module):
    """AutoencoderKL.decode as optimum exports vae_decoder: post_quant_conv, then the decoder."""

    def __init__(self, block_out_channels, layers_per_block, latent_channels):
        super().__init__()
        self.post_quant_conv = nn.Conv2d(latent_channels, latent_channels, 1)
        self.decoder = _Decoder(block_out_channels, layers_per_block, latent_channels)

    def forward(self, latent_sample):
        d = self.decoder
        x = d.conv_in(self.post_quant_conv(latent_sample))
        x = d.mid_block.resnets[1](d.mid_block.attentions[0](d.mid_block.resnets[0](x)))
        for block in d.up_blocks:
            for resnet in block.resnets:
                x = resnet(x)
            if hasattr(block, "upsamplers"):
                x = block.upsamplers[0](x)
        return d.conv_out(F.silu(d.conv_norm_out(x)))


def parameter_count(module):
    return sum(p.numel() for p in module.parameters())
