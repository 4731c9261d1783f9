/* train/eval/fid_jobs.h — jit-eval's FID commands (docs/eval.md):
 *
 *   fid       FID and IS of N images sampled from a checkpoint, for one or
 *             several settings (CFG scales x intervals x EMA copies: a sweep
 *             in one command over the same noise), against reference
 *             statistics (.npz) or a shard set of real images; one row per
 *             setting (FID, IS, time) in JSON and Markdown;
 *   fid-ref   reference statistics (mu, sigma as .npz) of a shard set of
 *             real images with the same preprocessing and extractor.
 * Both run on any number of MPI ranks with the same result bits
 * (fid_eval.h) and resume from their --state file. */
#ifndef TRAIN_EVAL_FID_JOBS_H
#define TRAIN_EVAL_FID_JOBS_H

#include "dist/comm.h"
#include "train/config/config.h"

#define FID_MAX_ROWS 64

typedef struct FidRowSetting {
    float cfg, cfg_lo, cfg_hi; /* < 0: the checkpoint's */
    int ema;                   /* -2: the checkpoint's default (copy 0, else raw) */
    char name[96];
} FidRowSetting;

typedef struct FidJobOptions {
    const char *checkpoint, *features, *ref, *real;
    long n_images;     /* fid: default 50000; fid-ref: all the real images */
    int chunk, batch, steps;
    long long seed;    /* < 0: the checkpoint's run.seed */
    int n_rows;
    FidRowSetting rows[FID_MAX_ROWS];
    const char *state, *png_dir, *out_json, *out_md, *save_ref, *device;
    RunPrecision precision;
    long max_chunks;
    int inception_side, no_is, quiet;
    Comm *comm;
} FidJobOptions;

void fid_job_defaults(FidJobOptions *o);
/* Rows from "--cfg 1.5,2.9 --interval 0.1,1:0,1 --ema 0,1" (each list may be
 * NULL: the checkpoint's value): their cartesian product, cfg outermost. */
void fid_job_rows(FidJobOptions *o, const char *cfgs, const char *intervals, const char *emas);
/* 0 done, 1 stopped by max_chunks (resumable). */
int fid_job_run(const FidJobOptions *o);
int fid_job_ref(const FidJobOptions *o);

#endif
