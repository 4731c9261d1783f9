/* train/config/config.h — the run configuration: one YAML file says everything about a
 * run (model, SLA2, data, optimiser and schedule, diffusion, sampling,
 * callbacks, logging, checkpoints, seed).
 *
 * config_load() parses the YAML (libyaml), applies command-line overrides
 * ("optim.lr=1e-4"), checks every key against the schema and stops with
 * file:line:column, the key and what is wrong (unknown keys, wrong types,
 * out-of-range values). config_write() emits the resolved configuration as
 * YAML that config_load() reads back to the same Config. Names follow the
 * seeds where they name a thing (use_sla2, sla2_topk_ratio,
 * RouterParameterScheduler, ...). See configs/README.md for every key. */
#ifndef TRAIN_CONFIG_CONFIG_H
#define TRAIN_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "train/model/jit.h"

#define CFG_STR 256
#define CFG_MAX_EMA 4
#define CFG_MAX_CALLBACKS 16

typedef enum { LR_CONSTANT = 0, LR_COSINE = 1 } LrSchedule;
/* How gradients are all-reduced across ranks (dist.allreduce). */
typedef enum { ALLREDUCE_AUTO = 0, ALLREDUCE_OVERLAP = 1, ALLREDUCE_BLOCKING = 2 } AllreduceMode;
typedef enum { RAMP_LINEAR = 0, RAMP_COSINE = 1 } RampShape;
/* Matrix-product precision (run.precision): auto is bf16 on cuda and fp32 on
 * the CPU, which computes in fp32 only. */
typedef enum { PRECISION_AUTO = 0, PRECISION_FP32 = 1, PRECISION_BF16 = 2 } RunPrecision;

typedef enum {
    CB_ROUTER_SCHEDULER = 0, /* RouterParameterScheduler */
    CB_SLA2_QAT = 1,         /* SLA2QATCallback */
    CB_QUANT_MONITOR = 2,    /* QuantizedAttentionMonitor */
    CB_SLA2_CONVERSION = 3,  /* SLA2Conversion: the paper's two-stage recipe */
} CallbackType;

typedef struct CallbackConfig {
    CallbackType type;
    /* RouterParameterScheduler: top-k ratio from start_ratio at start_step to
     * target_ratio at start_step + warmup_steps (ramp linear or cosine), then
     * held; layer = -1 for every SLA2 block, else one block. */
    float start_ratio, target_ratio;
    int start_step, warmup_steps, layer;
    RampShape ramp;
    /* SLA2QATCallback: QAT switched on at enable_step (and logged). */
    int enable_step;
    /* QuantizedAttentionMonitor: SLA2 statistics every `every` steps. */
    int every;
    /* SLA2Conversion: stage 1 (model frozen, router + alpha trained on the
     * distillation loss with soft top-k) for stage1_steps at stage1_lr, then
     * stage 2 (router frozen, hard top-k, everything else and alpha trained
     * on the diffusion loss). The full-attention weights come from `from`
     * (a checkpoint file). */
    char from[CFG_STR];
    int stage1_steps;
    float stage1_lr;
} CallbackConfig;

