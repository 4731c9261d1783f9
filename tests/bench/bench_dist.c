/* tests/bench/bench_dist.c — communication and checkpoint benchmarks, run
 * under mpirun with 2 CPU ranks:
 *   1. raw all-reduce of a gradient-sized buffer: time and bus bytes/s;
 *   2. a training step of a model whose backward overlaps the bucketed
 *      all-reduce, per step: step time and the wait after backward (the
 *      communication NOT hidden, "exposed"), against the same step with the
 *      buckets all-reduced after backward (blocking);
 *   3. the overlap structure: when, as a share of backward's time, each
 *      parameter's gradient is final (measured), and from it and stated
 *      NCCL bus bandwidths a PREDICTION of the exposed all-reduce time of
 *      JiT-B/16 and JiT-H/16 on 8 and 64 H100s (docs/dist_overlap.md);
 *   4. a collective checkpoint (parameters, one EMA copy, both AdamW moments)
 *      written and read back: seconds and bytes/s (--ckpt 0 skips it).
 *   mpirun -np 2 bench_dist --model jit-tiny|JiT-B/16 [--batch B] [--steps S] [--dir DIR] [--ckpt 0|1]
 *          [--bucket-mb MB] [--nvlink-busbw GB/s] [--nic GB/s] [--mfu F]
 * Prints figures, asserts nothing. */
#include <limits.h>
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
    /* Sharded: the weights' all-gather after the (here skipped) update is
     * exposed too: nothing runs beside it. */
    grad_reduce_gather(gs, m->params.data);
    *wait = MPI_Wtime() - tw;
    graph_reset(g);
    free(y);
    return MPI_Wtime() - t0;
}

/* ---- the overlap structure ----
 * One step's backward with a clock after every tape entry; parameter p's
 * gradient is final once the first tape entry that reads it has run
 * backward (core/graph.h: param_first_use), so its ready share is the
 * time to then over backward's time. */
typedef struct {
    double *t;
} EntryClock;

static void entry_clock(void *ctx, int entry) { ((EntryClock *)ctx)->t[entry] = MPI_Wtime(); }

static void ready_shares(JitModel *m, Graph *g, int batch, double *share) {
    const JitConfig *mc = &m->cfg;
    int S = mc->img_size, C = mc->in_channels, np = m->params.n;
    int *y = calloc((size_t)batch, sizeof(int)), *first = malloc(sizeof(int) * (size_t)np);
    for (int p = 0; p < np; p++) first[p] = INT_MAX;
    params_zero_grad(&m->params);
    Tensor *x = graph_new(g, 4, batch, C, S, S), *z = graph_new(g, 4, batch, C, S, S), *t = graph_new(g, 1, batch);
    rng_fill_uniform(x->data, x->numel, 1, RNG_STREAM_TEST, 0, -1, 1);
    rng_fill_normal(z->data, z->numel, 2, RNG_STREAM_TEST, 0, 0, 1);
    rng_fill_uniform(t->data, t->numel, 3, RNG_STREAM_TEST, 0, 0, 1);
    g->param_first_use = first;
    Tensor *loss = op_vloss(g, jit_forward(m, g, z, t, y, NULL), x, t);
    g->param_first_use = NULL;
    EntryClock clk = {calloc((size_t)g->n_tape + 1, sizeof(double))};
    GraphBackwardHook hook = {entry_clock, &clk};
    const float one = 1.0f;
    graph_seed(g, loss, &one);
    double t0 = MPI_Wtime();
    graph_backward_hooked(g, &hook);
    double span = MPI_Wtime() - t0;
    for (int p = 0; p < np; p++) share[p] = first[p] == INT_MAX ? 1.0 : (clk.t[first[p]] - t0) / span;
    graph_reset(g);
    free(clk.t);
    free(first);
    free(y);
}

/* ---- the prediction (docs/dist_overlap.md states the model and its sources) ----
 * Per GPU, a step of global batch 1024 (configs/jit-*16.yaml) on n GPUs has
 * backward 4 x P x 256 tokens x 1024/n FLOPs at mfu x 989 TFLOP/s (H100
 * SXM dense BF16); the fp32 gradient's buckets (the trainer's rule, bucket_mb)
 * become ready at the measured shares of it, mapped by position in the flat
 * buffer (JiT models register parameters in the same order: embedding,
 * blocks, head); the communication stream all-reduces them one after
 * another, each taking 2 (n - 1) / n x bytes / bus bandwidth (ring; the
 * latency term is left out). Exposed = when the last ends minus when
 * backward ends (0 if before); blocking = the sum. */
