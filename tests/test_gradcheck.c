/* tests/test_gradcheck.c — gradient checks of every differentiable op
 * (core/ops.h) on the CPU backend, against naive double-precision reference
 * forwards written here straight from the math in core/op_list.h, on random
 * inputs of awkward sizes (odd token counts, widths not a multiple of 8).
 * Also: ops record nothing when gradients are off or not needed.
 *
 * The references never call a float kernel: they are plain loops in double,
 * so a mistake shared by a kernel and its backward cannot hide. Set
 * GRADCHECK_VERBOSE=1 to print the errors of every check. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/ops.h"
#include "core/rng.h"
#include "gradcheck.h"

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* ------------------------------------------------------------------ linear */

typedef struct { int M, IC, OC, bias; } LinearDims;

/* out[m,o] = sum_i x[m,i] w[o,i] + b[o] */
static void ref_linear(const void *ctx, const double *const *in, double *out) {
    const LinearDims *d = ctx;
    for (int m = 0; m < d->M; m++)
        for (int o = 0; o < d->OC; o++) {
            double s = d->bias ? in[2][o] : 0.0;
            for (int i = 0; i < d->IC; i++) s += in[0][(size_t)m * d->IC + i] * in[1][(size_t)o * d->IC + i];
            out[(size_t)m * d->OC + o] = s;
        }
}

Test(gradcheck, linear_bias) {
    Graph g;
    gc_graph(&g);
    /* 3D input: linear flattens the leading dims into M = 2*7 rows */
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 3, 2, 7, 10), *w = GC_NORMAL(&g, 2, 0.5f, 2, 6, 10),
           *b = GC_NORMAL(&g, 3, 1.0f, 1, 6);
    Tensor *y = op_linear(&g, x, w, b);
    LinearDims d = {14, 10, 6, 1};
    GC_EXPECT(&g, {.op = "linear(bias)", .n_in = 3, .in = {x, w, b}, .in_name = {"x", "w", "b"}, .n_out = 1,
                   .out = {y}, .ref = ref_linear, .ctx = &d, .r_stream = 100});
    graph_free(&g);
}

Test(gradcheck, linear_nobias) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 2, 5, 18), *w = GC_NORMAL(&g, 2, 0.5f, 2, 12, 18);
    Tensor *y = op_linear(&g, x, w, NULL);
    LinearDims d = {5, 18, 12, 0};
    GC_EXPECT(&g, {.op = "linear(no bias)", .n_in = 2, .in = {x, w}, .in_name = {"x", "w"}, .n_out = 1, .out = {y},
                   .ref = ref_linear, .ctx = &d, .r_stream = 101});
    graph_free(&g);
}

/* Only the weights need a gradient (the first layer of a model): the
 * kernel's "NULL gradient = skip" path, and x must receive nothing. */
Test(gradcheck, linear_weights_only) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 2, 13, 20), *w = GC_NORMAL(&g, 2, 0.5f, 2, 10, 20),
           *b = GC_NORMAL(&g, 3, 1.0f, 1, 10);
    x->requires_grad = false;
    Tensor *y = op_linear(&g, x, w, b);
    LinearDims d = {13, 20, 10, 1};
    GC_EXPECT(&g, {.op = "linear(w, b only)", .n_in = 3, .in = {x, w, b}, .in_name = {"x", "w", "b"}, .n_out = 1,
                   .out = {y}, .ref = ref_linear, .ctx = &d, .r_stream = 102});
    cr_expect_null(x->grad);
    graph_free(&g);
}

/* ----------------------------------------------------------------- rmsnorm */

typedef struct { int rows, C; double eps; } NormDims;

/* out = x / sqrt(mean(x^2) + eps) * w, per row of C */
static void ref_rmsnorm(const void *ctx, const double *const *in, double *out) {
    const NormDims *d = ctx;
    for (int r = 0; r < d->rows; r++) {
        const double *x = in[0] + (size_t)r * d->C;
        double ss = 0.0;
        for (int c = 0; c < d->C; c++) ss += x[c] * x[c];
        double rstd = 1.0 / sqrt(ss / d->C + d->eps);
        for (int c = 0; c < d->C; c++) out[(size_t)r * d->C + c] = x[c] * rstd * in[1][c];
    }
}

Test(gradcheck, rmsnorm) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.5f, 3, 2, 5, 18), *w = GC_UNIFORM(&g, 2, 0.5f, 1.5f, 1, 18);
    const float eps = 1e-6f;
    Tensor *y = op_rmsnorm(&g, x, w, eps);
    NormDims d = {10, 18, eps};
    GC_EXPECT(&g, {.op = "rmsnorm", .n_in = 2, .in = {x, w}, .in_name = {"x", "w"}, .n_out = 1, .out = {y},
                   .ref = ref_rmsnorm, .ctx = &d, .r_stream = 103});
    graph_free(&g);
}

/* qk-norm: [B, H, N, hd] heads normalised over hd, one weight shared by all heads */
Test(gradcheck, rmsnorm_qk) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 4, 2, 2, 7, 12), *w = GC_UNIFORM(&g, 2, 0.5f, 1.5f, 1, 12);
    const float eps = 1e-6f;
    Tensor *y = op_rmsnorm(&g, x, w, eps);
    NormDims d = {2 * 2 * 7, 12, eps};
    GC_EXPECT(&g, {.op = "rmsnorm(qk)", .n_in = 2, .in = {x, w}, .in_name = {"x", "w"}, .n_out = 1, .out = {y},
                   .ref = ref_rmsnorm, .ctx = &d, .r_stream = 104});
    graph_free(&g);
}

/* ------------------------------------------------------------ silu, swiglu */

typedef struct { size_t n; } Numel;

static void ref_silu(const void *ctx, const double *const *in, double *out) {
    const Numel *d = ctx;
    for (size_t i = 0; i < d->n; i++) out[i] = in[0][i] * sigmoid(in[0][i]);
}

Test(gradcheck, silu) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 2.0f, 2, 7, 13);
    Tensor *y = op_silu(&g, x);
    Numel d = {x->numel};
    GC_EXPECT(&g, {.op = "silu", .n_in = 1, .in = {x}, .in_name = {"x"}, .n_out = 1, .out = {y}, .ref = ref_silu,
                   .ctx = &d, .r_stream = 105});
    graph_free(&g);
}

typedef struct { int M, h; } SwigluDims;

/* row (a | b) -> silu(a) * b */
static void ref_swiglu(const void *ctx, const double *const *in, double *out) {
    const SwigluDims *d = ctx;
    for (int m = 0; m < d->M; m++)
        for (int j = 0; j < d->h; j++) {
            double a = in[0][(size_t)m * 2 * d->h + j], b = in[0][(size_t)m * 2 * d->h + d->h + j];
            out[(size_t)m * d->h + j] = a * sigmoid(a) * b;
        }
}

Test(gradcheck, swiglu) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 2.0f, 3, 2, 7, 20);
    Tensor *y = op_swiglu(&g, x);
    cr_assert_eq(y->shape[2], 10);
    SwigluDims d = {14, 10};
    GC_EXPECT(&g, {.op = "swiglu", .n_in = 1, .in = {x}, .in_name = {"x"}, .n_out = 1, .out = {y}, .ref = ref_swiglu,
                   .ctx = &d, .r_stream = 106});
    graph_free(&g);
}

/* ------------------------------------------------ modulate, gated_add, adds */

typedef struct { int B, N, C; } BNC;

/* out[b,n,c] = x[b,n,c] * (1 + scale[b,c]) + shift[b,c] */
static void ref_modulate(const void *ctx, const double *const *in, double *out) {
    const BNC *d = ctx;
    for (int b = 0; b < d->B; b++)
        for (int n = 0; n < d->N; n++)
            for (int c = 0; c < d->C; c++) {
                size_t i = ((size_t)b * d->N + n) * d->C + c, bc = (size_t)b * d->C + c;
                out[i] = in[0][i] * (1.0 + in[2][bc]) + in[1][bc];
            }
}

