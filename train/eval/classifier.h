/* train/eval/classifier.h — the evaluation classifier: a small ViT trained by this
 * framework's own ops, whose penultimate layer gives the features of the
 * sample-quality metrics (train/eval/frechet.h, jit-eval; docs/eval.md).
 *
 *   img [B, C, H, W] -> patches (p x p, or overlapping w x w windows at stride p)
 *   -> linear -> + learned position table
 *   -> depth x pre-norm blocks: x += attn(rmsnorm(x)); x += swiglu-mlp(rmsnorm(x))
 *   -> rmsnorm -> mean over tokens = features [B, hidden] -> linear -> logits [B, K]
 *
 * Weights file (HDF5, "jit-classifier-v1"): /params/<name> one float32
 * dataset per parameter (e.g. "blocks.0.attn.qkv.weight"); root attributes:
 * format, img_size, channels, patch, window, depth, hidden, heads, mlp_hidden,
 * num_classes (the architecture), test_accuracy, train_steps, train_seconds,
 * seed and config (the YAML it was trained with). */
#ifndef TRAIN_EVAL_CLASSIFIER_H
#define TRAIN_EVAL_CLASSIFIER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/graph.h"
#include "core/params.h"

#define CLS_FORMAT "jit-classifier-v1"
#define CLS_STR 256

typedef struct ClassifierConfig {
    int img_size, channels, patch;
    int window; /* patch embedding window: 0 or = patch: plain patches; > patch: overlapping
                 * window x window pixels around each patch (zero padding (window - patch)/2) */
    int depth, hidden, heads, mlp_hidden;
    int rope;        /* qk-norm and 2D RoPE in attention (head_dim divisible by 4) */
    int num_classes;
    /* derived by classifier_config_finish */
    int grid, tokens, head_dim;
} ClassifierConfig;

typedef struct ClsBlock {
    Tensor *norm1, *qkv_w, *qkv_b, *q_norm, *k_norm, *proj_w, *proj_b;
    Tensor *norm2, *w12_w, *w12_b, *w3_w, *w3_b;
} ClsBlock;

typedef struct Classifier {
    ClassifierConfig cfg;
    ParamStore params;
    Tensor *patch_w, *patch_b, *pos;
    ClsBlock *blocks;
    Tensor *norm, *head_w, *head_b;
    float *rope_cos, *rope_sin; /* [tokens, head_dim/2] when cfg.rope */
    /* from a loaded file (-1 / 0 when unknown) */
    double test_accuracy;
    long train_steps;
    double train_seconds;
} Classifier;

/* Check the sizes and fill the derived fields; stops naming the bad field. */
void classifier_config_finish(ClassifierConfig *c);
/* Register, allocate and initialise the parameters from `seed`. */
void classifier_build(Classifier *m, const ClassifierConfig *c, uint64_t seed);
void classifier_free(Classifier *m);

/* img [B, C, H, W] in [-1, 1] -> logits [B, num_classes]; *features, when
 * given, receives the penultimate layer [B, hidden]. */
Tensor *classifier_forward(Classifier *m, Graph *g, Tensor *img, Tensor **features);

/* Inference on n images [n, C, H, W], `batch` at a time, without gradients:
 * features [n, hidden] and predicted classes [n] (either may be NULL). */
void classifier_predict(Classifier *m, Graph *g, const float *images, int n, int batch, float *features, int *pred);

/* Accuracy of pred against labels; per_class [K] (may be NULL) receives the
 * share of each class's images predicted as that class (NAN for a class with
 * no images). */
double classifier_accuracy(const int *pred, const int *labels, int n, int K, double *per_class);

/* Weights file (see the top of this header). config_yaml may be NULL. */
void classifier_save(const char *path, const Classifier *m, uint64_t seed, const char *config_yaml);
/* Build m from a weights file; stops with a clear message when the file is
 * missing, not HDF5, not a classifier, or its parameters do not match the
 * architecture its attributes state. */
void classifier_load(const char *path, Classifier *m);

/* ------------------------------------------------------------- training */

typedef struct ClassifierTrainConfig {
    char source[CLS_STR];     /* the file it came from (messages) */
    unsigned long long seed;
    char out[CLS_STR];        /* the weights file written after training */
    char data_train[CLS_STR]; /* shard set (file, directory or glob) */
    char data_test[CLS_STR];
    int hflip;                /* random horizontal flips */
    int shift;                /* random translation by up to this many pixels (0: none) */
    ClassifierConfig model;
    int steps, batch_size, warmup_steps, log_every, eval_batch;
    float lr, min_lr, weight_decay, beta1, beta2, grad_clip;
} ClassifierTrainConfig;

void classifier_train_defaults(ClassifierTrainConfig *c);
/* Load YAML (sections run, data, model, train; see configs/eval/fmnist-classifier.yaml)
 * and apply overrides "section.key=value". Returns 0, or -1 with
 * "FILE:LINE:COL: section.key: problem" (or "override 'K=V': ...") in err. */
int classifier_train_config_load(ClassifierTrainConfig *c, const char *path, int n_over, char *const *over, char *err,
                                 size_t errlen);
/* The configuration as YAML (saved in the weights file). malloc'ed. */
char *classifier_train_config_yaml(const ClassifierTrainConfig *c);

typedef struct ClassifierTrainResult {
    double test_accuracy;  /* on data_test (or -1 when it is empty) */
    double train_seconds;  /* the optimisation loop, without the final evaluation */
    double final_loss;     /* mean training loss of the last log interval */
    int n_test;
} ClassifierTrainResult;

/* Train m (built here from c->model and c->seed) with AdamW on data_train,
 * linear warm-up then cosine decay to min_lr; evaluate on data_test. Progress
 * lines go to log (NULL: quiet). */
ClassifierTrainResult classifier_train(const ClassifierTrainConfig *c, Classifier *m, FILE *log);


#endif
