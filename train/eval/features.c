/* train/eval/features.c — the feature extractors of features.h. */
#include "train/eval/features.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/graph.h"
#include "train/eval/classifier.h"
#include "train/eval/evaluate.h"
#include "train/eval/inception.h"

/* ---- the project's classifier ---- */

typedef struct ClsFx {
    Classifier cls;
    Graph g;
} ClsFx;

/* u8 -> [-1, 1] (how the shards store real images), then the classifier,
 * EVAL_BATCH images at a time from the start of the call. */
static void cls_forward(FeatureExtractor *fx, const uint8_t *images, int n, int c, int h, int w, float *pool,
                        float *logits) {
    ClsFx *x = fx->impl;
    const ClassifierConfig *k = &x->cls.cfg;
    int per = c * h * w, D = k->hidden, K = k->num_classes;
    bool prev = graph_set_grad(&x->g, false);
    x->g.training = false;
    for (int i0 = 0; i0 < n; i0 += EVAL_BATCH) {
        int b = n - i0 < EVAL_BATCH ? n - i0 : EVAL_BATCH;
        graph_reset(&x->g);
        Tensor *img = graph_new(&x->g, 4, b, c, h, w), *f;
        for (size_t j = 0; j < (size_t)b * per; j++) img->data[j] = (float)images[(size_t)i0 * per + j] / 127.5f - 1.0f;
        Tensor *lg = classifier_forward(&x->cls, &x->g, img, &f);
        if (pool) memcpy(pool + (size_t)i0 * D, f->data, sizeof(float) * (size_t)b * D);
        if (logits) memcpy(logits + (size_t)i0 * K, lg->data, sizeof(float) * (size_t)b * K);
    }
    graph_reset(&x->g);
    graph_set_grad(&x->g, prev);
}

static void cls_destroy(FeatureExtractor *fx) {
    ClsFx *x = fx->impl;
    graph_free(&x->g);
    classifier_free(&x->cls);
    core_free(x);
}

static void open_classifier(FeatureExtractor *fx, const char *path) {
    ClsFx *x = core_calloc(sizeof *x);
    classifier_load(path, &x->cls);
    graph_init(&x->g, backend_cpu(), 64u << 20);
    fx->impl = x;
    fx->pool_dim = x->cls.cfg.hidden, fx->logit_dim = x->cls.cfg.num_classes;
    fx->channels = x->cls.cfg.channels, fx->size = x->cls.cfg.img_size;
    fx->forward = cls_forward, fx->destroy = cls_destroy;
}

/* ---- torch-fidelity's Inception-v3 ---- */

static void inc_forward(FeatureExtractor *fx, const uint8_t *images, int n, int c, int h, int w, float *pool,
                        float *logits) {
    InceptionNet *net = fx->impl;
    const uint8_t *rgb = images;
    uint8_t *tmp = NULL;
    if (c == 1) { /* grey -> RGB, the channel repeated (PIL's convert("RGB")) */
        size_t hw = (size_t)h * w;
        tmp = core_malloc(hw * 3 * (size_t)n);
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 3; k++) memcpy(tmp + ((size_t)i * 3 + k) * hw, images + (size_t)i * hw, hw);
        rgb = tmp;
    }
    inception_forward(net, rgb, n, h, w, pool, logits);
    if (logits) { /* torch-fidelity's IS layer is 'logits_unbiased': fc without its bias */
        const float *b = inception_fc_bias(net);
        int L = fx->logit_dim;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < L; k++) logits[(size_t)i * L + k] -= b[k];
    }
    core_free(tmp);
}

static void inc_destroy(FeatureExtractor *fx) { inception_free(fx->impl); }

static void open_inception(FeatureExtractor *fx, const char *path, const Backend *be, int side) {
    InceptionNet *net = inception_load(path, be);
    if (side > 0) inception_set_size(net, side);
    fx->impl = net;
    fx->pool_dim = inception_pool_dim(net), fx->logit_dim = inception_logit_dim(net);
    fx->channels = 0, fx->size = 0; /* grey or RGB, any size: it resizes to 299 */
    fx->forward = inc_forward, fx->destroy = inc_destroy;
}

FeatureExtractor *features_open(const char *spec, const Backend *be, int inception_side) {
    CHECK(spec != NULL, "no feature extractor given (classifier:FILE or inception:FILE)");
    FeatureExtractor *fx = core_calloc(sizeof *fx);
    snprintf(fx->name, sizeof fx->name, "%s", spec);
    if (!strncmp(spec, "classifier:", 11)) open_classifier(fx, spec + 11);
    else if (!strncmp(spec, "inception:", 10)) open_inception(fx, spec + 10, be ? be : backend_cpu(), inception_side);
    else
        FAIL("feature extractor '%s' not understood: give classifier:FILE (jit-classify's weights) or "
             "inception:FILE (scripts/inception_weights.py's HDF5)", spec);
    return fx;
}

void features_close(FeatureExtractor *fx) {
    if (!fx) return;
    fx->destroy(fx);
    core_free(fx);
}

void features_check_input(const FeatureExtractor *fx, int c, int h, int w, const char *what) {
    CHECK(fx->channels == 0 ? (c == 1 || c == 3) : c == fx->channels,
          "%s has %d-channel images but the feature extractor %s takes %d", what, c, fx->name, fx->channels);
    CHECK(fx->size == 0 || (h == fx->size && w == fx->size), "%s has %dx%d images but the feature extractor %s takes %dx%d",
          what, h, w, fx->name, fx->size, fx->size);
}