Test(gradcheck, modulate) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 3, 2, 7, 10), *shift = GC_NORMAL(&g, 2, 0.5f, 2, 2, 10),
           *scale = GC_NORMAL(&g, 3, 0.5f, 2, 2, 10);
    Tensor *y = op_modulate(&g, x, shift, scale);
    BNC d = {2, 7, 10};
    GC_EXPECT(&g, {.op = "modulate", .n_in = 3, .in = {x, shift, scale}, .in_name = {"x", "shift", "scale"},
                   .n_out = 1, .out = {y}, .ref = ref_modulate, .ctx = &d, .r_stream = 107});
    graph_free(&g);
}

/* The adaLN path alone: only scale needs a gradient. */
Test(gradcheck, modulate_scale_only) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 3, 3, 5, 6), *shift = GC_NORMAL(&g, 2, 0.5f, 2, 3, 6),
           *scale = GC_NORMAL(&g, 3, 0.5f, 2, 3, 6);
    x->requires_grad = shift->requires_grad = false;
    Tensor *y = op_modulate(&g, x, shift, scale);
    BNC d = {3, 5, 6};
    GC_EXPECT(&g, {.op = "modulate(scale only)", .n_in = 3, .in = {x, shift, scale},
                   .in_name = {"x", "shift", "scale"}, .n_out = 1, .out = {y}, .ref = ref_modulate, .ctx = &d,
                   .r_stream = 108});
    graph_free(&g);
}

/* out[b,n,c] = x[b,n,c] + gate[b,c] * y[b,n,c] */
static void ref_gated_add(const void *ctx, const double *const *in, double *out) {
    const BNC *d = ctx;
    for (int b = 0; b < d->B; b++)
        for (int n = 0; n < d->N; n++)
            for (int c = 0; c < d->C; c++) {
                size_t i = ((size_t)b * d->N + n) * d->C + c;
                out[i] = in[0][i] + in[1][(size_t)b * d->C + c] * in[2][i];
            }
}

Test(gradcheck, gated_add) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 3, 2, 5, 18), *gate = GC_NORMAL(&g, 2, 1.0f, 2, 2, 18),
           *y = GC_NORMAL(&g, 3, 1.0f, 3, 2, 5, 18);
    Tensor *o = op_gated_add(&g, x, gate, y);
    BNC d = {2, 5, 18};
    GC_EXPECT(&g, {.op = "gated_add", .n_in = 3, .in = {x, gate, y}, .in_name = {"x", "gate", "y"}, .n_out = 1,
                   .out = {o}, .ref = ref_gated_add, .ctx = &d, .r_stream = 109});
    graph_free(&g);
}

Test(gradcheck, gated_add_gate_only) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 3, 1, 13, 10), *gate = GC_NORMAL(&g, 2, 1.0f, 2, 1, 10),
           *y = GC_NORMAL(&g, 3, 1.0f, 3, 1, 13, 10);
    x->requires_grad = y->requires_grad = false;
    Tensor *o = op_gated_add(&g, x, gate, y);
    BNC d = {1, 13, 10};
    GC_EXPECT(&g, {.op = "gated_add(gate only)", .n_in = 3, .in = {x, gate, y}, .in_name = {"x", "gate", "y"},
                   .n_out = 1, .out = {o}, .ref = ref_gated_add, .ctx = &d, .r_stream = 110});
    graph_free(&g);
}

typedef struct { size_t n; int same; } AddDims;

/* a + b; with `same`, the op was called as add(x, x) and in[0] is both */
static void ref_add(const void *ctx, const double *const *in, double *out) {
    const AddDims *d = ctx;
    const double *b = d->same ? in[0] : in[1];
    for (size_t i = 0; i < d->n; i++) out[i] = in[0][i] + b[i];
}

Test(gradcheck, add) {
    Graph g;
    gc_graph(&g);
    Tensor *a = GC_NORMAL(&g, 1, 1.0f, 3, 3, 5, 6), *b = GC_NORMAL(&g, 2, 1.0f, 3, 3, 5, 6);
    Tensor *y = op_add(&g, a, b);
    AddDims d = {a->numel, 0};
    GC_EXPECT(&g, {.op = "add", .n_in = 2, .in = {a, b}, .in_name = {"a", "b"}, .n_out = 1, .out = {y},
                   .ref = ref_add, .ctx = &d, .r_stream = 111});
    graph_free(&g);
}

/* A tensor used twice gets both contributions (backward accumulates). */
Test(gradcheck, add_same_tensor) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 2, 7, 10);
    Tensor *y = op_add(&g, x, x);
    AddDims d = {x->numel, 1};
    GC_EXPECT(&g, {.op = "add(x, x)", .n_in = 1, .in = {x}, .in_name = {"x"}, .n_out = 1, .out = {y},
                   .ref = ref_add, .ctx = &d, .r_stream = 112});
    graph_free(&g);
}

/* out[b,n,c] = x[b,n,c] + y[n,c] */
static void ref_add_rows(const void *ctx, const double *const *in, double *out) {
    const BNC *d = ctx;
    for (int b = 0; b < d->B; b++)
        for (int n = 0; n < d->N; n++)
            for (int c = 0; c < d->C; c++) {
                size_t i = ((size_t)b * d->N + n) * d->C + c;
                out[i] = in[0][i] + in[1][(size_t)n * d->C + c];
            }
}

Test(gradcheck, add_rows) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 3, 3, 5, 6), *y = GC_NORMAL(&g, 2, 1.0f, 2, 5, 6);
    Tensor *o = op_add_rows(&g, x, y);
    BNC d = {3, 5, 6};
    GC_EXPECT(&g, {.op = "add_rows", .n_in = 2, .in = {x, y}, .in_name = {"x", "y"}, .n_out = 1, .out = {o},
                   .ref = ref_add_rows, .ctx = &d, .r_stream = 113});
    graph_free(&g);
}

/* ------------------------------------------------------------------- chunk */

typedef struct { int B, k, C, n_j; int j[GC_MAX_OUT]; } ChunkDims;

/* one output per listed j: columns [j*C, (j+1)*C) of x [B, k*C] */
static void ref_chunk(const void *ctx, const double *const *in, double *out) {
    const ChunkDims *d = ctx;
    for (int o = 0; o < d->n_j; o++)
        for (int b = 0; b < d->B; b++)
            for (int c = 0; c < d->C; c++)
                out[((size_t)o * d->B + b) * d->C + c] = in[0][(size_t)b * d->k * d->C + (size_t)d->j[o] * d->C + c];
}

/* k = 6 (the adaLN split): every chunk taken, so x's gradient gathers six
 * tape entries' contributions. */
Test(gradcheck, chunk6) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 2, 3, 6 * 10);
    ChunkDims d = {3, 6, 10, 6, {0, 1, 2, 3, 4, 5}};
    GcCase c = {.op = "chunk(k=6)", .n_in = 1, .in = {x}, .in_name = {"x"}, .n_out = 6, .ref = ref_chunk,
                .ctx = &d, .r_stream = 114};
    for (int j = 0; j < 6; j++) c.out[j] = op_chunk(&g, x, 6, j);
    cr_expect(gc_check(&g, &c).ok, "gradient check of chunk(k=6) failed");
    graph_free(&g);
}

/* k = 2, only the second half taken: the first half's gradient must be zero. */
Test(gradcheck, chunk2) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 2, 5, 2 * 6);
    Tensor *y = op_chunk(&g, x, 2, 1);
    ChunkDims d = {5, 2, 6, 1, {1}};
    GC_EXPECT(&g, {.op = "chunk(k=2, j=1)", .n_in = 1, .in = {x}, .in_name = {"x"}, .n_out = 1, .out = {y},
                   .ref = ref_chunk, .ctx = &d, .r_stream = 115});
    graph_free(&g);
}

