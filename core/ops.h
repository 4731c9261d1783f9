/* core/ops.h — the differentiable ops the models are written with.
 *
 * Each op checks its shapes, allocates its output from the step arena, runs
 * the forward kernel of the graph's backend (core/op_table.h) and, when an
 * input needs a gradient, records a backward on the tape. Ops are coarse
 * and fused where that saves memory traffic (linear = matmul + bias). */
#ifndef CORE_OPS_H
#define CORE_OPS_H

#include "core/graph.h"

/* --- ops_nn.c --- */
Tensor *op_linear(Graph *g, Tensor *x, Tensor *w, Tensor *b); /* x [..., IC], w [OC, IC], b [OC] or NULL */
Tensor *op_rmsnorm(Graph *g, Tensor *x, Tensor *w, float eps); /* over the last dimension */
Tensor *op_silu(Graph *g, Tensor *x);
Tensor *op_swiglu(Graph *g, Tensor *x);                        /* [..., 2h] -> [..., h] */
Tensor *op_modulate(Graph *g, Tensor *x, Tensor *shift, Tensor *scale); /* x [B,N,C]; shift, scale [B,C] */
Tensor *op_gated_add(Graph *g, Tensor *x, Tensor *gate, Tensor *y);     /* x + gate[B,C] * y */
Tensor *op_add(Graph *g, Tensor *a, Tensor *b);                         /* same shapes */
Tensor *op_add_rows(Graph *g, Tensor *x, Tensor *y);                    /* x [B,N,C] + y [N,C] */
Tensor *op_chunk(Graph *g, Tensor *x, int k, int j);                    /* j-th of k column blocks of [B, k*C] */
Tensor *op_dropout(Graph *g, Tensor *x, float p);                       /* identity unless g->training */

/* --- ops_attn.c --- */
/* qkv [B, N, 3*H*hd] -> q, k, v [B, H, N, hd] */
void op_qkv_split(Graph *g, Tensor *qkv, int H, Tensor **q, Tensor **k, Tensor **v);
/* 2D RoPE on [B, H, N, hd]; the first n_ctx tokens are not rotated; cos/sin
 * are [(N - n_ctx), hd/2] tables owned by the caller (constant). */
Tensor *op_rope(Graph *g, Tensor *x, const float *cos, const float *sin, int n_ctx);
/* JiT's 2D RoPE tables for a grid x grid image, [grid^2, hd/2] each (host
 * memory): pairs [0, hd/4) turn by row * f_k, pairs [hd/4, hd/2) by
 * col * f_k, f_k = 10000^(-2k / (hd/2)). */
void rope_2d_tables(float *cos, float *sin, int grid, int head_dim);
/* softmax(q k^T / sqrt(hd)) v, heads merged: -> [B, N, H*hd] */
Tensor *op_attention(Graph *g, Tensor *q, Tensor *k, Tensor *v);

/* --- ops_fused.c: fused element-wise chains (core/op_list.h) --- */
/* modulate(rmsnorm(r, w), shift, scale) with r = x + gate * y (x, y [B,N,C],
 * gate [B,C]; *res = r) when gate is given, else r = x (gate, y, res NULL) */
Tensor *op_norm_modulate(Graph *g, Tensor *x, Tensor *gate, Tensor *y, Tensor *w, Tensor *shift, Tensor *scale,
                         float eps, Tensor **res);
/* rope(rmsnorm(.)) of q and k from op_qkv_split, and v, in one op */
void op_qkv_norm_rope(Graph *g, Tensor *qkv, int H, Tensor *qw, Tensor *kw, const float *cos, const float *sin,
                      int n_ctx, float eps, Tensor **q, Tensor **k, Tensor **v);

/* --- ops_sla2.c --- */
/* SLA2 settings of one attention layer (docs/sla2.md). */
typedef struct Sla2Config {
    int block_q, block_k; /* clamped to N when larger */
    float topk_ratio;     /* in (0, 1] */
    int feature_map;      /* Sla2FeatureMap */
    int soft;             /* soft top-k: router training (stage 1) */
    int qat;              /* INT8/FP8 emulation of the sparse branch (hard selection only) */
    float tau;            /* soft top-k temperature, 0.1 */
    int cpu_path;         /* SLA2_CPU_AUTO: the CPU picks its path; SLA2_CPU_BLOCKS / _DENSE / _GATHER (tests) */
} Sla2Config;

/* Check a configuration; returns NULL when valid, else a message. */
const char *sla2_config_error(const Sla2Config *c);
/* k = max(1, round(topk_ratio * nk)), at most nk */
int sla2_k_select(float topk_ratio, int nk);
/* q, k, v [B, H, N, d] -> [B, N, H*d]. proj_q, proj_k [d, d], alpha_logit [H].
 * When stats is given (an array of H), the per-head diagnostics of this call
 * are written there (costs a dense attention pass; CPU only). */
Tensor *op_sla2(Graph *g, Tensor *q, Tensor *k, Tensor *v, Tensor *proj_q, Tensor *proj_k, Tensor *alpha_logit,
                const Sla2Config *cfg, Sla2Stats *stats);
Tensor *op_mse(Graph *g, Tensor *a, Tensor *b); /* mean((a - b)^2) */

