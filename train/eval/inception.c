/* train/eval/inception.c — the FID Inception-v3 (inception.h).
 *
 * The architecture is written once, as the forward pass (trunk and the
 * block_* tables), and walked in three modes: DECLARE registers each
 * convolution's public tensors and its folded weights, COUNT adds up the
 * FLOPs at a given input side, RUN computes. A convolution is unfold2d +
 * linear (BatchNorm folded into its weight and bias) + ReLU on channels-last
 * tokens [B, H*W, C]; a 1x1 convolution is the linear alone. */
#include "train/eval/inception.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/graph.h"
#include "core/ops.h"
#include "core/rng.h"
#include "train/losses/frozen.h"

#define INCEPTION_BN_EPS 0.001 /* BasicConv2d's BatchNorm2d(eps=0.001) */
#define INCEPTION_N_CONV 94
#define INCEPTION_WHAT "Inception weights" /* how messages name the file */

typedef struct InceptionConv {
    char name[64]; /* "Mixed_6b.branch7x7_2": the public prefix of its tensors */
    int ic, oc, kh, kw, s, ph, pw;
    Tensor *w, *b; /* folded: [oc, ic*kh*kw] and [oc] */
} InceptionConv;

struct InceptionNet {
    const Backend *be;
    int div, side, chunk;
    ParamStore raw; /* the file's tensors (host; freed once folded) */
    ParamStore w;   /* the folded convolutions and fc, on the backend */
    int n_conv;
    InceptionConv conv[INCEPTION_N_CONV];
    Tensor *fc_w, *fc_b;
    float fc_bias[INCEPTION_LOGITS]; /* host copy (inception_fc_bias) */
    Graph g;
};

typedef enum { WALK_DECLARE, WALK_COUNT, WALK_RUN } WalkMode;

typedef struct Walk {
    InceptionNet *n;
    Graph *g;
    WalkMode mode;
    double flops;
} Walk;

/* An activation: its tokens (NULL unless running) and its geometry. */
typedef struct Feat {
    Tensor *t;
    int H, W, C;
} Feat;

static void declare_conv(InceptionNet *n, const char *name, int ic, int oc, int kh, int kw, int s, int ph, int pw) {
    CHECK(n->n_conv < INCEPTION_N_CONV, "Inception: more than %d convolutions", INCEPTION_N_CONV);
    InceptionConv *c = &n->conv[n->n_conv++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->ic = ic, c->oc = oc, c->kh = kh, c->kw = kw, c->s = s, c->ph = ph, c->pw = pw;
    char key[PARAM_NAME_MAX];
    snprintf(key, sizeof key, "%s.conv.weight", name);
    params_add(&n->raw, key, 4, (const int[]){oc, ic, kh, kw}, INIT_ZERO, 0, false);
    static const char *bn[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "%s.bn.%s", name, bn[i]);
        params_add(&n->raw, key, 1, (const int[]){oc}, INIT_ZERO, 0, false);
    }
    snprintf(key, sizeof key, "%s.weight", name);
    params_add(&n->w, key, 2, (const int[]){oc, ic * kh * kw}, INIT_ZERO, 0, false);
    snprintf(key, sizeof key, "%s.bias", name);
    params_add(&n->w, key, 1, (const int[]){oc}, INIT_ZERO, 0, false);
}

static const InceptionConv *find_conv(const InceptionNet *n, const char *name) {
    for (int i = 0; i < n->n_conv; i++)
        if (!strcmp(n->conv[i].name, name)) return &n->conv[i];
    CHECK(0, "Inception: no convolution %s (the walk and the declaration disagree)", name);
    return NULL;
}

/* BasicConv2d: conv (no bias) + BatchNorm + ReLU; oc at full width. */
static Feat conv(Walk *k, Feat x, const char *block, const char *branch, int oc, int kh, int kw, int s, int ph,
                 int pw) {
    char name[64];
    if (block) snprintf(name, sizeof name, "%s.%s", block, branch);
    else snprintf(name, sizeof name, "%s", branch);
    oc /= k->n->div;
    Feat y = {NULL, (x.H + 2 * ph - kh) / s + 1, (x.W + 2 * pw - kw) / s + 1, oc};
    k->flops += 2.0 * y.H * y.W * oc * (double)x.C * kh * kw;
    if (k->mode == WALK_DECLARE) declare_conv(k->n, name, x.C, oc, kh, kw, s, ph, pw);
    if (k->mode != WALK_RUN) return y;
    const InceptionConv *c = find_conv(k->n, name);
    Tensor *in = kh == 1 && kw == 1 && s == 1 ? x.t : op_unfold2d_hwc(k->g, x.t, x.H, x.W, kh, kw, s, ph, pw);
    y.t = op_relu(k->g, op_linear(k->g, in, c->w, c->b));
    return y;
}

