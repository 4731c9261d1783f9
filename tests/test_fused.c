/* tests/test_fused.c — the fused element-wise ops (core/ops_fused.c) on the
 * CPU: gradient checks against double-precision references (the harness of
 * tests/gradcheck.h), and bit-identity with the unfused chains they replace
 * (gated_add, rmsnorm, modulate; qkv_split, rmsnorm, rope): forward outputs
 * and every gradient compared with memcmp, which is what keeps the model's
 * CPU results (and the PyTorch parity tests) unchanged by the fusion.
 * Their CUDA kernels are held to these under the emulator in
 * tests/test_cuda_fused.c. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "core/ops.h"
#include "core/rng.h"
#include "gradcheck.h"

/* ------------------------------------------------------------ norm_modulate */

typedef struct { int B, N, C, resid; double eps; } NmDims;

/* in: x, w, shift, scale[, gate, y]; out: the modulated norm, then r (resid) */
static void ref_norm_modulate(const void *ctx, const double *const *in, double *out) {
    const NmDims *d = ctx;
    size_t n = (size_t)d->B * d->N * d->C;
    for (int b = 0; b < d->B; b++)
        for (int t = 0; t < d->N; t++) {
            size_t off = ((size_t)b * d->N + t) * d->C;
            double r[64], ss = 0.0;
            for (int c = 0; c < d->C; c++) {
                r[c] = in[0][off + c];
                if (d->resid) r[c] += in[4][(size_t)b * d->C + c] * in[5][off + c];
                ss += r[c] * r[c];
            }
            double rs = 1.0 / sqrt(ss / d->C + d->eps);
            for (int c = 0; c < d->C; c++) {
                size_t bc = (size_t)b * d->C + c;
                out[off + c] = r[c] * rs * in[1][c] * (1.0 + in[3][bc]) + in[2][bc];
                if (d->resid) out[n + off + c] = r[c];
            }
        }
}

static void check_norm_modulate(int resid, int B, int N, int C) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 3, B, N, C), *w = GC_UNIFORM(&g, 2, 0.5f, 1.5f, 1, C);
    Tensor *shift = GC_NORMAL(&g, 3, 0.5f, 2, B, C), *scale = GC_NORMAL(&g, 4, 0.5f, 2, B, C);
    Tensor *gate = resid ? GC_NORMAL(&g, 5, 1.0f, 2, B, C) : NULL, *y = resid ? GC_NORMAL(&g, 6, 1.0f, 3, B, N, C) : NULL;
    Tensor *res = NULL;
    Tensor *out = op_norm_modulate(&g, x, gate, y, w, shift, scale, 1e-6f, resid ? &res : NULL);
    NmDims d = {B, N, C, resid, 1e-6f};
    GC_EXPECT(&g, {.op = resid ? "norm_modulate(residual)" : "norm_modulate", .n_in = resid ? 6 : 4,
                   .in = {x, w, shift, scale, gate, y}, .in_name = {"x", "w", "shift", "scale", "gate", "y"},
                   .n_out = resid ? 2 : 1, .out = {out, res}, .ref = ref_norm_modulate, .ctx = &d,
                   .r_stream = 300 + resid});
    graph_free(&g);
}

Test(fused, norm_modulate) { check_norm_modulate(0, 2, 5, 18); }
Test(fused, norm_modulate_residual) { check_norm_modulate(1, 2, 5, 13); }

/* Only the residual output's gradient reaches the op (the norm's output is
 * unused): the backward must still pass it on to x, gate and y. */
Test(fused, norm_modulate_residual_only) {
    Graph g;
    gc_graph(&g);
    const int B = 2, N = 3, C = 6;
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 3, B, N, C), *w = GC_UNIFORM(&g, 2, 0.5f, 1.5f, 1, C);
    Tensor *shift = GC_NORMAL(&g, 3, 0.5f, 2, B, C), *scale = GC_NORMAL(&g, 4, 0.5f, 2, B, C);
    Tensor *gate = GC_NORMAL(&g, 5, 1.0f, 2, B, C), *y = GC_NORMAL(&g, 6, 1.0f, 3, B, N, C), *res;
    op_norm_modulate(&g, x, gate, y, w, shift, scale, 1e-6f, &res);
    float seed[B * N * C];
    for (int i = 0; i < B * N * C; i++) seed[i] = 1.0f;
    graph_backward_from(&g, res, seed);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < N * C; i++) {
            int c = i % C;
            cr_expect_eq(x->grad[b * N * C + i], 1.0f);
            cr_expect_eq(y->grad[b * N * C + i], gate->data[b * C + c]);
        }
    cr_expect_eq(w->grad[0], 0.0f);
    graph_free(&g);
}

