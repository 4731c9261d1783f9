/* tests/test_sla2.c — SLA2 attention on the CPU: exactness in the dense
 * limit, gradient checks against an independent double reference (hard and
 * soft selection, every feature map, partial blocks), the selection rules,
 * FP8 E4M3 and INT8 emulation, the QAT error, edge cases, statistics and the
 * router distillation loss. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "core/rng.h"
#include "gradcheck.h"
#include "kernels/cpu/cpu.h"
#include "kernels/quant.h"
#include "sla2_ref.h"

/* ------------------------------------------------------------ helpers */

typedef struct {
    Tensor *q, *k, *v, *pq, *pk, *al;
} Sla2In;

/* Random inputs: q, k, v ~ N(0,1); proj = I + N(0, 0.3/sqrt(d)); alpha_logit ~ 2 + N(0, 0.5). */
static Sla2In make_inputs(Graph *g, int B, int H, int N, int d, uint64_t k0) {
    Sla2In in;
    in.q = GC_NORMAL(g, k0 + 0, 1.0f, 4, B, H, N, d);
    in.k = GC_NORMAL(g, k0 + 1, 1.0f, 4, B, H, N, d);
    in.v = GC_NORMAL(g, k0 + 2, 1.0f, 4, B, H, N, d);
    in.pq = GC_NORMAL(g, k0 + 3, 0.3f / sqrtf((float)d), 2, d, d);
    in.pk = GC_NORMAL(g, k0 + 4, 0.3f / sqrtf((float)d), 2, d, d);
    in.al = GC_NORMAL(g, k0 + 5, 0.5f, 1, H);
    for (int i = 0; i < d; i++) in.pq->data[i * d + i] += 1.0f, in.pk->data[i * d + i] += 1.0f;
    for (int h = 0; h < H; h++) in.al->data[h] += 2.0f;
    return in;
}

static Sla2Config config(int bq, int bk, float ratio, int fm, int soft) {
    return (Sla2Config){.block_q = bq, .block_k = bk, .topk_ratio = ratio, .feature_map = fm, .soft = soft,
                        .tau = 0.1f};
}

static double max_rel(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return den > 0 ? num / den : num;
}

/* ------------------------------------------------- the dense limit is exact */

Test(sla2, all_blocks_and_alpha_one_equal_full_attention) {
    const int B = 2, H = 2, N = 29, d = 8;
    Graph g1, g2;
    gc_graph(&g1);
    gc_graph(&g2);
    Sla2In a = make_inputs(&g1, B, H, N, d, 10), b = make_inputs(&g2, B, H, N, d, 10);
    a.al->data[0] = a.al->data[1] = 40.0f; /* sigmoid(40) is 1.0f */
    Sla2Config c = config(8, 6, 1.0f, SLA2_PHI_SOFTMAX, 0);
    Tensor *o1 = op_sla2(&g1, a.q, a.k, a.v, a.pq, a.pk, a.al, &c, NULL);
    Tensor *o2 = op_attention(&g2, b.q, b.k, b.v);
    double ef = max_rel(o1->data, o2->data, o1->numel);
    float *R = malloc(sizeof(float) * o1->numel);
    rng_fill_normal(R, o1->numel, 3, RNG_STREAM_TEST, 0, 0, 1);
    graph_backward_from(&g1, o1, R);
    graph_backward_from(&g2, o2, R);
    double eq = max_rel(a.q->grad, b.q->grad, a.q->numel), ek = max_rel(a.k->grad, b.k->grad, a.k->numel),
           ev = max_rel(a.v->grad, b.v->grad, a.v->numel);
    printf("sla2 dense limit vs full attention: out %.2e, dq %.2e, dk %.2e, dv %.2e\n", ef, eq, ek, ev);
    cr_expect_lt(ef, 1e-6);
    cr_expect_lt(eq, 1e-5);
    cr_expect_lt(ek, 1e-5);
    cr_expect_lt(ev, 1e-5);
    free(R);
    graph_free(&g1);
    graph_free(&g2);
}

/* ------------------------------------------------------ gradient checks */

typedef struct {
    RefSla2 r;
} Sla2Ctx;

static void ref_op(const void *ctx, const double *const *in, double *out) {
    const Sla2Ctx *c = ctx;
    ref_sla2(&c->r, in[0], in[1], in[2], in[3], in[4], in[5], out, NULL);
}