typedef struct {
    double bucket_mb, nvlink_gbs, nic_gbs, nics_per_node, mfu, peak_tflops, global_batch;
} PredictModel;
#define PREDICT_DEFAULTS {4.0, 370.0, 47.0, 8.0, 0.4, 989.4, 1024.0}

/* The measured share at position frac of the source model's flat buffer. */
static double share_at(const ParamStore *src, const double *share, double frac) {
    double pos = frac * (double)src->padded;
    for (int p = 0; p < src->n; p++)
        if (pos < (double)(src->info[p].offset + src->info[p].numel)) return share[p];
    return 1.0;
}

static void predict(Comm *c, const char *name, const ParamStore *src, const double *share, const PredictModel *pm) {
    JitConfig cfg;
    CHECK(jit_config_named(name, &cfg) == 0, "unknown model %s", name);
    JitModel t;
    jit_register(&t, &cfg); /* the layout only: no weights */
    GradReduce gs;
    grad_reduce_init(&gs, c, backend_cpu(), &t.params, (size_t)(pm->bucket_mb * 1048576.0), 1, 0);
    double P = (double)params_count(&t.params), bytes = 4.0 * (double)t.params.padded;
    double *ready = malloc(sizeof(double) * (size_t)gs.n_buckets);
    int *order = malloc(sizeof(int) * (size_t)gs.n_buckets);
    for (int k = 0; k < gs.n_buckets; k++) {
        ready[k] = 0;
        for (int p = gs.buckets[k].p0; p < gs.buckets[k].p1; p++) {
            const ParamInfo *in = &t.params.info[p];
            double r = share_at(src, share, (double)(in->offset + in->numel - 1) / (double)t.params.padded);
            ready[k] = r > ready[k] ? r : ready[k];
        }
        order[k] = k;
    }
    for (int i = 1; i < gs.n_buckets; i++) /* launch order: by readiness, later buckets first on ties */
        for (int j = i; j > 0 && ready[order[j]] <= ready[order[j - 1]]; j--) {
            int tmp = order[j];
            order[j] = order[j - 1], order[j - 1] = tmp;
        }
    const int gpus[2] = {8, 64};
    for (int i = 0; i < 2; i++) {
        int n = gpus[i];
        double per_gpu = pm->global_batch / n;
        double t_bw = 4.0 * P * 256.0 * per_gpu / (pm->mfu * pm->peak_tflops * 1e12);
        /* Within a node: NCCL's ring over NVLink. Across nodes: each ring
         * channel leaves a node through one NIC, channels spread over the
         * node's NICs: bounded by that sum and by NVLink; and the
         * pessimistic case of one NIC's rate per rank. */
        double nics = pm->nic_gbs * pm->nics_per_node, bws[2] = {pm->nvlink_gbs, pm->nic_gbs};
        if (n > 8 && nics < bws[0]) bws[0] = nics;
        int nbw = n > 8 ? 2 : 1;
        for (int b = 0; b < nbw; b++) {
            double bw = bws[b] * 1e9, fin = 0, total = 0;
            for (int j = 0; j < gs.n_buckets; j++) {
                GradBucket *bk = &gs.buckets[order[j]];
                double ck = 2.0 * (n - 1) / n * 4.0 * (double)bk->count / bw;
                double start = ready[order[j]] * t_bw > fin ? ready[order[j]] * t_bw : fin;
                fin = start + ck, total += ck;
            }
            double exposed = fin > t_bw ? fin - t_bw : 0;
            printf("PREDICTION %s on %d H100s (%s, bus bandwidth %.0f GB/s): %.0fM parameters, %.0f MB of fp32 "
                   "gradients in %d buckets; backward %.1f ms (batch %.0f per GPU, %.0f%% of %.0f TFLOP/s); all-reduce "
                   "%.1f ms; exposed %.1f ms with overlap (%.0f%% hidden), %.1f ms blocking\n",
                   name, n, n == 8 ? "one node, NVLink" : b == 0 ? "8 nodes, ring over 8 NDR NICs per node"
                                                                  : "8 nodes, one NDR NIC's rate per rank",
                   bws[b], P / 1e6, bytes / 1e6, gs.n_buckets, 1e3 * t_bw, per_gpu, 100 * pm->mfu, pm->peak_tflops,
                   1e3 * total, 1e3 * exposed, total > 0 ? 100 * (1 - exposed / total) : 100.0, 1e3 * total);
        }
    }
    free(ready);
    free(order);
    grad_reduce_free(&gs);
    jit_free(&t);
}

