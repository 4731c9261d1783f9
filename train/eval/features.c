/* train/eval/features.c — the feature extractors of features.h. */
#include "train/eval/features.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/graph.h"
#include "train/eval/classifier.h"
#include "train/eval/evaluate.h"

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

FeatureExtractor *features_open(const char *spec, const Backend *be, int inception_side) {
    CHECK(spec != NULL, "no feature extractor given (classifier:FILE or inception:FILE)");
    FeatureExtractor *fx = core_calloc(sizeof *fx);
    snprintf(fx->name, sizeof fx->name, "%s", spec);
    if (!strncmp(spec, "classifier:", 11)) open_classifier(fx, spec + 11);
    else
        FAIL("feature extractor '%s' not understood: give classifier:FILE (jit-classify's weights) or "
             "inception:FILE (scripts/inception_weights.py's HDF5)", spec);
    (void)be, (void)inception_side;
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
