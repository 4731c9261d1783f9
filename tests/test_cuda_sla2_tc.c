/* tests/test_cuda_sla2_tc.c — SLA2 in BF16 mode, whose sparse branch runs
 * on the tensor-core kernels block-sparse (sla2_tc.cu through
 * attention_tc_*.cu), against the CPU op: forward (out, LSE, O_s, O_l, the
 * mask) and every gradient the op has under a hard mask (q, k, v,
 * alpha_logit; proj_q and proj_k get none and must stay untouched), at head
 * dims 64, 80, 128, N = 1, 63, 96, 288, 1024 and top-k 0.15, 0.5, 1.0, with
 * blocks of 32 (the JiT configs) and mixed 16/64 blocks.
 *
 * Tolerance, from bf16's precision, as test_cuda_attn_tc.c derives it for
 * full attention (attn_bounds.c): q, k, v and dout are rounded to bf16 on
 * the host, so the router (fp32 on both sides) picks the same blocks and
 * the kernels' operand conversion is exact; the remaining error is P and dS
 * rounded to bf16, D taken from the forward's O_s, and dO_s = alpha dout
 * rounded to bf16 by the kernels (alpha dout is not a bf16 value: its
 * rounding adds u |dO_s| to dV's, D's and dP's errors). The bound uses the
 * sparse branch's own P and dS, recomputed here from the CPU's mask and LSE
 * (P = 0 outside the selected blocks) with dO_s = alpha dout; O_l (the
 * linear forward's bf16 products, sla2_linear_tc.cu) gets
 * sla2_linear_bound's, out alpha times O_s's bound plus (1 - alpha) times
 * O_l's, the gradients the sparse share's bound (the linear backward is
 * fp32 on both sides, O_l recomputed in fp32: its differences are summation
 * order, inside the 1e-5 max|ref| term), alpha_logit's gradient
 * alpha (1 - alpha) sum |dout| eO_s (loose: a sum of absolute values), and
 * then tightly: the GPU's dalpha must equal the sum over its own saved O_s
 * and O_l to fp32 summation (1e-5 of the sum of magnitudes). Breaks tried
 * (each fails): the transposed list built from a mask row instead of a
 * column (dK 1.1e5x, dV 7.5e4x their bounds), key block 0 added to every
 * query block's list (out 400x, dQ 38x); key block 0 summed into every
 * query block's linear H_i (O_l 1.3x to inf its bound), the denominator
 * taken from the neighbouring column (O_l 1e7x).
 *
 * The default suite runs a subset of the grid (about 30 s emulated in all,
 * tests/CMakeLists.txt); SLA2_TC_FULL=1 in the environment runs every
 * (d, N, top-k) combination (45 cases, about 2 minutes under the emulator). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_bounds.h"
#include "core/ops.h"
#include "cuda_check.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cuda/ops_cuda.h"

#define CPU ops_cpu
#define GPU ops_cuda

TestSuite(sla2_tc, .init = tc_setup, .fini = tc_teardown);

/* A random offset per (pair, block, channel) added to every token of the
 * block (then rounded to bf16 again): pooled means of plain uniform inputs
 * are all near 0, so the router's probabilities are nearly uniform and
 * their top-k has near-ties (a mask that can differ by an ulp); with block
 * offsets the scores spread as a trained model's do. */
static void block_offsets(Arr *x, int BH, int N, int d, int bs, unsigned seed) {
    const int nb = (N + bs - 1) / bs;
    float *off = malloc(sizeof(float) * (size_t)nb * d);
    for (int p = 0; p < BH; p++) {
        for (int i = 0; i < nb * d; i++) {
            seed = seed * 1664525u + 1013904223u;
            off[i] = (float)(seed >> 8) / 16777216.0f * 2.0f - 1.0f;
        }
        for (int n = 0; n < N; n++)
            for (int c = 0; c < d; c++) {
                float *e = &x->h[((size_t)p * N + n) * d + c];
                *e = bf16_round(*e + off[(n / bs) * d + c]);
            }
    }
    free(off);
    arr_upload(x);
}

static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

/* The sparse branch's P and dS ([BH, N, N]) from the CPU's mask, LSE and O_s,
 * and dO_s = alpha dout ([B, N, H*d]) into dos. */
