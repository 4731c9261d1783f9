/* tests/bench/bench_cuda_time.h — timing CUDA ops from the benchmark
 * programs (bench_cuda_attn, bench_perf_model): device arrays of random
 * values, and median forward and backward milliseconds of full attention and
 * of a linear layer through the op table (ops_cuda), in whatever precision
 * cuda_set_precision chose. Host-clock timing around cuda_synchronize, two
 * warm-ups first. Only for programs built with the CUDA backend. */
#ifndef TESTS_BENCH_BENCH_CUDA_TIME_H
#define TESTS_BENCH_BENCH_CUDA_TIME_H

#include <stdint.h>
#include <stdlib.h>

#include "core/check.h"
#include "core/rng.h"
#include "kernels/cuda/ops_cuda.h"
#include "tests/bench/bench_util.h"

/* A device array of n normal(0, std) floats (drawn on the host once). */
static inline float *dev_normal(size_t n, uint64_t seed, float std) {
    float *h = malloc(n * sizeof(float)), *d = cuda_malloc(n * sizeof(float));
    CHECK(h != NULL, "out of host memory (%zu floats)", n);
    rng_fill_normal(h, n, seed, RNG_STREAM_TEST, 0, 0.0f, std);
    cuda_memcpy_h2d(d, h, n * sizeof(float));
    free(h);
    return d;
}

static inline float *dev_zeros(size_t n) {
    float *d = cuda_malloc((n ? n : 1) * sizeof(float));
    cuda_memset(d, 0, (n ? n : 1) * sizeof(float));
    return d;
}

typedef struct {
    double fwd, bwd;
} Times;

/* Full attention: median forward and backward ms. */
static inline Times time_attention(int B, int H, int N, int d, int iters) {
    const size_t nt = (size_t)B * H * N * d;
    float *q = dev_normal(nt, 1, 1.0f), *k = dev_normal(nt, 2, 1.0f), *v = dev_normal(nt, 3, 1.0f);
    float *dout = dev_normal(nt, 4, 1.0f), *out = dev_zeros(nt), *dq = dev_zeros(nt), *dk = dev_zeros(nt),
          *dv = dev_zeros(nt);
    float *saved = dev_zeros(ops_cuda.attention_saved_floats(B, H, N, d));
    float *scratch = dev_zeros(ops_cuda.attention_scratch_floats(B, H, N, d));
    double tf[256], tb[256];
    for (int it = 0; it < iters + 2; it++) {
        cuda_synchronize();
        double t0 = bench_now_ms();
        ops_cuda.attention_fwd(out, saved, q, k, v, B, H, N, d);
        cuda_synchronize();
        double t1 = bench_now_ms();
        ops_cuda.attention_bwd(dq, dk, dv, scratch, dout, out, saved, q, k, v, B, H, N, d);
        cuda_synchronize();
        double t2 = bench_now_ms();
        if (it >= 2) tf[it - 2] = t1 - t0, tb[it - 2] = t2 - t1;
    }
    float *bufs[] = {q, k, v, dout, out, dq, dk, dv, saved, scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) cuda_free(bufs[i]);
    return (Times){bench_median(tf, iters), bench_median(tb, iters)};
}

/* A linear layer out [M, OC] = inp [M, IC] w^T + b: median forward and
 * backward (dinp, dw, db) ms. */
static inline Times time_linear(int M, int IC, int OC, int iters) {
    const size_t ni = (size_t)M * IC, nw = (size_t)OC * IC, no = (size_t)M * OC;
    float *inp = dev_normal(ni, 1, 1.0f), *w = dev_normal(nw, 2, 0.02f), *b = dev_normal((size_t)OC, 3, 0.02f);
    float *dout = dev_normal(no, 4, 1.0f), *out = dev_zeros(no), *dinp = dev_zeros(ni), *dw = dev_zeros(nw),
          *db = dev_zeros((size_t)OC);
    double tf[256], tb[256];
    for (int it = 0; it < iters + 2; it++) {
        cuda_synchronize();
        double t0 = bench_now_ms();
        ops_cuda.linear_fwd(out, inp, w, b, M, IC, OC);
        cuda_synchronize();
        double t1 = bench_now_ms();
        ops_cuda.linear_bwd(dinp, dw, db, dout, inp, w, M, IC, OC);
        cuda_synchronize();
        double t2 = bench_now_ms();
        if (it >= 2) tf[it - 2] = t1 - t0, tb[it - 2] = t2 - t1;
    }
    float *bufs[] = {inp, w, b, dout, out, dinp, dw, db};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) cuda_free(bufs[i]);
    return (Times){bench_median(tf, iters), bench_median(tb, iters)};
}

#endif