/* ----------------------------------------------------------------- dropout */

typedef struct { size_t n; float p; uint64_t seed, stream[2]; int n_calls; } DropDims;

/* inverted dropout: element i kept when uniform(seed, stream, i) >= p, scaled by 1/(1-p) */
static void ref_dropout(const void *ctx, const double *const *in, double *out) {
    const DropDims *d = ctx;
    for (int o = 0; o < d->n_calls; o++)
        for (size_t i = 0; i < d->n; i++)
            out[(size_t)o * d->n + i] =
                rng_uniform(d->seed, d->stream[o], i) >= d->p ? in[0][i] / (1.0 - (double)d->p) : 0.0;
}

/* Two dropouts of the same x in one step: distinct streams (the op's
 * (step, call) numbering, see op_dropout), both gradients summed into x. */
Test(gradcheck, dropout) {
    Graph g;
    gc_graph(&g);
    g.training = true;
    g.seed = 4242;
    g.step = 3;
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 2, 5, 13);
    DropDims d = {x->numel, 0.3f, g.seed, {0, 0}, 2};
    Tensor *y[2];
    for (int o = 0; o < 2; o++) {
        d.stream[o] = RNG_STREAM_DROPOUT + ((g.step & 0xffffffull) << 8) + (uint64_t)g.dropout_calls;
        y[o] = op_dropout(&g, x, d.p);
    }
    cr_assert_neq(y[0], x);
    /* The mask must actually drop and keep something, or the check proves little. */
    int dropped = 0;
    for (size_t i = 0; i < x->numel; i++) dropped += y[0]->data[i] == 0.0f;
    cr_expect(dropped > 0 && dropped < (int)x->numel, "dropout dropped %d of %zu", dropped, x->numel);
    GC_EXPECT(&g, {.op = "dropout(p=0.3, x2)", .n_in = 1, .in = {x}, .in_name = {"x"}, .n_out = 2, .out = {y[0], y[1]},
                   .ref = ref_dropout, .ctx = &d, .r_stream = 116});
    graph_free(&g);
}

/* Outside training dropout is the identity and records nothing. */
Test(gradcheck, dropout_eval_identity) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 2, 5, 13);
    cr_expect_eq(op_dropout(&g, x, 0.3f), x);
    cr_expect_eq(g.n_tape, 0);
    graph_free(&g);
}

/* --------------------------------------------------------------- qkv_split */

typedef struct { int B, N, H, hd; } QkvDims;

/* qkv [B, N, 3, H, hd] -> q, k, v [B, H, N, hd], written one after the other */
static void ref_qkv_split(const void *ctx, const double *const *in, double *out) {
    const QkvDims *d = ctx;
    size_t per = (size_t)d->B * d->H * d->N * d->hd;
    for (int s = 0; s < 3; s++)
        for (int b = 0; b < d->B; b++)
            for (int h = 0; h < d->H; h++)
                for (int n = 0; n < d->N; n++)
                    for (int c = 0; c < d->hd; c++)
                        out[s * per + (((size_t)b * d->H + h) * d->N + n) * d->hd + c] =
                            in[0][((((size_t)b * d->N + n) * 3 + s) * d->H + h) * d->hd + c];
}

Test(gradcheck, qkv_split) {
    Graph g;
    gc_graph(&g);
    Tensor *qkv = GC_NORMAL(&g, 1, 1.0f, 3, 2, 7, 3 * 2 * 6);
    Tensor *q, *k, *v;
    op_qkv_split(&g, qkv, 2, &q, &k, &v);
    QkvDims d = {2, 7, 2, 6};
    GC_EXPECT(&g, {.op = "qkv_split", .n_in = 1, .in = {qkv}, .in_name = {"qkv"}, .n_out = 3, .out = {q, k, v},
                   .ref = ref_qkv_split, .ctx = &d, .r_stream = 117});
    graph_free(&g);
}

/* -------------------------------------------------------------------- rope */

typedef struct { int BH, N, hd, n_ctx; const double *cos, *sin; } RopeDims;

/* tokens n >= n_ctx: pair (x0, x1) = (x[2j], x[2j+1]) rotated by the angle of
 * table row n - n_ctx, column j: (x0 c - x1 s, x1 c + x0 s); earlier tokens copied */
static void ref_rope(const void *ctx, const double *const *in, double *out) {
    const RopeDims *d = ctx;
    for (int bh = 0; bh < d->BH; bh++)
        for (int n = 0; n < d->N; n++) {
            const double *x = in[0] + ((size_t)bh * d->N + n) * d->hd;
            gc_rope_row(out + ((size_t)bh * d->N + n) * d->hd, x, n, d->n_ctx, d->hd, d->cos, d->sin);
        }
}

static void check_rope(int n_ctx) {
    Graph g;
    gc_graph(&g);
    const int B = 2, H = 2, N = 7, hd = 12;
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 4, B, H, N, hd);
    double *dc, *ds;
    float *fc, *fs;
    gc_rope_tables(&g, 50, N - n_ctx, hd / 2, &dc, &ds, &fc, &fs);
    Tensor *y = op_rope(&g, x, fc, fs, n_ctx);
    RopeDims d = {B * H, N, hd, n_ctx, dc, ds};
    GC_EXPECT(&g, {.op = n_ctx ? "rope(n_ctx=3)" : "rope(n_ctx=0)", .n_in = 1, .in = {x}, .in_name = {"x"},
                   .n_out = 1, .out = {y}, .ref = ref_rope, .ctx = &d, .r_stream = 118});
    graph_free(&g);
}

Test(gradcheck, rope) { check_rope(0); }
Test(gradcheck, rope_ctx) { check_rope(3); }

/* --------------------------------------------------------------- attention */

typedef struct { int B, H, N, hd; } AttnDims;

/* out[b, i, h*hd + c] = sum_j softmax_j(q_i . k_j / sqrt(hd)) v[j, c], per (b, h) */
static void ref_attention(const void *ctx, const double *const *in, double *out) {
    const AttnDims *d = ctx;
    int N = d->N, hd = d->hd;
    double scale = 1.0 / sqrt((double)hd), p[64];
    for (int b = 0; b < d->B; b++)
        for (int h = 0; h < d->H; h++) {
            size_t bh = ((size_t)b * d->H + h) * N * hd;
            const double *q = in[0] + bh, *k = in[1] + bh, *v = in[2] + bh;
            for (int i = 0; i < N; i++) {
                double mx = -INFINITY, sum = 0.0;
                for (int j = 0; j < N; j++) {
                    double s = 0.0;
                    for (int c = 0; c < hd; c++) s += q[(size_t)i * hd + c] * k[(size_t)j * hd + c];
                    p[j] = s * scale;
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j < N; j++) sum += (p[j] = exp(p[j] - mx));
                for (int c = 0; c < hd; c++) {
                    double s = 0.0;
                    for (int j = 0; j < N; j++) s += p[j] / sum * v[(size_t)j * hd + c];
                    out[(((size_t)b * N + i) * d->H + h) * hd + c] = s;
                }
            }
        }
}

static void check_attention(int N, int hd, bool qv_grad, uint64_t r_stream) {
    Graph g;
    gc_graph(&g);
    const int B = 2, H = 2;
    Tensor *q = GC_NORMAL(&g, 1, 1.0f, 4, B, H, N, hd), *k = GC_NORMAL(&g, 2, 1.0f, 4, B, H, N, hd),
           *v = GC_NORMAL(&g, 3, 1.0f, 4, B, H, N, hd);
    q->requires_grad = v->requires_grad = qv_grad;
    Tensor *y = op_attention(&g, q, k, v);
    AttnDims d = {B, H, N, hd};
    char name[48];
    snprintf(name, sizeof name, "attention(N=%d, hd=%d%s)", N, hd, qv_grad ? "" : ", k only");
    GC_EXPECT(&g, {.op = name, .n_in = 3, .in = {q, k, v}, .in_name = {"q", "k", "v"}, .n_out = 1, .out = {y},
                   .ref = ref_attention, .ctx = &d, .r_stream = r_stream});
    graph_free(&g);
}

