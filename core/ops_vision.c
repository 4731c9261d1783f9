/* core/ops_vision.c — differentiable ops for the convolutional networks
 * (VGG16 under LPIPS, the evaluation classifier's patches): unfold (im2col:
 * a convolution is unfold + op_linear), ReLU, 2x2 max pooling and LPIPS's
 * per-layer distance. Images are [B, C, H, W] for unfold, and channels last
 * [B, H*W, C] (the engine's token layout) everywhere else. */
#include "core/check.h"
#include "core/ops.h"

static void unfold_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->unfold_bwd(graph_grad(g, c->in[0]), c->out->grad, c->dim[0], c->dim[1], c->dim[2], c->dim[3], c->dim[4],
                           c->dim[5], (int)(c->u >> 1), (int)(c->u & 1));
}

static Tensor *unfold(Graph *g, Tensor *img, int B, int C, int H, int W, int k, int s, int pad, int channels_last) {
    CHECK(k > 0 && s > 0 && pad >= 0 && pad < k, "unfold: window %d, stride %d, padding %d", k, s, pad);
    CHECK(H + 2 * pad >= k && W + 2 * pad >= k, "unfold: a %dx%d window does not fit a %dx%d image padded by %d", k, k,
          H, W, pad);
    int Ho = (H + 2 * pad - k) / s + 1, Wo = (W + 2 * pad - k) / s + 1;
    Tensor *out = graph_new(g, 3, B, Ho * Wo, C * k * k);
    g->be->ops->unfold_fwd(out->data, img->data, B, C, H, W, k, s, pad, channels_last);
    if (GRAPH_TRACK(g, out, img)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = img;
        c->dim[0] = B, c->dim[1] = C, c->dim[2] = H, c->dim[3] = W, c->dim[4] = k, c->dim[5] = s;
        c->u = (uint64_t)pad << 1 | (uint64_t)channels_last;
        graph_record(g, unfold_bwd, c, "unfold");
    }
    return out;
}

Tensor *op_unfold(Graph *g, Tensor *img, int k, int s, int pad) {
    CHECK_SHAPE(img, 4, -1, -1, -1, -1);
    return unfold(g, img, img->shape[0], img->shape[1], img->shape[2], img->shape[3], k, s, pad, 0);
}

Tensor *op_unfold_hwc(Graph *g, Tensor *x, int H, int W, int k, int s, int pad) {
    CHECK_SHAPE(x, 3, -1, -1, -1);
    CHECK(H > 0 && W > 0 && x->shape[1] == H * W, "unfold: %d tokens are not a %dx%d image", x->shape[1], H, W);
    return unfold(g, x, x->shape[0], x->shape[2], H, W, k, s, pad, 1);
}

static void relu_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->relu_bwd(graph_grad(g, c->in[0]), c->out->grad, c->out->data, c->out->numel);
}

Tensor *op_relu(Graph *g, Tensor *x) {
    Tensor *out = graph_tensor(g, x->ndim, x->shape);
    g->be->ops->relu_fwd(out->data, x->data, x->numel);
    if (GRAPH_TRACK(g, out, x)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = x;
        graph_record(g, relu_bwd, c, "relu");
    }
    return out;
}

static void maxpool2_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->maxpool2_bwd(graph_grad(g, c->in[0]), c->out->grad, c->in[0]->data, c->dim[0], c->dim[1], c->dim[2],
                             c->dim[3]);
}

Tensor *op_maxpool2(Graph *g, Tensor *x, int H, int W) {
    CHECK_SHAPE(x, 3, -1, -1, -1);
    CHECK(H >= 2 && W >= 2 && x->shape[1] == H * W, "maxpool2: %d tokens are not a %dx%d image (at least 2x2)",
          x->shape[1], H, W);
    int B = x->shape[0], C = x->shape[2];
    Tensor *out = graph_new(g, 3, B, (H / 2) * (W / 2), C);
    g->be->ops->maxpool2_fwd(out->data, x->data, B, H, W, C);
    if (GRAPH_TRACK(g, out, x)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = x;
        c->dim[0] = B, c->dim[1] = H, c->dim[2] = W, c->dim[3] = C;
        graph_record(g, maxpool2_bwd, c, "maxpool2");
    }
    return out;
}

static void lpips_bwd(Graph *g, void *p) {
    OpCtx *c = p;
    if (!c->out->grad) return;
    g->be->ops->lpips_dist_bwd(graph_grad(g, c->in[0]), graph_grad(g, c->in[1]), c->out->grad, c->in[0]->data,
                               c->in[1]->data, c->in[2]->data, c->dim[0], c->dim[1], c->dim[2]);
}

Tensor *op_lpips_distance(Graph *g, Tensor *a, Tensor *f, Tensor *w) {
    CHECK_SHAPE(a, 3, -1, -1, -1);
    CHECK_SHAPE(f, 3, a->shape[0], a->shape[1], a->shape[2]);
    int B = a->shape[0], N = a->shape[1], C = a->shape[2];
    CHECK(w->numel == (size_t)C, "lpips_distance: %zu weights for %d channels", w->numel, C);
    Tensor *out = graph_new(g, 1, B);
    g->be->ops->lpips_dist_fwd(out->data, a->data, f->data, w->data, B, N, C);
    /* w is a frozen network's: it takes no gradient. */
    if (GRAPH_TRACK(g, out, a, f)) {
        OpCtx *c = op_ctx(g, out);
        c->in[0] = a, c->in[1] = f, c->in[2] = w;
        c->dim[0] = B, c->dim[1] = N, c->dim[2] = C;
        graph_record(g, lpips_bwd, c, "lpips_distance");
    }
    return out;
}
