/* core/ops_diffusion.c — differentiable ops at the edges of a diffusion
 * transformer: patches in and out, conditioning embeddings, prefix tokens,
 * and the v-loss. */
#include <stdint.h>

#include "core/check.h"
#include "core/ops.h"

static void patchify_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->patchify_bwd(graph_grad(g, c->in[0]), c->out->grad, c->dim[0], c->dim[1], c->dim[2], c->dim[3], c->dim[4]);
}

Tensor *op_patchify(Graph *g, Tensor *img, int p) {
    CHECK_SHAPE(img, 4, -1, -1, -1, -1);
    int B = img->shape[0], C = img->shape[1], H = img->shape[2], W = img->shape[3];
    CHECK(p > 0 && H % p == 0 && W % p == 0, "image %dx%d does not split into %dx%d patches", H, W, p, p);
    Tensor *out = graph_new(g, 3, B, (H / p) * (W / p), C * p * p);
    g->be->ops->patchify_fwd(out->data, img->data, B, C, H, W, p);
    if (GRAPH_TRACK(g, out, img)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = img;
        c->dim[0] = B, c->dim[1] = C, c->dim[2] = H, c->dim[3] = W, c->dim[4] = p;
        graph_record(g, patchify_bwd, c, "patchify");
    }
    return out;
}

static void unpatchify_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->unpatchify_bwd(graph_grad(g, c->in[0]), c->out->grad, c->dim[0], c->dim[1], c->dim[2], c->dim[3],
                           c->dim[4]);
}

Tensor *op_unpatchify(Graph *g, Tensor *tok, int C, int H, int W, int p) {
    CHECK(p > 0 && H % p == 0 && W % p == 0, "image %dx%d does not split into %dx%d patches", H, W, p, p);
    CHECK_SHAPE(tok, 3, -1, (H / p) * (W / p), p * p * C);
    int B = tok->shape[0];
    Tensor *out = graph_new(g, 4, B, C, H, W);
    g->be->ops->unpatchify_fwd(out->data, tok->data, B, C, H, W, p);
    if (GRAPH_TRACK(g, out, tok)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = tok;
        c->dim[0] = B, c->dim[1] = C, c->dim[2] = H, c->dim[3] = W, c->dim[4] = p;
        graph_record(g, unpatchify_bwd, c, "unpatchify");
    }
    return out;
}

static void timestep_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->timestep_embed_bwd(graph_grad(g, c->in[0]), c->out->grad, c->in[0]->data, c->dim[0], c->dim[1]);
}

Tensor *op_timestep_embed(Graph *g, Tensor *t, int dim) {
    CHECK_SHAPE(t, 1, -1);
    CHECK(dim > 0 && dim % 2 == 0, "timestep features need an even width, got %d", dim);
    int B = t->shape[0];
    Tensor *out = graph_new(g, 2, B, dim);
    g->be->ops->timestep_embed_fwd(out->data, t->data, B, dim);
    if (GRAPH_TRACK(g, out, t)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = t;
        c->dim[0] = B, c->dim[1] = dim;
        graph_record(g, timestep_bwd, c, "timestep_embed");
    }
    return out;
}

typedef struct EmbedCtx {
    OpCtx base;
    const int *idx;
} EmbedCtx;

static void embedding_bwd(Graph *g, void *p) {
    EmbedCtx *c = p;
    if (!c->base.out->grad) return;
    g->be->ops->embedding_bwd(graph_grad(g, c->base.in[0]), c->base.out->grad, c->idx, c->base.dim[0], c->base.dim[1]);
}

Tensor *op_embedding(Graph *g, Tensor *table, const int *idx, int B) {
    CHECK_SHAPE(table, 2, -1, -1);
    int V = table->shape[0], C = table->shape[1];
    for (int b = 0; b < B; b++)
        CHECK(idx[b] >= 0 && idx[b] < V, "label %d of sample %d is outside the table's %d rows", idx[b], b, V);
    /* The labels come from a host buffer that may change before backward:
     * the kernels read a copy on the device, made once. */
    const int *didx = graph_upload(g, idx, (size_t)B * sizeof(int));
    Tensor *out = graph_new(g, 2, B, C);
    g->be->ops->embedding_fwd(out->data, table->data, didx, B, C);
    if (GRAPH_TRACK(g, out, table)) {
        EmbedCtx *c = graph_alloc_host(g, sizeof *c);
        *c = (EmbedCtx){.base = {.out = out, .in = {table}, .dim = {B, C}}, .idx = didx};
        graph_record(g, embedding_bwd, c, "embedding");
    }
    return out;
}