static void check_grad(int fm, int soft, int N, int d, int bq, int bk, float ratio, uint64_t k0) {
    const int B = 2, H = 2;
    Graph g;
    gc_graph(&g);
    Sla2In in = make_inputs(&g, B, H, N, d, k0);
    if (!soft) in.pq->requires_grad = in.pk->requires_grad = false; /* hard mask: no router gradient */
    Sla2Config c = config(bq, bk, ratio, fm, soft);
    Tensor *out = op_sla2(&g, in.q, in.k, in.v, in.pq, in.pk, in.al, &c, NULL);
    int nk = (N + bk - 1) / bk;
    Sla2Ctx ctx = {{.B = B, .H = H, .N = N, .d = d, .bq = bq, .bk = bk, .k_sel = sla2_k_select(ratio, nk), .fm = fm,
                    .soft = soft, .tau = 0.1}};
    char name[96];
    static const char *fms[] = {"softmax", "elu", "relu"};
    snprintf(name, sizeof name, "sla2(%s, %s, N=%d, d=%d, blocks %d/%d, topk %.2f)", soft ? "soft" : "hard", fms[fm],
             N, d, bq, bk, ratio);
    GcResult r = gc_check(&g, &(GcCase){.op = name, .n_in = 6, .in = {in.q, in.k, in.v, in.pq, in.pk, in.al},
                                         .in_name = {"q", "k", "v", "proj_q", "proj_k", "alpha_logit"}, .n_out = 1,
                                         .out = {out}, .ref = ref_op, .ctx = &ctx, .r_stream = k0 + 50});
    cr_expect(r.ok, "%s failed its gradient check", name);
    graph_free(&g);
}

Test(sla2_grad, hard_softmax) { check_grad(SLA2_PHI_SOFTMAX, 0, 13, 6, 4, 3, 0.4f, 100); }
Test(sla2_grad, hard_elu) { check_grad(SLA2_PHI_ELU, 0, 13, 6, 4, 3, 0.4f, 110); }
Test(sla2_grad, hard_relu) { check_grad(SLA2_PHI_RELU, 0, 13, 6, 4, 3, 0.4f, 120); }
Test(sla2_grad, hard_mostly_selected) { check_grad(SLA2_PHI_SOFTMAX, 0, 11, 5, 3, 2, 0.7f, 130); }
/* With most blocks selected the CPU's gather path takes the linear branch's
 * quadratic form (kernels/cpu/sla2_gather.c); the cases above take the
 * linear form. */
Test(sla2_grad, hard_quadratic_elu) { check_grad(SLA2_PHI_ELU, 0, 11, 5, 3, 2, 0.7f, 135); }
Test(sla2_grad, hard_quadratic_relu) { check_grad(SLA2_PHI_RELU, 0, 11, 5, 3, 2, 0.7f, 137); }
Test(sla2_grad, soft_softmax) { check_grad(SLA2_PHI_SOFTMAX, 1, 13, 6, 4, 3, 0.4f, 140); }
Test(sla2_grad, soft_elu) { check_grad(SLA2_PHI_ELU, 1, 13, 6, 4, 3, 0.4f, 150); }
Test(sla2_grad, soft_relu) { check_grad(SLA2_PHI_RELU, 1, 13, 6, 4, 3, 0.4f, 160); }
Test(sla2_grad, soft_uneven_blocks) { check_grad(SLA2_PHI_SOFTMAX, 1, 10, 4, 7, 3, 0.5f, 170); }

/* --------------------------------------------------------- selection rules */