/* k x k pooling; avg does not count the padding. */
static Feat pool(Walk *k, Feat x, int ks, int s, int pad, int avg) {
    Feat y = {NULL, (x.H + 2 * pad - ks) / s + 1, (x.W + 2 * pad - ks) / s + 1, x.C};
    if (k->mode == WALK_RUN) y.t = op_pool2d(k->g, x.t, x.H, x.W, ks, s, pad, avg);
    return y;
}

static Feat concat(Walk *k, const Feat *parts, int np) {
    Feat y = {NULL, parts[0].H, parts[0].W, 0};
    Tensor *t[8];
    for (int i = 0; i < np; i++) y.C += parts[i].C, t[i] = parts[i].t;
    if (k->mode == WALK_RUN) y.t = op_concat_channels(k->g, t, np);
    return y;
}

/* The five kinds of Inception block, as tables walked by block(): each
 * step is a BasicConv2d (branch name, width at full size, kh x kw, stride,
 * padding) or, with no name, a 3 x 3 pool (stride, padding; avg in `oc`)
 * of the block's input (BLOCK_IN) or of the step before (BLOCK_PREV) or of
 * step i; the steps marked out are concatenated in their order. BLOCK_ARG
 * stands for the block's argument (a width, or avg for a pool). */
#define BLOCK_IN (-1)
#define BLOCK_PREV (-2)
#define BLOCK_ARG (-1)
typedef struct BlockStep {
    const char *branch;
    int oc, kh, kw, s, ph, pw, from, out;
} BlockStep;

static Feat block(Walk *k, Feat x, const char *p, const BlockStep *st, int n, int arg) {
    Feat y[16], parts[8];
    int np = 0;
    for (int i = 0; i < n; i++) {
        const BlockStep *q = &st[i];
        Feat in = q->from == BLOCK_IN ? x : y[q->from == BLOCK_PREV ? i - 1 : q->from];
        int oc = q->oc == BLOCK_ARG ? arg : q->oc;
        y[i] = q->branch ? conv(k, in, p, q->branch, oc, q->kh, q->kw, q->s, q->ph, q->pw)
                         : pool(k, in, 3, q->s, q->ph, oc);
        if (q->out) parts[np++] = y[i];
    }
    return concat(k, parts, np);
}

#define BLOCK(k, x, p, table, arg) block(k, x, p, table, (int)(sizeof table / sizeof table[0]), arg)

/* InceptionA (Mixed_5b..5d), arg pool_features: 1x1 | 1x1, 5x5 | 1x1, 3x3, 3x3 | avg pool, 1x1 */
static const BlockStep block_a[] = {
    {"branch1x1", 64, 1, 1, 1, 0, 0, BLOCK_IN, 1},
    {"branch5x5_1", 48, 1, 1, 1, 0, 0, BLOCK_IN, 0},
    {"branch5x5_2", 64, 5, 5, 1, 2, 2, BLOCK_PREV, 1},
    {"branch3x3dbl_1", 64, 1, 1, 1, 0, 0, BLOCK_IN, 0},
    {"branch3x3dbl_2", 96, 3, 3, 1, 1, 1, BLOCK_PREV, 0},
    {"branch3x3dbl_3", 96, 3, 3, 1, 1, 1, BLOCK_PREV, 1},
    {NULL, 1, 3, 3, 1, 1, 1, BLOCK_IN, 0},
    {"branch_pool", BLOCK_ARG, 1, 1, 1, 0, 0, BLOCK_PREV, 1},
};