/* The embedding's gather, on the rows of any tensor (a sample is a row of numel/B floats). */
Tensor *op_select_rows(Graph *g, Tensor *x, const int *idx, int k) {
    CHECK(x->ndim >= 1 && k >= 1, "select_rows: %d rows of a %d-D tensor", k, x->ndim);
    int B = x->shape[0];
    size_t per = x->numel / (size_t)B;
    CHECK(per <= (size_t)INT32_MAX, "select_rows: %zu floats per row", per);
    for (int i = 0; i < k; i++) CHECK(idx[i] >= 0 && idx[i] < B, "select_rows: row %d is outside [0, %d)", idx[i], B);
    const int *didx = graph_upload(g, idx, (size_t)k * sizeof(int));
    int shape[TENSOR_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
    shape[0] = k;
    Tensor *out = graph_tensor(g, x->ndim, shape);
    g->be->ops->embedding_fwd(out->data, x->data, didx, k, (int)per);
    if (GRAPH_TRACK(g, out, x)) {
        EmbedCtx *c = graph_alloc_host(g, sizeof *c);
        *c = (EmbedCtx){.base = {.out = out, .in = {x}, .dim = {k, (int)per}}, .idx = didx};
        graph_record(g, embedding_bwd, c, "select_rows");
    }
    return out;
}

static void prepend_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->incontext_prepend_bwd(graph_grad(g, c->in[0]), graph_grad(g, c->in[1]), graph_grad(g, c->in[2]),
                                  c->out->grad, c->dim[0], c->dim[1], c->dim[2], c->dim[3]);
}

Tensor *op_incontext_prepend(Graph *g, Tensor *x, Tensor *yemb, Tensor *pos) {
    CHECK_SHAPE(x, 3, -1, -1, -1);
    int B = x->shape[0], N = x->shape[1], C = x->shape[2];
    CHECK_SHAPE(yemb, 2, B, C);
    CHECK_SHAPE(pos, 2, -1, C);
    int L = pos->shape[0];
    Tensor *out = graph_new(g, 3, B, L + N, C);
    g->be->ops->incontext_prepend_fwd(out->data, x->data, yemb->data, pos->data, B, N, L, C);
    if (GRAPH_TRACK(g, out, x, yemb, pos)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = x, c->in[1] = yemb, c->in[2] = pos;
        c->dim[0] = B, c->dim[1] = N, c->dim[2] = L, c->dim[3] = C;
        graph_record(g, prepend_bwd, c, "incontext_prepend");
    }
    return out;
}

static void strip_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->incontext_strip_bwd(graph_grad(g, c->in[0]), c->out->grad, c->dim[0], c->dim[1], c->dim[2], c->dim[3]);
}

Tensor *op_incontext_strip(Graph *g, Tensor *x, int L) {
    CHECK_SHAPE(x, 3, -1, -1, -1);
    int B = x->shape[0], N = x->shape[1] - L, C = x->shape[2];
    CHECK(L >= 0 && N > 0, "cannot strip %d prefix tokens from %d", L, x->shape[1]);
    Tensor *out = graph_new(g, 3, B, N, C);
    g->be->ops->incontext_strip_fwd(out->data, x->data, B, N, L, C);
    if (GRAPH_TRACK(g, out, x)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = x;
        c->dim[0] = B, c->dim[1] = N, c->dim[2] = L, c->dim[3] = C;
        graph_record(g, strip_bwd, c, "incontext_strip");
    }
    return out;
}

static void vloss_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->vloss_bwd(graph_grad(g, c->in[0]), c->out->grad, c->in[0]->data, c->in[1]->data, c->in[2]->data,
                      c->dim[0], c->dim[1]);
}

Tensor *op_vloss(Graph *g, Tensor *xhat, Tensor *x, Tensor *t) {
    char a[64], b[64];
    CHECK(tensor_same_shape(xhat, x), "v-loss: prediction %s and target %s differ in shape",
          tensor_shape_str(xhat, a, sizeof a), tensor_shape_str(x, b, sizeof b));
    int B = xhat->shape[0];
    CHECK_SHAPE(t, 1, B);
    Tensor *out = graph_new(g, 1, 1);
    g->be->ops->vloss_fwd(out->data, xhat->data, x->data, t->data, B, (int)(xhat->numel / (size_t)B));
    if (GRAPH_TRACK(g, out, xhat)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = xhat, c->in[1] = x, c->in[2] = t;
        c->dim[0] = B, c->dim[1] = (int)(xhat->numel / (size_t)B);
        graph_record(g, vloss_bwd, c, "vloss");
    }
    return out;
}