static void sparse_p_ds(float *P, float *dS, float *dos, const Sla2Dims *dm, const float *q, const float *k,
                        const float *v, const float *mask, const float *lse, const float *os, const float *dout,
                        const float *al) {
    const int B = dm->B, H = dm->H, N = dm->N, d = dm->d;
    const double scale = 1.0 / sqrt((double)d);
    for (size_t i = 0; i < (size_t)B * N * H * d; i++) dos[i] = (float)(sigm(al[(i / d) % H]) * dout[i]);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const size_t bh = (size_t)b * H + h, t0 = bh * N * d;
            for (int a = 0; a < N; a++) {
                const float *g = dos + ((size_t)b * N + a) * H * d + (size_t)h * d;
                double D = 0;
                for (int c = 0; c < d; c++) D += (double)g[c] * os[t0 + (size_t)a * d + c];
                for (int j = 0; j < N; j++) {
                    const size_t pi = bh * N * N + (size_t)a * N + j;
                    const float m = mask[(bh * dm->nq + a / dm->block_q) * dm->nk + j / dm->block_k];
                    if (m == 0.0f) {
                        P[pi] = dS[pi] = 0.0f;
                        continue;
                    }
                    double s = 0, dp = 0;
                    for (int c = 0; c < d; c++) {
                        s += (double)q[t0 + (size_t)a * d + c] * k[t0 + (size_t)j * d + c];
                        dp += (double)g[c] * v[t0 + (size_t)j * d + c];
                    }
                    const double p = exp(s * scale - lse[bh * N + a]);
                    P[pi] = (float)p, dS[pi] = (float)(p * (dp - D));
                }
            }
        }
}

/* [B, N, H*d] bound -> [B, H, N, d] times alpha_h (O_s's bound in o_s's layout). */
static double *to_bhnd(const double *e, const float *al, int B, int H, int N, int d, int with_alpha) {
    double *r = malloc(sizeof(double) * (size_t)B * H * N * d);
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++)
            for (int h = 0; h < H; h++)
                for (int c = 0; c < d; c++)
                    r[(((size_t)b * H + h) * N + n) * d + c] =
                        e[(((size_t)b * N + n) * H + h) * d + c] * (with_alpha ? sigm(al[h]) : 1.0);
    return r;
}

