"""DINOv2 ViT-B/14 in plain PyTorch: the numerical reference for the C
network of train/losses/dinov2.c, written from docs/pixelgen.md ("PixelGen's
definitions") with the public state_dict key names (dinov2_vitb14_pretrain.pth), so a
state_dict saved from it is what the converter reads.

  Phi(v), v in [0, 1] (B, 3, H, W):
    ImageNet normalisation, then bicubic resize to 14*grid (align_corners
    False, no antialias); 14x14 patch conv; CLS token; the 37x37 position
    grid resampled with scale_factor (grid + 0.1) / 37 (interpolate_offset
    0.1); 12 pre-norm blocks x + ls1 * attn(norm1(x)), x + ls2 * mlp(norm2(x))
    (LayerNorm eps 1e-6, exact GELU, 12 heads, softmax(q k^T / sqrt(hd)) v);
    the final LayerNorm; CLS dropped -> (B, grid^2, D).

No register tokens, no drop path, no dropout (the hub's dinov2_vitb14).
Run with Debian's interpreter (/usr/bin/python3: torch, h5py).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
DEPTH, HEADS, PATCH, POS_GRID = 12, 12, 14, 37


class LayerScale(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((d,), 0.1))

    def forward(self, x):
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        B, N, D = x.shape
        hd = D // HEADS
        qkv = self.qkv(x).reshape(B, N, 3, HEADS, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(hd), dim=-1)
        return self.proj((a @ v).transpose(1, 2).reshape(B, N, D))


class Mlp(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.attn = Attention(d)
        self.ls1 = LayerScale(d)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = Mlp(d)
        self.ls2 = LayerScale(d)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.proj = nn.Conv2d(3, d, PATCH, PATCH)


class Dinov2(nn.Module):
    """width: 768 for ViT-B/14 (a divisor of it for reduced tests)."""

    def __init__(self, width=768):
        super().__init__()
        d = width
        self.cls_token = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, POS_GRID * POS_GRID + 1, d) * 0.02)
        self.mask_token = nn.Parameter(torch.zeros(1, d))  # in the public file, unused
        self.patch_embed = PatchEmbed(d)
        self.blocks = nn.ModuleList(Block(d) for _ in range(DEPTH))
        self.norm = nn.LayerNorm(d, eps=1e-6)

    def forward(self, v, grid):
        """v: images in [0, 1]; grid: output tokens per side (the input is
        resized to 14 * grid, 224 for PixelGen's 256 px)."""
        mean = torch.tensor(MEAN).view(1, 3, 1, 1)
        std = torch.tensor(STD).view(1, 3, 1, 1)
        x = (v - mean) / std
        x = F.interpolate(x, size=(PATCH * grid, PATCH * grid), mode="bicubic", align_corners=False)
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        d = x.shape[-1]
        grid_pos = self.pos_embed[:, 1:].reshape(1, POS_GRID, POS_GRID, d).permute(0, 3, 1, 2)
        s = (grid + 0.1) / POS_GRID
        grid_pos = F.interpolate(grid_pos, scale_factor=(s, s), mode="bicubic", align_corners=False)
        assert grid_pos.shape[-1] == grid
        pos = torch.cat([self.pos_embed[:, :1], grid_pos.permute(0, 2, 3, 1).reshape(1, grid * grid, d)], dim=1)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + pos
        for b in self.blocks:
            x = b(x)
        return self.norm(x)[:, 1:]


def random_model(width=768, seed=0):
    """Random weights at the scales of the C network's stand-in (LayerScale
    0.1; every other tensor random, so each key matters)."""
    torch.manual_seed(seed)
    m = Dinov2(width)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("gamma"):
                p.uniform_(0.05, 0.2)
            elif name.startswith("norm") or ".norm" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * torch.randn_like(p))
    for p in m.parameters():
        p.requires_grad_(False)
    return m.eval()