/* --- ops_diffusion.c --- */
Tensor *op_patchify(Graph *g, Tensor *img, int p);                      /* [B,C,H,W] -> [B, N, C*p*p] */
Tensor *op_unpatchify(Graph *g, Tensor *tok, int C, int H, int W, int p); /* [B, N, p*p*C] -> [B,C,H,W] */
Tensor *op_timestep_embed(Graph *g, Tensor *t, int dim);                /* [B] -> [B, dim] */
Tensor *op_embedding(Graph *g, Tensor *table, const int *idx, int B);   /* rows of table [V, C] */
/* samples idx[0..k) (host, in [0, B)) of x [B, ...] -> [k, ...]; backward adds back into them */
Tensor *op_select_rows(Graph *g, Tensor *x, const int *idx, int k);
Tensor *op_incontext_prepend(Graph *g, Tensor *x, Tensor *yemb, Tensor *pos); /* -> [B, L+N, C] */
Tensor *op_incontext_strip(Graph *g, Tensor *x, int L);                 /* drop the first L tokens */
Tensor *op_vloss(Graph *g, Tensor *xhat, Tensor *x, Tensor *t);         /* scalar JiT v-loss */

/* --- ops_classify.c --- */
/* mean over the batch of softmax cross-entropy: logits [B, K], labels [B] in [0, K) -> [1] */
Tensor *op_cross_entropy(Graph *g, Tensor *logits, const int *labels);
Tensor *op_mean_tokens(Graph *g, Tensor *x);                            /* [B, N, C] -> [B, C] */

/* --- ops_vit.c: DINOv2's ops (PixelGen's REPA and P-DINO) --- */
Tensor *op_layernorm(Graph *g, Tensor *x, Tensor *w, Tensor *b, float eps); /* over the last dimension */
Tensor *op_gelu(Graph *g, Tensor *x);                                       /* exact (erf) GELU */
/* cosine similarity over the last dimension (norms clamped at 1e-8): [..., C] x2 -> [...] */
Tensor *op_cosine(Graph *g, Tensor *a, Tensor *b);
/* bicubic resize of img [B, C, H, W] to [B, C, Ho, Wo] as PyTorch's
 * interpolate (align_corners False, no antialias); the source steps ry, rx
 * are H/Ho, W/Wo when <= 0, else as given (a scale factor's 1/scale). */
Tensor *op_resize_bicubic(Graph *g, Tensor *img, int Ho, int Wo, float ry, float rx);

/* --- ops_vision.c: convolutional networks (VGG16, LPIPS) --- */
/* overlapping k x k windows at stride s, zero padding pad: [B,C,H,W] -> [B, Ho*Wo, C*k*k] */
Tensor *op_unfold(Graph *g, Tensor *img, int k, int s, int pad);
/* the same windows of a channels-last image x [B, H*W, C] (tokens), in the
 * same (channel, row, col) order: a conv weight [OC, C, k, k] is then the
 * linear weight [OC, C*k*k] of op_linear(op_unfold_hwc(x), w, b) */
Tensor *op_unfold_hwc(Graph *g, Tensor *x, int H, int W, int k, int s, int pad);
Tensor *op_relu(Graph *g, Tensor *x);
Tensor *op_maxpool2(Graph *g, Tensor *x, int H, int W);                 /* [B, H*W, C] -> [B, (H/2)*(W/2), C] */
/* The FID Inception-v3's ops, forward only (they stop when asked to record
 * a gradient): rectangular kh x kw windows at stride s, zero padding ph
 * rows and pw columns, of x [B, H*W, C] -> [B, Ho*Wo, C*kh*kw] (a conv
 * weight [OC, C, kh, kw] is the linear weight); k x k pooling at stride s,
 * padding pad (avg: mean without the padding, else max) -> [B, Ho*Wo, C];
 * parts [B, N, C_i] side by side -> [B, N, sum C_i]; TensorFlow 1.x's
 * bilinear resize [B, C, H, W] -> [B, C, Ho, Wo] (kernels/bilinear_tf.h). */
Tensor *op_unfold2d_hwc(Graph *g, Tensor *x, int H, int W, int kh, int kw, int s, int ph, int pw);
Tensor *op_pool2d(Graph *g, Tensor *x, int H, int W, int k, int s, int pad, int avg);
Tensor *op_concat_channels(Graph *g, Tensor *const *parts, int n);
Tensor *op_resize_bilinear_tf(Graph *g, Tensor *img, int Ho, int Wo);
/* LPIPS's distance of one layer (core/op_list.h lpips_dist): a, f [B, N, C],
 * w [C] (no gradient) -> [B] */
Tensor *op_lpips_distance(Graph *g, Tensor *a, Tensor *f, Tensor *w);

/* Shared context of the op implementations: tensors and sizes a backward needs. */
typedef struct OpCtx {
    Tensor *out;
    Tensor *in[4];
    Tensor *saved; /* a kernel's saved intermediate (rstd, probabilities) */
    const float *table[2];
    int dim[6];
    float f;
    uint64_t u; /* e.g. a dropout stream */
} OpCtx;

OpCtx *op_ctx(Graph *g, Tensor *out);

#endif
