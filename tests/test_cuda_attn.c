/* tests/test_cuda_attn.c — the CUDA attention kernels against their CPU
 * twins: full attention (flash-style, attention.cu) and SLA2 (sla2*.cu),
 * forward and backward, through the ops_cuda table.
 *
 * Harness and conventions of tests/cuda_check.h (shared with test_cuda_ops;
 * its main exits 77 = skipped where there is no GPU):
 * - every output, saved field and workspace starts as NaN (poisoned) on the
 *   GPU side, and the GPU workspace is poisoned again before backward, so an
 *   element not written, or state wrongly carried from forward, fails;
 * - gradients start from the same random nonzero values on both sides:
 *   a kernel that overwrites instead of accumulating is off by O(1);
 * - backward runs once per subset of the gradients asked for (NULL = skip);
 * - relative error = max |gpu - cpu| / max |cpu|: < 1e-5 in FP32 mode,
 *   < 2e-2 in BF16 mode (and BF16 must differ from fp32: operands rounded);
 * - sizes: B = 2, H = 3, N = 53 / 100 / 257 (not multiples of any tile or
 *   block), head dims 16 (padded), 32, 48, 64, 128.
 * SLA2's hard top-k is a discrete choice: the CPU and GPU router scores agree
 * to about an ulp, so the inputs are redrawn until every row's k-th and
 * (k+1)-th router probabilities differ by more than 1e-5; the masks must
 * then be identical, not just close. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "cuda_check.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cuda/ops_cuda.h"

#define CPU ops_cpu
#define GPU ops_cuda

static void setup(void) {
    cuda_init(0);
    cuda_set_precision(CUDA_PREC_FP32);
}

static void teardown(void) {
    cuda_set_precision(CUDA_PREC_FP32);
    arr_free_all();
}

TestSuite(cuda_attn, .init = setup, .fini = teardown);

/* Gradients start at uniform(-G0, G0): nonzero, so overwriting instead of
 * accumulating fails, yet small beside the gradients, so it does not hide
 * their errors in the relative measure. */
#define G0 0.1f

/* ================================================================ attention */

static void check_attention(int B, int H, int N, int hd, CudaPrecision prec, double tol) {
    cuda_set_precision(prec);
    const size_t nt = (size_t)B * H * N * hd, nr = (size_t)B * H * N;
    cr_assert_eq(GPU.attention_saved_floats(B, H, N, hd), nr, "the GPU saves the LSE only");
    Arr q = arr_rand(nt, -2, 2), k = arr_rand(nt, -2, 2), v = arr_rand(nt, -1, 1);
    Arr out = arr_nan(nt), lse = arr_nan(nr);
    float *P = malloc(sizeof(float) * CPU.attention_saved_floats(B, H, N, hd));
    float *scr = malloc(sizeof(float) * CPU.attention_scratch_floats(B, H, N, hd));
    CPU.attention_fwd(out.h, P, q.h, k.h, v.h, B, H, N, hd);
    GPU.attention_fwd(out.d, lse.d, q.d, k.d, v.d, B, H, N, hd);
    EXPECT_CLOSE(out, tol);
    ref_lse(lse.h, q.h, k.h, B * H, N, hd);
    EXPECT_CLOSE(lse, prec == CUDA_PREC_FP32 ? TOL_FP32 : tol);
    if (prec == CUDA_PREC_BF16)
        cr_expect(arr_err(&out) > 1e-6, "BF16 mode gave fp32 results (%.3g): operands not rounded", arr_err(&out));

    Arr dout = arr_rand(nt, -1, 1), dq0 = arr_rand(nt, -G0, G0), dk0 = arr_rand(nt, -G0, G0);
    Arr dv0 = arr_rand(nt, -G0, G0);
    Arr dq = arr_copy(&dq0), dk = arr_copy(&dk0), dv = arr_copy(&dv0); /* the CPU's, on the host side */
    CPU.attention_bwd(dq.h, dk.h, dv.h, scr, dout.h, out.h, P, q.h, k.h, v.h, B, H, N, hd);
    Arr scratch = arr_nan(GPU.attention_scratch_floats(B, H, N, hd)), g0[3] = {dq0, dk0, dv0}, g[3];
    float *want[3] = {dq.h, dk.h, dv.h};
    for (int mask = 1; mask < 8; mask++) {
        /* requested: equal to the CPU's; not requested: untouched */
        attention_bwd_subset(g, mask, g0, want, &scratch, &dout, &out, &lse, &q, &k, &v, B, H, N, hd);
        EXPECT_CLOSE(g[0], tol);
        EXPECT_CLOSE(g[1], tol);
        EXPECT_CLOSE(g[2], tol);
    }
    printf("attention B=%d H=%d N=%d hd=%d %s: out %.2e, lse %.2e\n", B, H, N, hd,
           prec == CUDA_PREC_FP32 ? "fp32" : "bf16", arr_err(&out), arr_err(&lse));
    free(P), free(scr);
}