static void run_kernel(int soft, float ratio, float *mask_out, int *nq, int *nk) {
    const int B = 2, H = 3, N = 45, d = 8;
    Graph g;
    gc_graph(&g);
    Sla2In in = make_inputs(&g, B, H, N, d, 200);
    Sla2Dims dm = {.B = B, .H = H, .N = N, .d = d, .block_q = 7, .block_k = 4, .nq = 7, .nk = 12,
                   .feature_map = 0, .soft = soft, .tau = 0.1f};
    dm.k_sel = sla2_k_select(ratio, dm.nk);
    size_t blk = (size_t)B * H * dm.nq * dm.nk, tok = (size_t)B * H * N * d;
    Sla2Saved sv = {.mask = mask_out, .pc = malloc(sizeof(float) * blk), .lse = malloc(sizeof(float) * B * H * N),
                    .o_s = malloc(sizeof(float) * tok), .o_l = malloc(sizeof(float) * tok),
                    .kept = malloc(sizeof(float) * (ops_cpu.sla2_saved_floats(&dm) + 1))};
    float *ws = malloc(sizeof(float) * ops_cpu.sla2_workspace_floats(&dm)), *out = malloc(sizeof(float) * tok);
    ops_cpu.sla2_fwd(out, &sv, ws, in.q->data, in.k->data, in.v->data, in.pq->data, in.pk->data, in.al->data, &dm);
    for (size_t i = 0; i < tok; i++) cr_assert(isfinite(out[i]));
    *nq = dm.nq, *nk = dm.nk;
    free(sv.pc), free(sv.lse), free(sv.o_s), free(sv.o_l), free(sv.kept), free(ws), free(out);
    graph_free(&g);
}

Test(sla2_select, hard_mask_selects_exactly_k_per_row) {
    float ratios[] = {0.01f, 0.15f, 0.5f, 0.99f, 1.0f};
    for (size_t t = 0; t < sizeof ratios / sizeof ratios[0]; t++) {
        float mask[2 * 3 * 7 * 12];
        int nq, nk;
        run_kernel(0, ratios[t], mask, &nq, &nk);
        int k = sla2_k_select(ratios[t], nk);
        cr_expect(k >= 1 && k <= nk);
        for (int r = 0; r < 2 * 3 * nq; r++) {
            int cnt = 0;
            for (int j = 0; j < nk; j++) {
                cr_assert(mask[r * nk + j] == 0.0f || mask[r * nk + j] == 1.0f);
                cnt += mask[r * nk + j] == 1.0f;
            }
            cr_expect_eq(cnt, k, "ratio %g row %d selects %d blocks, expected %d", ratios[t], r, cnt, k);
        }
    }
    cr_expect_eq(sla2_k_select(0.01f, 12), 1, "at least one block, always");
    cr_expect_eq(sla2_k_select(0.125f, 12), 2, "1.5 rounds half away from zero");
}

Test(sla2_select, soft_topk_rows_sum_to_k) {
    float ratios[] = {0.1f, 0.3f, 0.75f};
    for (size_t t = 0; t < 3; t++) {
        float mask[2 * 3 * 7 * 12];
        int nq, nk;
        run_kernel(1, ratios[t], mask, &nq, &nk);
        int k = sla2_k_select(ratios[t], nk);
        double worst = 0;
        for (int r = 0; r < 2 * 3 * nq; r++) {
            double s = 0;
            for (int j = 0; j < nk; j++) {
                cr_assert(mask[r * nk + j] > 0.0f && mask[r * nk + j] < 1.0f);
                s += mask[r * nk + j];
            }
            worst = fmax(worst, fabs(s - k));
        }
        cr_expect_lt(worst, 1e-5, "soft top-k rows miss k = %d by %g", k, worst);
    }
}

/* ---------------------------------------------------------- FP8 and INT8 */

