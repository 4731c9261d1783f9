/* kernels/cpu/cpu.h — the CPU backend's kernels: the op table ops_cpu and
 * the cpu_* kernels behind it (declared from core/op_list.h, which states
 * the contract every kernel follows), and the helpers the kernels share.
 * OpenMP across rows, OpenBLAS sgemm for matrix products. Reductions are
 * written so the result does not depend on thread timing: a run is
 * bit-reproducible for a given thread count. */
#ifndef KERNELS_CPU_H
#define KERNELS_CPU_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/op_table.h"

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

/* RMSNorm's statistic of a row: (mean x^2 + eps)^-1/2, the sum in double
 * (norm.c, and the fused norm kernels of fused.c, which must equal it bit
 * for bit). */
static inline float cpu_rms_rstd(const float *x, int C, float eps) {
    double ss = 0.0;
    for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
    return (float)(1.0 / sqrt(ss / C + eps));
}

/* RoPE on one interleaved pair (x0, x1) by the angle with cosine c and sine
 * s, or by its negative when sign = -1 (the backward): rope.c and fused.c. */
static inline void cpu_rope_pair(float *y0, float *y1, float x0, float x1, float c, float s, float sign) {
    float sn = sign * s;
    *y0 = x0 * c - x1 * sn;
    *y1 = x1 * c + x0 * sn;
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

/* The kernels of the op table, one cpu_<name> per entry of core/op_list.h
 * (its signature and contract there), gathered into ops_cpu by ops_cpu.c.
 * Each lives in the file of its kind: linear.c, norm.c (rmsnorm, layernorm),
 * rope.c, elementwise.c (modulate, gated_add, swiglu, silu, gelu, add_rows,
 * add, chunk, dropout, accumulate), attention.c (qkv_split, attention),
 * image.c (patchify, unpatchify, resize_bicubic), embed.c (timestep_embed,
 * embedding, incontext_*), sla2.c and sla2_stats.c (sla2_*), loss.c (vloss,
 * mse, cosine), classify.c (xent, mean_tokens, unfold), vision.c (relu,
 * maxpool2, lpips_dist). */
#define OP(ret, op, params) ret cpu_##op params;
#include "core/op_list.h"
#undef OP

/* The CPU backend's op table (kernels/cpu/backend_cpu.c's Backend holds it;
 * tests call it as the reference). */
extern const OpTable ops_cpu;

/* sla2.c and sla2_stats.c, outside the table: the path a call takes
 * (SLA2_CPU_BLOCKS, _DENSE or _GATHER; core/op_table.h): the one asked for,
 * else gather for a hard mask and blocks for a soft one. With gather, 1 when
 * its linear branch takes the quadratic form. */
int sla2_cpu_path(const Sla2Dims *dm);
int sla2_cpu_linear_quadratic(const Sla2Dims *dm);
/* Diagnostics from a finished forward (CPU memory) into the caller's scratch
 * from cpu_sla2_stats_scratch (B*H*(12+N) floats; core_free() it); the op
 * table's entry cpu_sla2_stats is this with its own scratch. */
float *cpu_sla2_stats_scratch(const Sla2Dims *dm);
void cpu_sla2_stats_with_scratch(Sla2Stats *st, float *scratch, const float *out, const Sla2Saved *sv,
                                 const float *q, const float *k, const float *v, const float *alpha_logit,
                                 const Sla2Dims *dm);

#endif