Test(cuda_attn, attention_fp32_n53_hd32) { check_attention(2, 3, 53, 32, CUDA_PREC_FP32, TOL_FP32); }
Test(cuda_attn, attention_fp32_n100_hd64) { check_attention(2, 3, 100, 64, CUDA_PREC_FP32, TOL_FP32); }
Test(cuda_attn, attention_fp32_n257_hd128) {
    check_attention(2, 3, GPU_OR_EMU(257, 129), 128, CUDA_PREC_FP32, TOL_FP32);
}
Test(cuda_attn, attention_fp32_n128_hd64_whole_tiles) { check_attention(1, 2, 128, 64, CUDA_PREC_FP32, TOL_FP32); }
Test(cuda_attn, attention_fp32_hd48_and_hd16_padded) {
    check_attention(2, 3, 70, 48, CUDA_PREC_FP32, TOL_FP32);
    check_attention(2, 1, 33, 16, CUDA_PREC_FP32, TOL_FP32);
}
Test(cuda_attn, attention_fp32_single_token) { check_attention(2, 3, 1, 64, CUDA_PREC_FP32, TOL_FP32); }
Test(cuda_attn, attention_bf16) {
    check_attention(2, 3, 53, 32, CUDA_PREC_BF16, TOL_BF16);
    check_attention(2, 3, 100, 64, CUDA_PREC_BF16, TOL_BF16);
    check_attention(2, GPU_OR_EMU(3, 1), GPU_OR_EMU(257, 129), 128, CUDA_PREC_BF16, TOL_BF16);
}

Test(cuda_attn, attention_is_deterministic) { expect_attention_deterministic(2, 3, 150, 64); }

Test(cuda_attn, attention_rejects_head_dim_above_128, .exit_code = 1) {
    Arr x = arr_nan(2 * 160), o = arr_nan(2 * 160), l = arr_nan(2);
    GPU.attention_fwd(o.d, l.d, x.d, x.d, x.d, 1, 1, 2, 160);
}

/* ===================================================================== SLA2 */

typedef struct S2Case {
    int N, d, bq, bk;
    float ratio;
    int fm, soft, qat;
} S2Case;

static Sla2Dims s2_dims(const S2Case *c) {
    Sla2Dims dm = {.B = 2, .H = 3, .N = c->N, .d = c->d, .block_q = c->bq, .block_k = c->bk,
                   .nq = (c->N + c->bq - 1) / c->bq, .nk = (c->N + c->bk - 1) / c->bk, .feature_map = c->fm,
                   .soft = c->soft, .qat = c->qat, .tau = 0.1f};
    dm.k_sel = sla2_k_select(c->ratio, dm.nk);
    return dm;
}

typedef struct S2Run {
    Sla2Dims dm;
    Arr q, k, v, pq, pk, al, out, mask, pc, lse, os, osfp, ol;
    Sla2Saved svh, svd;
    float *wsh;  /* CPU workspace */
    float *kept; /* what the CPU's forward keeps for its backward */
    Arr wsd;    /* GPU workspace (device side only is used) */
} S2Run;

