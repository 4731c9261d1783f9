/* kernels/cpu/cpu.h — the CPU kernels behind ops_cpu (see kernels/ops.h for
 * the contract every kernel follows). OpenMP across rows, OpenBLAS sgemm for
 * matrix products. Reductions are written so the result does not depend on
 * thread timing: a run is bit-reproducible for a given thread count. */
#ifndef KERNELS_CPU_H
#define KERNELS_CPU_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Inside a parallel region: this thread's share [lo, hi) of n items. Used for
 * reductions where each thread owns whole output columns, so the sum order
 * is fixed and the result reproducible. */
static inline void cpu_thread_range(int n, int *lo, int *hi) {
#ifdef _OPENMP
    int nt = omp_get_num_threads(), id = omp_get_thread_num();
#else
    int nt = 1, id = 0;
#endif
    *lo = (int)((long)n * id / nt);
    *hi = (int)((long)n * (id + 1) / nt);
}

/* e^x for the kernels' hot loops: no library call, so loops over it
 * vectorise (glibc's expf does not without -ffast-math). x = n ln2 + r with
 * |r| <= ln2/2 (Cody-Waite, two-part ln2), e^r by its degree-7 Taylor
 * polynomial (truncation below 5e-9), 2^n from the exponent bits. Within a
 * few float ulps of expf (test_core: core/cpu_expf_is_accurate, bound
 * 4e-7 relative); exactly 0 below -87.33 (where expf is denormal or 0, so
 * masked scores of -inf give 0), +inf above 88.72, NaN stays NaN. */
static inline float cpu_expf(float x) {
    float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest by 1.5 * 2^23: no call */
    float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int e = (int)(n >= -126.0f && n < 128.0f ? n : 0.0f) + 127;
    union {
        uint32_t u;
        float f;
    } scale = {.u = (uint32_t)e << 23};
    float y = p * scale.f;
    y = x < -87.33654f ? 0.0f : y;
    y = x > 88.72283f ? INFINITY : y;
    return x != x ? x : y;
}

/* Sums in double over float rows, in four interleaved lanes: the lanes
 * break the chain of dependent additions (and let the compiler use vector
 * registers) while keeping double accumulation; the order is fixed, so the
 * result is reproducible. */
static inline double cpu_sum_f64(const float *x, int n) {
    double a[4] = {0.0, 0.0, 0.0, 0.0};
    int i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) a[j] += (double)x[i + j];
    for (; i < n; i++) a[0] += (double)x[i];
    return (a[0] + a[1]) + (a[2] + a[3]);
}
static inline double cpu_dot_f64(const float *x, const float *y, int n) {
    double a[4] = {0.0, 0.0, 0.0, 0.0};
    int i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) a[j] += (double)x[i + j] * y[i + j];
    for (; i < n; i++) a[0] += (double)x[i] * y[i];
    return (a[0] + a[1]) + (a[2] + a[3]);
}

/* max of x[0..n), n >= 1, in eight interleaved lanes (the compiler turns
 * them into one vector register; a single running max is a chain of
 * dependent compares). A NaN element is skipped, as by `x > m ? x : m`. */
static inline float cpu_max_f32(const float *x, int n) {
    if (n < 8) {
        float m = x[0];
        for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
        return m;
    }
    float a[8];
    for (int j = 0; j < 8; j++) a[j] = x[j];
    int i = 8;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) a[j] = x[i + j] > a[j] ? x[i + j] : a[j];
    for (; i < n; i++) a[0] = x[i] > a[0] ? x[i] : a[0];
    float m = a[0];
    for (int j = 1; j < 8; j++) m = a[j] > m ? a[j] : m;
    return m;
}

/* Threads a parallel region may use, and this thread's index in it: for
 * per-thread scratch sized before the region. */
static inline int cpu_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
static inline int cpu_thread_num(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* linear.c */
void cpu_linear_fwd(float *out, const float *inp, const float *w, const float *b, int M, int IC, int OC);
void cpu_linear_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w, int M,
                    int IC, int OC);
/* norm.c */
void cpu_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int rows, int C, float eps);
void cpu_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w, const float *rstd,
                     int rows, int C);
