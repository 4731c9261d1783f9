/* train/sweep/sweep_summary.h — jit-sweep summary: one row per run of a sweep
 * (run, status, steps done, final loss, sparsity, QAT, images/s and, when
 * the runs have an eval.json, Fréchet distance and conditional accuracy),
 * written as OUT_DIR/summary.md, OUT_DIR/summary.csv and a plot of quality
 * against sparsity, OUT_DIR/summary.svg. docs/sweeps.md defines each column. */
#ifndef TRAIN_SWEEP_SWEEP_SUMMARY_H
#define TRAIN_SWEEP_SWEEP_SUMMARY_H

#include <stddef.h>
#include <stdio.h>

#include "train/sweep/sweep.h"

/* Read every run, write the three files and print the markdown table to
 * `out`. Returns 0, or -1 with "FILE: problem" in err. */
int sweep_summary(const Sweep *s, FILE *out, char *err, size_t errlen);

#endif
