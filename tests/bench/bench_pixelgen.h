/* tests/bench/bench_pixelgen.h — what the benchmarks of PixelGen's frozen
 * networks (bench_lpips, bench_dinov2) share: JiT-B/16's training step in
 * FLOPs per image, the yardstick their costs are put against (3 x 2 x
 * parameters x 256 tokens, docs/pixelgen.md's rule, the parameters counted by
 * jit_register), and a random image pair x_hat, x. */
#ifndef TESTS_BENCH_BENCH_PIXELGEN_H
#define TESTS_BENCH_BENCH_PIXELGEN_H

#include <stdlib.h>
#include <string.h>

#include "core/graph.h"
#include "core/rng.h"
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

/* x_hat (taking a gradient) and x, [B, 3, S, S] in [-1, 1], fixed random. */
static inline void bench_image_pair(Graph *g, int B, int S, Tensor **xhat, Tensor **x) {
    Tensor *a = graph_new(g, 4, B, 3, S, S), *b = graph_new(g, 4, B, 3, S, S);
    for (size_t i = 0; i < a->numel; i++)
        a->data[i] = 2 * rng_uniform(1, 1, i) - 1, b->data[i] = 2 * rng_uniform(1, 2, i) - 1;
    a->requires_grad = true;
    *xhat = a, *x = b;
}

#endif
