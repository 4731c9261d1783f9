/* train/model/jit.h — the JiT diffusion transformer (Li & He, "Back to Basics"),
 * built from core ops exactly as docs/jit.md states, with the official code's lines.
 *
 * x_hat = jit_forward(z, t, y): a class-conditional ViT on raw pixels with a
 * bottleneck patch embedding, adaLN-Zero blocks (qk-norm, 2D RoPE, SwiGLU),
 * and 32 in-context class tokens that join the sequence at block
 * `in_context_start`. Parameter names follow the PyTorch reference
 * (tests/reference/jit_ref.py) so checkpoints read the same in h5py. */
#ifndef TRAIN_MODEL_JIT_H
#define TRAIN_MODEL_JIT_H

#include <stdint.h>

#include "core/graph.h"
#include "core/ops.h"
#include "core/params.h"

#define JIT_TIME_FEATURES 256
#define JIT_MAX_DEPTH 64
#define JIT_SLA2_ALPHA_INIT 2.1972246f /* logit(0.9): alpha starts at 0.9 */

typedef struct JitConfig {
    char name[32];
    int img_size, in_channels, patch;
    int depth, hidden, heads, bottleneck;
    int in_context_len, in_context_start;
    int num_classes;
    float dropout; /* in blocks depth/4 <= i < 3*depth/4 only */
    /* SLA2 attention (docs/sla2.md); names as users know them from the seeds */
    int use_sla2;
    float sla2_topk_ratio;           /* initial ratio; the scheduler changes it between steps */
    int sla2_block_q, sla2_block_k;  /* "sla2_compression_ratio" sets both */
    int sla2_feature_map;            /* Sla2FeatureMap */
    int sla2_enable_qat;             /* initial QAT switch */
    int sla2_from_layer;             /* hybrid mode: SLA2 in blocks >= this (when no list) */
    int sla2_n_layers;               /* > 0: SLA2 exactly in sla2_layers[0..n) */
    int sla2_layers[JIT_MAX_DEPTH];
    /* PixelGen's REPA projector (set from the losses section by the config:
     * repa_dim 0 = none): Linear D->D, SiLU, Linear D->D, SiLU, Linear
     * D->repa_dim on the tokens entering block repa_layer */
    int repa_dim, repa_layer;
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

/* Does block i use SLA2 under this configuration? */
int jit_layer_uses_sla2(const JitConfig *cfg, int i);

typedef struct JitBlock {
    Tensor *norm1, *qkv_w, *qkv_b, *q_norm, *k_norm, *proj_w, *proj_b;
    Tensor *sla2_proj_q, *sla2_proj_k, *sla2_alpha; /* NULL in full-attention blocks */
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
    /* REPA's projector repa_proj.{0,2,4} (PixelGen's diffusion_trainer.proj.0.{0,2,4}); NULL without */
    Tensor *repa_w[3], *repa_b[3];
    Tensor *cap_hidden; /* the image tokens entering block repa_layer, from the last forward with capture_hidden */
    Tensor pos_table;        /* fixed 2D sin-cos table [tokens, hidden], no gradient; on the params' device */
    /* SLA2 state that callbacks change between steps without rebuilding */
    float sla2_topk[JIT_MAX_DEPTH]; /* current top-k ratio per block */
    int sla2_qat;                   /* QAT forward on/off */
    int sla2_soft;                  /* soft top-k (router training, stage 1) */
    Sla2Stats *sla2_stats;          /* [depth * heads]: filled by a forward with collect_stats */
    /* q, k, v of every SLA2 block from the last forward with capture_qkv */
    Tensor *cap_q[JIT_MAX_DEPTH], *cap_k[JIT_MAX_DEPTH], *cap_v[JIT_MAX_DEPTH];
    float *rope_cos, *rope_sin; /* [tokens, head_dim/2] angles of the image tokens; on the params' device */
} JitModel;

/* Register the parameters only (names, shapes, initialisers): enough to count. */
void jit_register(JitModel *m, const JitConfig *cfg);
/* Register, allocate, initialise from `seed` and build the fixed tables. */
void jit_build(JitModel *m, const JitConfig *cfg, uint64_t seed);
/* The same buffers placed straight in be's memory, uninitialised (the
 * memory plan runs the model on counted memory: core/plan_mem.h). */
void jit_build_planned(JitModel *m, const JitConfig *cfg, const Backend *be);
/* The official JiT recipe's weight-decay set (util/misc.py add_weight_decay:
 * every parameter with two or more dimensions): this project's set (weight
 * matrices) plus the class-embedding table and the in-context position
 * embedding. SLA2's router projections, which the official model does not
 * have, stay undecayed. Before the optimiser's state is made. */
void jit_use_official_decay_set(JitModel *m);
void jit_free(JitModel *m);
/* Move the parameters (params_to_device) and the fixed tables (position
 * embedding, RoPE angles) to device d, once, after building and loading on
 * the host; the model then runs on a Graph of that device. The CPU is a
 * no-op. */
void jit_to_device(JitModel *m, const Backend *be);

/* Recomputation (train.recompute; core/recompute.h): what the forward drops
 * and backward recomputes. attention: each attention's internals (the qkv
 * projection, the split heads, q/k norms and RoPE, what the attention or
 * SLA2 kernel saves: the probabilities on the CPU, the log-sum-exp and
 * SLA2's branches on a GPU), keeping its projected output; block: each
 * transformer block's activations, keeping only its input and output. */
typedef enum { JIT_RECOMPUTE_NONE = 0, JIT_RECOMPUTE_ATTENTION = 1, JIT_RECOMPUTE_BLOCK = 2 } JitRecompute;

/* What one forward does beyond computing x_hat (all off: a plain forward). */
typedef struct JitForwardOpts {
    bool collect_stats;  /* SLA2 blocks fill m->sla2_stats (QuantizedAttentionMonitor) */
    bool capture_qkv;    /* SLA2 blocks keep q, k, v in m->cap_q/k/v (stage-1 distillation) */
    bool full_attention; /* SLA2 blocks compute full attention (the original model, stage 1) */
    bool capture_hidden; /* m->cap_hidden = the image tokens [B, N, D] entering block repa_layer */
    int recompute;       /* JitRecompute (not with capture_qkv, whose tensors it would free) */
} JitForwardOpts;

/* z [B, C, H, W] noisy images, t [B] in (0,1), y [B] class ids (num_classes =
 * the null class) -> x_hat [B, C, H, W]. opts: NULL for a plain forward. */
Tensor *jit_forward(JitModel *m, Graph *g, Tensor *z, Tensor *t, const int *y, const JitForwardOpts *opts);

/* REPA's projector on captured tokens h [B, N, D] -> [B, N, repa_dim]. */
Tensor *jit_repa_project(JitModel *m, Graph *g, Tensor *h);

/* Top-k ratio of SLA2 block `layer` (-1: every SLA2 block). */
void jit_sla2_set_topk(JitModel *m, int layer, float ratio);
void jit_sla2_set_qat(JitModel *m, int on);
void jit_sla2_set_soft(JitModel *m, int on);
/* The SLA2 settings block i runs with now. */
Sla2Config jit_sla2_config(const JitModel *m, int i);

/* Stage-1 router distillation for block `layer`: MSE between full attention
 * and SLA2 (soft top-k) on the q, k, v captured by the last forward
 * (JitForwardOpts.capture_qkv); differentiable in the block's proj_q, proj_k, alpha. */
Tensor *jit_sla2_distill_loss(JitModel *m, Graph *g, int layer);

/* Load parameters by name from another store (e.g. a full-attention model
 * into a JiT-SLA2 model). Parameters absent from src keep their initial
 * values (SLA2 routers: identity, alpha: 0.9); returns how many. Shapes must
 * agree. Reads src's host copy (params_pull it first when it is on a
 * device) and writes m's host copy, then uploads it (params_push). */
int jit_load_params(JitModel *m, const ParamStore *src);

#endif
