/* tests/trainer_fixture.h — what the trainer tests share (test_trainer and
 * test_cuda_train): a toy data set in a fresh directory, and the tiny JiT
 * configuration they train on it. */
#ifndef TESTS_TRAINER_FIXTURE_H
#define TESTS_TRAINER_FIXTURE_H

#include "train/config/config.h"

/* The directory fixture_make_toy_data made (runs write under it too). */
extern char fixture_dir[256];

/* A fresh /tmp/<prefix>-XXXXXX holding data/: 320 images of 16x16 (1
 * channel), 4 classes, a bright square whose position is the class plus a
 * little noise: learnable in a few hundred steps. For Criterion's .init. */
void fixture_make_toy_data(const char *prefix);

/* The toy data in RGB as well (the frozen networks read three channels):
 * 64 images under fixture_dir/rgb, each channel scaled differently. */
void fixture_make_rgb_data(const char *prefix);

/* What differs between the tests' runs; zero fields take the defaults. */
typedef struct FixtureRun {
    const char *device, *precision; /* run.device / run.precision (NULL: not written) */
    const char *optim;              /* the optim: map (NULL: lr 2e-3, warm-up 10, EMA 0.99) */
    int batch;                      /* data.batch_size (0: 16) */
    int sampling_steps;             /* sampling.steps (0: 4) */
    const char *dropout;            /* model.dropout (NULL: not written) */
    const char *extra;              /* YAML appended (callbacks: ...) */
} FixtureRun;

/* The tiny model (16x16, patch 4, depth 2, hidden 64, 2 heads, 4 in-context
 * tokens, SLA2 with blocks of 4 at top-k 0.5 when sla2) on the toy data,
 * seed 7, 200 steps, writing to fixture_dir/name; o may be NULL; n_ov
 * "key=value" overrides on top. */
Config fixture_tiny_config(const char *name, int sla2, const FixtureRun *o, int n_ov, char **ov);

#endif
