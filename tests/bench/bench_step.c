/* tests/bench/bench_step.c — C side of the training-step benchmark: the
 * tiny JiT's forward + v-loss + backward (no optimizer update), the same
 * work as bench_step_torch.py. Prints one line:
 *   c_step_ms median=<ms> min=<ms> iters=<n> batch=<b> threads=<t>
 * Run both through tests/bench/run_bench_step.sh, which prints the ratio. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/check.h"
#include "core/ops.h"
#include "core/rng.h"
#include "kernels/cpu/blas_select.h"
#include "tests/bench/bench_util.h"
#include "train/model/jit.h"

int main(int argc, char **argv) {
    blas_select(argv, 1); /* first: it may start the program again (blas_select.h) */
    int batch = 32, iters = 10, warmup = 2;
    const char *model = "jit-tiny";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else FAIL("unknown option %s (use --batch --iters --warmup --model)", argv[i]);
    }
    CHECK(batch > 0 && iters > 0 && iters <= 1000 && warmup >= 0, "bad --batch/--iters/--warmup");
    JitConfig cfg;
    CHECK(jit_config_named(model, &cfg) == 0, "unknown model %s", model);
    JitModel m;
    jit_build(&m, &cfg, 0);
    /* Perturb the zero-initialised adaLN and final layers, as the PyTorch side does. */
    for (int i = 0; i < m.params.n; i++) {
        ParamInfo *p = &m.params.info[i];
        if (p->init == INIT_ZERO && p->ndim == 2)
            rng_fill_normal(m.params.data + p->offset, p->numel, 1, RNG_STREAM_TEST + (uint64_t)i, 0, 0.0f, 0.02f);
    }
    Graph g;
    graph_init(&g, backend_cpu(), 1u << 20);
    int S = cfg.img_size, C = cfg.in_channels;
    int *y = malloc(sizeof(int) * (size_t)batch);
    double times[1000];
    for (int it = 0; it < warmup + iters; it++) {
        double t0 = bench_now_ms();
        params_zero_grad(&m.params);
        Tensor *x = graph_new(&g, 4, batch, C, S, S), *z = graph_new(&g, 4, batch, C, S, S), *t = graph_new(&g, 1, batch);
        rng_fill_uniform(x->data, x->numel, 2, RNG_STREAM_TEST, 0, -1, 1);
        rng_fill_uniform(z->data, z->numel, 3, RNG_STREAM_TEST, 0, -1, 1);
        rng_fill_uniform(t->data, t->numel, 4, RNG_STREAM_TEST, 0, 0, 1);
        for (int b = 0; b < batch; b++) y[b] = b % (cfg.num_classes + 1);
        Tensor *loss = op_vloss(&g, jit_forward(&m, &g, z, t, y, NULL), x, t);
        graph_backward(&g, loss);
        graph_reset(&g);
        if (it >= warmup) times[it - warmup] = bench_now_ms() - t0;
    }
    qsort(times, (size_t)iters, sizeof(double), bench_cmp_double);
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    printf("c_step_ms median=%.3f min=%.3f iters=%d batch=%d threads=%d\n", times[iters / 2], times[0], iters, batch,
           threads);
    free(y);
    graph_free(&g);
    jit_free(&m);
    return 0;
}