/* ------------------------------------------------------------ qkv_norm_rope */

typedef struct { int B, N, H, hd, n_ctx; const double *cos, *sin; double eps; } QrDims;

/* in: qkv [B, N, 3, H, hd], qw, kw; out: q, k, v [B, H, N, hd] */
static void ref_qkv_norm_rope(const void *ctx, const double *const *in, double *out) {
    const QrDims *d = ctx;
    size_t per = (size_t)d->B * d->H * d->N * d->hd;
    for (int s = 0; s < 3; s++)
        for (int b = 0; b < d->B; b++)
            for (int h = 0; h < d->H; h++)
                for (int n = 0; n < d->N; n++) {
                    const double *x = in[0] + ((((size_t)b * d->N + n) * 3 + s) * d->H + h) * d->hd;
                    double *o = out + s * per + (((size_t)b * d->H + h) * d->N + n) * d->hd, t[64], ss = 0.0;
                    for (int c = 0; c < d->hd; c++) ss += x[c] * x[c];
                    double rs = s == 2 ? 1.0 : 1.0 / sqrt(ss / d->hd + d->eps);
                    for (int c = 0; c < d->hd; c++) t[c] = s == 2 ? x[c] : x[c] * rs * in[1 + s][c];
                    if (s == 2) memcpy(o, t, sizeof(double) * d->hd); /* v: not rotated */
                    else gc_rope_row(o, t, n, d->n_ctx, d->hd, d->cos, d->sin);
                }
}

static void check_qkv_norm_rope(int n_ctx) {
    Graph g;
    gc_graph(&g);
    const int B = 2, N = 5, H = 2, hd = 8;
    Tensor *qkv = GC_NORMAL(&g, 1, 1.0f, 3, B, N, 3 * H * hd);
    Tensor *qw = GC_UNIFORM(&g, 2, 0.5f, 1.5f, 1, hd), *kw = GC_UNIFORM(&g, 3, 0.5f, 1.5f, 1, hd);
    double *dc, *ds;
    float *fc, *fs;
    gc_rope_tables(&g, 51, N - n_ctx, hd / 2, &dc, &ds, &fc, &fs);
    Tensor *q, *k, *v;
    op_qkv_norm_rope(&g, qkv, H, qw, kw, fc, fs, n_ctx, 1e-6f, &q, &k, &v);
    QrDims d = {B, N, H, hd, n_ctx, dc, ds, 1e-6f};
    GC_EXPECT(&g, {.op = n_ctx ? "qkv_norm_rope(n_ctx=2)" : "qkv_norm_rope", .n_in = 3, .in = {qkv, qw, kw},
                   .in_name = {"qkv", "qw", "kw"}, .n_out = 3, .out = {q, k, v}, .ref = ref_qkv_norm_rope,
                   .ctx = &d, .r_stream = 310 + n_ctx});
    graph_free(&g);
}

Test(fused, qkv_norm_rope) { check_qkv_norm_rope(0); }
Test(fused, qkv_norm_rope_ctx) { check_qkv_norm_rope(2); }

/* ------------------------------------------- bit-identity with the chains */

/* Two copies of the same random inputs: one for the fused op, one for the chain. */
static void twin(Graph *g, uint64_t k, int nd, const int *shape, Tensor **a, Tensor **b) {
    *a = gc_normal(g, k, 1.0f, nd, shape);
    *b = gc_normal(g, k, 1.0f, nd, shape);
}

static void expect_same(const float *a, const float *b, size_t n, const char *what) {
    cr_expect(a && b, "%s: a gradient is missing", what);
    if (a && b) cr_expect(memcmp(a, b, n * sizeof(float)) == 0, "%s differs from the unfused chain", what);
}

/* The block's pattern: x' = x + gate y, h = modulate(rmsnorm(x')), and a
 * later consumer of x' (the next residual) so that x' has its own gradient. */