/* rope.c */
void cpu_rope_fwd(float *out, const float *inp, const float *cos, const float *sin, int BH, int N, int hd, int n_ctx);
void cpu_rope_bwd(float *dinp, const float *dout, const float *cos, const float *sin, int BH, int N, int hd,
                  int n_ctx);
/* elementwise.c */
void cpu_modulate_fwd(float *out, const float *x, const float *shift, const float *scale, int B, int N, int C);
void cpu_modulate_bwd(float *dx, float *dshift, float *dscale, const float *dout, const float *x, const float *scale,
                      int B, int N, int C);
void cpu_gated_add_fwd(float *out, const float *x, const float *gate, const float *y, int B, int N, int C);
void cpu_gated_add_bwd(float *dx, float *dgate, float *dy, const float *dout, const float *gate, const float *y, int B,
                       int N, int C);
void cpu_swiglu_fwd(float *out, const float *inp, int M, int h);
void cpu_swiglu_bwd(float *dinp, const float *dout, const float *inp, int M, int h);
void cpu_silu_fwd(float *out, const float *inp, size_t n);
void cpu_silu_bwd(float *dinp, const float *dout, const float *inp, size_t n);
void cpu_add_rows_fwd(float *out, const float *x, const float *y, int B, int N, int C);
void cpu_add_rows_bwd(float *dx, float *dy, const float *dout, int B, int N, int C);
void cpu_add_fwd(float *out, const float *a, const float *b, size_t n);
void cpu_chunk_fwd(float *out, const float *x, int B, int k, int C, int j);
void cpu_chunk_bwd(float *dx, const float *dout, int B, int k, int C, int j);
void cpu_dropout_fwd(float *out, const float *x, size_t n, float p, uint64_t seed, uint64_t stream);
void cpu_dropout_bwd(float *dx, const float *dout, size_t n, float p, uint64_t seed, uint64_t stream);
void cpu_accumulate(float *dst, const float *src, size_t n);
/* attention.c */
void cpu_qkv_split_fwd(float *q, float *k, float *v, const float *qkv, int B, int N, int H, int hd);
void cpu_qkv_split_bwd(float *dqkv, const float *dq, const float *dk, const float *dv, int B, int N, int H, int hd);
void cpu_attention_fwd(float *out, float *att, const float *q, const float *k, const float *v, int B, int H, int N,
                       int hd);
void cpu_attention_bwd(float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *att,
                       const float *q, const float *k, const float *v, int B, int H, int N, int hd);
size_t cpu_attention_saved_floats(int B, int H, int N, int hd);
size_t cpu_attention_scratch_floats(int B, int H, int N, int hd);
/* image.c */
void cpu_patchify_fwd(float *out, const float *img, int B, int C, int H, int W, int p);
void cpu_patchify_bwd(float *dimg, const float *dout, int B, int C, int H, int W, int p);
void cpu_unpatchify_fwd(float *img, const float *tok, int B, int C, int H, int W, int p);
void cpu_unpatchify_bwd(float *dtok, const float *dimg, int B, int C, int H, int W, int p);
/* embed.c */
void cpu_timestep_embed_fwd(float *out, const float *t, int B, int dim);
void cpu_timestep_embed_bwd(float *dt, const float *dout, const float *t, int B, int dim);
void cpu_embedding_fwd(float *out, const float *table, const int *idx, int B, int C);
void cpu_embedding_bwd(float *dtable, const float *dout, const int *idx, int B, int C);
void cpu_incontext_prepend_fwd(float *out, const float *x, const float *yemb, const float *pos, int B, int N, int L,
                               int C);
void cpu_incontext_prepend_bwd(float *dx, float *dyemb, float *dpos, const float *dout, int B, int N, int L, int C);
void cpu_incontext_strip_fwd(float *out, const float *x, int B, int N, int L, int C);
void cpu_incontext_strip_bwd(float *dx, const float *dout, int B, int N, int L, int C);
/* sla2.c, sla2_stats.c */
struct Sla2Dims;
struct Sla2Saved;
struct Sla2Stats;
void cpu_sla2_fwd(float *out, const struct Sla2Saved *sv, float *workspace, const float *q, const float *k,
                  const float *v, const float *Wq, const float *Wk, const float *alpha_logit, const struct Sla2Dims *dm);
