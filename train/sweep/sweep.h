/* train/sweep/sweep.h — a sweep: one base configuration and a list of runs, each a
 * list of config overrides, read from a small YAML file (docs/sweeps.md):
 *
 *   name: sparsity
 *   base: configs/fmnist-tiny.yaml
 *   out_dir: runs/sweeps/sparsity          # each run in OUT_DIR/<run name>
 *   set: ["train.steps=300"]               # for every run
 *   grid:                                  # cartesian product, keys in file order
 *     model.sla2_topk_ratio: [0.25, 0.5]
 *     callbacks[1].enable_step: [150, 100000]
 *   runs:                                  # explicit runs, after the grid's
 *     - {name: dense, set: ["model.use_sla2=false", "callbacks=[]"]}
 *   seeds: [0, 1, 2]                       # optional: every run once per seed (run.seed)
 *   eval:                                  # optional: jit-eval after each run
 *     classifier: models/fmnist-classifier.h5
 *     real: data/fmnist-test
 *     per_class: 50                        # and steps, cfg, ema, seed, batch
 *   fid:                                   # optional: jit-eval fid after each run (docs/eval.md)
 *     features: inception:models/inception.h5
 *     ref: fid_stats/jit_in256_stats.npz   # or real: DIR (shards)
 *     n: 50000                             # and cfg "1.5,2.9", interval "0.1,1:0,1", ema "0,1",
 *                                          # steps, seed, chunk, batch (one row per setting)
 *
 * The file is read with the project's YAML tree (io/yaml_tree.h), so every
 * error names FILE:LINE:COL, the key and what is wrong, as train/config/config.c does.
 * What a run's overrides mean is checked by loading its configuration
 * (config_try_load) — jit-sweep's `plan` does that for every run. */
#ifndef TRAIN_SWEEP_SWEEP_H
#define TRAIN_SWEEP_SWEEP_H

#include <stddef.h>

/* Longest run name: it is a directory name, and a name that long no longer
 * says much anyway (use an explicit run with a short name). */
#define SWEEP_MAX_NAME 160

typedef struct SweepRun {
    char *name;    /* unique, safe as a directory name */
    int line, col; /* where it was defined: its runs[] entry, or the grid's first value */
    int n_set;
    char **set;    /* its own overrides: grid "key=value"s, or runs[i].set */
    int group;     /* with seeds: the run it repeats (index into Sweep.groups); else its own index */
    long long seed; /* with seeds: run.seed of this repetition; -1 without */
} SweepRun;

/* The optional eval: section: jit-eval's options for every run. */
typedef struct SweepEval {
    int enabled;
    int n_args;
    char **args; /* "--classifier", FILE, "--real", DIR, "--per-class", "50", ... */
} SweepEval;

typedef struct Sweep {
    char *path;    /* the sweep file, for messages */
    char *name;
    char *base;    /* the base configuration (relative to the working directory) */
    char *out_dir; /* default runs/sweeps/<name> */
    int n_set;
    char **set;    /* overrides applied to every run, before the run's own */
    int n_runs;
    SweepRun *runs;
    /* seeds: [...]: each grid or explicit run repeated once per seed, named
     * "<run>,seed=<S>", with run.seed=S and "{seed}" in its own overrides
     * replaced by S (so a conversion can start from the same seed's run). */
    int n_seeds;
    long long *seeds;
    int n_groups;  /* the runs before repetition */
    char **groups; /* their names */
    SweepEval eval;
    SweepEval fid; /* the fid: section: jit-eval fid's options ("--features", SPEC, ...) */
} Sweep;

/* Read and check a sweep file. 0 on success; -1 with "FILE:LINE:COL: KEY:
 * problem" (or "FILE: cannot open ...") in err and *s left empty. */
int sweep_load(Sweep *s, const char *path, char *err, size_t errlen);
void sweep_free(Sweep *s);

/* OUT_DIR/<name of run i>. */
void sweep_run_dir(const Sweep *s, int i, char *buf, size_t len);

/* Every override of run i, in the order they apply: the sweep's `set`, the
 * run's own, then run.name=<name> and run.out_dir=OUT_DIR/<name>. Returns
 * the count; free the list with sweep_free_overrides. */
int sweep_run_overrides(const Sweep *s, int i, char ***out);
void sweep_free_overrides(char **list, int n);

/* A copy (core_malloc) of a NUL-terminated string. */
char *sweep_strdup(const char *s);

#endif
