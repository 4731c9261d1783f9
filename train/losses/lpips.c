/* train/losses/lpips.c — LPIPS v0.1 over VGG16 (lpips.h). */
#include "train/losses/lpips.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "core/ops.h"
#include "train/losses/frozen.h"

/* torchvision's vgg16().features[0:30]: the index of each convolution, its
 * output channels at full width, and after which convolutions LPIPS taps
 * (the ReLU after them) and a 2x2 max pooling follows. */
static const int vgg_index[LPIPS_N_CONV] = {0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28};
static const int vgg_width[LPIPS_N_CONV] = {64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512};
static const int vgg_tap[LPIPS_N_TAPS] = {1, 3, 6, 9, 12};

/* LPIPS's ScalingLayer: v' = (v - shift) / scale, per RGB channel. */
static const float lpips_shift[3] = {-0.030f, -0.088f, -0.188f};
static const float lpips_scale[3] = {0.458f, 0.448f, 0.450f};

/* The conv weights as the [OC, C*9] matrices op_linear takes (same memory). */
static void make_views(LpipsNet *n) {
    for (int i = 0; i < LPIPS_N_CONV; i++) {
        Tensor *w = params_at(&n->vgg, 2 * i);
        n->w2d[i] = *w;
        n->w2d[i].requires_grad = false;
        tensor_set_shape(&n->w2d[i], 2, (const int[]){w->shape[0], w->shape[1] * 9});
    }
    frozen_views(&n->vgg);
    frozen_views(&n->lin);
}

void lpips_init(LpipsNet *n, int div) {
    CHECK(div >= 1 && div <= 64 && (div & (div - 1)) == 0, "LPIPS: width divisor %d is not a power of two in [1, 64]",
          div);
    memset(n, 0, sizeof *n);
    n->div = div;
    params_create(&n->vgg);
    params_create(&n->lin);
    char name[PARAM_NAME_MAX];
    int in = 3;
    for (int i = 0; i < LPIPS_N_CONV; i++) {
        n->ch[i] = vgg_width[i] / div;
        snprintf(name, sizeof name, "features.%d.weight", vgg_index[i]);
        params_add(&n->vgg, name, 4, (const int[]){n->ch[i], in, 3, 3}, INIT_NORMAL, sqrtf(2.0f / (9.0f * in)), false);
        snprintf(name, sizeof name, "features.%d.bias", vgg_index[i]);
        params_add(&n->vgg, name, 1, (const int[]){n->ch[i]}, INIT_NORMAL, 0.01f, false);
        in = n->ch[i];
    }
    for (int l = 0; l < LPIPS_N_TAPS; l++) {
        snprintf(name, sizeof name, "lin%d.model.1.weight", l);
        params_add(&n->lin, name, 4, (const int[]){1, n->ch[vgg_tap[l]], 1, 1}, INIT_NORMAL, 1.0f, false);
    }
    params_alloc(&n->vgg);
    params_alloc(&n->lin);
    for (int i = 0; i < LPIPS_N_CONV; i++) n->b[i] = params_at(&n->vgg, 2 * i + 1);
    for (int l = 0; l < LPIPS_N_TAPS; l++) n->lin_w[l] = params_at(&n->lin, l);
    make_views(n); /* over host memory until lpips_to_device */
}

void lpips_init_random(LpipsNet *n, uint64_t seed) {
    params_init(&n->vgg, seed);
    params_init(&n->lin, seed + 1);
    for (size_t i = 0; i < n->lin.padded; i++) n->lin.host[i] = fabsf(n->lin.host[i]);
    for (int l = 0; l < LPIPS_N_TAPS; l++) {
        Tensor *w = params_at(&n->lin, l);
        float *h = n->lin.host + n->lin.info[l].offset;
        for (size_t c = 0; c < w->numel; c++) h[c] /= (float)w->numel;
    }
    params_push(&n->vgg);
    params_push(&n->lin);
}

int lpips_file_div(const char *vgg_path, const char *vgg_what) {
    int dims[8];
    int nd = frozen_dataset_shape(vgg_path, vgg_what, "vgg16/features.0.weight", dims, "is it the right file?");
    int div = nd == 4 && dims[0] > 0 && 64 % dims[0] == 0 ? 64 / dims[0] : 0;
    CHECK(div > 0 && (div & (div - 1)) == 0,
          "%s = %s: vgg16/features.0.weight has %d output channels: VGG16 has 64 (or 64 / a power of two)", vgg_what,
          vgg_path, nd >= 1 ? dims[0] : 0);
    return div;
}