/* InceptionB (Mixed_6a): 3x3/2 | 1x1, 3x3, 3x3/2 | max pool 3x3/2 */
static const BlockStep block_b[] = {
    {"branch3x3", 384, 3, 3, 2, 0, 0, BLOCK_IN, 1},
    {"branch3x3dbl_1", 64, 1, 1, 1, 0, 0, BLOCK_IN, 0},
    {"branch3x3dbl_2", 96, 3, 3, 1, 1, 1, BLOCK_PREV, 0},
    {"branch3x3dbl_3", 96, 3, 3, 2, 0, 0, BLOCK_PREV, 1},
    {NULL, 0, 3, 3, 2, 0, 0, BLOCK_IN, 1},
};

/* InceptionC (Mixed_6b..6e), arg c7: 1x1 | 1x1, 1x7, 7x1 | 1x1, 7x1, 1x7, 7x1, 1x7 | avg pool, 1x1 */
static const BlockStep block_c[] = {
    {"branch1x1", 192, 1, 1, 1, 0, 0, BLOCK_IN, 1},
    {"branch7x7_1", BLOCK_ARG, 1, 1, 1, 0, 0, BLOCK_IN, 0},
    {"branch7x7_2", BLOCK_ARG, 1, 7, 1, 0, 3, BLOCK_PREV, 0},
    {"branch7x7_3", 192, 7, 1, 1, 3, 0, BLOCK_PREV, 1},
    {"branch7x7dbl_1", BLOCK_ARG, 1, 1, 1, 0, 0, BLOCK_IN, 0},
    {"branch7x7dbl_2", BLOCK_ARG, 7, 1, 1, 3, 0, BLOCK_PREV, 0},
    {"branch7x7dbl_3", BLOCK_ARG, 1, 7, 1, 0, 3, BLOCK_PREV, 0},
    {"branch7x7dbl_4", BLOCK_ARG, 7, 1, 1, 3, 0, BLOCK_PREV, 0},
    {"branch7x7dbl_5", 192, 1, 7, 1, 0, 3, BLOCK_PREV, 1},
    {NULL, 1, 3, 3, 1, 1, 1, BLOCK_IN, 0},
    {"branch_pool", 192, 1, 1, 1, 0, 0, BLOCK_PREV, 1},
};

/* InceptionD (Mixed_7a): 1x1, 3x3/2 | 1x1, 1x7, 7x1, 3x3/2 | max pool 3x3/2 */
static const BlockStep block_d[] = {
    {"branch3x3_1", 192, 1, 1, 1, 0, 0, BLOCK_IN, 0},
    {"branch3x3_2", 320, 3, 3, 2, 0, 0, BLOCK_PREV, 1},
    {"branch7x7x3_1", 192, 1, 1, 1, 0, 0, BLOCK_IN, 0},
    {"branch7x7x3_2", 192, 1, 7, 1, 0, 3, BLOCK_PREV, 0},
    {"branch7x7x3_3", 192, 7, 1, 1, 3, 0, BLOCK_PREV, 0},
    {"branch7x7x3_4", 192, 3, 3, 2, 0, 0, BLOCK_PREV, 1},
    {NULL, 0, 3, 3, 2, 0, 0, BLOCK_IN, 1},
};

/* InceptionE (Mixed_7b: avg pool, Mixed_7c: max pool, TensorFlow's graph),
 * arg avg: 1x1 | 1x1, (1x3 | 3x1) | 1x1, 3x3, (1x3 | 3x1) | pool 3x3/1, 1x1.
 * The nested concatenations are one: the same channel order. */
static const BlockStep block_e[] = {
    {"branch1x1", 320, 1, 1, 1, 0, 0, BLOCK_IN, 1},
    {"branch3x3_1", 384, 1, 1, 1, 0, 0, BLOCK_IN, 0},
    {"branch3x3_2a", 384, 1, 3, 1, 0, 1, 1, 1},
    {"branch3x3_2b", 384, 3, 1, 1, 1, 0, 1, 1},
    {"branch3x3dbl_1", 448, 1, 1, 1, 0, 0, BLOCK_IN, 0},
    {"branch3x3dbl_2", 384, 3, 3, 1, 1, 1, BLOCK_PREV, 0},
    {"branch3x3dbl_3a", 384, 1, 3, 1, 0, 1, 5, 1},
    {"branch3x3dbl_3b", 384, 3, 1, 1, 1, 0, 5, 1},
    {NULL, BLOCK_ARG, 3, 3, 1, 1, 1, BLOCK_IN, 0},
    {"branch_pool", 192, 1, 1, 1, 0, 0, BLOCK_PREV, 1},
};