/* Inputs (redrawn until the hard top-k has no near-tie), then both forwards. */
static void s2_forward(S2Run *r, const S2Case *c) {
    Sla2Dims dm = r->dm = s2_dims(c);
    const int B = dm.B, H = dm.H, N = dm.N, d = dm.d;
    const size_t nt = (size_t)B * H * N * d, nb = (size_t)B * H * dm.nq * dm.nk, nr = (size_t)B * H * N;
    r->wsh = malloc(sizeof(float) * CPU.sla2_workspace_floats(&dm));
    r->wsd = arr_nan(GPU.sla2_workspace_floats(&dm));
    r->out = arr_nan(nt), r->mask = arr_nan(nb), r->pc = arr_nan(nb), r->lse = arr_nan(nr);
    r->os = arr_nan(nt), r->ol = arr_nan(nt), r->osfp = arr_nan(c->qat ? nt : 1);
    r->kept = malloc(sizeof(float) * (CPU.sla2_saved_floats(&dm) + 1));
    r->svh = (Sla2Saved){r->mask.h, r->pc.h, r->lse.h, r->os.h, c->qat ? r->osfp.h : NULL, r->ol.h, r->kept};
    r->svd = (Sla2Saved){r->mask.d, r->pc.d, r->lse.d, r->os.d, c->qat ? r->osfp.d : NULL, r->ol.d, NULL};
    for (int attempt = 0;; attempt++) {
        r->q = arr_rand(nt, -2, 2), r->k = arr_rand(nt, -2, 2), r->v = arr_rand(nt, -1, 1);
        r->pq = arr_rand((size_t)d * d, -0.3f / sqrtf((float)d), 0.3f / sqrtf((float)d));
        r->pk = arr_rand((size_t)d * d, -0.3f / sqrtf((float)d), 0.3f / sqrtf((float)d));
        r->al = arr_rand(H, 1.5f, 2.5f); /* alpha about 0.8 to 0.92: both branches count */
        for (int i = 0; i < d; i++) r->pq.h[i * d + i] += 1.0f, r->pk.h[i * d + i] += 1.0f;
        arr_upload(&r->pq), arr_upload(&r->pk);
        CPU.sla2_fwd(r->out.h, &r->svh, r->wsh, r->q.h, r->k.h, r->v.h, r->pq.h, r->pk.h, r->al.h, &dm);
        double gap = c->soft ? INFINITY : sla2_topk_gap(r->pc.h, B * H * dm.nq, dm.nk, dm.k_sel);
        if (gap > 1e-5) break;
        cr_assert(attempt < 20, "no inputs without a near-tie in the top-k after 20 draws (gap %.3g)", gap);
    }
    GPU.sla2_fwd(r->out.d, &r->svd, r->wsd.d, r->q.d, r->k.d, r->v.d, r->pq.d, r->pk.d, r->al.d, &dm);
}

static void s2_check_forward(S2Run *r, const S2Case *c, double tol) {
    float *mask = arr_download(&r->mask);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < r->mask.n; i++)
        if (c->soft ? !(fabsf(mask[i] - r->mask.h[i]) <= 1e-5f) : mask[i] != r->mask.h[i]) {
            if (!bad) first = i;
            bad++;
        }
    cr_expect_eq(bad, 0, "SLA2 %s mask: %zu of %zu entries differ (first %zu: gpu %g cpu %g)",
                 c->soft ? "soft" : "hard", bad, r->mask.n, first, mask[first], r->mask.h[first]);
    free(mask);
    EXPECT_CLOSE(r->pc, TOL_FP32); /* the router is fp32/fp64 in both modes */
    EXPECT_CLOSE(r->lse, tol);
    EXPECT_CLOSE(r->os, tol);
    if (c->qat) EXPECT_CLOSE(r->osfp, tol);
    EXPECT_CLOSE(r->ol, tol); /* fp32 except on the tensor-core path (BF16, hard mask: sla2_linear_tc.cu) */
    EXPECT_CLOSE(r->out, tol);
}

/* Backward with gradients starting at random values; `which` bits: dq, dk, dv,
 * router + alpha gradients (the CPU always computes all of them). */
