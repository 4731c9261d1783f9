/* tests/bench/bench_jit.h — JiT-B/16's training step in FLOPs per image,
 * the yardstick the auxiliary networks' costs are put against: 3 x 2 x
 * parameters x 256 tokens (the spec's rule), the parameters counted by
 * jit_register; with repa_dim the REPA projector's share instead. */
#ifndef TESTS_BENCH_BENCH_JIT_H
#define TESTS_BENCH_BENCH_JIT_H

#include <stdlib.h>
#include <string.h>

#include "train/model/jit.h"

/* Parameters of JiT-B/16 (with a REPA projector to repa_dim when > 0). */
static inline double bench_jit_b16_params(int repa_dim) {
    JitConfig jc;
    if (jit_config_named("JiT-B/16", &jc)) abort();
    jc.repa_dim = repa_dim;
    jit_config_finish(&jc);
    JitModel m;
    memset(&m, 0, sizeof m);
    jit_register(&m, &jc);
    double p = (double)params_count(&m.params);
    jit_free(&m);
    return p;
}

/* GFLOP of a training step (forward + backward, 3 x 2 x P x 256) of P parameters. */
static inline double bench_step_gflop(double params) { return 3.0 * 2.0 * params * 256 / 1e9; }

#endif
