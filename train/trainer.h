/* train/trainer.h — the diffusion trainer: one process (rank) of a run.
 *
 * trainer_init builds the model, optimiser, EMA copies and the data loader
 * from a Config (resuming from a checkpoint when asked); trainer_step does
 * one optimiser update (grad_accum micro-batches of the JiT objective, a
 * NaN/Inf guard, clipping, AdamW, EMA) with the callbacks around it;
 * trainer_run loops, logs, samples and checkpoints. With the same config and
 * seed the losses are bit-identical run to run (CPU, fixed thread count).
 * run.device: cuda trains on the rank's GPU through the CUDA op table; the
 * batch (and its noise) is still drawn on the host, exactly as on the CPU,
 * so both devices see the same data. */
#ifndef TRAIN_TRAINER_H
#define TRAIN_TRAINER_H

#include <stdint.h>

#include "core/graph.h"
#include "core/optim.h"
#include "dist/comm.h"
#include "dist/grad_reduce.h"
#include "io/ckpt.h"
#include "io/run_lock.h"
#include "io/shards.h"
#include "train/config/config.h"
#include "train/eval/frechet.h"
#include "train/losses/pixelgen.h"
#include "train/metrics.h"
#include "train/model/jit.h"
#include "train/trainer_device.h"
#include "train/watchdog.h"

/* The step arena's first block; it grows to the largest step's need after
 * the first step (core/arena.h). The memory plan counts it too. */
#define TRAINER_ARENA_BYTES ((size_t)64 << 20)

/* A step whose applied gradient norm exceeds this is skipped: its squares
 * would overflow the float second moment (train/trainer.c). */
#define TRAINER_MAX_UPDATE_NORM 1e18

typedef enum TrainerPhase {
    TRAINER_PHASE_CALLBACKS, /* on_step_start/on_step_end, parameter freezing */
    TRAINER_PHASE_DATA,      /* loader_next, label dropout, noise, upload */
    TRAINER_PHASE_FORWARD,   /* the model and the loss */
    TRAINER_PHASE_BACKWARD,  /* the tape's replay (with overlapped reduction buckets) */
    TRAINER_PHASE_ALLREDUCE, /* what the reduction still costs after backward */
    TRAINER_PHASE_OPTIMIZER, /* gradient norm, clipping, AdamW, EMA, the sharded weights' all-gather */
    TRAINER_PHASE_LOG,       /* metrics */
    TRAINER_N_PHASES
} TrainerPhase;
extern const char *const trainer_phase_names[TRAINER_N_PHASES];

typedef struct Trainer {
    Config cfg;
    const Backend *be; /* the compute backend: ops, memory, update (core/backend.h) */
    TrainerState st;   /* host images, optimiser layout, batch fence (train/trainer_device.h) */
    JitModel model;
    AdamW opt;                /* moments of this rank's range (red.lo, red.hi), in the backend's memory */
    float *ema[CFG_MAX_EMA];  /* the same range of each EMA copy, in the backend's memory */
    float *backup; /* the raw weights while sampling with EMA weights (backend memory) */
    Graph g;
    ShardSet data;
    Loader *loader;
    Comm *comm;    /* NULL: one process without MPI (tests, tools) */
    RunLock lock;  /* out_dir/run.lock, held by rank 0 from trainer_init to trainer_free */
    Watchdog watchdog; /* run.watchdog_s: armed in trainer_run's step loop */
    char run_id[CKPT_RUN_ID_MAX]; /* in every checkpoint; pruning deletes only this run's (io/ckpt.h) */
    GradReduce red; /* the gradients' reduction over the ranks and this rank's range (dist/grad_reduce.h) */
    uint64_t step; /* optimiser updates done */
    Metrics metrics;
    Progress progress;
    double t_start, t_last;
    /* Host wall seconds per phase of trainer_step, summed over the run
     * (tests/bench/bench_profile.c reads them; on a GPU the device phases
     * measure launches, and the wait lands in whichever phase synchronises). */
    double phase_s[TRAINER_N_PHASES];
    uint64_t images_seen;
    /* per-step host buffers (allocated once); img, z, t pinned on CUDA */
    float *img, *z, *t;
    int *lab, *y;
    /* state the callbacks steer */
    int stage;               /* SLA2Conversion: 0 none, 1 router distillation, 2 fine-tune */
    float stage1_lr;
    int collect_stats_now;   /* QuantizedAttentionMonitor due this step */
    /* PixelGen's REPA, LPIPS and P-DINO: their frozen networks, lambda and
     * the last step's values (when trainer_has_pixelgen) */
    PixelGen pg;
    /* online evaluation (eval.every > 0; train/trainer_eval.c) */
    struct FeatureExtractor *eval_fx;
    FeatureStats eval_ref;         /* on rank 0 */
    double eval_fid;               /* the last one (NAN before the first), on the progress line */
    /* last step, for logs */
    float loss, lr;
    double grad_norm;
    int skipped_total;
    int last_skipped;
    /* tests: poison the gradients at this step (-1 = never) */
    long inject_nan_step;  /* tests: poison the gradient from this step ... */
    float inject_value;    /* ... with this value in its first element (default NaN) ... */
    int inject_nan_count;  /* ... for this many steps (default 1) */
    int bad_streak;        /* consecutive steps the NaN guard skipped */
    uint64_t first_bad_step; /* the first step of the current streak (when bad_streak > 0) */
    /* Checkpoints and divergence: a checkpoint is known good once a step
     * from its state succeeds (a state can be finite and still give NaN at
     * once: optim.lr = 100 made such weights). The newest known-good one is
     * never pruned, and a diverged run names it. */
    int ckpt_pending;                   /* written (or resumed from), its next step not yet run */
    uint64_t ckpt_pending_step;
    char ckpt_pending_path[1200];
    int ckpt_good;                      /* ckpt_good_path is known good */
    uint64_t ckpt_good_step;
    char ckpt_good_path[1200];
    int state_bad;         /* a checkpoint was refused: the state holds NaN or Inf */
} Trainer;

