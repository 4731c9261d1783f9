/* train/losses/dinov2.h — DINOv2 ViT-B/14 in the framework's own ops: the
 * frozen encoder of PixelGen's REPA target and P-DINO loss
 * (docs/pixelgen.md: "DINOv2 ViT-B/14" and PixelGen's definitions).
 *
 * Phi(image) for images in [-1, 1]: (x + 1) / 2, ImageNet normalisation,
 * bicubic resize to 14 * grid pixels (PyTorch's, align_corners False), the
 * 14 x 14 patch embedding, the CLS token, the position table resampled from
 * 37 x 37 with source step 37 / (grid + 0.1) (DINOv2's interpolate_offset),
 * 12 pre-norm blocks with LayerScale and exact GELU, the final LayerNorm,
 * CLS dropped: [B, grid^2, D]. The map to [0, 1] and the normalisation are
 * folded into the patch embedding's weights: both are per-channel affine,
 * and bicubic taps sum to one, so resizing first gives the same values.
 *
 * Weights: group dinov2/ of an HDF5 file from scripts/pixelgen_weights.py
 * (the public dinov2_vitb14_pretrain.pth's keys: cls_token, pos_embed,
 * patch_embed.proj.*, blocks.N.{norm1,attn.qkv,attn.proj,ls1,norm2,mlp.fc1,
 * mlp.fc2,ls2}.*, norm.*), or a reduced width for tests (every width divided
 * by the same power of two, 12 heads and 12 blocks kept; read from
 * cls_token). The network is frozen: gradients flow to the image only. */
#ifndef TRAIN_LOSSES_DINOV2_H
#define TRAIN_LOSSES_DINOV2_H

#include "core/backend.h"
#include "core/graph.h"
#include "core/params.h"

#define DINO_DEPTH 12
#define DINO_HEADS 12
#define DINO_WIDTH 768 /* the embedding width of ViT-B */
#define DINO_PATCH 14
#define DINO_POS_GRID 37 /* the position table's grid (518 / 14) */
#define DINO_LN_EPS 1e-6f

typedef struct DinoBlock {
    Tensor *norm1_w, *norm1_b, *qkv_w, *qkv_b, *proj_w, *proj_b, *ls1;
    Tensor *norm2_w, *norm2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b, *ls2;
} DinoBlock;

typedef struct DinoNet {
    ParamStore w;    /* the public tensors (frozen) */
    ParamStore prep; /* derived by dino_prepare: folded patch embedding, position tables */
    int div, dim;    /* dim = 768 / div */
    int grid;        /* output tokens grid x grid; the input is resized to 14 * grid (0: not prepared) */
    DinoBlock blk[DINO_DEPTH];
    Tensor *norm_w, *norm_b;
    /* from prep: the folded patch embedding as a linear weight [dim, 3*14*14]
     * and bias [dim], cls_token + pos_embed[0] [1, dim], the patches' position
     * table [grid^2, dim] */
    Tensor *pe_w, *pe_b, *cls_pos, *patch_pos;
} DinoNet;

/* The network at 1/div width (div a power of two, 1..64), weights unset. */
void dino_init(DinoNet *n, int div);
/* The width divisor of a DINOv2 file (from cls_token's shape). */
int dino_file_div(const char *path, const char *what);
/* Load group dinov2/ (what: the config key, for messages); stops naming the
 * file, the key and the dataset on a missing or misshapen dataset. */
void dino_load(DinoNet *n, const char *path, const char *what);
/* Random weights (tests, the tiny configuration's stand-in): linear and
 * patch weights N(0, 1/sqrt(fan_in)), biases 0.02 N(0,1), LayerNorms 1 and
 * 0, LayerScale 0.1, cls and position 0.02 N(0,1). */
void dino_init_random(DinoNet *n, uint64_t seed);
/* Derive the tables for output grid `grid` (the folded patch embedding, the
 * resampled position table) and move everything to the backend's memory.
 * Once, after loading. */
void dino_prepare(DinoNet *n, int grid, const Backend *be);
void dino_free(DinoNet *n);

/* Phi of images [B, 3, H, W] in [-1, 1] -> [B, grid^2, dim]. */
Tensor *dino_features(Graph *g, const DinoNet *n, Tensor *img);

#endif