Test(gradcheck, attention_n7) { check_attention(7, 12, true, 119); }
Test(gradcheck, attention_n13) { check_attention(13, 12, true, 120); }
Test(gradcheck, attention_k_only) { check_attention(5, 10, false, 121); }

/* ------------------------------------------------------ patchify/unpatchify */

typedef struct { int B, C, H, W, p; } ImgDims;

/* img [B, C, H, W] -> [B, (H/p)*(W/p), C*p*p], patch features in (c, py, px) order */
static void ref_patchify(const void *ctx, const double *const *in, double *out) {
    const ImgDims *d = ctx;
    int p = d->p, gh = d->H / p, gw = d->W / p, P = d->C * p * p;
    for (int b = 0; b < d->B; b++)
        for (int gy = 0; gy < gh; gy++)
            for (int gx = 0; gx < gw; gx++)
                for (int c = 0; c < d->C; c++)
                    for (int py = 0; py < p; py++)
                        for (int px = 0; px < p; px++)
                            out[((size_t)b * gh * gw + (size_t)gy * gw + gx) * P + (size_t)(c * p + py) * p + px] =
                                in[0][(((size_t)b * d->C + c) * d->H + gy * p + py) * d->W + gx * p + px];
}

/* tokens [B, (H/p)*(W/p), p*p*C] in (py, px, c) order -> img [B, C, H, W] */
static void ref_unpatchify(const void *ctx, const double *const *in, double *out) {
    const ImgDims *d = ctx;
    int p = d->p, gh = d->H / p, gw = d->W / p, P = d->C * p * p;
    for (int b = 0; b < d->B; b++)
        for (int gy = 0; gy < gh; gy++)
            for (int gx = 0; gx < gw; gx++)
                for (int py = 0; py < p; py++)
                    for (int px = 0; px < p; px++)
                        for (int c = 0; c < d->C; c++)
                            out[(((size_t)b * d->C + c) * d->H + gy * p + py) * d->W + gx * p + px] =
                                in[0][((size_t)b * gh * gw + (size_t)gy * gw + gx) * P + (size_t)(py * p + px) * d->C + c];
}

static void check_patchify(int B, int H, int W, int p, uint64_t r_stream) {
    Graph g;
    gc_graph(&g);
    Tensor *img = GC_NORMAL(&g, 1, 1.0f, 4, B, 3, H, W);
    Tensor *y = op_patchify(&g, img, p);
    cr_assert(y->shape[1] == (H / p) * (W / p) && y->shape[2] == 3 * p * p);
    ImgDims d = {B, 3, H, W, p};
    char name[48];
    snprintf(name, sizeof name, "patchify(%dx%d, p=%d)", H, W, p);
    GC_EXPECT(&g, {.op = name, .n_in = 1, .in = {img}, .in_name = {"img"}, .n_out = 1, .out = {y},
                   .ref = ref_patchify, .ctx = &d, .r_stream = r_stream});
    graph_free(&g);
}

static void check_unpatchify(int B, int H, int W, int p, uint64_t r_stream) {
    Graph g;
    gc_graph(&g);
    Tensor *tok = GC_NORMAL(&g, 1, 1.0f, 3, B, (H / p) * (W / p), p * p * 3);
    Tensor *y = op_unpatchify(&g, tok, 3, H, W, p);
    ImgDims d = {B, 3, H, W, p};
    char name[48];
    snprintf(name, sizeof name, "unpatchify(%dx%d, p=%d)", H, W, p);
    GC_EXPECT(&g, {.op = name, .n_in = 1, .in = {tok}, .in_name = {"tok"}, .n_out = 1, .out = {y},
                   .ref = ref_unpatchify, .ctx = &d, .r_stream = r_stream});
    graph_free(&g);
}

Test(gradcheck, patchify) { check_patchify(2, 6, 6, 2, 122); }
Test(gradcheck, patchify_p3) { check_patchify(2, 6, 6, 3, 123); }
Test(gradcheck, patchify_nonsquare) { check_patchify(1, 6, 9, 3, 124); }
Test(gradcheck, unpatchify) { check_unpatchify(2, 6, 6, 3, 125); }
Test(gradcheck, unpatchify_p2) { check_unpatchify(2, 6, 6, 2, 126); }
Test(gradcheck, unpatchify_nonsquare) { check_unpatchify(1, 4, 6, 2, 127); }

/* ---------------------------------------------------------- timestep_embed */

typedef struct { int B, dim; } TembDims;

/* [cos(t f_j) for j < dim/2, then sin(t f_j)], f_j = exp(-ln(1e4) j / (dim/2)) */
static void ref_timestep_embed(const void *ctx, const double *const *in, double *out) {
    const TembDims *d = ctx;
    int half = d->dim / 2;
    for (int b = 0; b < d->B; b++)
        for (int j = 0; j < half; j++) {
            double f = exp(-log(10000.0) * j / half), a = in[0][b] * f;
            out[(size_t)b * d->dim + j] = cos(a);
            out[(size_t)b * d->dim + half + j] = sin(a);
        }
}

static void check_timestep(int B, int dim, float t_max, uint64_t r_stream) {
    Graph g;
    gc_graph(&g);
    Tensor *t = GC_UNIFORM(&g, 1, 0.0f, t_max, 1, B);
    Tensor *y = op_timestep_embed(&g, t, dim);
    TembDims d = {B, dim};
    char name[48];
    snprintf(name, sizeof name, "timestep_embed(dim=%d, t<%g)", dim, (double)t_max);
    GC_EXPECT(&g, {.op = name, .n_in = 1, .in = {t}, .in_name = {"t"}, .n_out = 1, .out = {y},
                   .ref = ref_timestep_embed, .ctx = &d, .r_stream = r_stream});
    graph_free(&g);
}

Test(gradcheck, timestep_embed) { check_timestep(5, 10, 1.0f, 128); }
/* larger t: the high frequencies wrap around several times */
Test(gradcheck, timestep_embed_wide) { check_timestep(3, 18, 20.0f, 129); }

/* --------------------------------------------------------------- embedding */

typedef struct { int B, C; const int *idx; } EmbDims;

static void ref_embedding(const void *ctx, const double *const *in, double *out) {
    const EmbDims *d = ctx;
    for (int b = 0; b < d->B; b++)
        for (int c = 0; c < d->C; c++) out[(size_t)b * d->C + c] = in[0][(size_t)d->idx[b] * d->C + c];
}

/* Row 3 is looked up three times (its gradient sums them), row 2 never (zero). */
Test(gradcheck, embedding) {
    Graph g;
    gc_graph(&g);
    Tensor *table = GC_NORMAL(&g, 1, 1.0f, 2, 5, 10);
    int idx[6] = {3, 0, 3, 4, 1, 3};
    Tensor *y = op_embedding(&g, table, idx, 6);
    /* The op keeps its own copy of the labels: a caller reusing its buffer must not matter. */
    int idx_ref[6];
    memcpy(idx_ref, idx, sizeof idx);
    for (int b = 0; b < 6; b++) idx[b] = 2;
    EmbDims d = {6, 10, idx_ref};
    GC_EXPECT(&g, {.op = "embedding", .n_in = 1, .in = {table}, .in_name = {"table"}, .n_out = 1, .out = {y},
                   .ref = ref_embedding, .ctx = &d, .r_stream = 130});
    graph_free(&g);
}

