/* core/ops_fused.c — differentiable wrappers of the fused element-wise
 * chains (core/op_list.h norm_modulate, qkv_norm_rope): the JiT block's
 * norm + modulation (with the gated residual before it) and its head split
 * + q/k norm + RoPE, each one op on the tape with two or three outputs.
 * They compute what the unfused ops compute in turn (bit for bit on the
 * CPU); the GPU reads and writes each element once (docs/cuda_kernels.md). */
#include "core/check.h"
#include "core/ops.h"

typedef struct NormModCtx {
    Tensor *out, *res, *x, *gate, *y, *w, *shift, *scale, *rstd;
    int B, N, C;
} NormModCtx;

static void norm_modulate_bwd(Graph *g, void *p) {
    NormModCtx *c = p;
    float *dres = c->res ? c->res->grad : NULL;
    if (!c->out->grad && !dres) return;
    /* Only the residual's gradient arrived: the norm's part is zero, from a zeroed dout. */
    const float *dout = graph_grad(g, c->out);
    g->be->ops->norm_modulate_bwd(graph_grad(g, c->x), graph_grad(g, c->gate), graph_grad(g, c->y),
                                  graph_grad(g, c->w), graph_grad(g, c->shift), graph_grad(g, c->scale), dout, dres,
                                  c->res ? c->res->data : c->x->data, c->gate ? c->gate->data : NULL,
                                  c->y ? c->y->data : NULL, c->w->data, c->scale->data, c->rstd->data, c->B, c->N,
                                  c->C);
}

Tensor *op_norm_modulate(Graph *g, Tensor *x, Tensor *gate, Tensor *y, Tensor *w, Tensor *shift, Tensor *scale,
                         float eps, Tensor **res) {
    CHECK_SHAPE(x, 3, -1, -1, -1);
    int B = x->shape[0], N = x->shape[1], C = x->shape[2];
    CHECK((gate == NULL) == (y == NULL) && (gate == NULL) == (res == NULL),
          "norm_modulate: gate, y and res come together (the gated residual) or not at all");
    if (gate) {
        CHECK_SHAPE(gate, 2, B, C);
        CHECK_SHAPE(y, 3, B, N, C);
    }
    CHECK_SHAPE(w, 1, C);
    CHECK_SHAPE(shift, 2, B, C);
    CHECK_SHAPE(scale, 2, B, C);
    Tensor *out = graph_tensor(g, 3, x->shape);
    Tensor *r = gate ? graph_tensor(g, 3, x->shape) : NULL;
    Tensor *rstd = graph_new(g, 1, B * N);
    g->be->ops->norm_modulate_fwd(out->data, r ? r->data : NULL, rstd->data, x->data, gate ? gate->data : NULL,
                                  y ? y->data : NULL, w->data, shift->data, scale->data, B, N, C, eps);
    if (res) *res = r;
    if (GRAPH_TRACK(g, out, x, gate, y, w, shift, scale)) {
        if (r) r->requires_grad = true;
        NormModCtx *c = graph_alloc_host(g, sizeof *c);
        *c = (NormModCtx){out, r, x, gate, y, w, shift, scale, rstd, B, N, C};
        graph_record(g, norm_modulate_bwd, c, "norm_modulate");
    }
    return out;
}

typedef struct QkvCtx {
    Tensor *q, *k, *v, *qkv, *qw, *kw, *rstd;
    const float *cos, *sin;
    int B, N, H, hd, n_ctx;
} QkvCtx;

static void qkv_norm_rope_bwd(Graph *g, void *p) {
    QkvCtx *c = p;
    if (!c->q->grad && !c->k->grad && !c->v->grad) return;
    g->be->ops->qkv_norm_rope_bwd(graph_grad(g, c->qkv), graph_grad(g, c->qw), graph_grad(g, c->kw), c->q->grad,
                                  c->k->grad, c->v->grad, c->qkv->data, c->qw->data, c->kw->data, c->rstd->data,
                                  c->cos, c->sin, c->B, c->N, c->H, c->hd, c->n_ctx);
}

void op_qkv_norm_rope(Graph *g, Tensor *qkv, int H, Tensor *qw, Tensor *kw, const float *cos, const float *sin,
                      int n_ctx, float eps, Tensor **q, Tensor **k, Tensor **v) {
    CHECK_SHAPE(qkv, 3, -1, -1, -1);
    int B = qkv->shape[0], N = qkv->shape[1], D3 = qkv->shape[2];
    CHECK(H > 0 && D3 % (3 * H) == 0, "qkv width %d is not 3 * heads(%d) * head_dim", D3, H);
    int hd = D3 / (3 * H);
    CHECK(hd % 4 == 0 && hd <= QKV_NORM_ROPE_MAX_HD,
          "qkv_norm_rope: head dimension %d must be divisible by 4 (2D RoPE) and at most %d", hd,
          QKV_NORM_ROPE_MAX_HD);
    CHECK(n_ctx >= 0 && n_ctx < N, "qkv_norm_rope: %d unrotated tokens out of %d", n_ctx, N);
    CHECK_SHAPE(qw, 1, hd);
    CHECK_SHAPE(kw, 1, hd);
    *q = graph_new(g, 4, B, H, N, hd);
    *k = graph_new(g, 4, B, H, N, hd);
    *v = graph_new(g, 4, B, H, N, hd);
    Tensor *rstd = graph_new(g, 1, 2 * B * H * N);
    g->be->ops->qkv_norm_rope_fwd((*q)->data, (*k)->data, (*v)->data, rstd->data, qkv->data, qw->data, kw->data, cos,
                                  sin, B, N, H, hd, n_ctx, eps);
    bool track = GRAPH_TRACK(g, *q, qkv, qw, kw);
    (*k)->requires_grad = (*v)->requires_grad = track;
    if (track) {
        QkvCtx *c = graph_alloc_host(g, sizeof *c);
        *c = (QkvCtx){*q, *k, *v, qkv, qw, kw, rstd, cos, sin, B, N, H, hd, n_ctx};
        graph_record(g, qkv_norm_rope_bwd, c, "qkv_norm_rope");
    }
}
