/* core/ops_classify.c — differentiable ops for classifiers: softmax
 * cross-entropy over class logits and mean pooling over tokens (the
 * convolutions' unfold is in ops_vision.c). */
#include "core/check.h"
#include "core/ops.h"

typedef struct XentCtx {
    OpCtx base;
    const int *labels;
} XentCtx;

static void xent_bwd(Graph *g, void *p) {
    XentCtx *c = p;
    if (!c->base.out->grad) return;
    g->be->ops->xent_bwd(graph_grad(g, c->base.in[0]), c->base.out->grad, c->base.saved->data, c->labels, c->base.dim[0],
                     c->base.dim[1]);
}

Tensor *op_cross_entropy(Graph *g, Tensor *logits, const int *labels) {
    CHECK_SHAPE(logits, 2, -1, -1);
    int B = logits->shape[0], K = logits->shape[1];
    for (int b = 0; b < B; b++)
        CHECK(labels[b] >= 0 && labels[b] < K, "cross-entropy: label %d of sample %d is outside [0, %d)", labels[b], b,
              K);
    /* Labels from a host buffer that may change before backward: one device copy. */
    const int *dlabels = graph_upload(g, labels, (size_t)B * sizeof(int));
    Tensor *out = graph_new(g, 1, 1);
    Tensor *probs = graph_new(g, 2, B, K);
    g->be->ops->xent_fwd(out->data, probs->data, logits->data, dlabels, B, K);
    if (GRAPH_TRACK(g, out, logits)) {
        XentCtx *c = graph_alloc_host(g, sizeof *c);
        *c = (XentCtx){.base = {.out = out, .in = {logits}, .saved = probs, .dim = {B, K}}, .labels = dlabels};
        graph_record(g, xent_bwd, c, "cross_entropy");
    }
    return out;
}

static void mean_tokens_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->mean_tokens_bwd(graph_grad(g, c->in[0]), c->out->grad, c->dim[0], c->dim[1], c->dim[2]);
}

Tensor *op_mean_tokens(Graph *g, Tensor *x) {
    CHECK_SHAPE(x, 3, -1, -1, -1);
    int B = x->shape[0], N = x->shape[1], C = x->shape[2];
    Tensor *out = graph_new(g, 2, B, C);
    g->be->ops->mean_tokens_fwd(out->data, x->data, B, N, C);
    if (GRAPH_TRACK(g, out, x)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = x;
        c->dim[0] = B, c->dim[1] = N, c->dim[2] = C;
        graph_record(g, mean_tokens_bwd, c, "mean_tokens");
    }
    return out;
}