/* --------------------------------------------------- in-context prefix ops */

typedef struct { int B, N, L, C; } CtxDims;

/* out [B, L+N, C]: rows l < L are yemb[b] + pos[l], then x[b] */
static void ref_prepend(const void *ctx, const double *const *in, double *out) {
    const CtxDims *d = ctx;
    for (int b = 0; b < d->B; b++)
        for (int r = 0; r < d->L + d->N; r++)
            for (int c = 0; c < d->C; c++)
                out[((size_t)b * (d->L + d->N) + r) * d->C + c] =
                    r < d->L ? in[1][(size_t)b * d->C + c] + in[2][(size_t)r * d->C + c]
                             : in[0][((size_t)b * d->N + (r - d->L)) * d->C + c];
}

Test(gradcheck, incontext_prepend) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 3, 2, 5, 10), *yemb = GC_NORMAL(&g, 2, 1.0f, 2, 2, 10),
           *pos = GC_NORMAL(&g, 3, 1.0f, 2, 3, 10);
    Tensor *y = op_incontext_prepend(&g, x, yemb, pos);
    CtxDims d = {2, 5, 3, 10};
    GC_EXPECT(&g, {.op = "incontext_prepend", .n_in = 3, .in = {x, yemb, pos}, .in_name = {"x", "yemb", "pos"},
                   .n_out = 1, .out = {y}, .ref = ref_prepend, .ctx = &d, .r_stream = 131});
    graph_free(&g);
}

/* out [B, N, C] = x [B, L+N, C] without its first L rows */
static void ref_strip(const void *ctx, const double *const *in, double *out) {
    const CtxDims *d = ctx;
    for (int b = 0; b < d->B; b++)
        for (int n = 0; n < d->N; n++)
            for (int c = 0; c < d->C; c++)
                out[((size_t)b * d->N + n) * d->C + c] = in[0][((size_t)b * (d->L + d->N) + d->L + n) * d->C + c];
}

Test(gradcheck, incontext_strip) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 3, 2, 3 + 5, 10);
    Tensor *y = op_incontext_strip(&g, x, 3);
    CtxDims d = {2, 5, 3, 10};
    GC_EXPECT(&g, {.op = "incontext_strip", .n_in = 1, .in = {x}, .in_name = {"x"}, .n_out = 1, .out = {y},
                   .ref = ref_strip, .ctx = &d, .r_stream = 132});
    graph_free(&g);
}

/* ------------------------------------------------------------------- vloss */

typedef struct { int B, per; } VlossDims;

/* d_b = max(1 - t_b, 0.05); loss = mean over B*per of (x - xhat)^2 / d_b^2 */
static void ref_vloss(const void *ctx, const double *const *in, double *out) {
    const VlossDims *d = ctx;
    double total = 0.0;
    for (int b = 0; b < d->B; b++) {
        double den = fmax(1.0 - in[2][b], 0.05);
        for (int i = 0; i < d->per; i++) {
            double e = in[1][(size_t)b * d->per + i] - in[0][(size_t)b * d->per + i];
            total += e * e / (den * den);
        }
    }
    out[0] = total / ((double)d->B * d->per);
}

/* t = 0.97 and 0.99 take the 0.05 clamp; no t is near the kink at 0.95. */
Test(gradcheck, vloss) {
    Graph g;
    gc_graph(&g);
    Tensor *xhat = GC_NORMAL(&g, 1, 1.0f, 4, 4, 3, 5, 7), *x = GC_NORMAL(&g, 2, 1.0f, 4, 4, 3, 5, 7);
    Tensor *t = graph_new(&g, 1, 4);
    const float tv[4] = {0.2f, 0.97f, 0.6f, 0.99f};
    memcpy(t->data, tv, sizeof tv);
    x->requires_grad = t->requires_grad = false; /* the loss is differentiated w.r.t. the prediction only */
    Tensor *loss = op_vloss(&g, xhat, x, t);
    VlossDims d = {4, 3 * 5 * 7};
    GC_EXPECT(&g, {.op = "vloss", .n_in = 3, .in = {xhat, x, t}, .in_name = {"xhat", "x", "t"}, .n_out = 1,
                   .out = {loss}, .ref = ref_vloss, .ctx = &d, .r_stream = 133});
    graph_free(&g);
}

/* ------------------------------------------------ classifier: xent, mean pool */

typedef struct { int B, K; const int *labels; } XentDims;

/* loss = mean_b (log sum_k exp(l[b,k]) - l[b, y_b]), the log-sum-exp shifted by the row max */
static void ref_xent(const void *ctx, const double *const *in, double *out) {
    const XentDims *d = ctx;
    double total = 0.0;
    for (int b = 0; b < d->B; b++) {
        const double *l = in[0] + (size_t)b * d->K;
        double mx = l[0], s = 0.0;
        for (int k = 1; k < d->K; k++) mx = fmax(mx, l[k]);
        for (int k = 0; k < d->K; k++) s += exp(l[k] - mx);
        total += mx + log(s) - l[d->labels[b]];
    }
    out[0] = total / d->B;
}

static void check_xent(float offset, uint64_t r_stream) {
    Graph g;
    gc_graph(&g);
    Tensor *l = GC_NORMAL(&g, 1, 3.0f, 2, 5, 7);
    for (size_t i = 0; i < l->numel; i++) l->data[i] += offset; /* large logits: exp would overflow without the shift */
    const int labels[5] = {0, 6, 3, 3, 1};
    Tensor *loss = op_cross_entropy(&g, l, labels);
    cr_expect(isfinite(loss->data[0]), "cross-entropy with logits near %g is not finite", offset);
    XentDims d = {5, 7, labels};
    GC_EXPECT(&g, {.op = "cross_entropy", .n_in = 1, .in = {l}, .in_name = {"logits"}, .n_out = 1, .out = {loss},
                   .ref = ref_xent, .ctx = &d, .r_stream = r_stream});
    graph_free(&g);
}

Test(gradcheck, cross_entropy) { check_xent(0.0f, 134); }
Test(gradcheck, cross_entropy_large_logits) { check_xent(200.0f, 135); }

/* A confident correct prediction costs ~0, a confident wrong one ~ the logit gap. */
Test(gradcheck, cross_entropy_values) {
    Graph g;
    gc_graph(&g);
    Tensor *l = graph_new(&g, 2, 2, 3);
    const float v[6] = {50, 0, 0, 0, 0, 50};
    for (int i = 0; i < 6; i++) l->data[i] = v[i];
    const int labels[2] = {0, 0};
    Tensor *loss = op_cross_entropy(&g, l, labels);
    cr_expect(fabsf(loss->data[0] - 25.0f) < 1e-4f, "loss %g, expected 25", loss->data[0]);
    graph_free(&g);
}

typedef struct { int B, N, C; } PoolDims;

static void ref_mean_tokens(const void *ctx, const double *const *in, double *out) {
    const PoolDims *d = ctx;
    for (int b = 0; b < d->B; b++)
        for (int c = 0; c < d->C; c++) {
            double s = 0.0;
            for (int n = 0; n < d->N; n++) s += in[0][((size_t)b * d->N + n) * d->C + c];
            out[(size_t)b * d->C + c] = s / d->N;
        }
}

Test(gradcheck, mean_tokens) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 3, 3, 7, 10);
    Tensor *y = op_mean_tokens(&g, x);
    cr_assert(y->ndim == 2 && y->shape[0] == 3 && y->shape[1] == 10);
    PoolDims d = {3, 7, 10};
    GC_EXPECT(&g, {.op = "mean_tokens", .n_in = 1, .in = {x}, .in_name = {"x"}, .n_out = 1, .out = {y},
                   .ref = ref_mean_tokens, .ctx = &d, .r_stream = 136});
    graph_free(&g);
}