void lpips_load(LpipsNet *n, const char *vgg_path, const char *vgg_what, const char *lin_path, const char *lin_what) {
    frozen_load_group(&n->vgg, vgg_path, vgg_what, "vgg16");
    frozen_load_group(&n->lin, lin_path, lin_what, "lpips_lin");
    for (int i = 0; i < n->lin.n; i++) {
        const float *h = n->lin.host + n->lin.info[i].offset;
        for (size_t c = 0; c < n->lin.info[i].numel; c++)
            CHECK(h[c] >= 0.0f, "%s = %s: lpips_lin/%s[%zu] = %g is negative (LPIPS's heads are non-negative)",
                  lin_what, lin_path, n->lin.info[i].name, c, h[c]);
    }
}

void lpips_to_device(LpipsNet *n, const Backend *be) {
    params_to_device(&n->vgg, be->mem);
    params_to_device(&n->lin, be->mem);
    make_views(n); /* the views now point at the device's copies */
}

void lpips_free(LpipsNet *n) {
    params_destroy(&n->vgg);
    params_destroy(&n->lin);
    memset(n, 0, sizeof *n);
}

void lpips_features(Graph *g, const LpipsNet *n, Tensor *x, int H, int W, Tensor *taps[LPIPS_N_TAPS]) {
    int t = 0;
    for (int i = 0; i < LPIPS_N_CONV; i++) {
        x = op_relu(g, op_linear(g, op_unfold_hwc(g, x, H, W, 3, 1, 1), (Tensor *)&n->w2d[i], n->b[i]));
        if (t < LPIPS_N_TAPS && i == vgg_tap[t]) {
            taps[t++] = x;
            if (t < LPIPS_N_TAPS) x = op_maxpool2(g, x, H, W), H /= 2, W /= 2;
        }
    }
}

/* [B, 3, H, W] in [-1, 1] -> LPIPS's scaled channels-last tokens [B, H*W, 3]. */
static Tensor *scaled_tokens(Graph *g, Tensor *img) {
    int B = img->shape[0];
    float *h = graph_alloc_host(g, sizeof(float) * 6 * (size_t)B);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < 3; c++) { /* x (1 + s') + t' = (x - shift) / scale */
            h[b * 3 + c] = 1.0f / lpips_scale[c] - 1.0f;
            h[3 * B + b * 3 + c] = -lpips_shift[c] / lpips_scale[c];
        }
    Tensor *scale = graph_new(g, 2, B, 3), *shift = graph_new(g, 2, B, 3);
    g->be->mem->to_device(scale->data, h, sizeof(float) * 3 * (size_t)B);
    g->be->mem->to_device(shift->data, h + 3 * B, sizeof(float) * 3 * (size_t)B);
    return op_modulate(g, op_patchify(g, img, 1), shift, scale);
}

Tensor *lpips_distance(Graph *g, const LpipsNet *n, Tensor *a, Tensor *b, Tensor *taps_a[LPIPS_N_TAPS]) {
    CHECK_SHAPE(a, 4, -1, 3, -1, -1);
    CHECK_SHAPE(b, 4, a->shape[0], 3, a->shape[2], a->shape[3]);
    int H = a->shape[2], W = a->shape[3];
    CHECK(H >= 16 && W >= 16, "LPIPS: a %dx%d image is smaller than VGG16's four poolings allow (16x16)", H, W);
    Tensor *fa[LPIPS_N_TAPS], *fb[LPIPS_N_TAPS];
    bool was = graph_set_grad(g, false);
    lpips_features(g, n, scaled_tokens(g, b), H, W, fb);
    graph_set_grad(g, was);
    lpips_features(g, n, scaled_tokens(g, a), H, W, fa);
    Tensor *d = NULL;
    for (int l = 0; l < LPIPS_N_TAPS; l++) {
        if (taps_a) taps_a[l] = fa[l];
        Tensor *dl = op_lpips_distance(g, fa[l], fb[l], n->lin_w[l]);
        d = d ? op_add(g, d, dl) : dl;
    }
    return d;
}
