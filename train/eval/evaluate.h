/* train/eval/evaluate.h — sample quality of a JiT checkpoint measured with the
 * evaluation classifier (jit-eval; docs/eval.md):
 *
 *   (a) the Fréchet distance between the classifier features of generated
 *       samples (n per class, from the checkpoint's EMA weights) and of the
 *       real test images;
 *   (b) the conditional accuracy: the share of samples of class c that the
 *       classifier labels c (per class and overall);
 *   (c) the same figures for real images, the floor: FD between two disjoint
 *       halves of the test set (even / odd positions), FD of a class-balanced
 *       real subset of the samples' size against the other half (the floor at
 *       the samples' n, since FD's bias grows as n shrinks), and the
 *       conditional accuracy of the real images (= the classifier's test
 *       accuracy).
 * Deterministic for a seed: the sampler's noise is Philox (seed, sample
 * index), everything after it is fixed-order arithmetic. */
#ifndef TRAIN_EVAL_EVALUATE_H
#define TRAIN_EVAL_EVALUATE_H

#include <stdint.h>

#include "train/config/config.h"
#include "train/eval/classifier.h"
#include "train/model/jit.h"

#define EVAL_BATCH 64 /* classifier inference batch: fixed, so accuracies reproduce exactly */

typedef struct EvalOptions {
    const char *checkpoint; /* file, or a directory with "latest" */
    const char *classifier; /* weights file of jit-classify */
    const char *real;       /* shard set of real (test) images */
    int per_class;          /* samples per class (>= 2) */
    int steps;              /* sampler steps; -1: the checkpoint's sampling.steps */
    float cfg;              /* guidance; < 0: the checkpoint's */
    float cfg_lo, cfg_hi;   /* < 0: the checkpoint's */
    int ema;                /* EMA copy; -2: 0 when there is one, else the raw weights (-1) */
    long long seed;         /* < 0: the checkpoint's run.seed */
    int batch;              /* sampler batch */
    const char *out;        /* JSON result file, or NULL */
    const char *samples_h5; /* optional: the generated samples (io/samples.h) */
    const char *png;        /* optional: the samples as a PNG grid, one row per class */
    const char *device;     /* where the sampler's network runs: "cpu" (default) or "cuda" (GPU 0) */
    RunPrecision precision; /* on cuda: auto (bf16), fp32 or bf16 */
    int quiet;
} EvalOptions;

typedef struct EvalResult {
    double frechet_distance, conditional_accuracy;
    double real_frechet_distance;         /* half vs half */
    double real_frechet_distance_matched; /* class-balanced n_samples of one half vs the other */
    double real_conditional_accuracy;
    double classifier_test_accuracy;      /* as stored in the classifier file (-1 unknown) */
    double per_class[64], real_per_class[64];
    int num_classes, n_samples, n_real, feature_dim;
    uint64_t step;                        /* the checkpoint's */
    double sample_seconds, total_seconds;
    /* the settings used */
    int steps, per_class_n, ema;
    float cfg, cfg_lo, cfg_hi;
    unsigned long long seed;
    char checkpoint[1100];
} EvalResult;

void eval_options_defaults(EvalOptions *o);

/* Stop when the classifier cannot read these images (size, channels, classes). */
void eval_check_classifier(const Classifier *c, const char *cls_path, int channels, int img_size, int num_classes,
                           const char *what);

/* Clamp to [-1, 1] and round to the 256 levels of an 8-bit image, exactly as
 * the official evaluation's PNGs hold them (fid_to_u8: round half to even)
 * and as real images are stored. */
void eval_quantize(float *x, size_t n);

/* The whole evaluation; writes o->out (JSON) when given, prints a table unless quiet. */
EvalResult eval_run(const EvalOptions *o);

/* The JSON document of a result (what eval_run writes). */
void eval_write_json(const char *path, const EvalResult *r, const EvalOptions *o, const char *const *class_names);

#endif