/* Normalised image tokens [B, S*S, 3] -> the last block's [B, 8*8, 2048] (at 299). */
static Feat trunk(Walk *k, Feat x) {
    x = conv(k, x, NULL, "Conv2d_1a_3x3", 32, 3, 3, 2, 0, 0);
    x = conv(k, x, NULL, "Conv2d_2a_3x3", 32, 3, 3, 1, 0, 0);
    x = conv(k, x, NULL, "Conv2d_2b_3x3", 64, 3, 3, 1, 1, 1);
    x = pool(k, x, 3, 2, 0, 0);
    x = conv(k, x, NULL, "Conv2d_3b_1x1", 80, 1, 1, 1, 0, 0);
    x = conv(k, x, NULL, "Conv2d_4a_3x3", 192, 3, 3, 1, 0, 0);
    x = pool(k, x, 3, 2, 0, 0);
    x = BLOCK(k, x, "Mixed_5b", block_a, 32);
    x = BLOCK(k, x, "Mixed_5c", block_a, 64);
    x = BLOCK(k, x, "Mixed_5d", block_a, 64);
    x = BLOCK(k, x, "Mixed_6a", block_b, 0);
    x = BLOCK(k, x, "Mixed_6b", block_c, 128);
    x = BLOCK(k, x, "Mixed_6c", block_c, 160);
    x = BLOCK(k, x, "Mixed_6d", block_c, 160);
    x = BLOCK(k, x, "Mixed_6e", block_c, 192);
    x = BLOCK(k, x, "Mixed_7a", block_d, 0);
    x = BLOCK(k, x, "Mixed_7b", block_e, 1);
    return BLOCK(k, x, "Mixed_7c", block_e, 0);
}

static Walk walk_shapes(InceptionNet *n, WalkMode mode) {
    Walk k = {n, NULL, mode, 0.0};
    Feat x = {NULL, n->side, n->side, 3};
    x = trunk(&k, x);
    k.flops += 2.0 * x.C * INCEPTION_LOGITS;
    return k;
}

/* conv + BatchNorm(eps) = conv with weight w g/sqrt(v + eps) and bias
 * beta - mean g/sqrt(v + eps), per output channel (in double). */
static void fold(InceptionNet *n, const char *path) {
    ParamStore *r = &n->raw;
    char key[PARAM_NAME_MAX];
#define RAW(fmt, c) (snprintf(key, sizeof key, fmt, (c)->name), r->host + r->info[params_find(r, key)].offset)
    for (int i = 0; i < n->n_conv; i++) {
        const InceptionConv *c = &n->conv[i];
        const float *w = RAW("%s.conv.weight", c), *gamma = RAW("%s.bn.weight", c), *beta = RAW("%s.bn.bias", c);
        const float *mean = RAW("%s.bn.running_mean", c), *var = RAW("%s.bn.running_var", c);
        snprintf(key, sizeof key, "%s.weight", c->name);
        float *fw = n->w.host + n->w.info[params_find(&n->w, key)].offset;
        snprintf(key, sizeof key, "%s.bias", c->name);
        float *fb = n->w.host + n->w.info[params_find(&n->w, key)].offset;
        size_t K = (size_t)c->ic * c->kh * c->kw;
        for (int o = 0; o < c->oc; o++) {
            CHECK(var[o] >= 0.0f && isfinite(var[o]), "%s = %s: inception/%s.bn.running_var[%d] = %g is not a variance",
                  INCEPTION_WHAT, path, c->name, o, var[o]);
            double scale = gamma[o] / sqrt((double)var[o] + INCEPTION_BN_EPS);
            for (size_t j = 0; j < K; j++) fw[o * K + j] = (float)(w[o * K + j] * scale);
            fb[o] = (float)(beta[o] - mean[o] * scale);
        }
    }
    memcpy(n->w.host + n->w.info[params_find(&n->w, "fc.weight")].offset,
           r->host + r->info[params_find(r, "fc.weight")].offset, sizeof(float) * INCEPTION_LOGITS * INCEPTION_POOL / n->div);
    memcpy(n->fc_bias, r->host + r->info[params_find(r, "fc.bias")].offset, sizeof n->fc_bias);
    memcpy(n->w.host + n->w.info[params_find(&n->w, "fc.bias")].offset, n->fc_bias, sizeof n->fc_bias);
#undef RAW
}