typedef struct { int B, C, H, W, k, s, pad, cl; } UnfoldDims; /* cl: channels-last input (op_unfold_hwc) */

static void ref_unfold(const void *ctx, const double *const *in, double *out) {
    const UnfoldDims *d = ctx;
    int Ho = (d->H + 2 * d->pad - d->k) / d->s + 1, Wo = (d->W + 2 * d->pad - d->k) / d->s + 1;
    size_t o = 0;
    for (int b = 0; b < d->B; b++)
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++)
                for (int c = 0; c < d->C; c++)
                    for (int ky = 0; ky < d->k; ky++)
                        for (int kx = 0; kx < d->k; kx++) {
                            int y = oy * d->s - d->pad + ky, x = ox * d->s - d->pad + kx;
                            size_t at = d->cl ? (((size_t)b * d->H + y) * d->W + x) * d->C + c
                                                      : (((size_t)b * d->C + c) * d->H + y) * d->W + x;
                            out[o++] = y >= 0 && y < d->H && x >= 0 && x < d->W ? in[0][at] : 0.0;
                        }
}

static void check_unfold(UnfoldDims d, uint64_t r_stream) {
    Graph g;
    gc_graph(&g);
    Tensor *img = d.cl ? GC_NORMAL(&g, 1, 1.0f, 3, d.B, d.H * d.W, d.C) : GC_NORMAL(&g, 1, 1.0f, 4, d.B, d.C, d.H, d.W);
    Tensor *y = d.cl ? op_unfold_hwc(&g, img, d.H, d.W, d.k, d.s, d.pad) : op_unfold(&g, img, d.k, d.s, d.pad);
    int Ho = (d.H + 2 * d.pad - d.k) / d.s + 1, Wo = (d.W + 2 * d.pad - d.k) / d.s + 1;
    cr_assert(y->shape[1] == Ho * Wo && y->shape[2] == d.C * d.k * d.k);
    GC_EXPECT(&g, {.op = "unfold", .n_in = 1, .in = {img}, .in_name = {"img"}, .n_out = 1, .out = {y},
                   .ref = ref_unfold, .ctx = &d, .r_stream = r_stream});
    graph_free(&g);
}

/* overlapping windows with padding on a non-square image, and windows that overlap by more than the stride */
Test(gradcheck, unfold) { check_unfold((UnfoldDims){2, 2, 7, 6, 4, 2, 1, 0}, 137); }
Test(gradcheck, unfold_wide) { check_unfold((UnfoldDims){1, 1, 8, 8, 6, 2, 2, 0}, 138); }
Test(gradcheck, unfold_hwc) { check_unfold((UnfoldDims){2, 3, 7, 6, 3, 1, 1, 1}, 139); }   /* VGG's 3x3 convolution */
Test(gradcheck, unfold_hwc_patch) { check_unfold((UnfoldDims){1, 3, 9, 9, 3, 3, 0, 1}, 140); } /* DINOv2's patches */

typedef struct { int k, per; const int *idx; } SelectDims;

static void ref_select_rows(const void *ctx, const double *const *in, double *out) {
    const SelectDims *d = ctx;
    for (int i = 0; i < d->k; i++)
        for (int j = 0; j < d->per; j++) out[(size_t)i * d->per + j] = in[0][(size_t)d->idx[i] * d->per + j];
}

Test(gradcheck, select_rows) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 4, 5, 2, 3, 3);
    static const int idx[3] = {4, 0, 2};
    Tensor *y = op_select_rows(&g, x, idx, 3);
    cr_assert(y->ndim == 4 && y->shape[0] == 3 && y->shape[3] == 3);
    SelectDims d = {3, 18, idx};
    GC_EXPECT(&g, {.op = "select_rows", .n_in = 1, .in = {x}, .in_name = {"x"}, .n_out = 1, .out = {y},
                   .ref = ref_select_rows, .ctx = &d, .r_stream = 145});
    graph_free(&g);
}

/* ------------------------------------------- DINOv2's ops */

typedef struct { int rows, C; } RowsDims;

static void ref_layernorm(const void *ctx, const double *const *in, double *out) {
    const RowsDims *d = ctx;
    for (int r = 0; r < d->rows; r++) {
        const double *x = in[0] + (size_t)r * d->C;
        double mu = 0, var = 0;
        for (int c = 0; c < d->C; c++) mu += x[c];
        mu /= d->C;
        for (int c = 0; c < d->C; c++) var += (x[c] - mu) * (x[c] - mu);
        double rs = 1.0 / sqrt(var / d->C + 1e-6);
        for (int c = 0; c < d->C; c++) out[(size_t)r * d->C + c] = (x[c] - mu) * rs * in[1][c] + in[2][c];
    }
}

Test(gradcheck, layernorm) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 3, 2, 3, 7), *w = GC_NORMAL(&g, 2, 1.0f, 1, 7), *b = GC_NORMAL(&g, 3, 1.0f, 1, 7);
    Tensor *y = op_layernorm(&g, x, w, b, 1e-6f);
    RowsDims d = {6, 7};
    GC_EXPECT(&g, {.op = "layernorm", .n_in = 3, .in = {x, w, b}, .in_name = {"x", "w", "b"}, .n_out = 1, .out = {y},
                   .ref = ref_layernorm, .ctx = &d, .r_stream = 146});
    graph_free(&g);
}

static void ref_gelu(const void *ctx, const double *const *in, double *out) {
    size_t n = *(const size_t *)ctx;
    for (size_t i = 0; i < n; i++) out[i] = 0.5 * in[0][i] * (1.0 + erf(in[0][i] / sqrt(2.0)));
}

Test(gradcheck, gelu) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 2.0f, 2, 5, 9);
    Tensor *y = op_gelu(&g, x);
    size_t n = x->numel;
    GC_EXPECT(&g, {.op = "gelu", .n_in = 1, .in = {x}, .in_name = {"x"}, .n_out = 1, .out = {y}, .ref = ref_gelu,
                   .ctx = &n, .r_stream = 147});
    graph_free(&g);
}

static void ref_cosine(const void *ctx, const double *const *in, double *out) {
    const RowsDims *d = ctx;
    for (int r = 0; r < d->rows; r++) {
        const double *a = in[0] + (size_t)r * d->C, *b = in[1] + (size_t)r * d->C;
        double ab = 0, aa = 0, bb = 0;
        for (int c = 0; c < d->C; c++) ab += a[c] * b[c], aa += a[c] * a[c], bb += b[c] * b[c];
        out[r] = ab / (fmax(sqrt(aa), 1e-8) * fmax(sqrt(bb), 1e-8));
    }
}

Test(gradcheck, cosine) {
    Graph g;
    gc_graph(&g);
    Tensor *a = GC_NORMAL(&g, 1, 1.0f, 3, 2, 4, 6), *b = GC_NORMAL(&g, 2, 1.0f, 3, 2, 4, 6);
    Tensor *y = op_cosine(&g, a, b);
    cr_assert(y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 4);
    RowsDims d = {8, 6};
    GC_EXPECT(&g, {.op = "cosine", .n_in = 2, .in = {a, b}, .in_name = {"a", "b"}, .n_out = 1, .out = {y},
                   .ref = ref_cosine, .ctx = &d, .r_stream = 148});
    graph_free(&g);
}

