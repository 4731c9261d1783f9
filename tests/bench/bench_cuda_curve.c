/* tests/bench/bench_cuda_curve.c — the loss curve of training on the GPU in
 * bf16 (the production mode) against the CPU's fp32 curve of the same
 * config, seed and data, plus the GPU in fp32 for scale: per-step losses
 * drift apart (rounding, then chaos), so the figure that says whether bf16
 * trains like the reference is the gap between 20-step means.
 *
 *   bench_cuda_curve [--config configs/fmnist-tiny.yaml] [--data SHARDS] [--steps 200]
 *
 * Without --data it trains on a synthetic 32x32 set of 10 classes (a bright
 * square whose place is the class, plus noise), so it runs anywhere the
 * programs run (tests/gpu/run_gpu_checks.sh runs it with no arguments).
 * Without a GPU it says so and exits 0. Prints every 10th step of the three
 * curves, the time per step of each, then one line:
 *   curve_gap steps=200 max_step_abs=... (step s) max_mean20_abs=... max_mean20_rel=... \
 *             final_mean20 cpu=... gpu_bf16=... gpu_fp32=...
 * It asserts nothing: it is the number the next GPU session reads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/check.h"
#include "core/profile.h"
#include "core/rng.h"
#include "io/shards.h"
#include "kernels/cuda/ops_cuda.h"
#include "train/config/config.h"
#include "train/trainer.h"

#define WINDOW 20

/* 2000 images, 32x32, 10 classes: squares on a 4x3 grid of places. */
static void make_toy(const char *dir) {
    const int n = 2000, S = 32;
    uint8_t *img = malloc((size_t)n * S * S);
    int *lab = malloc(sizeof(int) * n);
    CHECK(img && lab, "out of memory for the toy set");
    for (int i = 0; i < n; i++) {
        int c = i % 10, r0 = (c / 4) * 10 + 2, c0 = (c % 4) * 8;
        lab[i] = c;
        for (int p = 0; p < S * S; p++) {
            int r = p / S, col = p % S, in = r >= r0 && r < r0 + 7 && col >= c0 && col < c0 + 7;
            img[(size_t)i * S * S + p] =
                (uint8_t)(in ? 220 : 20 + (int)(40 * rng_uniform(5, RNG_STREAM_TEST, (uint64_t)i * 1024 + p)));
        }
    }
    const char *names[10] = {"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"};
    shards_write(dir, "toy", img, lab, n, 1, S, S, 500, 10, names);
    free(img);
    free(lab);
}

/* One curve: losses[0..steps) and the seconds per step (after the first). */
static double run_curve(const char *config, const char *data, const char *out_dir, const char *device,
                        const char *precision, int steps, float *losses) {
    char o_dev[64], o_prec[64], o_data[600], o_out[600], o_steps[64];
    snprintf(o_dev, sizeof o_dev, "run.device=%s", device);
    snprintf(o_prec, sizeof o_prec, "run.precision=%s", precision);
    snprintf(o_data, sizeof o_data, "data.train=%s", data);
    snprintf(o_out, sizeof o_out, "run.out_dir=%s", out_dir);
    snprintf(o_steps, sizeof o_steps, "train.steps=%d", steps);
    char *ov[] = {o_dev, o_prec, o_data, o_out, o_steps, "train.sample_every=0", "train.checkpoint_every=0",
                  "logging.progress=false"};
    Config c;
    config_load(&c, config, (int)(sizeof ov / sizeof ov[0]), ov);
    Trainer T;
    trainer_init(&T, &c, NULL, NULL);
    double t1 = 0;
    for (int s = 0; s < steps; s++) {
        losses[s] = trainer_step(&T);
        if (s == 0) t1 = core_now_s(); /* the first step grows the arenas */
    }
    double per = steps > 1 ? (core_now_s() - t1) / (steps - 1) : 0;
    trainer_free(&T);
    return per;
}