/* The path a call takes (SLA2_CPU_BLOCKS, _DENSE or _GATHER; kernels/ops.h):
 * the one asked for, else gather for a hard mask and blocks for a soft one.
 * With gather, 1 when its linear branch takes the quadratic form. */
int sla2_cpu_path(const struct Sla2Dims *dm);
int sla2_cpu_linear_quadratic(const struct Sla2Dims *dm);
size_t cpu_sla2_workspace_floats(const struct Sla2Dims *dm);
size_t cpu_sla2_saved_floats(const struct Sla2Dims *dm);
void cpu_sla2_bwd(float *dq, float *dk, float *dv, float *dWq, float *dWk, float *dalpha_logit, float *workspace,
                  const float *dout, const struct Sla2Saved *sv, const float *q, const float *k, const float *v,
                  const float *Wq, const float *Wk, const float *alpha_logit, const struct Sla2Dims *dm);
/* Diagnostics from a finished forward (CPU memory); scratch from
 * cpu_sla2_stats_scratch (B*H*(12+N) floats; core_free() it). cpu_sla2_stats_op
 * is the op table's entry (its own scratch). */
float *cpu_sla2_stats_scratch(const struct Sla2Dims *dm);
void cpu_sla2_stats_op(struct Sla2Stats *st, const float *out, const struct Sla2Saved *sv, const float *q,
                       const float *k, const float *v, const float *alpha_logit, const struct Sla2Dims *dm);
void cpu_sla2_stats(struct Sla2Stats *st, float *scratch, const float *out, const struct Sla2Saved *sv,
                    const float *q, const float *k, const float *v, const float *alpha_logit,
                    const struct Sla2Dims *dm);
/* loss.c */
void cpu_vloss_fwd(float *loss, const float *xhat, const float *x, const float *t, int B, int per);
void cpu_mse_fwd(float *loss, const float *a, const float *b, size_t n);
void cpu_mse_bwd(float *da, float *db, const float *dloss, const float *a, const float *b, size_t n);
void cpu_vloss_bwd(float *dxhat, const float *dloss, const float *xhat, const float *x, const float *t, int B,
                   int per);
/* classify.c */
void cpu_xent_fwd(float *loss, float *probs, const float *logits, const int *labels, int B, int K);
void cpu_xent_bwd(float *dlogits, const float *dloss, const float *probs, const int *labels, int B, int K);
void cpu_mean_tokens_fwd(float *out, const float *x, int B, int N, int C);
void cpu_mean_tokens_bwd(float *dx, const float *dout, int B, int N, int C);
void cpu_unfold_fwd(float *out, const float *img, int B, int C, int H, int W, int k, int s, int pad, int channels_last);
void cpu_unfold_bwd(float *dimg, const float *dout, int B, int C, int H, int W, int k, int s, int pad,
                    int channels_last);
/* norm.c, elementwise.c, loss.c: the ViT ops of DINOv2 */
void cpu_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, int rows,
                       int C, float eps);
void cpu_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                       const float *mean, const float *rstd, int rows, int C);
void cpu_gelu_fwd(float *out, const float *inp, size_t n);
void cpu_gelu_bwd(float *dinp, const float *dout, const float *inp, size_t n);
void cpu_cosine_fwd(float *out, const float *a, const float *b, int rows, int C);
void cpu_cosine_bwd(float *da, float *db, const float *dout, const float *a, const float *b, int rows, int C);
void cpu_resize_bicubic_fwd(float *out, const float *inp, int P, int Hi, int Wi, int Ho, int Wo, float ry, float rx);
void cpu_resize_bicubic_bwd(float *dinp, const float *dout, int P, int Hi, int Wi, int Ho, int Wo, float ry, float rx);
/* vision.c */
void cpu_relu_fwd(float *out, const float *x, size_t n);
void cpu_relu_bwd(float *dx, const float *dout, const float *out, size_t n);
void cpu_maxpool2_fwd(float *out, const float *x, int B, int H, int W, int C);
void cpu_maxpool2_bwd(float *dx, const float *dout, const float *x, int B, int H, int W, int C);
void cpu_lpips_dist_fwd(float *out, const float *a, const float *f, const float *w, int B, int N, int C);
void cpu_lpips_dist_bwd(float *da, float *df, const float *dout, const float *a, const float *f, const float *w, int B,
                        int N, int C);

#endif
