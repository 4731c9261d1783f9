/* train/jit.h — the JiT diffusion transformer (Li & He, "Back to Basics"),
 * built from core ops exactly as ../shared/spec/jit.md states.
 *
 * x_hat = jit_forward(z, t, y): a class-conditional ViT on raw pixels with a
 * bottleneck patch embedding, adaLN-Zero blocks (qk-norm, 2D RoPE, SwiGLU),
 * and 32 in-context class tokens that join the sequence at block
 * `in_context_start`. Parameter names follow the PyTorch reference
 * (tests/reference/jit_ref.py) so checkpoints read the same in h5py. */
#ifndef TRAIN_JIT_H
#define TRAIN_JIT_H

#include <stdint.h>

#include "core/graph.h"
#include "core/params.h"

#define JIT_TIME_FEATURES 256

typedef struct JitConfig {
    char name[32];
    int img_size, in_channels, patch;
    int depth, hidden, heads, bottleneck;
    int in_context_len, in_context_start;
    int num_classes;
    float dropout; /* in blocks depth/4 <= i < 3*depth/4 only */
    /* derived by jit_config_finish */
    int head_dim, mlp_hidden, grid, tokens;
} JitConfig;

/* Fill *cfg with a named configuration: JiT-B/16, JiT-L/16, JiT-H/16 (256 px),
 * JiT-B/32, JiT-L/32, JiT-H/32 (512 px), jit-tiny (32 px, 1 channel). Returns
 * 0, or -1 for an unknown name. */
int jit_config_named(const char *name, JitConfig *cfg);
/* The known names, comma-separated, for error messages. */
const char *jit_config_list(void);
/* Compute derived sizes; stop with a message naming the bad field. */
void jit_config_finish(JitConfig *cfg);

typedef struct JitBlock {
    Tensor *norm1, *qkv_w, *qkv_b, *q_norm, *k_norm, *proj_w, *proj_b;
    Tensor *norm2, *w12_w, *w12_b, *w3_w, *w3_b, *ada_w, *ada_b;
} JitBlock;

typedef struct JitModel {
    JitConfig cfg;
    ParamStore params;
    Tensor *proj1_w, *proj2_w, *proj2_b;
    Tensor *t_mlp0_w, *t_mlp0_b, *t_mlp2_w, *t_mlp2_b;
    Tensor *y_table, *ctx_pos;
    JitBlock *blocks;
    Tensor *final_norm, *final_ada_w, *final_ada_b, *final_w, *final_b;
    Tensor pos_table;        /* fixed 2D sin-cos table [tokens, hidden], no gradient */
    float *rope_cos, *rope_sin; /* [tokens, head_dim/2] angles of the image tokens */
} JitModel;

/* Register the parameters only (names, shapes, initialisers): enough to count. */
void jit_register(JitModel *m, const JitConfig *cfg);
/* Register, allocate, initialise from `seed` and build the fixed tables. */
void jit_build(JitModel *m, const JitConfig *cfg, uint64_t seed);
void jit_free(JitModel *m);

/* z [B, C, H, W] noisy images, t [B] in (0,1), y [B] class ids (num_classes =
 * the null class) -> x_hat [B, C, H, W]. */
Tensor *jit_forward(JitModel *m, Graph *g, Tensor *z, Tensor *t, const int *y);

#endif