static double mean_at(const float *l, int s) { /* mean of the WINDOW steps ending at s */
    int a = s + 1 - WINDOW < 0 ? 0 : s + 1 - WINDOW;
    double m = 0;
    for (int i = a; i <= s; i++) m += l[i];
    return m / (s + 1 - a);
}

int main(int argc, char **argv) {
    const char *config = "configs/fmnist-tiny.yaml", *data = NULL;
    int steps = 200;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--config")) config = argv[i + 1];
        else if (!strcmp(argv[i], "--data")) data = argv[i + 1];
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else FAIL("unknown option %s (use --config --data --steps)", argv[i]);
    }
    CHECK(steps >= WINDOW, "--steps must be at least %d", WINDOW);
    if (cuda_device_count() == 0) {
        printf("bench_cuda_curve: no CUDA device: nothing to compare (run it on a GPU machine)\n");
        return 0;
    }
    char work[] = "/tmp/jit-bench-curve-XXXXXX";
    CHECK(mkdtemp(work) != NULL, "cannot make a temporary directory");
    char toy[600];
    if (!data) {
        snprintf(toy, sizeof toy, "%s/data", work);
        make_toy(toy);
        data = toy;
    }
    float *cpu = calloc((size_t)steps, sizeof(float)), *bf = calloc((size_t)steps, sizeof(float));
    float *f32 = calloc((size_t)steps, sizeof(float));
    char out[700];
    snprintf(out, sizeof out, "%s/cpu", work);
    double t_cpu = run_curve(config, data, out, "cpu", "fp32", steps, cpu);
    snprintf(out, sizeof out, "%s/gpu-bf16", work);
    double t_bf = run_curve(config, data, out, "cuda", "bf16", steps, bf);
    snprintf(out, sizeof out, "%s/gpu-fp32", work);
    double t_f32 = run_curve(config, data, out, "cuda", "fp32", steps, f32);

    char name[160];
    printf("bench_cuda_curve: %s, %d steps, data %s, GPU %s\n", config, steps, data,
           cuda_device_name(name, sizeof name));
    printf("%6s %12s %12s %12s\n", "step", "cpu fp32", "gpu bf16", "gpu fp32");
    for (int s = 0; s < steps; s++)
        if (s % 10 == 0 || s == steps - 1) printf("%6d %12.6f %12.6f %12.6f\n", s + 1, cpu[s], bf[s], f32[s]);
    double max_step = 0, max_mean = 0, max_rel = 0, max_mean_f32 = 0;
    int at_step = 0, at_mean = 0;
    for (int s = 0; s < steps; s++) {
        double d = fabs((double)bf[s] - cpu[s]);
        if (!(d <= max_step)) max_step = d, at_step = s + 1; /* NaN counts as the largest */
        double mc = mean_at(cpu, s), dm = fabs(mean_at(bf, s) - mc);
        if (!(dm <= max_mean)) max_mean = dm, at_mean = s + 1, max_rel = dm / fabs(mc);
        double df = fabs(mean_at(f32, s) - mc);
        if (!(df <= max_mean_f32)) max_mean_f32 = df;
    }
    printf("seconds per step: cpu %.4f, gpu bf16 %.4f, gpu fp32 %.4f\n", t_cpu, t_bf, t_f32);
    printf("curve_gap steps=%d max_step_abs=%.5f (step %d) max_mean%d_abs=%.5f (step %d) max_mean%d_rel=%.4f "
           "gpu_fp32_max_mean%d_abs=%.5f final_mean%d cpu=%.5f gpu_bf16=%.5f gpu_fp32=%.5f\n",
           steps, max_step, at_step, WINDOW, max_mean, at_mean, WINDOW, max_rel, WINDOW, max_mean_f32, WINDOW,
           mean_at(cpu, steps - 1), mean_at(bf, steps - 1), mean_at(f32, steps - 1));
    free(cpu), free(bf), free(f32);
    return 0;
}