typedef struct Config {
    char source[CFG_STR]; /* the file it came from (for messages) */
    /* run */
    char run_name[CFG_STR];
    char out_dir[CFG_STR];  /* run directory: metrics, config, checkpoints, samples */
    /* jit-train --overwrite: a fresh start may delete the checkpoints of an
     * earlier run in out_dir (train/run_dir.h). Command line only, never in
     * a file: a config saying it would wipe a directory on every start. */
    int overwrite;
    float watchdog_s;       /* no step for this long ends the job naming the rank (0: off) */
    unsigned long long seed;
    char device[16];        /* "cpu" (default) or "cuda" */
    RunPrecision precision; /* matrix products on cuda: fp32 (parity) or bf16 */
    /* model: a named base (model.name) with any field overridden */
    char model_name[64];
    JitConfig model;
    /* data */
    char data_train[CFG_STR]; /* a shard file, a directory of shards, or a glob */
    int batch_size;           /* per rank */
    int prefetch;             /* batches the loader thread keeps ready */
    int hflip;                /* random horizontal flip */
    /* optim */
    float lr, beta1, beta2, eps, weight_decay;
    int warmup_steps;
    LrSchedule lr_schedule;
    float min_lr;             /* cosine floor */
    float grad_clip;          /* global-norm clip; 0 = off */
    int grad_accum;           /* micro-batches per step */
    int n_ema;
    float ema[CFG_MAX_EMA];   /* EMA decays, e.g. [0.9999, 0.9996] */
    /* The official JiT recipe where this project's differs (interop.md):
     * ema_warmup 0: constant EMA decay from the first step (official);
     * official_warmup: lr * s / W during warm-up (first step 0) instead of (s + 1) / W;
     * official_decay_set: also decay the class-embedding table and the
     * in-context position embedding (official: every 2-D JiT parameter). */
    int ema_warmup;
    int official_warmup;
    int official_decay_set;
    /* train */
    int steps;
    int log_every;
    int sample_every;         /* 0 = never during training */
    int checkpoint_every;     /* 0 = only at the end */
    int keep_last;            /* checkpoints kept (plus every keep_every-th) */
    int keep_every;
    int max_bad_steps;        /* consecutive NaN-guard skips that end the run (diverged); 0 = never */
    int recompute;            /* JitRecompute: what backward recomputes instead of keeping (core/recompute.h) */
    /* diffusion */
    float p_mean, p_std, noise_scale, label_drop;
    /* sampling */
    int sample_steps;
    float cfg_scale;
    float cfg_lo, cfg_hi;     /* CFG only for cfg_lo < t < cfg_hi */
    int official_cfg_interval; /* also at t <= cfg_lo when cfg_lo == 0: (t < hi) & ((lo == 0) | (t > lo)) */
    int samples_per_class;
    int sample_ema;           /* index into ema[] to sample with; -1 = raw weights */
    /* eval: online FID (train/trainer_eval.c, docs/eval.md), like the official --online_eval */
    int eval_every;            /* 0 = never during training */
    int eval_images;           /* images per evaluation, split across the ranks */
    int eval_chunk;            /* images per chunk (fid_eval.h) */
    char eval_features[CFG_STR]; /* classifier:FILE or inception:FILE */
    char eval_ref[CFG_STR];    /* reference statistics (.npz: mu, sigma) */
    /* dist */
    AllreduceMode allreduce;  /* auto: blocking on CPU ranks, overlapped on GPUs (dist/grad_reduce.h) */
    float bucket_mb;          /* reduction bucket size */
    int shard_optimizer;      /* ZeRO-1: each rank keeps and updates 1/world of the moments and EMA copies */
    /* logging */
    int progress;             /* -1 auto (a terminal), 0 off, 1 on */
    /* callbacks */
    int n_callbacks;
    CallbackConfig callbacks[CFG_MAX_CALLBACKS];
    /* losses: PixelGen's terms (docs/pixelgen.md) */
    float repa_weight, lpips_weight, pdino_weight;
    char vgg_weights[CFG_STR], lpips_weights[CFG_STR]; /* scripts/pixelgen_weights.py's files */
    char dino_weights[CFG_STR];
    float percept_t_threshold; /* LPIPS (and P-DINO per_sample) only for samples with t >= this (t = 1 is clean) */
    int align_layer;           /* REPA: the tokens entering this block (0-based) */
    int pdino_gating;          /* PdinoGating */
    int adaptive_start;        /* the adaptive weight of LPIPS + P-DINO from this step (-1: never) ... */
    int adaptive_every;        /* ... every this many steps */
    float dino_cache_mb;       /* > 0: cache DINOv2's target features per clean image, up to this many MB per rank */
    int frozen_random_div;     /* > 0: random frozen networks at 1/div width instead of the files (tests) */
} Config;

/* P-DINO's reduction: PixelGen's released code averages over the whole
 * batch whenever any sample passes the gate (its mask broadcast makes the
 * gate a no-op, docs/pixelgen.md "P-DINO"); the paper averages over
 * the gated samples only. */
typedef enum { PDINO_RELEASED, PDINO_PER_SAMPLE } PdinoGating;

/* Defaults for every field (model jit-tiny, full attention). */
void config_defaults(Config *c);
/* Load `path`, apply overrides ("key.path=value", YAML scalar syntax), validate.
 * Stops with a message naming file:line:column and the key on any error. */
void config_load(Config *c, const char *path, int n_overrides, char *const *overrides);
/* Same, from a string (tests); `name` is used in messages. */
void config_load_string(Config *c, const char *name, const char *yaml, int n_overrides, char *const *overrides);
/* The same loads returning the error instead of stopping: 0 on success, -1
 * with the message in err (and *c unchanged). Messages read
 *   FILE:LINE:COL: KEY.PATH: what is wrong
 *   FILE:LINE:COL: unknown key 'optim.lrr' (known under optim: lr, betas, ...)
 *   FILE:LINE:COL: YAML syntax error: <libyaml's problem>
 *   override 'optim.lr=abc': optim.lr: expected a number, got 'abc'
 *   FILE: cannot open the configuration: <strerror> */
int config_try_load(Config *c, const char *path, int n_overrides, char *const *overrides, char *err, size_t errlen);
int config_try_load_string(Config *c, const char *name, const char *yaml, int n_overrides, char *const *overrides,
                           char *err, size_t errlen);
/* Write the resolved configuration as YAML. */
void config_write(const Config *c, FILE *f);
/* config_write into a malloc'ed string (free()). */
char *config_to_yaml(const Config *c);
/* Key by key (as config_write writes them: "section.key", the callbacks as
 * one "callbacks" entry), fn(key, old value, new value) for every key whose
 * value differs; returns how many did. */
int config_diff(const Config *was, const Config *now,
                void (*fn)(const char *key, const char *was_v, const char *now_v, void *user), void *user);

#endif
