/* tests/bench/bench_profile.c — where one training step's time goes.
 *
 *   bench_profile --config FILE [--set key=value]... [--at-step S] [--steps N] [--warmup W]
 *
 * Builds the real Trainer from the configuration (its data, callbacks,
 * optimiser, EMA), moves its step counter to S (so the router schedule and
 * the QAT switch are where a run at step S has them), runs W steps, then N
 * profiled steps, and prints:
 *   - the step's phases (trainer.h: callbacks, data, forward, backward,
 *     all-reduce, optimizer, log) in ms per step and share;
 *   - every op's forward and backward ms per step and share (core/profile.h);
 *   - the model's FLOPs and the achieved GFLOP/s next to this machine's
 *     sgemm, measured in the same run (a 1024^3 product and the model's
 *     largest linear at this batch).
 * FLOPs (stated, counted from the configuration, per image): every linear
 * 2*rows*in*out (rows = tokens, or 1 for the per-image t-embedder and adaLN
 * layers), attention 4*n^2*D per block (QK^T and PV over all heads; SLA2
 * counted as the dense attention it replaces, as MFU is), with n = image
 * tokens plus the in-context tokens from block in_context_start on; a
 * training step is 3x the forward (backward: a product each for the input's
 * and the weight's gradient). Element-wise work is not counted.
 * tests/bench/run_bench_profile.sh runs it on both tiny configurations. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/alloc.h"
#include "core/check.h"
#include "core/profile.h"
#include "kernels/cpu/blas_select.h"
#include "tests/bench/bench_util.h"
#include "tests/bench/perf_model.h"
#include "train/config/config.h"
#include "train/trainer.h"

/* GFLOP/s of C[M,N] = A[M,K] B[K,N]^T (as a linear layer calls it), median of reps. */
static double bench_sgemm_gflops(int M, int N, int K, int reps) {
    float *a = core_malloc(sizeof(float) * (size_t)M * K), *b = core_malloc(sizeof(float) * (size_t)N * K),
          *c = core_malloc(sizeof(float) * (size_t)M * N);
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)N * K; i++) b[i] = (float)(i % 5) * 0.1f;
    double t[64];
    for (int r = 0; r < reps + 1; r++) {
        double t0 = bench_now_ms();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
        if (r > 0) t[r - 1] = bench_now_ms() - t0;
    }
    double ms = bench_median(t, reps);
    core_free(a), core_free(b), core_free(c);
    return 2.0 * M * N * K / (ms * 1e6);
}

static int bench_cmp_op(const void *a, const void *b) {
    const ProfileOp *x = a, *y = b;
    double sx = x->fwd_s + x->bwd_s, sy = y->fwd_s + y->bwd_s;
    return (sx < sy) - (sx > sy);
}

int main(int argc, char **argv) {
    blas_select(argv, 1); /* first: it may start the program again (blas_select.h) */
    const char *config = NULL;
    char *over[64];
    int n_over = 0, steps = 10, warmup = 3;
    long at_step = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--config")) config = argv[i + 1];
        else if (!strcmp(argv[i], "--set") && n_over < 62) over[n_over++] = argv[i + 1];
        else if (!strcmp(argv[i], "--at-step")) at_step = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
        else FAIL("unknown option %s (use --config --set --at-step --steps --warmup)", argv[i]);
    }
    CHECK(config && steps > 0 && warmup >= 0 && at_step >= 0, "usage: bench_profile --config FILE [--set k=v]... "
                                                              "[--at-step S] [--steps N] [--warmup W]");
    char quiet[] = "logging.progress=false", nosample[] = "train.sample_every=0";
    over[n_over++] = quiet, over[n_over++] = nosample;
    Config cfg;
    config_load(&cfg, config, n_over, over);
    Trainer T;
    trainer_init(&T, &cfg, NULL, NULL);
    T.step = (uint64_t)at_step;
    for (int s = 0; s < warmup; s++) trainer_step(&T);
    Profile prof;
    profile_reset(&prof);
    memset(T.phase_s, 0, sizeof T.phase_s);
    T.g.prof = &prof;
    double t0 = bench_now_ms();
    for (int s = 0; s < steps; s++) trainer_step(&T);
    double step_ms = (bench_now_ms() - t0) / steps;
    T.g.prof = NULL;

    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    const JitConfig *mc = &cfg.model;
    int B = cfg.batch_size * cfg.grad_accum;
    printf("== %s at step %ld: %s, batch %d, %d threads, %d steps (after %d)\n", config, at_step,
           mc->use_sla2 ? "SLA2" : "full attention", B, threads, steps, warmup);
    if (mc->use_sla2)
        printf("   SLA2 top-k %.3f (block 0) in blocks of %d tokens, QAT %s\n", T.model.sla2_topk[0], mc->sla2_block_q,
               T.model.sla2_qat ? "on" : "off");
    printf("step %.1f ms (%.1f images/s)\n\n%-12s %9s %6s\n", step_ms, B * 1000.0 / step_ms, "phase", "ms/step", "share");
    double total_s = 0;
    for (int p = 0; p < TRAINER_N_PHASES; p++) total_s += T.phase_s[p];
    for (int p = 0; p < TRAINER_N_PHASES; p++)
        printf("%-12s %9.2f %5.1f%%\n", trainer_phase_names[p], 1e3 * T.phase_s[p] / steps,
               100 * T.phase_s[p] / total_s);
    printf("%-12s %9.2f (wall %.2f)\n\n", "sum", 1e3 * total_s / steps, step_ms);

    qsort(prof.op, (size_t)prof.n_ops, sizeof prof.op[0], bench_cmp_op);
    printf("%-18s %9s %9s %9s %6s %8s\n", "op", "fwd ms", "bwd ms", "total", "share", "calls");
    for (int i = 0; i < prof.n_ops; i++) {
        const ProfileOp *o = &prof.op[i];
        printf("%-18s %9.2f %9.2f %9.2f %5.1f%% %8ld\n", o->name, 1e3 * o->fwd_s / steps, 1e3 * o->bwd_s / steps,
               1e3 * (o->fwd_s + o->bwd_s) / steps, 100 * (o->fwd_s + o->bwd_s) / total_s, o->fwd_n / steps);
    }
    printf("%-18s %9.2f %9.2f   (share of the step: forward+backward)\n\n", "sum",
           1e3 * profile_forward_total(&prof) / steps, 1e3 * profile_backward_total(&prof) / steps);

    double flops = 3.0 * pm_forward_flops(mc) * B;
    int rows = B * (mc->tokens + mc->in_context_len);
    double peak = bench_sgemm_gflops(1024, 1024, 1024, 5);
    double at_shape = bench_sgemm_gflops(rows, 2 * mc->mlp_hidden, mc->hidden, 5);
    double achieved = flops / (step_ms * 1e6);
    printf("model FLOPs per step %.2f GFLOP (3 x forward; attention counted dense) -> %.1f GFLOP/s\n", flops / 1e9,
           achieved);
    printf("sgemm on this machine: %.1f GFLOP/s at 1024^3, %.1f at [%d x %d] x [%d x %d]^T (the w12 linear)\n", peak,
           at_shape, rows, mc->hidden, 2 * mc->mlp_hidden, mc->hidden);
    printf("achieved / sgemm peak: %.1f%%\n", 100 * achieved / peak);
    trainer_free(&T);
    return 0;
}
