"""The official JiT's module layout (LTH14/JiT model_jit.py, denoiser.py,
util/misc.py; facts in docs/interop.md), for the checkpoint
interop tests: a `Denoiser` whose state dict has the official names and
shapes (`net.` prefix, conv patch embedding, [1, L, D] in-context table,
the frozen `net.pos_embed` parameter), registered in the official order,
and `save_official` writing checkpoint-last.pth as main_jit.py does.

The maths is jit_ref.py's (the two agree, interop.md), but the patch
embedding runs as the official convolutions and the tables come from the
official shapes, so a mapping error in scripts/jit_interop.py changes the
output. Nothing here reads the interop script.
"""

import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jit_ref  # noqa: E402


class BottleneckPatchEmbed(nn.Module):
    """Conv(C -> d', kernel p, stride p, no bias) then Conv(d' -> D, 1x1)."""

    def __init__(self, C, p, bottleneck, D):
        super().__init__()
        self.proj1 = nn.Conv2d(C, bottleneck, kernel_size=p, stride=p, bias=False)
        self.proj2 = nn.Conv2d(bottleneck, D, kernel_size=1, stride=1, bias=True)

    def forward(self, x):
        return self.proj2(self.proj1(x)).flatten(2).transpose(1, 2)


class OfficialAttention(jit_ref.Attention):
    """The official Attention registers q_norm and k_norm before qkv (which
    decides the optimizer's order); the maths is jit_ref's."""

    def __init__(self, D, H):
        nn.Module.__init__(self)
        self.H, self.hd = H, D // H
        self.q_norm = jit_ref.RMSNorm(self.hd)
        self.k_norm = jit_ref.RMSNorm(self.hd)
        self.qkv = nn.Linear(D, 3 * D, bias=True)
        self.proj = nn.Linear(D, D, bias=True)
        self.proj_drop = nn.Dropout(0.0)
        self.sla2 = None


def official_block(cfg):
    blk = jit_ref.JiTBlock(cfg)
    blk.attn = OfficialAttention(cfg.hidden, cfg.heads)   # keeps its place after norm1
    return blk


class OfficialFinalLayer(jit_ref.FinalLayer):
    """Official (DiT) order: norm_final, linear, adaLN_modulation."""

    def __init__(self, cfg):
        nn.Module.__init__(self)
        D = cfg.hidden
        self.norm_final = jit_ref.RMSNorm(D)
        self.linear = nn.Linear(D, cfg.patch * cfg.patch * cfg.in_channels, bias=True)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 2 * D, bias=True))


class OfficialJiT(nn.Module):
    """Registration order as the official model: own parameters first
    (pos_embed frozen, in_context_posemb), then t_embedder, y_embedder,
    x_embedder, blocks, final_layer."""

    def __init__(self, cfg: jit_ref.JiTConfig):
        super().__init__()
        self.cfg = cfg
        D, g, L = cfg.hidden, cfg.grid, cfg.in_context_len
        self.pos_embed = nn.Parameter(torch.from_numpy(jit_ref.pos_table_2d(D, g)).float()[None],
                                      requires_grad=False)
        self.in_context_posemb = nn.Parameter(torch.zeros(1, L, D))
        self.t_embedder = jit_ref.TimestepEmbedder(D)
        self.y_embedder = jit_ref.LabelEmbedder(cfg.num_classes, D)
        self.x_embedder = BottleneckPatchEmbed(cfg.in_channels, cfg.patch, cfg.bottleneck, D)
        self.blocks = nn.ModuleList([official_block(cfg) for _ in range(cfg.depth)])
        self.final_layer = OfficialFinalLayer(cfg)
        hd = cfg.head_dim
        for name, n_prefix in (("rope", 0), ("rope_ic", L)):
            ang = jit_ref.rope_angles(hd, g, n_prefix)
            self.register_buffer(name + "_cos", torch.from_numpy(np.cos(ang)), persistent=False)
            self.register_buffer(name + "_sin", torch.from_numpy(np.sin(ang)), persistent=False)

    def forward(self, img, t, y):
        cfg, dt = self.cfg, img.dtype
        x = self.x_embedder(img) + self.pos_embed.to(dt)
        y_emb = self.y_embedder(y.long())
        sc = F.silu(self.t_embedder(t.to(dt)) + y_emb)
        cos, sin = self.rope_cos.to(dt), self.rope_sin.to(dt)
        for i, blk in enumerate(self.blocks):
            if cfg.in_context_len > 0 and i == cfg.in_context_start:
                x = torch.cat([y_emb[:, None, :] + self.in_context_posemb, x], dim=1)
                cos, sin = self.rope_ic_cos.to(dt), self.rope_ic_sin.to(dt)
            x = blk(x, sc, cos, sin)
        if cfg.in_context_len > 0:
            x = x[:, cfg.in_context_len:]
        return jit_ref.unpatchify(self.final_layer(x, sc), cfg.patch, cfg.in_channels)