/* A zero vector: the clamped norm, a finite gradient (b / (1e-8 |b|) for a). */
Test(gradcheck, cosine_zero_vector) {
    Graph g;
    gc_graph(&g);
    Tensor *a = GC_NORMAL(&g, 1, 1.0f, 2, 2, 3), *b = GC_NORMAL(&g, 2, 1.0f, 2, 2, 3);
    for (int c = 0; c < 3; c++) a->data[c] = 0.0f;
    Tensor *y = op_cosine(&g, a, b);
    cr_expect(y->data[0] == 0.0f, "cos(0, b) = %g", y->data[0]);
    const float one[2] = {1.0f, 1.0f};
    graph_backward_from(&g, y, one);
    float *da = graph_grad(&g, a), *db = graph_grad(&g, b);
    for (int i = 0; i < 6; i++) cr_expect(isfinite(da[i]) && isfinite(db[i]), "gradient %d: %g %g", i, da[i], db[i]);
    for (int c = 0; c < 3; c++) cr_expect(db[c] == 0.0f, "d b[%d] = %g with a = 0", c, db[c]);
    graph_free(&g);
}

typedef struct { int P, H, W, Ho, Wo; double ry, rx; } ResizeDims;

/* PyTorch's bicubic taps (A = -0.75), in double. */
static void ref_taps(int o, double r, int n, int idx[4], double w[4]) {
    const double A = -0.75;
    double u = r * (o + 0.5) - 0.5, fl = floor(u), f = u - fl;
    double d[4] = {1 + f, f, 1 - f, 2 - f};
    for (int t = 0; t < 4; t++) {
        double x = d[t];
        w[t] = t == 1 || t == 2 ? ((A + 2) * x - (A + 3)) * x * x + 1 : ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
        int j = (int)fl - 1 + t;
        idx[t] = j < 0 ? 0 : j > n - 1 ? n - 1 : j;
    }
}

static void ref_resize(const void *ctx, const double *const *in, double *out) {
    const ResizeDims *d = ctx;
    for (int p = 0; p < d->P; p++)
        for (int oy = 0; oy < d->Ho; oy++)
            for (int ox = 0; ox < d->Wo; ox++) {
                int iy[4], ix[4];
                double wy[4], wx[4], s = 0;
                ref_taps(oy, d->ry, d->H, iy, wy);
                ref_taps(ox, d->rx, d->W, ix, wx);
                for (int a = 0; a < 4; a++)
                    for (int c = 0; c < 4; c++) s += wy[a] * wx[c] * in[0][((size_t)p * d->H + iy[a]) * d->W + ix[c]];
                out[((size_t)p * d->Ho + oy) * d->Wo + ox] = s;
            }
}

static void check_resize(int B, int C, int H, int W, int Ho, int Wo, float ry, float rx, uint64_t r_stream) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 4, B, C, H, W);
    Tensor *y = op_resize_bicubic(&g, x, Ho, Wo, ry, rx);
    ResizeDims d = {B * C, H, W, Ho, Wo, ry > 0 ? ry : (float)H / Ho, rx > 0 ? rx : (float)W / Wo};
    GC_EXPECT(&g, {.op = "resize_bicubic", .n_in = 1, .in = {x}, .in_name = {"x"}, .n_out = 1, .out = {y},
                   .ref = ref_resize, .ctx = &d, .r_stream = r_stream});
    graph_free(&g);
}

Test(gradcheck, resize_bicubic_down) { check_resize(2, 3, 16, 16, 14, 14, 0, 0, 149); } /* 256 -> 224, scaled down */
Test(gradcheck, resize_bicubic_up) { check_resize(1, 2, 5, 7, 11, 9, 0, 0, 150); }
Test(gradcheck, resize_bicubic_step) { check_resize(1, 2, 9, 9, 4, 4, 9.0f / 4.1f, 9.0f / 4.1f, 151); } /* DINOv2's offset step */

/* ------------------------------------------- convolutional networks (VGG, LPIPS) */

static void ref_relu(const void *ctx, const double *const *in, double *out) {
    size_t n = *(const size_t *)ctx;
    for (size_t i = 0; i < n; i++) out[i] = in[0][i] > 0 ? in[0][i] : 0.0;
}

Test(gradcheck, relu) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 3, 2, 5, 7);
    Tensor *y = op_relu(&g, x);
    size_t n = x->numel;
    GC_EXPECT(&g, {.op = "relu", .n_in = 1, .in = {x}, .in_name = {"x"}, .n_out = 1, .out = {y}, .ref = ref_relu,
                   .ctx = &n, .r_stream = 141});
    graph_free(&g);
}

typedef struct { int B, H, W, C; } PoolImg;

static void ref_maxpool2(const void *ctx, const double *const *in, double *out) {
    const PoolImg *d = ctx;
    size_t o = 0;
    for (int b = 0; b < d->B; b++)
        for (int oy = 0; oy < d->H / 2; oy++)
            for (int ox = 0; ox < d->W / 2; ox++)
                for (int c = 0; c < d->C; c++) {
                    double m = -INFINITY;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++)
                            m = fmax(m, in[0][(((size_t)b * d->H + 2 * oy + dy) * d->W + 2 * ox + dx) * d->C + c]);
                    out[o++] = m;
                }
}

static void check_maxpool2(PoolImg d, uint64_t r_stream) {
    Graph g;
    gc_graph(&g);
    Tensor *x = GC_NORMAL(&g, 1, 1.0f, 3, d.B, d.H * d.W, d.C);
    Tensor *y = op_maxpool2(&g, x, d.H, d.W);
    cr_assert(y->shape[1] == (d.H / 2) * (d.W / 2) && y->shape[2] == d.C);
    GC_EXPECT(&g, {.op = "maxpool2", .n_in = 1, .in = {x}, .in_name = {"x"}, .n_out = 1, .out = {y},
                   .ref = ref_maxpool2, .ctx = &d, .r_stream = r_stream});
    graph_free(&g);
}

Test(gradcheck, maxpool2) { check_maxpool2((PoolImg){2, 6, 4, 3}, 142); }
Test(gradcheck, maxpool2_odd) { check_maxpool2((PoolImg){1, 5, 7, 2}, 143); } /* last row and column dropped */

typedef struct { int B, N, C; } LpipsDims;

/* mean over pixels of sum_c w (a/(|a| + 1e-10) - f/(|f| + 1e-10))^2 */
static void ref_lpips(const void *ctx, const double *const *in, double *out) {
    const LpipsDims *d = ctx;
    for (int b = 0; b < d->B; b++) {
        double t = 0;
        for (int n = 0; n < d->N; n++) {
            const double *a = in[0] + ((size_t)b * d->N + n) * d->C, *f = in[1] + ((size_t)b * d->N + n) * d->C;
            double na = 0, nf = 0;
            for (int c = 0; c < d->C; c++) na += a[c] * a[c], nf += f[c] * f[c];
            na = sqrt(na) + 1e-10, nf = sqrt(nf) + 1e-10;
            for (int c = 0; c < d->C; c++) t += in[2][c] * (a[c] / na - f[c] / nf) * (a[c] / na - f[c] / nf);
        }
        out[b] = t / d->N;
    }
}

Test(gradcheck, lpips_distance) {
    Graph g;
    gc_graph(&g);
    LpipsDims d = {2, 5, 6};
    Tensor *a = GC_NORMAL(&g, 1, 1.0f, 3, d.B, d.N, d.C), *f = GC_NORMAL(&g, 2, 1.0f, 3, d.B, d.N, d.C);
    Tensor *w = GC_UNIFORM(&g, 3, 0.0f, 1.0f, 1, d.C);
    w->requires_grad = false; /* a frozen LPIPS head */
    Tensor *y = op_lpips_distance(&g, a, f, w);
    GC_EXPECT(&g, {.op = "lpips_distance", .n_in = 3, .in = {a, f, w}, .in_name = {"a", "f", "w"}, .n_out = 1,
                   .out = {y}, .ref = ref_lpips, .ctx = &d, .r_stream = 144});
    graph_free(&g);
}

/* An all-zero feature vector (a pixel that no ReLU lets through): PyTorch's
 * LPIPS gives NaN there; ours gives that pixel a zero gradient, and the
 * others their usual one. */
