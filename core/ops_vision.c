/* core/ops_vision.c — ops for the convolutional networks (VGG16 under
 * LPIPS, the evaluation classifier's patches, the FID Inception-v3):
 * differentiable unfold (im2col: a convolution is unfold + op_linear), ReLU,
 * 2x2 max pooling and LPIPS's per-layer distance; and the Inception's
 * forward-only ops (it is a frozen measuring instrument: nothing
 * backpropagates through it), rectangular unfold, k x k pooling, channel
 * concatenation and TensorFlow's bilinear resize. Images are [B, C, H, W]
 * for unfold and the resize, and channels last [B, H*W, C] (the engine's
 * token layout) everywhere else. */
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

/* ---- forward only (the FID Inception-v3) ---- */

/* The Inception's ops record nothing: a caller that wants a gradient
 * through them is told so instead of getting a silent zero. */
static void forward_only(Graph *g, Tensor *out, Tensor *x, const char *op) {
    CHECK(!GRAPH_TRACK(g, out, x), "%s: forward only (no backward); call it with gradients off (graph_set_grad)", op);
}

Tensor *op_unfold2d_hwc(Graph *g, Tensor *x, int H, int W, int kh, int kw, int s, int ph, int pw) {
    CHECK_SHAPE(x, 3, -1, -1, -1);
    CHECK(H > 0 && W > 0 && x->shape[1] == H * W, "unfold2d: %d tokens are not a %dx%d image", x->shape[1], H, W);
    CHECK(kh > 0 && kw > 0 && s > 0 && ph >= 0 && pw >= 0 && ph < kh && pw < kw,
          "unfold2d: window %dx%d, stride %d, padding %dx%d", kh, kw, s, ph, pw);
    CHECK(H + 2 * ph >= kh && W + 2 * pw >= kw, "unfold2d: a %dx%d window does not fit a %dx%d image padded by %dx%d",
          kh, kw, H, W, ph, pw);
    int B = x->shape[0], C = x->shape[2], Ho = (H + 2 * ph - kh) / s + 1, Wo = (W + 2 * pw - kw) / s + 1;
    Tensor *out = graph_new(g, 3, B, Ho * Wo, C * kh * kw);
    forward_only(g, out, x, "unfold2d");
    g->be->ops->unfold2d_fwd(out->data, x->data, B, C, H, W, kh, kw, s, ph, pw, 1);
    return out;
}

Tensor *op_pool2d(Graph *g, Tensor *x, int H, int W, int k, int s, int pad, int avg) {
    CHECK_SHAPE(x, 3, -1, -1, -1);
    CHECK(H > 0 && W > 0 && x->shape[1] == H * W, "pool2d: %d tokens are not a %dx%d image", x->shape[1], H, W);
    /* pad < k/2 + 1 keeps every window inside the image by one pixel at least
     * (PyTorch's rule: padding at most half the window) */
    CHECK(k > 0 && s > 0 && pad >= 0 && 2 * pad <= k && H + 2 * pad >= k && W + 2 * pad >= k,
          "pool2d: window %d, stride %d, padding %d on a %dx%d image", k, s, pad, H, W);
    int B = x->shape[0], C = x->shape[2], Ho = (H + 2 * pad - k) / s + 1, Wo = (W + 2 * pad - k) / s + 1;
    Tensor *out = graph_new(g, 3, B, Ho * Wo, C);
    forward_only(g, out, x, avg ? "avg_pool2d" : "max_pool2d");
    g->be->ops->pool2d_fwd(out->data, x->data, B, H, W, C, k, s, pad, avg);
    return out;
}

Tensor *op_concat_channels(Graph *g, Tensor *const *parts, int n) {
    CHECK(n >= 1, "concat: no parts");
    CHECK_SHAPE(parts[0], 3, -1, -1, -1);
    int B = parts[0]->shape[0], N = parts[0]->shape[1], C = 0;
    for (int i = 0; i < n; i++) {
        CHECK_SHAPE(parts[i], 3, B, N, -1);
        C += parts[i]->shape[2];
    }
    Tensor *out = graph_new(g, 3, B, N, C);
    for (int i = 0, off = 0; i < n; off += parts[i]->shape[2], i++) {
        forward_only(g, out, parts[i], "concat");
        g->be->ops->concat_cols_fwd(out->data, parts[i]->data, B * N, C, off, parts[i]->shape[2]);
    }
    return out;
}

Tensor *op_resize_bilinear_tf(Graph *g, Tensor *img, int Ho, int Wo) {
    CHECK_SHAPE(img, 4, -1, -1, -1, -1);
    CHECK(Ho > 0 && Wo > 0, "resize_bilinear_tf: output size %dx%d", Ho, Wo);
    int B = img->shape[0], C = img->shape[1];
    Tensor *out = graph_new(g, 4, B, C, Ho, Wo);
    forward_only(g, out, img, "resize_bilinear_tf");
    g->be->ops->resize_bilinear_tf_fwd(out->data, img->data, B * C, img->shape[2], img->shape[3], Ho, Wo);
    return out;
}