class Denoiser(nn.Module):
    """The official wrapper: state-dict keys net.<name>."""

    def __init__(self, cfg):
        super().__init__()
        self.net = OfficialJiT(cfg)

    def forward(self, img, t, y):
        return self.net(img, t, y)


def official_param_groups(model, weight_decay):
    """util/misc.py add_weight_decay: 1-D tensors and biases undecayed
    (group 0), the rest decayed (group 1); frozen ones skipped."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim == 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


@torch.no_grad()
def randomize(model, seed, scale=1.0):
    """Random weights of the fixture's magnitudes (make_fixture.fixture_std),
    keyed by the name without `net.` and without the official reshapes."""
    import make_fixture
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        n = name[len("net."):]
        flat = (p.shape[0], int(np.prod(p.shape[1:]))) if p.ndim == 4 else tuple(p.shape)
        if n == "in_context_posemb":
            flat = tuple(p.shape[1:])
        std, off = make_fixture.fixture_std(n, flat, model.net.cfg.hidden)
        p.copy_((torch.randn(p.shape, generator=g) * std * scale + off).to(p.dtype))


@torch.no_grad()
def update_ema(ema_params, source_params, decay):
    """One official EMA update (LTH14/JiT denoiser.py, Denoiser.update_ema):
    in place, in the tensors' dtype (float32), on every parameter the lists
    hold, the frozen pos_embed included. The Python float decay and 1 - decay
    are rounded to float32 by the kernels, and the two do not sum to 1, which
    is why an EMA's pos_embed drifts from the table (docs/interop.md)."""
    for targ, src in zip(ema_params, source_params):
        targ.detach().mul_(decay).add_(src, alpha=1 - decay)


def save_official(path, model, ema1, ema2, optimizer, epoch, model_name):
    """checkpoint-last.pth as util/misc.py save_model writes it."""
    torch.save({"model": model.state_dict(), "model_ema1": ema1.state_dict(), "model_ema2": ema2.state_dict(),
                "optimizer": optimizer.state_dict(), "epoch": epoch,
                "args": argparse.Namespace(model=model_name, ema_decay1=0.9999, ema_decay2=0.9996)}, path)


def make_random_checkpoint(cfg, path, seed=7, model_name="jit-tiny", lr=1e-3, betas=(0.9, 0.95), eps=1e-8,
                           weight_decay=0.05):
    """Random weights, three AdamW steps on random gradients (so the moments
    and the step are not trivial), two EMA copies drawn independently; saved
    in the official format. Returns (model, ema1, ema2, optimizer)."""
    import copy
    torch.manual_seed(seed)
    model = Denoiser(cfg)
    randomize(model, seed)
    opt = torch.optim.AdamW(official_param_groups(model, weight_decay), lr=lr, betas=betas, eps=eps)
    for _ in range(3):
        for p in model.parameters():
            if p.requires_grad:
                p.grad = torch.randn_like(p) * 0.1
        opt.step()
    ema1, ema2 = copy.deepcopy(model), copy.deepcopy(model)
    randomize(ema1, seed + 1)
    randomize(ema2, seed + 2)
    save_official(path, model, ema1, ema2, opt, 41, model_name)
    return model, ema1, ema2, opt


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="write a random official-format JiT checkpoint (to try the import)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="jit-tiny", help="a jit_ref named configuration")
    ap.add_argument("--channels", type=int, help="override in_channels")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    c = jit_ref.named_config(a.model)
    if a.channels:
        c.in_channels = a.channels
    make_random_checkpoint(c, a.out, a.seed, a.model)
    print(f"official_jit: random {a.model} ({c.in_channels} channels) in the official format -> {a.out}")