Test(quant, fp8_e4m3_decodes_every_code) {
    static const struct {
        uint8_t code;
        float value;
    } known[] = {{0x00, 0.0f},       {0x01, 0.001953125f}, {0x07, 0.013671875f}, {0x08, 0.015625f},
                 {0x30, 0.5f},       {0x38, 1.0f},         {0x39, 1.125f},       {0x3f, 1.875f},
                 {0x40, 2.0f},       {0x77, 240.0f},       {0x78, 256.0f},       {0x7e, 448.0f},
                 {0xb8, -1.0f},      {0xfe, -448.0f},      {0x81, -0.001953125f}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        cr_expect_eq(fp8_e4m3_decode(known[i].code), known[i].value, "code %02x decodes to %g, expected %g",
                     known[i].code, fp8_e4m3_decode(known[i].code), known[i].value);
    cr_expect(isnan(fp8_e4m3_decode(0x7f)) && isnan(fp8_e4m3_decode(0xff)));
    cr_expect(signbit(fp8_e4m3_decode(0x80)) && fp8_e4m3_decode(0x80) == 0.0f);
    /* All 254 finite codes: strictly increasing magnitudes, symmetric sign, and a round trip. */
    for (int c = 0; c < 256; c++) {
        if ((c & 0x7f) == 0x7f) continue;
        float v = fp8_e4m3_decode((uint8_t)c);
        cr_expect_eq(fp8_e4m3_encode(v), (uint8_t)c, "code %02x -> %g -> %02x", c, v, fp8_e4m3_encode(v));
        cr_expect_eq(fp8_e4m3_round(v), v);
        if ((c & 0x7f) > 0) cr_expect_gt(fabsf(v), fabsf(fp8_e4m3_decode((uint8_t)(c - 1))));
        cr_expect_eq(fp8_e4m3_decode((uint8_t)(c ^ 0x80)), -v);
    }
}

static int fp8_same(float a, float b) { return (a != a && b != b) || (a == b && signbit(a) == signbit(b)); }

/* The vectorisable rounding equals the reference on every exponent, at the
 * bit patterns around each rounding boundary (ties included), on a million
 * random bit patterns, and on 0, -0, +-inf and NaN. */
Test(quant, fp8_inline_equals_the_reference) {
    const uint32_t low[] = {0, 1, 0x3ffff, 0x7fffe, 0x7ffff, 0x80000, 0x80001, 0xbffff, 0xfffff};
    long checked = 0;
    for (uint32_t e = 0; e < 256; e++)
        for (uint32_t top = 0; top < 8; top++)
            for (size_t l = 0; l < sizeof low / sizeof low[0]; l++)
                for (uint32_t sign = 0; sign < 2; sign++) {
                    union { uint32_t u; float f; } v = {.u = sign << 31 | e << 23 | top << 20 | low[l]};
                    cr_assert(fp8_same(fp8_e4m3_round_inline(v.f), fp8_e4m3_round(v.f)),
                              "bits %08x (%g): inline %g, reference %g", v.u, v.f, fp8_e4m3_round_inline(v.f),
                              fp8_e4m3_round(v.f));
                    checked++;
                }
    for (uint64_t i = 0; i < 1000000; i++) {
        union { uint32_t u; float f; } v = {.u = (uint32_t)(rng_uniform(7, RNG_STREAM_TEST, i) * 65536.0f) << 16 |
                                             (uint32_t)(rng_uniform(8, RNG_STREAM_TEST, i) * 65536.0f)};
        cr_assert(fp8_same(fp8_e4m3_round_inline(v.f), fp8_e4m3_round(v.f)), "bits %08x (%g)", v.u, v.f);
        checked++;
    }
    cr_expect(checked > 1000000);
}

Test(quant, fp8_e4m3_rounds_to_nearest_even_and_saturates) {
    cr_expect_eq(fp8_e4m3_round(1.0625f), 1.0f, "tie between 1.0 (even) and 1.125");
    cr_expect_eq(fp8_e4m3_round(1.1875f), 1.25f, "tie between 1.125 and 1.25 (even)");
    cr_expect_eq(fp8_e4m3_round(0.0009765625f), 0.0f, "subnormal tie 2^-10 goes to 0");
    cr_expect_eq(fp8_e4m3_round(0.0029296875f), 0.00390625f, "subnormal tie 3*2^-10 goes to 2*2^-9");
    cr_expect_eq(fp8_e4m3_round(440.0f), 448.0f);
    cr_expect_eq(fp8_e4m3_round(464.0f), 448.0f);
    cr_expect_eq(fp8_e4m3_round(1e9f), 448.0f);
    cr_expect_eq(fp8_e4m3_round(-1000.0f), -448.0f);
    /* Nearest: no finite code is closer than the rounded value. */
    for (int i = 0; i < 20000; i++) {
        float x = (rng_uniform(1, RNG_STREAM_TEST, (uint64_t)i) - 0.5f) * 2.0f *
                  powf(2.0f, -10.0f + 19.0f * rng_uniform(2, RNG_STREAM_TEST, (uint64_t)i));
        float r = fp8_e4m3_round(x), err = fabsf(r - x);
        for (int c = 0; c < 256; c++) {
            if ((c & 0x7f) == 0x7f) continue;
            cr_assert(fabsf(fp8_e4m3_decode((uint8_t)c) - x) >= err, "x=%g rounds to %g but code %02x is closer", x,
                      r, c);
        }
    }
}

Test(quant, int8_round_trip_within_half_a_step) {
    cr_expect_eq(int8_quantize(2.5f, 1.0f), 3);
    cr_expect_eq(int8_quantize(-2.5f, 1.0f), -3);
    cr_expect_eq(int8_quantize(0.5f, 1.0f), 1);
    cr_expect_eq(int8_quantize(2.49f, 1.0f), 2);
    cr_expect_eq(int8_quantize(300.0f, 1.0f), 127);
    cr_expect_eq(int8_quantize(-300.0f, 1.0f), -127);
    float x[1000], amax = 0;
    rng_fill_normal(x, 1000, 5, RNG_STREAM_TEST, 0, 0, 3);
    for (int i = 0; i < 1000; i++) amax = fmaxf(amax, fabsf(x[i]));
    float s = amax / 127.0f;
    for (int i = 0; i < 1000; i++) cr_assert_leq(fabsf(int8_quantize(x[i], s) * s - x[i]), 0.5f * s * 1.0001f);
}

/* ---------------------------------------------------- QAT error and stats */

Test(sla2_qat, quantised_sparse_branch_error_is_small) {
    const int B = 1, H = 2, N = 288, d = 64;
    Graph g;
    gc_graph(&g);
    Sla2In in = make_inputs(&g, B, H, N, d, 300);
    Sla2Config c = config(32, 32, 0.25f, SLA2_PHI_SOFTMAX, 0);
    c.qat = 1;
    Sla2Stats st[2], st_fp[2];
    op_sla2(&g, in.q, in.k, in.v, in.pq, in.pk, in.al, &c, st);
    c.qat = 0;
    op_sla2(&g, in.q, in.k, in.v, in.pq, in.pk, in.al, &c, st_fp);
    for (int h = 0; h < H; h++) {
        printf("sla2 QAT head %d: sparse-branch rel err %.4f (bound 0.05); output rel err vs full %.4f (fp: %.4f); "
               "captured mass %.3f; exact fraction %.3f\n",
               h, st[h].qat_rel_err, st[h].rel_l2_err, st_fp[h].rel_l2_err, st[h].captured_mass, st[h].frac_exact);
        cr_expect_gt(st[h].qat_rel_err, 0.0f, "QAT changed nothing: the emulation is not running");
        cr_expect_lt(st[h].qat_rel_err, 0.05f);
        cr_expect_eq(st_fp[h].qat_rel_err, 0.0f);
        cr_expect_float_eq(st[h].frac_exact, 2.0f / 9.0f, 1e-6, "k = round(0.25 * 9) = 2 of 9, got %g", st[h].frac_exact);
    }
    graph_free(&g);
}

Test(sla2_stats, dense_limit_statistics) {
    Graph g;
    gc_graph(&g);
    Sla2In in = make_inputs(&g, 2, 2, 20, 8, 400);
    in.al->data[0] = in.al->data[1] = 40.0f;
    Sla2Config c = config(4, 4, 1.0f, SLA2_PHI_ELU, 0);
    Sla2Stats st[2];
    op_sla2(&g, in.q, in.k, in.v, in.pq, in.pk, in.al, &c, st);
    for (int h = 0; h < 2; h++) {
        cr_expect_float_eq(st[h].frac_exact, 1.0f, 1e-6);
        cr_expect_float_eq(st[h].captured_mass, 1.0f, 1e-5);
        cr_expect_float_eq(st[h].alpha, 1.0f, 1e-6);
        cr_expect_lt(st[h].rel_l2_err, 1e-5);
    }
    /* Sparser selection: less mass captured, and the mass matches the mask. */
    c.topk_ratio = 0.4f;
    op_sla2(&g, in.q, in.k, in.v, in.pq, in.pk, in.al, &c, st);
    for (int h = 0; h < 2; h++) {
        cr_expect_float_eq(st[h].frac_exact, 0.4f, 1e-6);
        cr_expect(st[h].captured_mass > 0.3f && st[h].captured_mass < 1.0f);
        cr_expect_gt(st[h].rel_l2_err, 1e-3);
    }
    graph_free(&g);
}

/* ------------------------------------------------------------ edge cases */

Test(sla2_edge, topk_ratio_zero_is_an_error, .exit_code = 1) {
    Graph g;
    gc_graph(&g);
    Sla2In in = make_inputs(&g, 1, 1, 8, 4, 500);
    Sla2Config c = config(4, 4, 0.0f, 0, 0);
    op_sla2(&g, in.q, in.k, in.v, in.pq, in.pk, in.al, &c, NULL);
}

Test(sla2_edge, topk_ratio_above_one_is_an_error, .exit_code = 1) {
    Graph g;
    gc_graph(&g);
    Sla2In in = make_inputs(&g, 1, 1, 8, 4, 500);
    Sla2Config c = config(4, 4, 1.5f, 0, 0);
    op_sla2(&g, in.q, in.k, in.v, in.pq, in.pk, in.al, &c, NULL);
}

Test(sla2_edge, soft_selection_with_qat_is_an_error, .exit_code = 1) {
    Graph g;
    gc_graph(&g);
    Sla2In in = make_inputs(&g, 1, 1, 8, 4, 500);
    Sla2Config c = config(4, 4, 0.5f, 0, 1);
    c.qat = 1;
    op_sla2(&g, in.q, in.k, in.v, in.pq, in.pk, in.al, &c, NULL);
}

Test(sla2_edge, block_larger_than_n_is_one_block) {
    Graph g;
    gc_graph(&g);
    Sla2In in = make_inputs(&g, 1, 2, 9, 4, 600);
    Sla2Config big = config(64, 100, 0.3f, 0, 0), exact = config(9, 9, 0.3f, 0, 0);
    Tensor *a = op_sla2(&g, in.q, in.k, in.v, in.pq, in.pk, in.al, &big, NULL);
    Tensor *b = op_sla2(&g, in.q, in.k, in.v, in.pq, in.pk, in.al, &exact, NULL);
    cr_expect_eq(memcmp(a->data, b->data, a->numel * sizeof(float)), 0);
    /* One block, always selected: alpha * full attention, linear branch 0. */
    Tensor *f = op_attention(&g, in.q, in.k, in.v);
    for (int n = 0; n < 9; n++)
        for (int h = 0; h < 2; h++)
            for (int c = 0; c < 4; c++) {
                size_t i = ((size_t)n * 2 + h) * 4 + c;
                float alpha = 1.0f / (1.0f + expf(-in.al->data[h]));
                cr_expect_float_eq(a->data[i], alpha * f->data[i], 1e-5);
            }
    graph_free(&g);
}

Test(sla2_edge, single_token_is_finite) {
    for (int soft = 0; soft < 2; soft++)
        for (int fm = 0; fm < 3; fm++) {
            Graph g;
            gc_graph(&g);
            Sla2In in = make_inputs(&g, 2, 2, 1, 4, 700);
            Sla2Config c = config(8, 8, 0.5f, fm, soft);
            Tensor *o = op_sla2(&g, in.q, in.k, in.v, in.pq, in.pk, in.al, &c, NULL);
            float *R = malloc(sizeof(float) * o->numel);
            for (size_t i = 0; i < o->numel; i++) R[i] = 1.0f;
            graph_backward_from(&g, o, R);
            for (size_t i = 0; i < o->numel; i++) cr_assert(isfinite(o->data[i]));
            for (size_t i = 0; i < in.q->numel; i++)
                cr_assert(isfinite(in.q->grad[i]) && isfinite(in.k->grad[i]) && isfinite(in.v->grad[i]));
            for (int h = 0; h < 2; h++) cr_assert(isfinite(in.al->grad[h]));
            free(R);
            graph_free(&g);
        }
}

/* ------------------------------------------- router distillation (stage 1) */

typedef struct {
    RefSla2 r;
    const double *q, *k, *v;
} DistillCtx;

static void ref_distill(const void *ctx, const double *const *in, double *out) {
    const DistillCtx *c = ctx;
    int B = c->r.B, H = c->r.H, N = c->r.N, d = c->r.d;
    size_t n = (size_t)B * N * H * d;
    double *s = malloc(sizeof(double) * n), *f = malloc(sizeof(double) * n);
    ref_sla2(&c->r, c->q, c->k, c->v, in[0], in[1], in[2], s, NULL);
    RefSla2 full = c->r;
    full.k_sel = 1 << 30, full.soft = 0; /* every block selected */
    double big[8];
    for (int h = 0; h < H; h++) big[h] = 1e3; /* alpha = 1 */
    ref_sla2(&full, c->q, c->k, c->v, in[0], in[1], big, f, NULL);
    double acc = 0;
    for (size_t i = 0; i < n; i++) acc += (s[i] - f[i]) * (s[i] - f[i]);
    out[0] = acc / n;
    free(s), free(f);
}

Test(sla2_distill, mse_to_full_attention_is_differentiable_in_the_router) {
    const int B = 1, H = 2, N = 14, d = 5;
    Graph g;
    gc_graph(&g);
    Sla2In in = make_inputs(&g, B, H, N, d, 800);
    in.q->requires_grad = in.k->requires_grad = in.v->requires_grad = false; /* the model is frozen */
    Sla2Config c = config(4, 3, 0.4f, SLA2_PHI_SOFTMAX, 1);
    Tensor *target = op_attention(&g, in.q, in.k, in.v);
    Tensor *loss = op_mse(&g, op_sla2(&g, in.q, in.k, in.v, in.pq, in.pk, in.al, &c, NULL), target);
    size_t n = in.q->numel;
    double *qd = malloc(sizeof(double) * n * 3);
    for (size_t i = 0; i < n; i++) qd[i] = in.q->data[i], qd[n + i] = in.k->data[i], qd[2 * n + i] = in.v->data[i];
    DistillCtx ctx = {{.B = B, .H = H, .N = N, .d = d, .bq = 4, .bk = 3, .k_sel = sla2_k_select(0.4f, 5), .fm = 0,
                       .soft = 1, .tau = 0.1},
                      qd, qd + n, qd + 2 * n};
    GcResult r = gc_check(&g, &(GcCase){.op = "distillation mse(sla2 soft, full attention)", .n_in = 3,
                                         .in = {in.pq, in.pk, in.al}, .in_name = {"proj_q", "proj_k", "alpha_logit"},
                                         .n_out = 1, .out = {loss}, .ref = ref_distill, .ctx = &ctx, .r_stream = 900});
    cr_expect(r.ok);
    cr_expect_gt(r.grad_err[0], -1.0, "proj_q was checked");
    free(qd);
    graph_free(&g);
}

/* ------------------------------- the CPU's paths give the same result */

/* The CPU computes the sparse branch tile by tile over the selected blocks,
 * as one dense masked N x N attention (kernels/cpu/sla2_dense.c), or, for a
 * hard mask, over the selected blocks gathered per query block with the
 * linear branch in its linear or quadratic form (kernels/cpu/sla2_gather.c).
 * On the same inputs every path gives the same output and the same
 * gradients of q, k, v, the router and alpha as the tile path, up to float
 * rounding (sums are accumulated in another order). */
static void check_paths(int other, int N, int bq, int bk, float ratio, int soft, int qat, uint64_t seed) {
    Graph g;
    graph_init(&g, backend_cpu(), 1 << 22);
    int B = 2, H = 3, d = 16;
    Sla2In in = make_inputs(&g, B, H, N, d, seed);
    Tensor *ts[6] = {in.q, in.k, in.v, in.pq, in.pk, in.al};
    Tensor *dout = GC_NORMAL(&g, seed + 9, 1.0f, 3, B, N, H * d);
    float *res[2][7];
    for (int path = 0; path < 2; path++) {
        Sla2Config c = config(bq, bk, ratio, SLA2_PHI_SOFTMAX, soft);
        c.qat = qat;
        c.cpu_path = path == 0 ? SLA2_CPU_BLOCKS : other;
        for (int i = 0; i < 6; i++) {
            ts[i]->requires_grad = true;
            ts[i]->grad = NULL;
        }
        Tensor *o = op_sla2(&g, in.q, in.k, in.v, in.pq, in.pk, in.al, &c, NULL);
        res[path][6] = malloc(sizeof(float) * o->numel);
        memcpy(res[path][6], o->data, sizeof(float) * o->numel);
        graph_backward_from(&g, o, dout->data);
        for (int i = 0; i < 6; i++) {
            res[path][i] = calloc(ts[i]->numel, sizeof(float)); /* hard selection: no router gradient */
            if (ts[i]->grad) memcpy(res[path][i], ts[i]->grad, sizeof(float) * ts[i]->numel);
        }
        g.n_tape = 0; /* keep the inputs; drop the tape */
    }
    const char *names[7] = {"dq", "dk", "dv", "dproj_q", "dproj_k", "dalpha", "output"};
    size_t sizes[7] = {in.q->numel, in.k->numel, in.v->numel, in.pq->numel, in.pk->numel, in.al->numel,
                       (size_t)B * N * H * d};
    for (int i = 0; i < 7; i++) {
        double e = max_rel(res[1][i], res[0][i], sizes[i]);
        cr_expect_lt(e, 2e-5, "%s path, N %d, blocks %d/%d, top-k %.2f, %s%s: %s differs by %.2e from the tile path",
                     other == SLA2_CPU_DENSE ? "dense" : "gather", N, bq, bk, ratio, soft ? "soft" : "hard",
                     qat ? ", QAT" : "", names[i], e);
        free(res[0][i]), free(res[1][i]);
    }
    graph_free(&g);
}

Test(sla2_paths, dense_equals_blocks_hard) { check_paths(SLA2_CPU_DENSE, 96, 16, 16, 0.5f, 0, 0, 900); }
Test(sla2_paths, dense_equals_blocks_hard_uneven) { check_paths(SLA2_CPU_DENSE, 37, 8, 5, 0.3f, 0, 0, 910); }
Test(sla2_paths, dense_equals_blocks_soft) { check_paths(SLA2_CPU_DENSE, 45, 8, 8, 0.4f, 1, 0, 920); }
Test(sla2_paths, dense_equals_blocks_qat) { check_paths(SLA2_CPU_DENSE, 96, 16, 16, 0.5f, 0, 1, 930); }
/* d = 16: with 5 of 6 blocks selected at N = 96 (and 7 of 8 at N = 37) the
 * quadratic form, with 3 of 6 (2 of 8) the linear one; uneven blocks; all
 * blocks selected (the linear branch is exactly 0); QAT. */
Test(sla2_paths, gather_equals_blocks_quadratic) { check_paths(SLA2_CPU_GATHER, 96, 16, 16, 0.85f, 0, 0, 940); }
Test(sla2_paths, gather_equals_blocks_linear) { check_paths(SLA2_CPU_GATHER, 96, 16, 16, 0.5f, 0, 0, 950); }
Test(sla2_paths, gather_equals_blocks_uneven_quadratic) { check_paths(SLA2_CPU_GATHER, 37, 8, 5, 0.9f, 0, 0, 955); }
Test(sla2_paths, gather_equals_blocks_uneven_linear) { check_paths(SLA2_CPU_GATHER, 37, 8, 5, 0.3f, 0, 0, 960); }
Test(sla2_paths, gather_equals_blocks_all_selected) { check_paths(SLA2_CPU_GATHER, 40, 8, 8, 1.0f, 0, 0, 970); }
Test(sla2_paths, gather_equals_blocks_qat) { check_paths(SLA2_CPU_GATHER, 96, 16, 16, 0.85f, 0, 1, 980); }
/* Each size above takes the linear form its test is there for, and the
 * default paths are gather (hard) and blocks (soft). */
Test(sla2_paths, the_tests_see_each_linear_form) {
    const struct {
        int N, d, bq, bk, k_sel, quadratic;
    } cases[] = {
        {11, 5, 3, 2, 4, 1},    /* sla2_grad hard_mostly_selected, hard_quadratic_* */
        {13, 6, 4, 3, 2, 0},    /* sla2_grad hard_softmax, _elu, _relu */
        {96, 16, 16, 16, 5, 1}, /* gather_equals_blocks_quadratic, _qat */
        {96, 16, 16, 16, 3, 0}, /* gather_equals_blocks_linear */
        {37, 16, 8, 5, 7, 1},   /* gather_equals_blocks_uneven_quadratic */
        {37, 16, 8, 5, 2, 0},   /* gather_equals_blocks_uneven_linear */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Sla2Dims d = {.N = cases[i].N, .d = cases[i].d, .block_q = cases[i].bq, .block_k = cases[i].bk,
                      .k_sel = cases[i].k_sel};
        d.nq = (d.N + d.block_q - 1) / d.block_q, d.nk = (d.N + d.block_k - 1) / d.block_k;
        cr_expect_eq(sla2_cpu_linear_quadratic(&d), cases[i].quadratic, "N %d, d %d, %d of %d key blocks: %s form",
                     d.N, d.d, d.k_sel, d.nk, cases[i].quadratic ? "quadratic" : "linear");
        cr_expect_eq(sla2_cpu_path(&d), SLA2_CPU_GATHER, "a hard mask takes the gather path by default");
        d.soft = 1;
        cr_expect_eq(sla2_cpu_path(&d), SLA2_CPU_BLOCKS, "a soft mask takes the tile path by default");
    }
}
