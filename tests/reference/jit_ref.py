"""JiT (Just image Transformers) in plain PyTorch: the numerical reference for
the C training framework.  Follows docs/jit.md.

Run with Debian's interpreter (/usr/bin/python3: torch 1.13, numpy, h5py).
This module has no CLI; see make_fixture.py (fixtures + --selftest) and
tests/bench/bench_step_torch.py.

Choices that docs/jit.md leaves open, stated here once:
  * Dropout (only when cfg.dropout > 0 and the module is in training mode, only
    in blocks depth//4 <= i < 3*depth//4) is applied
      - to the attention output AFTER the output projection (attn.proj), before
        the gate_msa multiply, and
      - to the SwiGLU hidden silu(a)*b, before w3.
    The fixtures use dropout 0, so nothing numerical depends on this.
  * The fixed 2D sin-cos position table and the RoPE cos/sin tables are
    non-persistent buffers (not parameters, not in state_dict).  They are
    computed in float64 and cast to the activation dtype at use, so a model
    used in float32 and one cast with .double() both see exact tables.
  * The in-context tokens get the identity rotation (angle 0) in RoPE; image
    token k then sits at sequence position in_context_len + k but keeps its own
    (row, col) angles.
  * RMSNorm is computed in the activation dtype (float32 or float64); the
    official "fp32 math" matters only for bf16 runs, which this reference never does.
  * All adaLN linears take the same input sc = silu(c), computed once.
  * SLA2 (docs/sla2.md, sla2_ref.py): with cfg.use_sla2 the blocks in
    cfg.sla2_layers (None = every block) compute q, k, v as full attention does
    (qkv, head split, qk-norm, RoPE) and call sla2_ref.sla2_attention instead
    of softmax attention, then attn.proj.  Such a block owns three more
    parameters, registered right after attn.proj.bias: attn.sla2.proj_q [hd,hd],
    attn.sla2.proj_k [hd,hd] (identity at init) and attn.sla2.alpha_logit [H]
    (log 9 = logit 0.9 at init).  A model without SLA2 blocks is unchanged.
"""

import math
import os
import sys
from dataclasses import dataclass, fields
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sla2_ref  # noqa: E402


# ----------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------

@dataclass
class JiTConfig:
    img_size: int
    in_channels: int
    patch: int
    depth: int
    hidden: int            # D
    heads: int             # H
    bottleneck: int        # d'
    in_context_len: int = 32
    in_context_start: int = 0
    num_classes: int = 1000
    dropout: float = 0.0
    # SLA2 (docs/sla2.md); the defaults keep plain full attention everywhere
    use_sla2: bool = False
    sla2_layers: Optional[Sequence[int]] = None   # None: every block (when use_sla2)
    sla2_block_q: int = 8
    sla2_block_k: int = 8
    sla2_topk_ratio: float = 0.15
    sla2_feature_map: str = "softmax"
    sla2_mode: str = "hard"

    def sla2_blocks(self):
        """Sorted block indices that use SLA2 (empty unless use_sla2)."""
        if not self.use_sla2:
            return []
        if self.sla2_layers is None:
            return list(range(self.depth))
        idx = sorted(set(int(i) for i in self.sla2_layers))
        assert all(0 <= i < self.depth for i in idx), (idx, self.depth)
        return idx

    def uses_sla2(self, i: int) -> bool:
        return i in self.sla2_blocks()

    @property
    def mlp_hidden(self) -> int:
        return int(2 / 3 * 4 * self.hidden)

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def grid(self) -> int:
        return self.img_size // self.patch

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    def as_dict(self):
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def base_dict(self):
        """as_dict() without the sla2_* / use_sla2 fields (the plain JiT fields)."""
        return {k: v for k, v in self.as_dict().items()
                if not (k.startswith("sla2_") or k == "use_sla2")}


_NAMED = {
    # name: (img, C, p, depth, D, H, d', in_context_start, dropout)
    "JiT-B/16": (256, 3, 16, 12, 768, 12, 128, 4, 0.0),
    "JiT-L/16": (256, 3, 16, 24, 1024, 16, 128, 8, 0.0),
    "JiT-H/16": (256, 3, 16, 32, 1280, 16, 256, 10, 0.2),
    "JiT-B/32": (512, 3, 32, 12, 768, 12, 128, 4, 0.0),
    "JiT-L/32": (512, 3, 32, 24, 1024, 16, 128, 8, 0.0),
    "JiT-H/32": (512, 3, 32, 32, 1280, 16, 256, 10, 0.2),
}