Test(gradcheck, lpips_distance_zero_vector) {
    Graph g;
    gc_graph(&g);
    Tensor *a = GC_NORMAL(&g, 1, 1.0f, 3, 1, 3, 4), *f = GC_NORMAL(&g, 2, 1.0f, 3, 1, 3, 4);
    Tensor *w = GC_UNIFORM(&g, 3, 0.0f, 1.0f, 1, 4);
    w->requires_grad = false;
    for (int c = 0; c < 4; c++) a->data[4 + c] = 0.0f; /* pixel 1 of a */
    Tensor *y = op_lpips_distance(&g, a, f, w);
    cr_assert(isfinite(y->data[0]));
    const float one = 1.0f;
    graph_backward_from(&g, y, &one);
    float *da = graph_grad(&g, a);
    for (int i = 0; i < 12; i++) {
        cr_expect(isfinite(da[i]), "d a[%d] = %g", i, da[i]);
        if (i >= 4 && i < 8) cr_expect(da[i] == 0.0f, "the zero pixel's gradient d a[%d] = %g, want 0", i, da[i]);
        else cr_expect(da[i] != 0.0f, "d a[%d] is 0", i);
    }
    graph_free(&g);
}

/* window = stride, no padding: exactly patchify */
Test(gradcheck, unfold_is_patchify) {
    Graph g;
    gc_graph(&g);
    Tensor *img = GC_NORMAL(&g, 1, 1.0f, 4, 2, 3, 8, 12);
    Tensor *a = op_unfold(&g, img, 4, 4, 0), *b = op_patchify(&g, img, 4);
    cr_assert(tensor_same_shape(a, b));
    cr_expect(memcmp(a->data, b->data, a->numel * sizeof(float)) == 0, "unfold(k = s, pad 0) differs from patchify");
    graph_free(&g);
}

/* ------------------------------------------------- ops that record nothing */

/* Calls every op once on inputs that do (req) or do not require gradients;
 * returns the outputs in outs (room for 48). */
static int call_every_op(Graph *g, bool req, Tensor **outs) {
    int n = 0;
    Tensor *x = GC_NORMAL(g, 1, 1.0f, 3, 2, 5, 12), *w = GC_NORMAL(g, 2, 1.0f, 2, 6, 12),
           *b = GC_NORMAL(g, 3, 1.0f, 1, 6), *nw = GC_NORMAL(g, 4, 1.0f, 1, 12), *mod = GC_NORMAL(g, 5, 1.0f, 2, 2, 12),
           *row = GC_NORMAL(g, 6, 1.0f, 2, 5, 12), *qkv = GC_NORMAL(g, 7, 1.0f, 3, 2, 5, 3 * 2 * 4),
           *img = GC_NORMAL(g, 8, 1.0f, 4, 2, 3, 4, 6), *t = GC_UNIFORM(g, 9, 0.0f, 1.0f, 1, 2),
           *table = GC_NORMAL(g, 10, 1.0f, 2, 4, 12), *pos = GC_NORMAL(g, 11, 1.0f, 2, 3, 12),
           *chunks = GC_NORMAL(g, 12, 1.0f, 2, 2, 6 * 12), *target = GC_NORMAL(g, 13, 1.0f, 3, 2, 5, 12),
           *hw = GC_NORMAL(g, 14, 1.0f, 3, 2, 4, 3); /* 2 channels-last images of 2x2 pixels, 3 channels */
    Tensor *ins[] = {x, w, b, nw, mod, row, qkv, img, t, table, pos, chunks, target, hw};
    for (size_t i = 0; i < sizeof ins / sizeof ins[0]; i++) ins[i]->requires_grad = req;
    static const float cs[5 * 2] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, sn[5 * 2] = {0};
    static const int idx[2] = {1, 1};

    outs[n++] = op_linear(g, x, w, b);
    outs[n++] = op_rmsnorm(g, x, nw, 1e-6f);
    outs[n++] = op_silu(g, x);
    outs[n++] = op_swiglu(g, x);
    outs[n++] = op_modulate(g, x, mod, mod);
    outs[n++] = op_gated_add(g, x, mod, x);
    outs[n++] = op_add(g, x, x);
    outs[n++] = op_add_rows(g, x, row);
    outs[n++] = op_chunk(g, chunks, 6, 4);
    outs[n++] = op_dropout(g, x, 0.3f); /* g->training is set: a real dropout */
    Tensor *q, *k, *v;
    op_qkv_split(g, qkv, 2, &q, &k, &v);
    outs[n++] = q, outs[n++] = k, outs[n++] = v;
    outs[n++] = op_rope(g, q, cs, sn, 0);
    outs[n++] = op_attention(g, q, k, v);
    outs[n++] = op_patchify(g, img, 2);
    outs[n++] = op_unpatchify(g, op_patchify(g, img, 2), 3, 4, 6, 2);
    outs[n++] = op_timestep_embed(g, t, 10);
    outs[n++] = op_embedding(g, table, idx, 2);
    outs[n++] = op_incontext_prepend(g, x, mod, pos);
    outs[n++] = op_incontext_strip(g, x, 2);
    outs[n++] = op_vloss(g, x, target, t);
    static const int cls[6] = {0, 3, 11, 5, 5, 1};
    outs[n++] = op_cross_entropy(g, w, cls); /* w as [6, 12] logits */
    outs[n++] = op_mean_tokens(g, x);
    outs[n++] = op_unfold(g, img, 3, 2, 1);
    outs[n++] = op_unfold_hwc(g, x, 1, 5, 3, 1, 1); /* x as 2 images of 1x5 pixels, 12 channels */
    outs[n++] = op_relu(g, x);
    outs[n++] = op_layernorm(g, x, nw, nw, 1e-6f);
    outs[n++] = op_gelu(g, x);
    outs[n++] = op_resize_bicubic(g, img, 3, 5, 0, 0);
    outs[n++] = op_cosine(g, x, target);
    outs[n++] = op_select_rows(g, x, idx, 2);
    outs[n++] = op_maxpool2(g, hw, 2, 2);
    outs[n++] = op_lpips_distance(g, x, target, nw);
    return n;
}

Test(gradcheck, no_grad_mode_records_nothing) {
    Graph g;
    gc_graph(&g);
    g.training = true;
    cr_expect(graph_set_grad(&g, false), "gradients start enabled");
    Tensor *outs[48];
    int n = call_every_op(&g, true, outs);
    cr_expect_eq(g.n_tape, 0, "no-grad mode recorded %d tape entries", g.n_tape);
    for (int i = 0; i < n; i++) cr_expect(!outs[i]->requires_grad, "output %d requires a gradient in no-grad mode", i);
    cr_expect(!graph_set_grad(&g, true));
    graph_free(&g);
}

Test(gradcheck, constant_inputs_record_nothing) {
    Graph g;
    gc_graph(&g);
    g.training = true;
    Tensor *outs[48];
    int n = call_every_op(&g, false, outs);
    cr_expect_eq(g.n_tape, 0, "ops on constants recorded %d tape entries", g.n_tape);
    for (int i = 0; i < n; i++) cr_expect(!outs[i]->requires_grad, "output %d of constants requires a gradient", i);
    graph_free(&g);
}

/* The counterpart, so the two tests above cannot pass vacuously: the same
 * calls with inputs that need gradients record one entry per op. */
Test(gradcheck, tracked_inputs_record_every_op) {
    Graph g;
    gc_graph(&g);
    g.training = true;
    Tensor *outs[48];
    int n = call_every_op(&g, true, outs);
    /* every output is tracked; q, k, v share one qkv_split entry, unpatchify adds an inner patchify */
    for (int i = 0; i < n; i++) cr_expect(outs[i]->requires_grad, "output %d is not tracked", i);
    cr_expect_eq(g.n_tape, n - 2 + 1, "recorded %d entries for %d outputs", g.n_tape, n);
    graph_free(&g);
}