static void chain_vs_fused_norm(int resid, int B, int N, int C, float xscale) {
    Graph g;
    gc_graph(&g);
    Tensor *x[2], *w[2], *sh[2], *sc[2], *gt[2], *y[2], *out[2], *res[2];
    twin(&g, 1, 3, (int[]){B, N, C}, &x[0], &x[1]);
    twin(&g, 2, 1, (int[]){C}, &w[0], &w[1]);
    twin(&g, 3, 2, (int[]){B, C}, &sh[0], &sh[1]);
    twin(&g, 4, 2, (int[]){B, C}, &sc[0], &sc[1]);
    twin(&g, 5, 2, (int[]){B, C}, &gt[0], &gt[1]);
    twin(&g, 6, 3, (int[]){B, N, C}, &y[0], &y[1]);
    for (int i = 0; i < 2; i++)
        for (size_t j = 0; j < x[i]->numel; j++) x[i]->data[j] *= xscale;
    out[0] = op_norm_modulate(&g, x[0], resid ? gt[0] : NULL, resid ? y[0] : NULL, w[0], sh[0], sc[0], 1e-6f,
                              resid ? &res[0] : NULL);
    res[1] = resid ? op_gated_add(&g, x[1], gt[1], y[1]) : x[1];
    out[1] = op_modulate(&g, op_rmsnorm(&g, res[1], w[1], 1e-6f), sh[1], sc[1]);
    size_t n = (size_t)B * N * C;
    expect_same(out[0]->data, out[1]->data, n, "forward");
    if (resid) expect_same(res[0]->data, res[1]->data, n, "the residual");
    Tensor *tail[2];
    for (int i = 0; i < 2; i++) {
        tail[i] = resid ? op_gated_add(&g, res[i], gt[i], out[i]) : out[i];
        Tensor *seed = gc_normal(&g, 7, 1.0f, 3, (int[]){B, N, C});
        graph_seed(&g, tail[i], seed->data);
    }
    graph_backward_seeded(&g);
    const char *names[6] = {"dx", "dw", "dshift", "dscale", "dgate", "dy"};
    Tensor *const *ins[6] = {x, w, sh, sc, gt, y};
    for (int k = 0; k < (resid ? 6 : 4); k++) expect_same(ins[k][0]->grad, ins[k][1]->grad, ins[k][0]->numel, names[k]);
    graph_free(&g);
}

Test(fused, norm_modulate_equals_chain) {
    chain_vs_fused_norm(0, 2, 7, 24, 1.0f);
    chain_vs_fused_norm(1, 3, 9, 40, 1.0f);
    chain_vs_fused_norm(1, 2, 5, 13, 1e-3f); /* small rows: eps matters */
}

Test(fused, qkv_norm_rope_equals_chain) {
    Graph g;
    gc_graph(&g);
    const int B = 2, N = 9, H = 3, hd = 16, n_ctx = 2;
    Tensor *qkv[2], *qw[2], *kw[2];
    twin(&g, 1, 3, (int[]){B, N, 3 * H * hd}, &qkv[0], &qkv[1]);
    twin(&g, 2, 1, (int[]){hd}, &qw[0], &qw[1]);
    twin(&g, 3, 1, (int[]){hd}, &kw[0], &kw[1]);
    double *dc, *ds;
    float *fc, *fs;
    gc_rope_tables(&g, 51, N - n_ctx, hd / 2, &dc, &ds, &fc, &fs);
    Tensor *o[2][3];
    op_qkv_norm_rope(&g, qkv[0], H, qw[0], kw[0], fc, fs, n_ctx, 1e-6f, &o[0][0], &o[0][1], &o[0][2]);
    op_qkv_split(&g, qkv[1], H, &o[1][0], &o[1][1], &o[1][2]);
    o[1][0] = op_rope(&g, op_rmsnorm(&g, o[1][0], qw[1], 1e-6f), fc, fs, n_ctx);
    o[1][1] = op_rope(&g, op_rmsnorm(&g, o[1][1], kw[1], 1e-6f), fc, fs, n_ctx);
    size_t n = (size_t)B * H * N * hd;
    for (int s = 0; s < 3; s++) {
        expect_same(o[0][s]->data, o[1][s]->data, n, "forward q, k or v");
        Tensor *seed = gc_normal(&g, 10 + s, 1.0f, 1, (int[]){(int)n});
        for (int i = 0; i < 2; i++) graph_seed(&g, o[i][s], seed->data);
    }
    graph_backward_seeded(&g);
    expect_same(qkv[0]->grad, qkv[1]->grad, qkv[0]->numel, "dqkv");
    expect_same(qw[0]->grad, qw[1]->grad, (size_t)hd, "dqw");
    expect_same(kw[0]->grad, kw[1]->grad, (size_t)hd, "dkw");
    graph_free(&g);
}

/* Bad input names what is wrong. */
Test(fused, qkv_norm_rope_rejects_odd_head_dim, .exit_code = 1) {
    Graph g;
    gc_graph(&g);
    Tensor *qkv = GC_NORMAL(&g, 1, 1.0f, 3, 1, 3, 3 * 2 * 6), *w = GC_NORMAL(&g, 2, 1.0f, 1, 6), *q, *k, *v;
    float tab[64] = {0};
    op_qkv_norm_rope(&g, qkv, 2, w, w, tab, tab, 0, 1e-6f, &q, &k, &v);
}