int main(int argc, char **argv) {
    Comm c;
    comm_init(&c, &argc, &argv);
    const char *model = "jit-tiny", *dir = "/tmp/jit-bench-dist";
    int batch = 8, steps = 5, do_ckpt = 1;
    PredictModel pm = PREDICT_DEFAULTS;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--ckpt")) do_ckpt = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--bucket-mb")) pm.bucket_mb = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--nvlink-busbw")) pm.nvlink_gbs = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--nic")) pm.nic_gbs = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--mfu")) pm.mfu = atof(argv[i + 1]);
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
    GradReduce gs, gs_bl, gs_sh, gs_shbl;
    grad_reduce_init(&gs, &c, backend_cpu(), &m.params, 4u << 20, 1, 0);
    grad_reduce_init(&gs_bl, &c, backend_cpu(), &m.params, 4u << 20, 0, 0); /* dist.allreduce: blocking (the CPU default) */
    grad_reduce_init(&gs_sh, &c, backend_cpu(), &m.params, 4u << 20, 1, 1);   /* dist.shard_optimizer */
    grad_reduce_init(&gs_shbl, &c, backend_cpu(), &m.params, 4u << 20, 0, 1);
    double w, s_ov = 0, w_ov = 0, s_bl = 0, w_bl = 0;
    step_time(&m, &g, &gs, &c, batch, &w); /* warm-up: sizes the arena */
    for (int s = 0; s < steps; s++) {
        double so = step_time(&m, &g, &gs, &c, batch, &w), wo = w;
        double sb = step_time(&m, &g, &gs_bl, &c, batch, &w), wb = w;
        double sso = step_time(&m, &g, &gs_sh, &c, batch, &w), wso = w;
        double ssb = step_time(&m, &g, &gs_shbl, &c, batch, &w), wsb = w;
        if (c.rank == 0)
            printf("step %d: exposed communication %.4f s of a %.4f s step with overlap, %.4f s of %.4f s blocking; "
                   "optimizer sharded (reduce to owners + all-gather): %.4f s of %.4f s with overlap, %.4f s of %.4f s "
                   "blocking\n",
                   s + 1, wo, so, wb, sb, wso, sso, wsb, ssb);
        s_ov += so / steps, w_ov += wo / steps, s_bl += sb / steps, w_bl += wb / steps;
    }
    if (c.rank == 0)
        printf("%s, batch %d per rank, %d buckets of <= 4 MB: step %.3f s with overlap (%.3f s = %.1f%% waiting "
               "after backward), %.3f s with a blocking all-reduce after backward (%.3f s = %.1f%%); hidden: %.0f%% "
               "of the communication\n",
               model, batch, gs.n_buckets, s_ov, w_ov, 100 * w_ov / s_ov, s_bl, w_bl, 100 * w_bl / s_bl,
               w_bl > 0 ? 100 * (1 - w_ov / w_bl) : 0.0);

    /* 3. the overlap structure and the prediction for H100s */
    double *share = malloc(sizeof(double) * (size_t)m.params.n);
    ready_shares(&m, &g, batch, share);
    ready_shares(&m, &g, batch, share); /* the second: caches warm */
    if (c.rank == 0) {
        printf("overlap structure (%s, measured): backward's share done when each 4 MB bucket is ready:", model);
        for (int k = gs.n_buckets - 1; k >= 0; k--) {
            double r = 0;
            for (int p = gs.buckets[k].p0; p < gs.buckets[k].p1; p++) r = share[p] > r ? share[p] : r;
            printf(" %.2f", r);
        }
        printf("\n");
        const char *targets[] = {"JiT-B/16", "JiT-H/16"};
        for (int i = 0; i < 2; i++) predict(&c, targets[i], &m.params, share, &pm);
    }
    free(share);
    if (!do_ckpt) goto done;

    /* 4. checkpoint */
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
done:
    grad_reduce_free(&gs);
    grad_reduce_free(&gs_bl);
    grad_reduce_free(&gs_sh);
    grad_reduce_free(&gs_shbl);
    graph_free(&g);
    jit_free(&m);
    comm_finalize(&c);
    return 0;
}