/* The network at 1/div width with its stores allocated, weights unset. */
static InceptionNet *net_create(int div, const Backend *be) {
    InceptionNet *n = core_calloc(sizeof *n);
    n->be = be, n->div = div, n->side = INCEPTION_SIZE, n->chunk = device_mem_is_host(be->mem) ? 4 : 32;
    params_create(&n->raw);
    params_create(&n->w);
    walk_shapes(n, WALK_DECLARE);
    CHECK(n->n_conv == INCEPTION_N_CONV, "Inception: %d convolutions declared, expected %d", n->n_conv,
          INCEPTION_N_CONV);
    int pool_dim = INCEPTION_POOL / div;
    params_add(&n->raw, "fc.weight", 2, (const int[]){INCEPTION_LOGITS, pool_dim}, INIT_ZERO, 0, false);
    params_add(&n->raw, "fc.bias", 1, (const int[]){INCEPTION_LOGITS}, INIT_ZERO, 0, false);
    params_add(&n->w, "fc.weight", 2, (const int[]){INCEPTION_LOGITS, pool_dim}, INIT_ZERO, 0, false);
    params_add(&n->w, "fc.bias", 1, (const int[]){INCEPTION_LOGITS}, INIT_ZERO, 0, false);
    params_alloc(&n->raw);
    params_alloc(&n->w);
    return n;
}

/* Fold the raw tensors, drop them, and place the network on its backend. */
static InceptionNet *net_finish(InceptionNet *n, const char *source) {
    fold(n, source);
    params_destroy(&n->raw);
    params_to_device(&n->w, n->be->mem);
    frozen_views(&n->w);
    char key[PARAM_NAME_MAX];
    for (int i = 0; i < n->n_conv; i++) {
        snprintf(key, sizeof key, "%s.weight", n->conv[i].name);
        n->conv[i].w = params_get(&n->w, key);
        snprintf(key, sizeof key, "%s.bias", n->conv[i].name);
        n->conv[i].b = params_get(&n->w, key);
    }
    n->fc_w = params_get(&n->w, "fc.weight");
    n->fc_b = params_get(&n->w, "fc.bias");
    graph_init(&n->g, n->be, (size_t)64 << 20); /* grows to the first chunk's high water */
    return n;
}

InceptionNet *inception_load(const char *h5_path, const Backend *be) {
    int dims[8];
    int nd = frozen_dataset_shape(h5_path, INCEPTION_WHAT, "inception/Conv2d_1a_3x3.conv.weight", dims,
                                  "is it a file of scripts/inception_weights.py?");
    int oc = nd == 4 ? dims[0] : 0, div = oc > 0 && 32 % oc == 0 ? 32 / oc : 0;
    CHECK(div >= 1 && div <= 16 && (div & (div - 1)) == 0 && dims[1] == 3,
          "%s = %s: inception/Conv2d_1a_3x3.conv.weight has shape [%d, %d, ...]: the Inception's first convolution "
          "has 32 output channels (or 32 / a power of two up to 16) and 3 inputs",
          INCEPTION_WHAT, h5_path, oc, nd >= 2 ? dims[1] : 0);
    InceptionNet *n = net_create(div, be);
    frozen_load_group(&n->raw, h5_path, INCEPTION_WHAT, "inception");
    return net_finish(n, h5_path);
}

/* scripts/inception_weights.py's random weights, in distribution (not the
 * same draws): He convolutions, BatchNorm scales and variances in
 * [0.5, 1.5), shifts and means 0.1 N(0, 1), fc N(0, 1/in). */
InceptionNet *inception_random(int div, uint64_t seed, const Backend *be) {
    CHECK(div >= 1 && div <= 16 && (div & (div - 1)) == 0, "Inception: width divisor %d is not 1, 2, 4, 8 or 16", div);
    InceptionNet *n = net_create(div, be);
    ParamStore *r = &n->raw;
    for (int i = 0; i < r->n; i++) {
        const ParamInfo *p = &r->info[i];
        float *h = r->host + p->offset;
        size_t len = strlen(p->name);
#define ENDS(s) (len >= sizeof(s) - 1 && !strcmp(p->name + len - (sizeof(s) - 1), s))
        if (ENDS("conv.weight") || ENDS("fc.weight")) {
            double fan_in = (double)p->numel / p->shape[0];
            float std = (float)(ENDS("fc.weight") ? 1.0 / sqrt(fan_in) : sqrt(2.0 / fan_in));
            rng_fill_normal(h, p->numel, seed, (uint64_t)i, 0, 0.0f, std);
        } else if (ENDS("bn.weight") || ENDS("bn.running_var")) {
            rng_fill_uniform(h, p->numel, seed, (uint64_t)i, 0, 0.5f, 1.5f);
        } else {
            rng_fill_normal(h, p->numel, seed, (uint64_t)i, 0, 0.0f, 0.1f);
        }
#undef ENDS
    }
    return net_finish(n, "(random weights)");
}

