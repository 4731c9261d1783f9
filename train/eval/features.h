/* train/eval/features.h — the feature extractors FID and IS are measured
 * with, behind one interface, so the streamed evaluation (fid_eval.h) does
 * not care which network it runs:
 *
 *   "classifier:FILE"  the project's Fashion-MNIST classifier (jit-classify):
 *                      pool = its 64 penultimate features, logits = its
 *                      class logits (an FD/IS of its own, not comparable to
 *                      published numbers; quick, and what tests use);
 *   "inception:FILE"   torch-fidelity's Inception-v3 (train/eval/inception.h):
 *                      pool = the 2048 features FID uses, logits = the 1008
 *                      logits without the fc bias ('logits_unbiased', what
 *                      torch-fidelity's IS takes).
 *
 * Input: 8-bit images, NCHW, as the official pipeline writes them (PNG).
 * Grey images (1 channel) go to the Inception as RGB with the channel
 * repeated, as PIL's convert("RGB") in torch-fidelity's folder reader does.
 * Results for an image do not depend on which other images share the call
 * (the evaluation relies on it for rank-count invariance; tested). */
#ifndef TRAIN_EVAL_FEATURES_H
#define TRAIN_EVAL_FEATURES_H

#include <stdint.h>

#include "core/backend.h"

typedef struct FeatureExtractor FeatureExtractor;
struct FeatureExtractor {
    char name[1100];  /* the spec it was opened with: part of an evaluation's identity */
    int pool_dim, logit_dim;
    int channels, size; /* the images it takes: channels (0: 1 or 3) and side (0: any) */
    void (*forward)(FeatureExtractor *fx, const uint8_t *images, int n, int c, int h, int w, float *pool,
                    float *logits);
    void (*destroy)(FeatureExtractor *fx);
    void *impl;
};

/* Open "classifier:FILE" or "inception:FILE" (inception_side > 0: resize to
 * that side instead of 299, for tests only). Stops with a message naming the
 * spec when it is not understood or the file cannot be loaded. */
FeatureExtractor *features_open(const char *spec, const Backend *be, int inception_side);
void features_close(FeatureExtractor *fx);
/* Stop unless the extractor takes images of c x h x w (what names them). */
void features_check_input(const FeatureExtractor *fx, int c, int h, int w, const char *what);

#endif
