/* tests/bench/bench_dist.c — communication and checkpoint benchmarks, run
 * under mpirun with 2 CPU ranks:
 *   1. raw all-reduce of a gradient-sized buffer: time and bus bytes/s;
 *   2. a training step of a model whose backward overlaps the bucketed
 *      all-reduce: step time, the wait after backward (the share NOT
 *      hidden), against the same step with one blocking all-reduce after
 *      backward (the baseline);
 *   3. a collective checkpoint (parameters, one EMA copy, both AdamW moments)
 *      written and read back: seconds and bytes/s.
 *   mpirun -np 2 bench_dist --model jit-tiny|JiT-B/16 [--batch B] [--steps S] [--dir DIR]
 * Prints figures, asserts nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "core/ops.h"
#include "core/optim.h"
#include "core/rng.h"
#include "dist/comm.h"
#include "dist/grad_reduce.h"
#include "io/ckpt.h"
#include "train/model/jit.h"

/* One step with gs (overlapped or blocking, as it was initialised). */
static double step_time(JitModel *m, Graph *g, GradReduce *gs, Comm *c, int batch, double *wait) {
    const JitConfig *mc = &m->cfg;
    int S = mc->img_size, C = mc->in_channels;
    int *y = calloc((size_t)batch, sizeof(int));
    comm_barrier(c);
    double t0 = MPI_Wtime();
    params_zero_grad(&m->params);
    Tensor *x = graph_new(g, 4, batch, C, S, S), *z = graph_new(g, 4, batch, C, S, S), *t = graph_new(g, 1, batch);
    rng_fill_uniform(x->data, x->numel, 1, RNG_STREAM_TEST, 0, -1, 1);
    rng_fill_normal(z->data, z->numel, 2, RNG_STREAM_TEST, 0, 0, 1);
    rng_fill_uniform(t->data, t->numel, 3, RNG_STREAM_TEST, 0, 0, 1);
    grad_reduce_arm(gs, g);
    Tensor *loss = op_vloss(g, jit_forward(m, g, z, t, y, NULL), x, t);
    const GraphBackwardHook *hook = grad_reduce_start(gs, g);
    const float one = 1.0f;
    graph_seed(g, loss, &one);
    graph_backward_hooked(g, hook);
    double tw = MPI_Wtime();
    grad_reduce_wait(gs);
    *wait = MPI_Wtime() - tw;
    graph_reset(g);
    free(y);
    return MPI_Wtime() - t0;
}

int main(int argc, char **argv) {
    Comm c;
    comm_init(&c, &argc, &argv);
    const char *model = "jit-tiny", *dir = "/tmp/jit-bench-dist";
    int batch = 8, steps = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else FAIL("unknown option %s", argv[i]);
    }
    JitConfig cfg;
    CHECK(jit_config_named(model, &cfg) == 0, "unknown model %s", model);
    JitModel m;
    jit_build(&m, &cfg, 0);
    /* Non-zero adaLN-Zero layers, so backward does all its work. */
    rng_fill_normal(m.params.data, m.params.padded, 5, RNG_STREAM_TEST, 0, 0.0f, 0.02f);
    size_t n = m.params.padded, bytes = n * sizeof(float);

    /* 1. raw all-reduce */
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        comm_barrier(&c);
        double t0 = MPI_Wtime();
        comm_allreduce_f32(&c, m.params.grad, n, COMM_SUM);
        double dt = MPI_Wtime() - t0;
        best = dt < best ? dt : best;
    }
    /* Ring all-reduce moves 2 (W-1)/W of the buffer per rank ("bus bandwidth"). */
    double bus = 2.0 * (c.world - 1) / c.world * bytes / best;
    if (c.rank == 0)
        printf("%s: %zu parameters (%.1f MB of gradients), %d ranks: all-reduce %.3f s, %.2f GB/s bus bandwidth\n",
               model, params_count(&m.params), bytes / 1e6, c.world, best, bus / 1e9);

    /* 2. overlap */
    Graph g;
    graph_init(&g, backend_cpu(), 64u << 20);
    GradReduce gs, gs_bl;
    grad_reduce_init(&gs, &c, backend_cpu(), &m.params, 4u << 20, 1, 0);
    grad_reduce_init(&gs_bl, &c, backend_cpu(), &m.params, 4u << 20, 0, 0); /* dist.allreduce: blocking (the CPU default) */
    double w, s_ov = 0, w_ov = 0, s_bl = 0, w_bl = 0;
    step_time(&m, &g, &gs, &c, batch, &w); /* warm-up: sizes the arena */
    for (int s = 0; s < steps; s++) {
        s_ov += step_time(&m, &g, &gs, &c, batch, &w) / steps, w_ov += w / steps;
        s_bl += step_time(&m, &g, &gs_bl, &c, batch, &w) / steps, w_bl += w / steps;
    }
    if (c.rank == 0)
        printf("%s, batch %d per rank, %d buckets of <= 4 MB: step %.3f s with overlap (%.3f s = %.1f%% waiting "
               "after backward), %.3f s with a blocking all-reduce after backward (%.3f s = %.1f%%); hidden: %.0f%% "
               "of the communication\n",
               model, batch, gs.n_buckets, s_ov, w_ov, 100 * w_ov / s_ov, s_bl, w_bl, 100 * w_bl / s_bl,
               w_bl > 0 ? 100 * (1 - w_ov / w_bl) : 0.0);

    /* 3. checkpoint */
    AdamW opt;
    adamw_init(&opt, &m.params, 0.9f, 0.95f, 1e-8f, 0.0f);
    float *ema = malloc(bytes);
    memcpy(ema, m.params.data, bytes);
    float *emas[1] = {ema}, decay[1] = {0.9999f};
    CkptData d = {.params = &m.params, .opt = &opt, .ema = emas, .ema_decay = decay, .n_ema = 1};
    CkptState st = {.step = 1, .seed = 0, .world_size = c.world};
    comm_barrier(&c);
    double t0 = MPI_Wtime();
    ckpt_save(&c, dir, &d, &st, 1, 0);
    double tw = MPI_Wtime() - t0;
    char path[1100];
    ckpt_resolve(dir, path, sizeof path);
    comm_barrier(&c);
    t0 = MPI_Wtime();
    CkptState rs;
    ckpt_load(path, &d, &rs, NULL);
    comm_barrier(&c);
    double tr = MPI_Wtime() - t0;
    double state = 4.0 * bytes; /* parameters, EMA, m, v */
    if (c.rank == 0)
        printf("%s checkpoint (%.2f GB: parameters, 1 EMA, AdamW m and v), %d ranks: write %.2f s (%.2f GB/s), "
               "read %.2f s (%.2f GB/s per rank, every rank reads it all)\n",
               model, state / 1e9, c.world, tw, state / tw / 1e9, tr, state / tr / 1e9);
    if (c.rank == 0) {
        unlink(path);
        char latest[1100];
        snprintf(latest, sizeof latest, "%s/latest", dir);
        unlink(latest);
        rmdir(dir);
    }
    free(ema);
    adamw_free(&opt);
    grad_reduce_free(&gs);
    grad_reduce_free(&gs_bl);
    graph_free(&g);
    jit_free(&m);
    comm_finalize(&c);
    return 0;
}
