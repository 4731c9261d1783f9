/* core/ops_vit.c — differentiable ops of the vision transformer DINOv2
 * (PixelGen's REPA and P-DINO): LayerNorm with weight and bias, exact GELU,
 * the cosine similarity of token vectors, and bicubic resizing (the input to
 * 224 px and the position table to the patch grid). */
#include <string.h>

#include "core/check.h"
#include "core/ops.h"

static void layernorm_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    int C = c->dim[1];
    const float *mean = c->saved->data, *rstd = mean + c->dim[0];
    g->be->ops->layernorm_bwd(graph_grad(g, c->in[0]), graph_grad(g, c->in[1]), graph_grad(g, c->in[2]),
                              c->out->grad, c->in[0]->data, c->in[1]->data, mean, rstd, c->dim[0], C);
}

Tensor *op_layernorm(Graph *g, Tensor *x, Tensor *w, Tensor *b, float eps) {
    int C = x->shape[x->ndim - 1], rows = (int)(x->numel / (size_t)C);
    CHECK_SHAPE(w, 1, C);
    CHECK_SHAPE(b, 1, C);
    Tensor *out = graph_tensor(g, x->ndim, x->shape);
    Tensor *stats = graph_new(g, 1, 2 * rows); /* mean, then rstd */
    g->be->ops->layernorm_fwd(out->data, stats->data, stats->data + rows, x->data, w->data, b->data, rows, C, eps);
    if (GRAPH_TRACK(g, out, x, w, b)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = x, c->in[1] = w, c->in[2] = b;
        c->saved = stats;
        c->dim[0] = rows, c->dim[1] = C;
        graph_record(g, layernorm_bwd, c, "layernorm");
    }
    return out;
}

static void gelu_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->gelu_bwd(graph_grad(g, c->in[0]), c->out->grad, c->in[0]->data, c->in[0]->numel);
}

Tensor *op_gelu(Graph *g, Tensor *x) {
    Tensor *out = graph_tensor(g, x->ndim, x->shape);
    g->be->ops->gelu_fwd(out->data, x->data, x->numel);
    if (GRAPH_TRACK(g, out, x)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = x;
        graph_record(g, gelu_bwd, c, "gelu");
    }
    return out;
}

static void cosine_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->cosine_bwd(graph_grad(g, c->in[0]), graph_grad(g, c->in[1]), c->out->grad, c->in[0]->data,
                           c->in[1]->data, c->dim[0], c->dim[1]);
}

Tensor *op_cosine(Graph *g, Tensor *a, Tensor *b) {
    CHECK(a->ndim >= 2 && tensor_same_shape(a, b), "cosine: the two tensors differ in shape");
    int C = a->shape[a->ndim - 1], rows = (int)(a->numel / (size_t)C);
    Tensor *out = graph_tensor(g, a->ndim - 1, a->shape);
    g->be->ops->cosine_fwd(out->data, a->data, b->data, rows, C);
    if (GRAPH_TRACK(g, out, a, b)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = a, c->in[1] = b;
        c->dim[0] = rows, c->dim[1] = C;
        graph_record(g, cosine_bwd, c, "cosine");
    }
    return out;
}

static void resize_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    float r[2];
    memcpy(r, &c->u, sizeof r);
    g->be->ops->resize_bicubic_bwd(graph_grad(g, c->in[0]), c->out->grad, c->dim[0], c->dim[1], c->dim[2], c->dim[3],
                                   c->dim[4], r[0], r[1]);
}

Tensor *op_resize_bicubic(Graph *g, Tensor *img, int Ho, int Wo, float ry, float rx) {
    CHECK_SHAPE(img, 4, -1, -1, -1, -1);
    int B = img->shape[0], C = img->shape[1], H = img->shape[2], W = img->shape[3];
    CHECK(Ho > 0 && Wo > 0, "resize: output size %dx%d", Ho, Wo);
    float r[2] = {ry > 0 ? ry : (float)H / (float)Ho, rx > 0 ? rx : (float)W / (float)Wo};
    Tensor *out = graph_new(g, 4, B, C, Ho, Wo);
    g->be->ops->resize_bicubic_fwd(out->data, img->data, B * C, H, W, Ho, Wo, r[0], r[1]);
    if (GRAPH_TRACK(g, out, img)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = img;
        c->dim[0] = B * C, c->dim[1] = H, c->dim[2] = W, c->dim[3] = Ho, c->dim[4] = Wo;
        memcpy(&c->u, r, sizeof r);
        graph_record(g, resize_bwd, c, "resize_bicubic");
    }
    return out;
}