/* This rank and the number of ranks (0 and 1 without a communicator). */
static inline int trainer_rank(const Trainer *T) { return T->comm ? T->comm->rank : 0; }
static inline int trainer_world(const Trainer *T) { return T->comm ? T->comm->world : 1; }

/* Exit code of a run stopped by SIGTERM/SIGUSR1 after writing a checkpoint:
 * the batch script requeues the job when it sees it (EX_TEMPFAIL). */
#define TRAINER_EXIT_REQUEUE 75
/* Exit code of a run that stopped because train.max_bad_steps consecutive
 * steps were skipped (non-finite loss or gradient), or that ended without a
 * single good step. */
#define TRAINER_EXIT_DIVERGED 3
/* Exit code of a rank whose watchdog saw no step complete for
 * run.watchdog_s seconds (train/watchdog.h). */
#define TRAINER_EXIT_STALLED 4

/* resume: NULL (fresh), "auto" (newest checkpoint in out_dir/ckpt if any),
 * or a path. comm: the ranks to train with, or NULL for one process. */
void trainer_init(Trainer *T, const Config *cfg, const char *resume, Comm *comm);
void trainer_free(Trainer *T);
/* One optimiser update; returns the step's mean loss (NaN when skipped). */
float trainer_step(Trainer *T);
/* Steps until cfg.steps, with logging, sampling and checkpoints. Returns 0,
 * TRAINER_EXIT_REQUEUE when a signal asked every rank to checkpoint and stop,
 * or TRAINER_EXIT_DIVERGED (no checkpoint: the last good one stands). */
int trainer_run(Trainer *T);
/* SIGTERM and SIGUSR1 (what SLURM sends before preemption or the time
 * limit) request a checkpoint and a clean stop at the next step boundary. */
void trainer_install_signal_handlers(void);
/* A grid of samples (samples_per_class per class, one row per class) with
 * the configured sampler and EMA weights -> out_dir/samples/step-XXXXXXXX.{png,h5}. */
void trainer_sample(Trainer *T);
/* A checkpoint of the current state; 0 when none was written: the last
 * step was skipped by the NaN guard (no checkpoint while steps are being
 * skipped), or the state is not finite (then T->state_bad). */
int trainer_checkpoint(Trainer *T);

/* Online FID (eval.every): open the extractor and the reference before the
 * first step (bad paths stop there), evaluate on every rank together (each
 * its share of eval.images; fid_eval.h), log to metrics.jsonl. */
void trainer_eval_open(Trainer *T);
void trainer_eval(Trainer *T);
void trainer_eval_close(Trainer *T);

/* PixelGen's losses are part of the objective (a losses.*_weight > 0). */
static inline int trainer_has_pixelgen(const Trainer *T) { return pixelgen_enabled(&T->cfg); }

#endif