static void s2_check_backward(S2Run *r, const S2Case *c, double tol, int which) {
    Sla2Dims dm = r->dm;
    const size_t nt = (size_t)dm.B * dm.H * dm.N * dm.d, dd = (size_t)dm.d * dm.d;
    Arr dout = arr_rand(nt, -1, 1);
    Arr g0[6] = {arr_rand(nt, -G0, G0), arr_rand(nt, -G0, G0), arr_rand(nt, -G0, G0), arr_rand(dd, -G0, G0),
                 arr_rand(dd, -G0, G0), arr_rand(dm.H, -G0, G0)};
    Arr gc[6], gg[6];
    for (int t = 0; t < 6; t++) gc[t] = arr_copy(&g0[t]), gg[t] = arr_copy(&g0[t]);
    CPU.sla2_bwd(gc[0].h, gc[1].h, gc[2].h, gc[3].h, gc[4].h, gc[5].h, r->wsh, dout.h, &r->svh, r->q.h, r->k.h,
                 r->v.h, r->pq.h, r->pk.h, r->al.h, &dm);
    dev_poison(r->wsd.d, r->wsd.n); /* backward must not rely on what forward left there */
    int want[6] = {which & 1, which & 2, which & 4, which & 8, which & 8, which & 8};
    float *p[6];
    for (int t = 0; t < 6; t++) p[t] = want[t] ? gg[t].d : NULL;
    GPU.sla2_bwd(p[0], p[1], p[2], p[3], p[4], p[5], r->wsd.d, dout.d, &r->svd, r->q.d, r->k.d, r->v.d, r->pq.d,
                 r->pk.d, r->al.d, &dm);
    static const char *names[6] = {"dq", "dk", "dv", "dproj_q", "dproj_k", "dalpha_logit"};
    for (int t = 0; t < 6; t++) {
        memcpy(gg[t].h, want[t] ? gc[t].h : g0[t].h, gg[t].n * sizeof(float));
        float *got = arr_download(&gg[t]);
        double e = rel_err(got, gg[t].h, gg[t].n);
        cr_expect(e <= tol, "SLA2 (N %d d %d blocks %d/%d k %d/%d fm %d %s%s) %s: relative error %.3g > %.1g", dm.N,
                  dm.d, dm.block_q, dm.block_k, dm.k_sel, dm.nk, dm.feature_map, c->soft ? "soft" : "hard",
                  c->qat ? " qat" : "", names[t], e, tol);
        free(got);
    }
}

static void check_sla2(const S2Case *c, CudaPrecision prec, double tol) {
    cuda_set_precision(prec);
    S2Run r;
    s2_forward(&r, c);
    s2_check_forward(&r, c, tol);
    if (prec == CUDA_PREC_BF16)
        cr_expect(arr_err(&r.os) > 1e-6, "BF16 mode gave fp32 results in the sparse branch: operands not rounded");
    s2_check_backward(&r, c, tol, 15);
    printf("sla2 N=%d d=%d blocks %d/%d k=%d/%d fm=%d %s%s %s: out %.2e lse %.2e o_s %.2e o_l %.2e\n", r.dm.N,
           r.dm.d, r.dm.block_q, r.dm.block_k, r.dm.k_sel, r.dm.nk, c->fm, c->soft ? "soft" : "hard",
           c->qat ? " qat" : "", prec == CUDA_PREC_FP32 ? "fp32" : "bf16", arr_err(&r.out), arr_err(&r.lse),
           arr_err(&r.os), arr_err(&r.ol));
    free(r.wsh), free(r.kept);
}

/* S2Case: N, d, block_q, block_k, top-k ratio, feature map, soft, qat (B = 2, H = 3 always) */
#define SOFTMAX SLA2_PHI_SOFTMAX
#define ELU SLA2_PHI_ELU
#define RELU SLA2_PHI_RELU

