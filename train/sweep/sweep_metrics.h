/* train/sweep/sweep_metrics.h — what a run directory says about a run: its
 * metrics.jsonl (written by jit-train, train/metrics.c) and, when a later
 * evaluation wrote one, its eval.json. Used by jit-sweep to skip finished
 * runs and to summarise a sweep.
 *
 * Resumed runs append to metrics.jsonl: a {"event": "resume", "step": S}
 * record follows whatever the interrupted run logged after its last
 * checkpoint. Those steps were trained again after the resume, so the
 * reader drops step records with step > S when it meets the resume event;
 * what is left is the trajectory the final weights actually came from. */
#ifndef TRAIN_SWEEP_SWEEP_METRICS_H
#define TRAIN_SWEEP_SWEEP_METRICS_H

#include <stddef.h>

typedef enum {
    RUN_NOT_STARTED = 0, /* no metrics.jsonl */
    RUN_PARTIAL = 1,     /* started, not finished: running, crashed or stopped */
    RUN_PREEMPTED = 2,   /* the last event is "preempted" (checkpointed; resumes with --resume auto) */
    RUN_DONE = 3,        /* a "train_end" event with no "resume" after it */
} RunState;

typedef struct RunStats {
    RunState state;
    long end_step;       /* RUN_DONE: the step of the train_end event */
    int n_records;       /* step records kept */
    long steps;          /* step of the last step record (0 when none) */
    double final_loss;   /* mean loss over the last 10% of step records (at least 1); NAN when none */
    double sparsity;     /* 1 - mean exact_fraction of the last monitor record, else 1 - last topk, else 0 */
    int sparsity_source; /* 0: no SLA2 values logged (full attention), 1: "topk", 2: the monitor's statistics */
    double attn_err;     /* mean rel_l2_err (SLA2 against full attention) of the last monitor record; NAN when none */
    int converted;       /* the run logged SLA2Conversion's "stage": a converted full-attention model */
    int qat;             /* last "qat": 0 or 1; -1 when never logged (no SLA2) */
    double images_per_s; /* median over step records after the first 5 (all when there are no more); NAN when none */
    int has_eval;        /* eval.json was read */
    double frechet_distance, conditional_accuracy; /* from eval.json; NAN when missing */
    int skipped_lines;   /* lines that were not JSON objects (reported on stderr) */
} RunStats;

/* Read RUN_DIR/metrics.jsonl and RUN_DIR/eval.json. A missing metrics file
 * is RUN_NOT_STARTED, not an error. Damaged lines are reported on stderr as
 * FILE:LINE: problem and skipped, except an unterminated last line (a run
 * being written right now), which is skipped silently. Returns 0, or -1
 * with the message in err when a file exists but cannot be read or
 * eval.json is not a JSON object. */
int sweep_read_run(const char *run_dir, RunStats *st, char *err, size_t errlen);

/* Only the events of RUN_DIR/metrics.jsonl (fast on long runs): the state
 * and, when done, the train_end step. */
RunState sweep_run_state(const char *run_dir, long *end_step);

#endif