NAMED_CONFIGS = list(_NAMED.keys()) + ["jit-tiny"]


def named_config(name: str) -> JiTConfig:
    if name == "jit-tiny":
        return JiTConfig(img_size=32, in_channels=1, patch=4, depth=6, hidden=192,
                         heads=3, bottleneck=32, in_context_len=32,
                         in_context_start=2, num_classes=10, dropout=0.0)
    if name not in _NAMED:
        raise KeyError(f"unknown JiT config {name!r}; known: {NAMED_CONFIGS}")
    img, C, p, depth, D, H, bn, start, drop = _NAMED[name]
    return JiTConfig(img_size=img, in_channels=C, patch=p, depth=depth, hidden=D,
                     heads=H, bottleneck=bn, in_context_len=32,
                     in_context_start=start, num_classes=1000, dropout=drop)


# ----------------------------------------------------------------------------
# fixed tables (float64)
# ----------------------------------------------------------------------------

def _sincos_1d(dim: int, pos: np.ndarray) -> np.ndarray:
    """[sin(pos*w_k) for k<dim/2, cos(pos*w_k) for k<dim/2], w_k = 10000^(-k/(dim/2))."""
    assert dim % 2 == 0
    half = dim // 2
    omega = 1.0 / 10000.0 ** (np.arange(half, dtype=np.float64) / half)
    out = np.einsum("m,d->md", pos.astype(np.float64).reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def pos_table_2d(D: int, g: int) -> np.ndarray:
    """[g*g, D] float64; token index row*g+col; first D/2 channels encode col,
    last D/2 encode row (MAE get_2d_sincos_pos_embed)."""
    assert D % 4 == 0
    idx = np.arange(g * g)
    row, col = idx // g, idx % g
    return np.concatenate([_sincos_1d(D // 2, col), _sincos_1d(D // 2, row)], axis=1)


def rope_angles(hd: int, g: int, n_prefix: int = 0) -> np.ndarray:
    """[n_prefix + g*g, hd/2] float64 angle per (token, pair).  Pair p < hd/4
    uses row*f_p, pair p >= hd/4 uses col*f_{p-hd/4}, f_k = 10000^(-2k/(hd/2)).
    The first n_prefix (in-context) tokens get angle 0 (identity)."""
    assert hd % 4 == 0
    q = hd // 4
    f = 10000.0 ** (-2.0 * np.arange(q, dtype=np.float64) / (hd / 2))
    idx = np.arange(g * g)
    row, col = (idx // g).astype(np.float64), (idx % g).astype(np.float64)
    ang = np.concatenate([row[:, None] * f[None, :], col[:, None] * f[None, :]], axis=1)
    return np.concatenate([np.zeros((n_prefix, hd // 2)), ang], axis=0)


def timestep_features(t: torch.Tensor, dim: int = 256) -> torch.Tensor:
    """[cos(t*f_j) for j<dim/2] ++ [sin(t*f_j)], f_j = exp(-ln(1e4)*j/(dim/2)).
    Frequencies are computed in float64 and cast to t's dtype."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) *
                      torch.arange(half, dtype=torch.float64) / half).to(device=t.device, dtype=t.dtype)
    args = t[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


# ----------------------------------------------------------------------------
# functional pieces
# ----------------------------------------------------------------------------

def rmsnorm(x: torch.Tensor, w: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def modulate(h, shift, scale):
    return h * (1 + scale[:, None]) + shift[:, None]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B,H,N,hd]; cos/sin [N, hd/2]; interleaved pairs (2i, 2i+1)."""
    xs = x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2)
    x0, x1 = xs[..., 0], xs[..., 1]
    y0 = x0 * cos - x1 * sin
    y1 = x1 * cos + x0 * sin
    return torch.stack([y0, y1], dim=-1).reshape(x.shape)


def patchify(img: torch.Tensor, p: int) -> torch.Tensor:
    """[B,C,H,W] -> [B, N, C*p*p], patch flattened (channel, row, col), tokens row-major."""
    B, C, H, W = img.shape
    gh, gw = H // p, W // p
    x = img.reshape(B, C, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(B, gh * gw, C * p * p)


def unpatchify(x: torch.Tensor, p: int, C: int) -> torch.Tensor:
    """[B, N, p*p*C] (per token ordered row-in-patch, col-in-patch, channel) -> [B,C,H,W]."""
    B, N, _ = x.shape
    g = int(round(math.sqrt(N)))
    assert g * g == N
    x = x.reshape(B, g, g, p, p, C)
    x = torch.einsum("nhwpqc->nchpwq", x)
    return x.reshape(B, C, g * p, g * p)


def vloss(x_hat, x, z, t):
    """v = (x - z)/max(1-t, 0.05), v_hat = (x_hat - z)/max(1-t, 0.05);
    mean over batch, channels and pixels of (v - v_hat)^2."""
    d = torch.clamp(1 - t, min=0.05).reshape(-1, *([1] * (x.dim() - 1)))
    v = (x - z) / d
    v_hat = (x_hat - z) / d
    return ((v - v_hat) ** 2).mean()


# ----------------------------------------------------------------------------
# modules (parameter registration order is part of the contract)
# ----------------------------------------------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, dim, device=None, dtype=None):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim, device=device, dtype=dtype))

    def forward(self, x):
        return rmsnorm(x, self.weight)


class PatchEmbed(nn.Module):
    def __init__(self, cfg: JiTConfig, **kw):
        super().__init__()
        self.patch = cfg.patch
        self.proj1 = nn.Linear(cfg.in_channels * cfg.patch ** 2, cfg.bottleneck, bias=False, **kw)
        self.proj2 = nn.Linear(cfg.bottleneck, cfg.hidden, bias=True, **kw)

    def forward(self, img):
        return self.proj2(self.proj1(patchify(img, self.patch)))


class TimestepEmbedder(nn.Module):
    def __init__(self, D, freq_dim=256, **kw):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, D, **kw), nn.SiLU(), nn.Linear(D, D, **kw))

    def forward(self, t):
        return self.mlp(timestep_features(t, self.freq_dim))


class LabelEmbedder(nn.Module):
    def __init__(self, num_classes, D, **kw):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, D, **kw)   # last row: null class

    def forward(self, y):
        return self.embedding_table(y)


SLA2_ALPHA_INIT = math.log(9.0)    # logit(0.9)


class SLA2Params(nn.Module):
    """The SLA2 router (proj_q, proj_k, shared by the heads) and per-head
    alpha logits of one attention layer, plus its (non-learned) settings."""

    def __init__(self, hd, H, cfg: "JiTConfig", device=None, dtype=None):
        super().__init__()
        self.proj_q = nn.Parameter(torch.eye(hd, device=device, dtype=dtype))
        self.proj_k = nn.Parameter(torch.eye(hd, device=device, dtype=dtype))
        self.alpha_logit = nn.Parameter(torch.full((H,), SLA2_ALPHA_INIT, device=device, dtype=dtype))
        self.block_q, self.block_k = cfg.sla2_block_q, cfg.sla2_block_k
        self.topk_ratio = cfg.sla2_topk_ratio
        self.feature_map, self.mode = cfg.sla2_feature_map, cfg.sla2_mode
        assert self.feature_map in sla2_ref.FEATURE_MAPS and self.mode in sla2_ref.MODES

    def forward(self, q, k, v):
        return sla2_ref.sla2_attention(q, k, v, self.proj_q, self.proj_k, self.alpha_logit,
                                       self.block_q, self.block_k, self.topk_ratio,
                                       self.feature_map, self.mode)


class Attention(nn.Module):
    # True: full attention through F.scaled_dot_product_attention (cuDNN /
    # FlashAttention on a GPU) instead of the explicit fp32-logit softmax.
    use_sdpa = False

    def __init__(self, D, H, dropout=0.0, sla2_cfg=None, **kw):
        super().__init__()
        assert D % H == 0
        self.H, self.hd = H, D // H
        self.qkv = nn.Linear(D, 3 * D, bias=True, **kw)
        self.q_norm = RMSNorm(self.hd, **kw)
        self.k_norm = RMSNorm(self.hd, **kw)
        self.proj = nn.Linear(D, D, bias=True, **kw)
        self.proj_drop = nn.Dropout(dropout)
        # registered after proj: its parameters follow attn.proj.bias
        self.sla2 = SLA2Params(self.hd, H, sla2_cfg, **kw) if sla2_cfg is not None else None

    def forward(self, x, cos, sin):
        B, N, D = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.H, self.hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                       # [B,H,N,hd]
        q = self.q_norm(q)
        k = self.k_norm(k)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        if self.sla2 is not None:
            o = self.sla2(q, k, v)                             # [B,N,D], heads merged
            return self.proj_drop(self.proj(o))
        if Attention.use_sdpa:  # the GPU speed anchor (bench_step_torch.py --sdpa), not the parity path
            o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, D)
            return self.proj_drop(self.proj(o))
        logits = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hd))
        a = torch.softmax(logits, dim=-1)
        o = (a @ v).transpose(1, 2).reshape(B, N, D)           # head-major merge
        return self.proj_drop(self.proj(o))


class SwiGLU(nn.Module):
    def __init__(self, D, h, dropout=0.0, **kw):
        super().__init__()
        self.w12 = nn.Linear(D, 2 * h, bias=True, **kw)
        self.w3 = nn.Linear(h, D, bias=True, **kw)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        a, b = self.w12(x).chunk(2, dim=-1)
        return self.w3(self.drop(F.silu(a) * b))


class JiTBlock(nn.Module):
    def __init__(self, cfg: JiTConfig, dropout=0.0, sla2=False, **kw):
        super().__init__()
        D = cfg.hidden
        self.norm1 = RMSNorm(D, **kw)
        self.attn = Attention(D, cfg.heads, dropout, sla2_cfg=(cfg if sla2 else None), **kw)
        self.norm2 = RMSNorm(D, **kw)
        self.mlp = SwiGLU(D, cfg.mlp_hidden, dropout, **kw)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 6 * D, bias=True, **kw))

    def forward(self, x, sc, cos, sin):
        mod = self.adaLN_modulation[1](sc)          # sc = silu(c), shared
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mod.chunk(6, dim=-1)
        x = x + gate_msa[:, None] * self.attn(modulate(self.norm1(x), shift_msa, scale_msa), cos, sin)
        x = x + gate_mlp[:, None] * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x


class FinalLayer(nn.Module):
    def __init__(self, cfg: JiTConfig, **kw):
        super().__init__()
        D, p, C = cfg.hidden, cfg.patch, cfg.in_channels
        self.norm_final = RMSNorm(D, **kw)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 2 * D, bias=True, **kw))
        self.linear = nn.Linear(D, p * p * C, bias=True, **kw)

    def forward(self, x, sc):
        shift, scale = self.adaLN_modulation[1](sc).chunk(2, dim=-1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class JiT(nn.Module):
    def __init__(self, cfg: JiTConfig, device=None, dtype=None):
        super().__init__()
        self.cfg = cfg
        kw = dict(device=device, dtype=dtype)
        D, g, hd, L = cfg.hidden, cfg.grid, cfg.head_dim, cfg.in_context_len
        assert cfg.img_size % cfg.patch == 0 and D % cfg.heads == 0
        assert D % 4 == 0 and hd % 4 == 0

        self.x_embedder = PatchEmbed(cfg, **kw)
        self.t_embedder = TimestepEmbedder(D, **kw)
        self.y_embedder = LabelEmbedder(cfg.num_classes, D, **kw)
        if L > 0:
            self.in_context_posemb = nn.Parameter(torch.zeros(L, D, **kw))
        else:
            self.in_context_posemb = None
        lo, hi = cfg.depth // 4, 3 * cfg.depth // 4
        self.blocks = nn.ModuleList([
            JiTBlock(cfg, dropout=(cfg.dropout if lo <= i < hi else 0.0),
                     sla2=cfg.uses_sla2(i), **kw)
            for i in range(cfg.depth)])
        self.final_layer = FinalLayer(cfg, **kw)

        # fixed tables: float64, non-persistent buffers
        bdev = device if device is not None else "cpu"
        def buf(a):
            return torch.from_numpy(np.ascontiguousarray(a)).to(bdev)
        self.register_buffer("pos_embed", buf(pos_table_2d(D, g)), persistent=False)
        ang0 = rope_angles(hd, g, 0)
        self.register_buffer("rope_cos", buf(np.cos(ang0)), persistent=False)
        self.register_buffer("rope_sin", buf(np.sin(ang0)), persistent=False)
        angL = rope_angles(hd, g, L)
        self.register_buffer("rope_cos_ic", buf(np.cos(angL)), persistent=False)
        self.register_buffer("rope_sin_ic", buf(np.sin(angL)), persistent=False)

    def named_parameters(self, *args, **kwargs):
        """nn.Module yields a module's own parameters before its submodules';
        the C layout wants in_context_posemb right after the class table, so
        move it there.  parameters() goes through this method too."""
        items = list(super().named_parameters(*args, **kwargs))
        names = [n for n, _ in items]
        ic = [i for i, n in enumerate(names) if n.split(".")[-1] == "in_context_posemb"]
        yt = [i for i, n in enumerate(names) if n.endswith("y_embedder.embedding_table.weight")]
        if ic and yt:
            entry = items.pop(ic[0])
            yt = [i for i, (n, _) in enumerate(items) if n.endswith("y_embedder.embedding_table.weight")]
            items.insert(yt[0] + 1, entry)
        return iter(items)

    def forward(self, img_z, t, y):
        cfg = self.cfg
        dt = img_z.dtype
        x = self.x_embedder(img_z) + self.pos_embed.to(dt)
        t_emb = self.t_embedder(t.to(dt))
        y_emb = self.y_embedder(y.long())
        c = t_emb + y_emb
        sc = F.silu(c)

        cos, sin = self.rope_cos.to(dt), self.rope_sin.to(dt)
        has_ic = False
        for i, blk in enumerate(self.blocks):
            if cfg.in_context_len > 0 and i == cfg.in_context_start:
                ic = y_emb[:, None, :] + self.in_context_posemb[None]
                x = torch.cat([ic, x], dim=1)
                cos, sin = self.rope_cos_ic.to(dt), self.rope_sin_ic.to(dt)
                has_ic = True
            x = blk(x, sc, cos, sin)
        if has_ic:
            x = x[:, cfg.in_context_len:]
        x = self.final_layer(x, sc)
        return unpatchify(x, cfg.patch, cfg.in_channels)


# ----------------------------------------------------------------------------
# initialisation (jit.md section 8)
# ----------------------------------------------------------------------------

def _xavier_uniform_(w: torch.Tensor, generator=None):
    fan_out, fan_in = w.shape[0], w.shape[1]
    a = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        w.uniform_(-a, a, generator=generator)


@torch.no_grad()
def init_weights(model: JiT, generator=None):
    """Xavier-uniform for every Linear weight, zero biases; patch-embed weights
    Xavier-uniform on their (already 2D) flattened shape; class table and both
    timestep-MLP weights N(0, 0.02); in-context position vectors N(0, 0.02);
    zeros for every adaLN output Linear and the final Linear; RMSNorm weights 1;
    SLA2 router matrices identity, SLA2 alpha logits log 9 (no random draws)."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            _xavier_uniform_(m.weight, generator)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, RMSNorm):
            m.weight.fill_(1.0)
    _xavier_uniform_(model.x_embedder.proj1.weight, generator)
    _xavier_uniform_(model.x_embedder.proj2.weight, generator)
    model.x_embedder.proj2.bias.zero_()
    model.y_embedder.embedding_table.weight.normal_(0.0, 0.02, generator=generator)
    model.t_embedder.mlp[0].weight.normal_(0.0, 0.02, generator=generator)
    model.t_embedder.mlp[2].weight.normal_(0.0, 0.02, generator=generator)
    if model.in_context_posemb is not None:
        model.in_context_posemb.normal_(0.0, 0.02, generator=generator)
    for blk in model.blocks:
        blk.adaLN_modulation[1].weight.zero_()
        blk.adaLN_modulation[1].bias.zero_()
        if blk.attn.sla2 is not None:
            s = blk.attn.sla2
            s.proj_q.copy_(torch.eye(s.proj_q.shape[0], dtype=s.proj_q.dtype, device=s.proj_q.device))
            s.proj_k.copy_(torch.eye(s.proj_k.shape[0], dtype=s.proj_k.dtype, device=s.proj_k.device))
            s.alpha_logit.fill_(SLA2_ALPHA_INIT)
    model.final_layer.adaLN_modulation[1].weight.zero_()
    model.final_layer.adaLN_modulation[1].bias.zero_()
    model.final_layer.linear.weight.zero_()
    model.final_layer.linear.bias.zero_()
    return model


# ----------------------------------------------------------------------------
# the parameter list as a contract
# ----------------------------------------------------------------------------

def expected_param_shapes(cfg: JiTConfig):
    """[(name, shape)] in the exact registration order the C side uses."""
    D, p, C, bn, hd, h = cfg.hidden, cfg.patch, cfg.in_channels, cfg.bottleneck, cfg.head_dim, cfg.mlp_hidden
    out = [
        ("x_embedder.proj1.weight", (bn, C * p * p)),
        ("x_embedder.proj2.weight", (D, bn)),
        ("x_embedder.proj2.bias", (D,)),
        ("t_embedder.mlp.0.weight", (D, 256)),
        ("t_embedder.mlp.0.bias", (D,)),
        ("t_embedder.mlp.2.weight", (D, D)),
        ("t_embedder.mlp.2.bias", (D,)),
        ("y_embedder.embedding_table.weight", (cfg.num_classes + 1, D)),
    ]
    if cfg.in_context_len > 0:
        out.append(("in_context_posemb", (cfg.in_context_len, D)))
    sla2 = set(cfg.sla2_blocks())
    for i in range(cfg.depth):
        b = f"blocks.{i}."
        out += [
            (b + "norm1.weight", (D,)),
            (b + "attn.qkv.weight", (3 * D, D)),
            (b + "attn.qkv.bias", (3 * D,)),
            (b + "attn.q_norm.weight", (hd,)),
            (b + "attn.k_norm.weight", (hd,)),
            (b + "attn.proj.weight", (D, D)),
            (b + "attn.proj.bias", (D,)),
        ]
        if i in sla2:
            out += [
                (b + "attn.sla2.proj_q", (hd, hd)),
                (b + "attn.sla2.proj_k", (hd, hd)),
                (b + "attn.sla2.alpha_logit", (cfg.heads,)),
            ]
        out += [
            (b + "norm2.weight", (D,)),
            (b + "mlp.w12.weight", (2 * h, D)),
            (b + "mlp.w12.bias", (2 * h,)),
            (b + "mlp.w3.weight", (D, h)),
            (b + "mlp.w3.bias", (D,)),
            (b + "adaLN_modulation.1.weight", (6 * D, D)),
            (b + "adaLN_modulation.1.bias", (6 * D,)),
        ]
    out += [
        ("final_layer.norm_final.weight", (D,)),
        ("final_layer.adaLN_modulation.1.weight", (2 * D, D)),
        ("final_layer.adaLN_modulation.1.bias", (2 * D,)),
        ("final_layer.linear.weight", (p * p * C, D)),
        ("final_layer.linear.bias", (p * p * C,)),
    ]
    return out


def check_param_names(model: JiT):
    got = [(n, tuple(p.shape)) for n, p in model.named_parameters()]
    exp = expected_param_shapes(model.cfg)
    if got != exp:
        bad = next(i for i in range(max(len(got), len(exp)))
                   if i >= len(got) or i >= len(exp) or got[i] != exp[i])
        raise AssertionError(f"parameter list mismatch at index {bad}: got "
                             f"{got[bad] if bad < len(got) else None}, expected "
                             f"{exp[bad] if bad < len(exp) else None} "
                             f"(lengths {len(got)} vs {len(exp)})")


def param_count(cfg: JiTConfig) -> int:
    """Exact trainable parameter count, built on the meta device (no memory)."""
    m = JiT(cfg, device=torch.device("meta"))
    check_param_names(m)
    return sum(p.numel() for p in m.parameters() if p.requires_grad)