static void check_sla2_tc(int B, int H, int N, int d, int bq, int bk, float ratio, int fm) {
    Sla2Dims dm = {.B = B, .H = H, .N = N, .d = d, .block_q = bq, .block_k = bk, .nq = (N + bq - 1) / bq,
                   .nk = (N + bk - 1) / bk, .feature_map = fm, .tau = 0.1f};
    dm.k_sel = sla2_k_select(ratio, dm.nk);
    const size_t nt = (size_t)B * H * N * d, nb = (size_t)B * H * dm.nq * dm.nk, nr = (size_t)B * H * N;
    const size_t dd = (size_t)d * d;
    float *wsh = malloc(sizeof(float) * CPU.sla2_workspace_floats(&dm));
    float *kept = malloc(sizeof(float) * (CPU.sla2_saved_floats(&dm) + 1));
    Arr wsd = arr_nan(GPU.sla2_workspace_floats(&dm));
    Arr out = arr_nan(nt), mask = arr_nan(nb), pc = arr_nan(nb), lse = arr_nan(nr), os = arr_nan(nt), ol = arr_nan(nt);
    Sla2Saved svh = {mask.h, pc.h, lse.h, os.h, NULL, ol.h, kept};
    Sla2Saved svd = {mask.d, pc.d, lse.d, os.d, NULL, ol.d, NULL};
    Arr q, k, v, pq, pk, al;
    for (int attempt = 0;; attempt++) {
        q = arr_rand_bf16(nt, -2, 2), k = arr_rand_bf16(nt, -2, 2), v = arr_rand_bf16(nt, -1, 1);
        block_offsets(&q, B * H, N, d, bq, 1000 + attempt), block_offsets(&k, B * H, N, d, bk, 2000 + attempt);
        pq = arr_rand(dd, -0.3f / sqrtf((float)d), 0.3f / sqrtf((float)d));
        pk = arr_rand(dd, -0.3f / sqrtf((float)d), 0.3f / sqrtf((float)d));
        al = arr_rand(H, 1.5f, 2.5f);
        for (int i = 0; i < d; i++) pq.h[i * d + i] += 1.0f, pk.h[i * d + i] += 1.0f;
        arr_upload(&pq), arr_upload(&pk);
        CPU.sla2_fwd(out.h, &svh, wsh, q.h, k.h, v.h, pq.h, pk.h, al.h, &dm);
        if (sla2_topk_gap(pc.h, B * H * dm.nq, dm.nk, dm.k_sel) > 1e-5) break;
        cr_assert(attempt < 20, "no inputs without a near-tie in the top-k after 20 draws");
    }
    GPU.sla2_fwd(out.d, &svd, wsd.d, q.d, k.d, v.d, pq.d, pk.d, al.d, &dm);

    Arr dout = arr_rand_bf16(nt, -1, 1);
    float *P = malloc(sizeof(float) * nr * N), *dS = malloc(sizeof(float) * nr * N), *dos = malloc(sizeof(float) * nt);
    sparse_p_ds(P, dS, dos, &dm, q.h, k.h, v.h, mask.h, lse.h, os.h, dout.h, al.h);
    Bounds e = attn_bounds(P, dS, q.h, k.h, v.h, dos, 1, B, H, N, d);
    printf("sla2 tc B=%d H=%d N=%d d=%d blocks %d/%d k=%d/%d\n", B, H, N, d, bq, bk, dm.k_sel, dm.nk);

    float *gm = arr_download(&mask);
    cr_expect(memcmp(gm, mask.h, nb * sizeof(float)) == 0, "N=%d d=%d: the hard masks differ", N, d);
    free(gm);
    double *eos = to_bhnd(e.o, al.h, B, H, N, d, 0), *eout = malloc(sizeof(double) * nt);
    double *eol = sla2_linear_bound(&dm, q.h, k.h, v.h, mask.h, ol.h);
    for (int b = 0; b < B; b++) /* out = alpha O_s + (1 - alpha) O_l */
        for (int n = 0; n < N; n++)
            for (int h = 0; h < H; h++)
                for (int c = 0; c < d; c++) {
                    const size_t i = (((size_t)b * N + n) * H + h) * d + c, j = (((size_t)b * H + h) * N + n) * d + c;
                    const double a = sigm(al.h[h]);
                    eout[i] = a * e.o[i] + (1.0 - a) * eol[j];
                }
    expect_within(&out, eout, "out", N, d);
    expect_within(&os, eos, "o_s", N, d);
    expect_within(&lse, NULL, "lse", N, d);
    expect_within(&ol, eol, "o_l", N, d);
    { /* out is the combination of the GPU's own O_s and O_l (the sparse kernel's epilogue), to an ulp or two */
        float *go = arr_download(&out), *gs = arr_download(&os), *gl = arr_download(&ol);
        size_t bad = 0, first = 0;
        for (int b = 0; b < B; b++)
            for (int n = 0; n < N; n++)
                for (int h = 0; h < H; h++)
                    for (int c = 0; c < d; c++) {
                        const size_t i = (((size_t)b * N + n) * H + h) * d + c, j = (((size_t)b * H + h) * N + n) * d + c;
                        const float a = 1.0f / (1.0f + expf(-al.h[h])), want = a * gs[j] + (1.0f - a) * gl[j];
                        if (!(fabsf(go[i] - want) <= 1e-6f * (fabsf(gs[j]) + fabsf(gl[j])) + 1e-30f) && !bad++) first = i;
                    }
        cr_expect(bad == 0, "N=%d d=%d: %zu outputs are not alpha O_s + (1 - alpha) O_l of the GPU's own branches "
                  "(first %zu)", N, d, bad, first);
        free(go), free(gs), free(gl);
    }

    /* backward: gradients start at random values; dproj get none (hard mask) */
    const float G = 0.1f;
    Arr g0[6] = {arr_rand(nt, -G, G), arr_rand(nt, -G, G), arr_rand(nt, -G, G),
                 arr_rand(dd, -G, G), arr_rand(dd, -G, G), arr_rand(H, -G, G)};
    Arr gg[6];
    for (int t = 0; t < 6; t++) gg[t] = arr_copy(&g0[t]);
    CPU.sla2_bwd(gg[0].h, gg[1].h, gg[2].h, gg[3].h, gg[4].h, gg[5].h, wsh, dout.h, &svh, q.h, k.h, v.h, pq.h, pk.h,
                 al.h, &dm);
    dev_poison(wsd.d, wsd.n); /* backward must not rely on what forward left there */
    GPU.sla2_bwd(gg[0].d, gg[1].d, gg[2].d, gg[3].d, gg[4].d, gg[5].d, wsd.d, dout.d, &svd, q.d, k.d, v.d, pq.d,
                 pk.d, al.d, &dm);
    expect_within(&gg[0], e.dq, "dq", N, d);
    expect_within(&gg[1], e.dk, "dk", N, d);
    expect_within(&gg[2], e.dv, "dv", N, d);
    for (int t = 3; t < 5; t++)
        cr_expect(same_bits(&gg[t], &g0[t]), "N=%d d=%d: a router gradient changed under a hard mask", N, d);
    /* alpha_logit: the CPU's value within the first-order bound, and the GPU's
     * own sum alpha (1 - alpha) sum dout (o_s - o_l) over its saved O_s, O_l
     * (a tight check of that kernel, whatever O_s's rounding) */
    double *eal = calloc(H, sizeof(double));
    float *gos = arr_download(&os), *gol = arr_download(&ol), *gda = arr_download(&gg[5]);
    for (int h = 0; h < H; h++) {
        const double a = sigm(al.h[h]);
        double own = 0, mag = 0;
        for (int b = 0; b < B; b++)
            for (int n = 0; n < N; n++)
                for (int c = 0; c < d; c++) {
                    const size_t i = (((size_t)b * N + n) * H + h) * d + c, j = (((size_t)b * H + h) * N + n) * d + c;
                    eal[h] += fabs((double)dout.h[i]) * e.o[i] * a * (1.0 - a);
                    own += (double)dout.h[i] * (gos[j] - gol[j]), mag += fabs((double)dout.h[i] * (gos[j] - gol[j]));
                }
        own = g0[5].h[h] + own * a * (1.0 - a);
        cr_expect(fabs(gda[h] - own) <= 1e-5 * mag * a * (1.0 - a) + 1e-6,
                  "N=%d d=%d: dalpha_logit[%d] %.9g is not the sum over the GPU's own O_s, O_l (%.9g)", N, d, h,
                  gda[h], own);
    }
    expect_within(&gg[5], eal, "dalpha", N, d);
    free(gos), free(gol), free(gda);
    free(P), free(dS), free(dos), free(eos), free(eout), free(eol), free(eal), free(wsh), free(kept);
    free(e.o), free(e.dq), free(e.dk), free(e.dv);
}