Test(cuda_attn, sla2_hard_softmax) {
    check_sla2(&(S2Case){100, 32, 16, 12, 0.3f, SOFTMAX, 0, 0}, CUDA_PREC_FP32, TOL_FP32);
}
Test(cuda_attn, sla2_hard_elu_topk015) {
    check_sla2(&(S2Case){257, 64, 64, 32, 0.15f, ELU, 0, 0}, CUDA_PREC_FP32, TOL_FP32);
}
Test(cuda_attn, sla2_hard_relu_small_blocks) {
    check_sla2(&(S2Case){53, 32, 8, 8, 0.5f, RELU, 0, 0}, CUDA_PREC_FP32, TOL_FP32);
}
Test(cuda_attn, sla2_hard_all_selected) {
    check_sla2(&(S2Case){100, 64, 16, 16, 1.0f, SOFTMAX, 0, 0}, CUDA_PREC_FP32, TOL_FP32);
}
Test(cuda_attn, sla2_hard_hd128) {
    check_sla2(&(S2Case){100, 128, 16, 16, 0.3f, SOFTMAX, 0, 0}, CUDA_PREC_FP32, TOL_FP32);
}
Test(cuda_attn, sla2_hard_hd16_padded_big_blocks) {
    check_sla2(&(S2Case){257, 16, 100, 70, 0.5f, ELU, 0, 0}, CUDA_PREC_FP32, TOL_FP32);
}
Test(cuda_attn, sla2_soft_softmax) {
    check_sla2(&(S2Case){100, 32, 16, 12, 0.3f, SOFTMAX, 1, 0}, CUDA_PREC_FP32, TOL_FP32);
}
Test(cuda_attn, sla2_soft_elu_small_blocks) {
    check_sla2(&(S2Case){53, 64, 8, 8, 0.5f, ELU, 1, 0}, CUDA_PREC_FP32, TOL_FP32);
}
Test(cuda_attn, sla2_soft_relu) { check_sla2(&(S2Case){257, 32, 32, 64, 0.25f, RELU, 1, 0}, CUDA_PREC_FP32, TOL_FP32); }
Test(cuda_attn, sla2_soft_all_selected) {
    check_sla2(&(S2Case){53, 32, 16, 16, 1.0f, SOFTMAX, 1, 0}, CUDA_PREC_FP32, TOL_FP32);
}
Test(cuda_attn, sla2_qat_hard_softmax) {
    check_sla2(&(S2Case){100, 32, 16, 12, 0.3f, SOFTMAX, 0, 1}, CUDA_PREC_FP32, TOL_FP32);
}
/* key blocks of 100 > 64: each key block in two chunks (three passes each) */
Test(cuda_attn, sla2_qat_hard_elu_long_key_blocks) {
    check_sla2(&(S2Case){257, 64, 64, 100, 0.5f, ELU, 0, 1}, CUDA_PREC_FP32, TOL_FP32);
}
/* query blocks of 128 rows (the 128-row tile), several query blocks per tile at 8 */
Test(cuda_attn, sla2_qat_query_block_sizes) {
    check_sla2(&(S2Case){257, 32, 128, 32, 0.3f, RELU, 0, 1}, CUDA_PREC_FP32, TOL_FP32);
    check_sla2(&(S2Case){53, 32, 8, 8, 0.3f, SOFTMAX, 0, 1}, CUDA_PREC_FP32, TOL_FP32);
}
Test(cuda_attn, sla2_qat_hd128_all_selected) {
    check_sla2(&(S2Case){100, 128, 16, 32, 1.0f, SOFTMAX, 0, 1}, CUDA_PREC_FP32, TOL_FP32);
}
Test(cuda_attn, sla2_qat_soft) { check_sla2(&(S2Case){100, 32, 16, 12, 0.3f, RELU, 1, 1}, CUDA_PREC_FP32, TOL_FP32); }
Test(cuda_attn, sla2_bf16) {
    check_sla2(&(S2Case){100, 32, 16, 12, 0.3f, SOFTMAX, 0, 0}, CUDA_PREC_BF16, TOL_BF16);
    check_sla2(&(S2Case){100, 64, 16, 12, 0.3f, ELU, 1, 0}, CUDA_PREC_BF16, TOL_BF16);
    check_sla2(&(S2Case){GPU_OR_EMU(257, 129), 128, 32, 64, 0.15f, SOFTMAX, 0, 0}, CUDA_PREC_BF16, TOL_BF16);
}

/* Each subset of (dq, dk, dv, router + alpha) asked for: NULL is skipped, the rest accumulates. */
Test(cuda_attn, sla2_backward_gradient_subsets) {
    const S2Case cs[2] = {{100, 32, 16, 12, 0.3f, SOFTMAX, 1, 0}, {53, 32, 8, 8, 0.5f, RELU, 0, 0}};
    for (int i = 0; i < 2; i++) {
        S2Run r;
        s2_forward(&r, &cs[i]);
        for (int which = 0; which < 16; which++) s2_check_backward(&r, &cs[i], TOL_FP32, which);
        free(r.wsh), free(r.kept);
    }
}