void inception_free(InceptionNet *net) {
    if (!net) return;
    graph_free(&net->g);
    params_destroy(&net->w);
    core_free(net);
}

int inception_pool_dim(const InceptionNet *net) { return INCEPTION_POOL / net->div; }
int inception_logit_dim(const InceptionNet *net) { return (void)net, INCEPTION_LOGITS; }
int inception_width_div(const InceptionNet *net) { return net->div; }
const float *inception_fc_bias(const InceptionNet *net) { return net->fc_bias; }

int inception_chunk(const InceptionNet *net) { return net->chunk; }

void inception_set_chunk(InceptionNet *net, int images) {
    CHECK(images >= 1, "Inception: a chunk of %d images", images);
    net->chunk = images;
}

void inception_set_size(InceptionNet *net, int side) {
    CHECK(side >= 75 && side <= 1024, "Inception: input side %d is outside 75..1024 (the trunk needs 75)", side);
    net->side = side;
}

double inception_flops(const InceptionNet *net) { return walk_shapes((InceptionNet *)net, WALK_COUNT).flops; }

/* (x - 128) / 128 per channel, as op_modulate's x (1 + scale) + shift:
 * scale 1/128 - 1 and shift -1, both exact in float, so each value is
 * rounded once, as PyTorch's (x - 128) / 128 is (128 is a power of two). */
static Tensor *normalise(Graph *g, Tensor *tok) {
    int B = tok->shape[0];
    float *h = graph_alloc_host(g, sizeof(float) * 6 * (size_t)B);
    for (int i = 0; i < 3 * B; i++) h[i] = 1.0f / 128.0f - 1.0f, h[3 * B + i] = -1.0f;
    Tensor *scale = graph_new(g, 2, B, 3), *shift = graph_new(g, 2, B, 3);
    g->be->mem->to_device(scale->data, h, sizeof(float) * 3 * (size_t)B);
    g->be->mem->to_device(shift->data, h + 3 * B, sizeof(float) * 3 * (size_t)B);
    return op_modulate(g, tok, shift, scale);
}

void inception_forward(InceptionNet *net, const uint8_t *images, int n, int h, int w, float *pool, float *logits) {
    CHECK(n >= 0 && h >= 1 && w >= 1, "inception_forward: %d images of %dx%d", n, h, w);
    Graph *g = &net->g;
    int S = net->side, P = inception_pool_dim(net);
    size_t per = (size_t)3 * h * w;
    for (int start = 0; start < n; start += net->chunk) {
        int nb = n - start < net->chunk ? n - start : net->chunk;
        graph_reset(g);
        bool was = graph_set_grad(g, false);
        float *host = graph_alloc_host(g, sizeof(float) * per * nb);
        const uint8_t *src = images + per * start;
        for (size_t i = 0; i < per * nb; i++) host[i] = (float)src[i];
        Tensor *img = graph_new(g, 4, nb, 3, h, w);
        g->be->mem->to_device(img->data, host, sizeof(float) * per * nb);
        Walk k = {net, g, WALK_RUN, 0.0};
        Feat x = {normalise(g, op_patchify(g, op_resize_bilinear_tf(g, img, S, S), 1)), S, S, 3};
        x = trunk(&k, x);
        Tensor *feat = op_mean_tokens(g, x.t);
        if (pool) graph_read(g, feat, pool + (size_t)start * P, (size_t)nb * P);
        if (logits)
            graph_read(g, op_linear(g, feat, net->fc_w, net->fc_b), logits + (size_t)start * INCEPTION_LOGITS,
                       (size_t)nb * INCEPTION_LOGITS);
        graph_set_grad(g, was);
    }
}
