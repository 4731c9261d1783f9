/* core/ops_nn.c — differentiable wrappers of the dense-network kernels. */
#include "core/check.h"
#include "core/ops.h"
#include "core/rng.h"

OpCtx *op_ctx(Graph *g, Tensor *out) {
    OpCtx *c = graph_alloc_host(g, sizeof *c);
    *c = (OpCtx){.out = out};
    return c;
}

/* An output of the same shape as x. */
static Tensor *like(Graph *g, const Tensor *x) { return graph_tensor(g, x->ndim, x->shape); }

/* An output with x's shape but last dimension `last`. */
static Tensor *like_last(Graph *g, const Tensor *x, int last) {
    int shape[TENSOR_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
    shape[x->ndim - 1] = last;
    return graph_tensor(g, x->ndim, shape);
}

static void linear_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->linear_bwd(graph_grad(g, c->in[0]), graph_grad(g, c->in[1]), graph_grad(g, c->in[2]), c->out->grad,
                       c->in[0]->data, c->in[1]->data, c->dim[0], c->dim[1], c->dim[2]);
}

Tensor *op_linear(Graph *g, Tensor *x, Tensor *w, Tensor *b) {
    int IC = tensor_cols(x), M = (int)tensor_rows(x);
    CHECK_SHAPE(w, 2, -1, IC);
    int OC = w->shape[0];
    if (b) CHECK_SHAPE(b, 1, OC);
    Tensor *out = like_last(g, x, OC);
    g->be->ops->linear_fwd(out->data, x->data, w->data, b ? b->data : NULL, M, IC, OC);
    if (GRAPH_TRACK(g, out, x, w, b)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = x, c->in[1] = w, c->in[2] = b;
        c->dim[0] = M, c->dim[1] = IC, c->dim[2] = OC;
        graph_record(g, linear_bwd, c, "linear");
    }
    return out;
}

static void rmsnorm_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->rmsnorm_bwd(graph_grad(g, c->in[0]), graph_grad(g, c->in[1]), c->out->grad, c->in[0]->data,
                        c->in[1]->data, c->saved->data, c->dim[0], c->dim[1]);
}

Tensor *op_rmsnorm(Graph *g, Tensor *x, Tensor *w, float eps) {
    int C = tensor_cols(x), rows = (int)tensor_rows(x);
    CHECK_SHAPE(w, 1, C);
    Tensor *out = like(g, x);
    Tensor *rstd = graph_new(g, 1, rows);
    g->be->ops->rmsnorm_fwd(out->data, rstd->data, x->data, w->data, rows, C, eps);
    if (GRAPH_TRACK(g, out, x, w)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = x, c->in[1] = w, c->saved = rstd;
        c->dim[0] = rows, c->dim[1] = C;
        graph_record(g, rmsnorm_bwd, c, "rmsnorm");
    }
    return out;
}

static void silu_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->silu_bwd(graph_grad(g, c->in[0]), c->out->grad, c->in[0]->data, c->in[0]->numel);
}

Tensor *op_silu(Graph *g, Tensor *x) {
    Tensor *out = like(g, x);
    g->be->ops->silu_fwd(out->data, x->data, x->numel);
    if (GRAPH_TRACK(g, out, x)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = x;
        graph_record(g, silu_bwd, c, "silu");
    }
    return out;
}

static void swiglu_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->swiglu_bwd(graph_grad(g, c->in[0]), c->out->grad, c->in[0]->data, c->dim[0], c->dim[1]);
}

Tensor *op_swiglu(Graph *g, Tensor *x) {
    int C2 = tensor_cols(x), M = (int)tensor_rows(x);
    CHECK(C2 % 2 == 0, "swiglu needs an even last dimension (a | b), got %d", C2);
    Tensor *out = like_last(g, x, C2 / 2);
    g->be->ops->swiglu_fwd(out->data, x->data, M, C2 / 2);
    if (GRAPH_TRACK(g, out, x)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = x;
        c->dim[0] = M, c->dim[1] = C2 / 2;
        graph_record(g, swiglu_bwd, c, "swiglu");
    }
    return out;
}

static void modulate_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->modulate_bwd(graph_grad(g, c->in[0]), graph_grad(g, c->in[1]), graph_grad(g, c->in[2]), c->out->grad,
                         c->in[0]->data, c->in[2]->data, c->dim[0], c->dim[1], c->dim[2]);
}

Tensor *op_modulate(Graph *g, Tensor *x, Tensor *shift, Tensor *scale) {
    CHECK_SHAPE(x, 3, -1, -1, -1);
    int B = x->shape[0], N = x->shape[1], C = x->shape[2];
    CHECK_SHAPE(shift, 2, B, C);
    CHECK_SHAPE(scale, 2, B, C);
    Tensor *out = like(g, x);
    g->be->ops->modulate_fwd(out->data, x->data, shift->data, scale->data, B, N, C);
    if (GRAPH_TRACK(g, out, x, shift, scale)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = x, c->in[1] = shift, c->in[2] = scale;
        c->dim[0] = B, c->dim[1] = N, c->dim[2] = C;
        graph_record(g, modulate_bwd, c, "modulate");
    }
    return out;
}