#define SOFTMAX SLA2_PHI_SOFTMAX
#define ELU SLA2_PHI_ELU

static int full_grid(void) {
    const char *s = getenv("SLA2_TC_FULL");
    return s && strcmp(s, "1") == 0;
}

/* The default set: each head dim, each N, each top-k at least once; blocks
 * of 32 (JiT) and the 16/64 tiles; several (b, h) pairs where N is small. */
Test(sla2_tc, hd64_small) {
    check_sla2_tc(2, 2, 1, 64, 32, 32, 1.0f, SOFTMAX);
    check_sla2_tc(2, 2, 63, 64, 16, 16, 0.5f, ELU);
    check_sla2_tc(1, 2, 96, 64, 64, 16, 0.15f, SOFTMAX);
}
Test(sla2_tc, hd80_n288) {
    check_sla2_tc(1, 1, 288, 80, 32, 32, 0.15f, SOFTMAX);
    check_sla2_tc(1, 1, 288, 80, 16, 64, 0.5f, ELU); /* 18 query blocks of 16, 5 key blocks of 64 */
}
Test(sla2_tc, hd128_n96) { check_sla2_tc(1, 2, 96, 128, 32, 32, 0.5f, ELU); }
Test(sla2_tc, hd64_n1024) { check_sla2_tc(1, 1, 1024, 64, 32, 32, 0.15f, SOFTMAX); }
/* JIT_CUDA_ATTN_BWD=atomic: dQ added with fp32 atomics in the dK/dV kernel, over the transposed lists. */
Test(sla2_tc, hd64_atomic_dq) {
    setenv("JIT_CUDA_ATTN_BWD", "atomic", 1);
    check_sla2_tc(1, 2, 96, 64, 32, 16, 0.5f, SOFTMAX);
    unsetenv("JIT_CUDA_ATTN_BWD");
}
Test(sla2_tc, hd64_n288_dense) { check_sla2_tc(1, 1, 288, 64, 32, 32, 1.0f, SOFTMAX); }

/* SLA2_TC_FULL=1: every (d, N, top-k) of the grid at blocks of 32. */
Test(sla2_tc, full_grid) {
    if (!full_grid()) return;
    const int ds[] = {64, 80, 128}, Ns[] = {1, 63, 96, 288, 1024};
    const float ks[] = {0.15f, 0.5f, 1.0f};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 5; b++)
            for (int c = 0; c < 3; c++) check_sla2_tc(1, Ns[b] > 96 ? 1 : 2, Ns[b], ds[a], 32, 32, ks[c], SOFTMAX);
}