Test(cuda_attn, sla2_is_deterministic) {
    const S2Case c = {100, 32, 16, 12, 0.3f, SOFTMAX, 1, 0};
    S2Run r;
    s2_forward(&r, &c);
    Sla2Dims dm = r.dm;
    const size_t nt = (size_t)dm.B * dm.H * dm.N * dm.d, dd = (size_t)dm.d * dm.d;
    Arr out2 = arr_nan(nt), dout = arr_rand(nt, -1, 1), g[2][6];
    GPU.sla2_fwd(out2.d, &r.svd, r.wsd.d, r.q.d, r.k.d, r.v.d, r.pq.d, r.pk.d, r.al.d, &dm);
    cr_expect(same_bits(&r.out, &out2), "SLA2 forward differs run to run");
    for (int run = 0; run < 2; run++) {
        size_t n[6] = {nt, nt, nt, dd, dd, (size_t)dm.H};
        for (int t = 0; t < 6; t++) g[run][t] = arr_nan(n[t]), cuda_memset(g[run][t].d, 0, n[t] * sizeof(float));
        GPU.sla2_bwd(g[run][0].d, g[run][1].d, g[run][2].d, g[run][3].d, g[run][4].d, g[run][5].d, r.wsd.d, dout.d,
                     &r.svd, r.q.d, r.k.d, r.v.d, r.pq.d, r.pk.d, r.al.d, &dm);
    }
    for (int t = 0; t < 6; t++) cr_expect(same_bits(&g[0][t], &g[1][t]), "SLA2 gradient %d differs run to run", t);
    free(r.wsh), free(r.kept);
}

/* The saved fields mean what the CPU's mean: the CPU statistics read from a
 * copy of the GPU's saved fields equal the statistics of the CPU's own. */
Test(cuda_attn, sla2_saved_fields_feed_the_cpu_statistics) {
    const S2Case c = {100, 32, 16, 12, 0.3f, ELU, 0, 1};
    S2Run r;
    s2_forward(&r, &c);
    Sla2Dims dm = r.dm;
    Arr *fields[6] = {&r.out, &r.mask, &r.pc, &r.lse, &r.os, &r.osfp};
    float *got[6];
    for (int t = 0; t < 6; t++) got[t] = arr_download(fields[t]);
    float *olg = arr_download(&r.ol);
    Sla2Saved svg = {got[1], got[2], got[3], got[4], got[5], olg, NULL};
    float *scr = malloc(sizeof(float) * (size_t)dm.B * dm.H * (dm.N + 16));
    Sla2Stats sc[3], sg[3];
    cpu_sla2_stats_with_scratch(sc, scr, r.out.h, &r.svh, r.q.h, r.k.h, r.v.h, r.al.h, &dm);
    cpu_sla2_stats_with_scratch(sg, scr, got[0], &svg, r.q.h, r.k.h, r.v.h, r.al.h, &dm);
    for (int h = 0; h < dm.H; h++) {
        cr_expect_eq(sg[h].frac_exact, sc[h].frac_exact, "head %d: fraction computed exactly differs", h);
        cr_expect(fabsf(sg[h].captured_mass - sc[h].captured_mass) <= 1e-6f, "head %d: captured mass", h);
        cr_expect(fabsf(sg[h].rel_l2_err - sc[h].rel_l2_err) <= 1e-5f * fmaxf(1.0f, sc[h].rel_l2_err),
                  "head %d: relative L2 error %g vs %g", h, sg[h].rel_l2_err, sc[h].rel_l2_err);
        cr_expect(fabsf(sg[h].qat_rel_err - sc[h].qat_rel_err) <= 1e-4f * fmaxf(1e-3f, sc[h].qat_rel_err),
                  "head %d: QAT error %g vs %g", h, sg[h].qat_rel_err, sc[h].qat_rel_err);
    }
    for (int t = 0; t < 6; t++) free(got[t]);
    free(olg), free(scr), free(r.wsh), free(r.kept);
}

Test(cuda_attn, sla2_rejects_head_dim_above_128, .exit_code = 1) {
    const S2Case c = {20, 160, 4, 4, 0.5f, SOFTMAX, 0, 0};
    Sla2Dims dm = s2_dims(&c);
    Arr x = arr_nan(1);
    Sla2Saved sv = {x.d, x.d, x.d, x.d, NULL, x.d, NULL};
    GPU.sla2_fwd(x.d, &sv, x.d, x.d, x.d, x.d, x.d, x.d, x.d, &dm);
}