static void gated_add_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->gated_add_bwd(graph_grad(g, c->in[0]), graph_grad(g, c->in[1]), graph_grad(g, c->in[2]), c->out->grad,
                          c->in[1]->data, c->in[2]->data, c->dim[0], c->dim[1], c->dim[2]);
}

Tensor *op_gated_add(Graph *g, Tensor *x, Tensor *gate, Tensor *y) {
    CHECK_SHAPE(x, 3, -1, -1, -1);
    int B = x->shape[0], N = x->shape[1], C = x->shape[2];
    CHECK_SHAPE(gate, 2, B, C);
    CHECK_SHAPE(y, 3, B, N, C);
    Tensor *out = like(g, x);
    g->be->ops->gated_add_fwd(out->data, x->data, gate->data, y->data, B, N, C);
    if (GRAPH_TRACK(g, out, x, gate, y)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = x, c->in[1] = gate, c->in[2] = y;
        c->dim[0] = B, c->dim[1] = N, c->dim[2] = C;
        graph_record(g, gated_add_bwd, c, "gated_add");
    }
    return out;
}

static void add_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    for (int i = 0; i < 2; i++) {
        float *d = graph_grad(g, c->in[i]);
        if (d) g->be->ops->accumulate(d, c->out->grad, c->out->numel);
    }
}

Tensor *op_add(Graph *g, Tensor *a, Tensor *b) {
    char sa[64], sb[64];
    CHECK(tensor_same_shape(a, b), "add needs equal shapes, got %s and %s", tensor_shape_str(a, sa, sizeof sa),
          tensor_shape_str(b, sb, sizeof sb));
    Tensor *out = like(g, a);
    g->be->ops->add_fwd(out->data, a->data, b->data, a->numel);
    if (GRAPH_TRACK(g, out, a, b)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = a, c->in[1] = b;
        graph_record(g, add_bwd, c, "add");
    }
    return out;
}

static void add_rows_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->add_rows_bwd(graph_grad(g, c->in[0]), graph_grad(g, c->in[1]), c->out->grad, c->dim[0], c->dim[1],
                         c->dim[2]);
}

Tensor *op_add_rows(Graph *g, Tensor *x, Tensor *y) {
    CHECK_SHAPE(x, 3, -1, -1, -1);
    int B = x->shape[0], N = x->shape[1], C = x->shape[2];
    CHECK_SHAPE(y, 2, N, C);
    Tensor *out = like(g, x);
    g->be->ops->add_rows_fwd(out->data, x->data, y->data, B, N, C);
    if (GRAPH_TRACK(g, out, x, y)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = x, c->in[1] = y;
        c->dim[0] = B, c->dim[1] = N, c->dim[2] = C;
        graph_record(g, add_rows_bwd, c, "add_rows");
    }
    return out;
}

static void chunk_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->chunk_bwd(graph_grad(g, c->in[0]), c->out->grad, c->dim[0], c->dim[1], c->dim[2], c->dim[3]);
}

Tensor *op_chunk(Graph *g, Tensor *x, int k, int j) {
    CHECK_SHAPE(x, 2, -1, -1);
    int B = x->shape[0];
    CHECK(k > 0 && x->shape[1] % k == 0, "chunk: %d columns do not split into %d equal parts", x->shape[1], k);
    CHECK(j >= 0 && j < k, "chunk index %d out of range [0, %d)", j, k);
    int C = x->shape[1] / k;
    Tensor *out = graph_new(g, 2, B, C);
    g->be->ops->chunk_fwd(out->data, x->data, B, k, C, j);
    if (GRAPH_TRACK(g, out, x)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = x;
        c->dim[0] = B, c->dim[1] = k, c->dim[2] = C, c->dim[3] = j;
        graph_record(g, chunk_bwd, c, "chunk");
    }
    return out;
}

/* The mask is not stored: backward redraws it from Philox with the same stream. */
static void dropout_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->dropout_bwd(graph_grad(g, c->in[0]), c->out->grad, c->out->numel, c->f, g->seed, c->u);
}

Tensor *op_dropout(Graph *g, Tensor *x, float p) {
    if (!g->training || p <= 0.0f) return x;
    CHECK(p < 1.0f, "dropout probability must be in [0, 1), got %g", p);
    /* One stream per (step, call): a step's masks never repeat, and a resumed run redraws the same ones. */
    uint64_t stream = RNG_STREAM_DROPOUT + ((g->step & 0xffffffull) << 8) + (uint64_t)g->dropout_calls++;
    Tensor *out = like(g, x);
    g->be->ops->dropout_fwd(out->data, x->data, x->numel, p, g->seed, stream);
    if (GRAPH_TRACK(g, out, x)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = x;
        c->f = p;
        c->u = stream;
        graph_record(g, dropout_bwd, c, "dropout");
    }
    return out;
}
