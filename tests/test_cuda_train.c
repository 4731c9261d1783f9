/* tests/test_cuda_train.c — the trainer with run.device: cuda against the
 * CPU trainer, on the toy data of test_trainer (16x16, 4 classes):
 *  - one step of the tiny JiT (full attention, with dropout) and of
 *    JiT-SLA2 in fp32 mode: the loss, the gradient norm, every parameter's
 *    gradient, and after AdamW (with clipping and weight decay) the weights,
 *    both moments and the EMA copy, within 1e-4 relative (max-abs error /
 *    max-abs, per parameter);
 *  - a GPU run resumed from its checkpoint reproduces the uninterrupted
 *    run's losses exactly (bf16, the default mode);
 *  - checkpoints move between the devices: a CPU checkpoint resumed on the
 *    GPU and a GPU checkpoint resumed on the CPU continue like the CPU;
 *  - the NaN guard, the SLA2 conversion's freezing (the device optimiser's
 *    trainable flags) and trainer_run's sampling and checkpoint on the GPU;
 *  - the sampler on the GPU equals the CPU's samples;
 *  - one step with PixelGen's three losses (random frozen networks at 1/16
 *    width, lambda measured) equals the CPU's: loss, terms, lambda,
 *    gradients and weights.
 * Before the parity steps the weights get a small random perturbation:
 * at initialisation adaLN-Zero and the zero final layer make almost every
 * gradient exactly zero, which would make the comparison vacuous. Where
 * updates are compared across devices Adam's eps is 1e-3 (PARITY_OPTIM), so
 * that an element whose gradient is rounding noise (sign undetermined) moves
 * by lr * g / eps rather than by +-lr on either device. Part of the CUDA
 * test harness: without a GPU the program exits 77 and ctest reports it
 * skipped (tests/cuda_check.c). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/rng.h"
#include "cuda_check.h"
#include "io/ckpt.h"
#include "io/shards.h"
#include "train/config/config.h"
#include "train/model/sampler.h"
#include "train/trainer.h"
#include "trainer_fixture.h"

#define TOL_STEP 1e-4
/* Under the CPU emulator of the CUDA runtime (tests/cuda_emu) every kernel
 * access is checked, about a thousand times slower than a GPU: the same
 * tests on half the batch keep the emulated suite within its time. */
#ifdef JIT_CUDA_EMU
#define TEST_BATCH "8"
#else
#define TEST_BATCH "16"
#endif
/* The device under test. Built with -DTEST_DEVICE='"cpu"' (and a main of
 * its own) the same tests check their own logic on a machine without a GPU. */
#ifndef TEST_DEVICE
#define TEST_DEVICE "cuda"
#endif
/* Where CPU and GPU updates are compared: eps 1e-3 (see the top), weight
 * decay, and a clip that acts (the gradient norm is about 10). */
#define PARITY_OPTIM "{lr: 2.0e-3, warmup_steps: 10, ema: [0.99], eps: 1.0e-3, weight_decay: 0.05, grad_clip: 0.05}"

/* Criterion's .init: test_trainer's toy data in a fresh directory. */
static void make_data(void) { fixture_make_toy_data("jit-cuda-train"); }

/* The tiny model of test_trainer on `device`; optim: that section's map
 * (NULL: the fixture's); `extra` is appended YAML (callbacks). */
static Config tiny(const char *name, int sla2, const char *device, const char *precision, const char *optim,
                   const char *extra) {
    FixtureRun o = {.device = device, .precision = precision, .optim = optim, .batch = atoi(TEST_BATCH),
                    .sampling_steps = 3, .dropout = sla2 ? "0.0" : "0.1", .extra = extra};
    return fixture_tiny_config(name, sla2, &o, 0, NULL);
}

/* n floats of the trainer's device memory, on the host (free()). */
static float *download(const Trainer *T, const float *buf, size_t n) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    T->be->mem->to_host(h, buf, n * sizeof(float));
    return h;
}

/* The same small change of every parameter on both trainers, in the host
 * copy, then uploaded (a no-op on the CPU). */
static void perturb(Trainer *T) {
    ParamStore *ps = &T->model.params;
    params_pull(ps);
    float *noise = malloc(ps->padded * sizeof(float));
    rng_fill_normal(noise, ps->padded, 11, RNG_STREAM_TEST + 7, 0, 0.0f, 0.02f);
    for (int i = 0; i < ps->n; i++) {
        size_t off = ps->info[i].offset;
        for (size_t j = 0; j < ps->info[i].numel; j++) ps->host[off + j] += noise[off + j];
    }
    params_push(ps);
    free(noise);
}

/* Every parameter's slice of two flat buffers, within tol relative. */
static void expect_params_close(const ParamStore *ps, const float *gpu, const float *cpu, double tol,
                                const char *what) {
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < ps->n; i++) {
        const ParamInfo *p = &ps->info[i];
        double e = rel_err(gpu + p->offset, cpu + p->offset, p->numel);
        cr_expect(e <= tol, "%s of %s: relative error %.3g > %.0e", what, p->name, e, tol);
        if (e > worst) worst = e, worst_name = p->name;
    }
    printf("  %-9s worst relative error %.3g (%s)\n", what, worst, worst_name);
}

static void expect_close_scalar(double gpu, double cpu, double tol, const char *what) {
    double e = fabs(gpu - cpu) / fmax(fabs(cpu), 1e-30);
    cr_expect(e <= tol, "%s: gpu %.9g cpu %.9g (relative error %.3g > %.0e)", what, gpu, cpu, e, tol);
}

static void step_parity(int sla2) {
    Config cc = tiny(sla2 ? "cpu-sla2" : "cpu-full", sla2, "cpu", "fp32", PARITY_OPTIM, NULL);
    Config cg = tiny(sla2 ? "gpu-sla2" : "gpu-full", sla2, TEST_DEVICE, "fp32", PARITY_OPTIM, NULL);
    Trainer C, G;
    trainer_init(&C, &cc, NULL, NULL);
    trainer_init(&G, &cg, NULL, NULL);
    Device want = strcmp(TEST_DEVICE, "cuda") == 0 ? DEVICE_CUDA : DEVICE_CPU;
    cr_assert_eq(G.be->device, want);
    cr_assert_eq(G.model.params.device, want, "the parameters live in the device's memory");
    cr_assert(G.model.params.views[0].data == G.model.params.data, "the views point at the device buffer");
    perturb(&C);
    perturb(&G);
    float lc = trainer_step(&C), lg = trainer_step(&G);
    ParamStore *ps = &C.model.params;
    size_t n = ps->padded;
    printf("%s: loss cpu %.7f gpu %.7f, gradient norm cpu %.7g gpu %.7g\n", sla2 ? "JiT-SLA2" : "JiT", lc, lg,
           C.grad_norm, G.grad_norm);
    cr_assert(isfinite(lc) && isfinite(lg));
    expect_close_scalar(lg, lc, TOL_STEP, "loss");
    expect_close_scalar(G.grad_norm, C.grad_norm, TOL_STEP, "gradient norm");
    cr_expect(C.grad_norm > 0.05, "the clip (0.05) acts: gradient norm %g", C.grad_norm);
    float *g = download(&G, G.model.params.grad, n), *w = download(&G, G.model.params.data, n);
    float *m = download(&G, G.opt.m, n), *v = download(&G, G.opt.v, n), *e = download(&G, G.ema[0], n);
    expect_params_close(ps, g, ps->grad, TOL_STEP, "gradient");
    expect_params_close(ps, w, ps->data, TOL_STEP, "weights");
    expect_params_close(ps, m, C.opt.m, TOL_STEP, "adam m");
    expect_params_close(ps, v, C.opt.v, TOL_STEP, "adam v");
    expect_params_close(ps, e, C.ema[0], TOL_STEP, "ema");
    cr_expect_eq(G.opt.step, C.opt.step);
    free(g), free(w), free(m), free(v), free(e);
    trainer_free(&G);
    trainer_free(&C);
}

Test(cuda_train, full_attention_step_matches_cpu, .init = make_data) { step_parity(0); }

/* Recomputation through the device's engine (core/recompute.h): two steps of
 * the tiny SLA2 model with QAT and dropout on the device, with
 * train.recompute attention and block, against none on the same device: the
 * same kernels on the same inputs in the same order, so the same gradients
 * (bit for bit on the emulator; a GPU's atomics may reorder sums). */
Test(cuda_train, recompute_matches_no_recompute, .init = make_data) {
    static const char *const levels[3] = {"none", "attention", "block"};
    Trainer G[3];
    for (int k = 0; k < 3; k++) {
        char rc[48], name[32];
        snprintf(rc, sizeof rc, "train.recompute=%s", levels[k]);
        snprintf(name, sizeof name, "gpu-rc-%s", levels[k]);
        char *ov[] = {rc, "model.sla2_enable_qat=true"};
        FixtureRun o = {.device = TEST_DEVICE, .precision = "fp32", .batch = atoi(TEST_BATCH), .dropout = "0.1"};
        Config c = fixture_tiny_config(name, 1, &o, 2, ov);
        trainer_init(&G[k], &c, NULL, NULL);
    }
    ParamStore *ps = &G[0].model.params;
    for (int step = 0; step < 2; step++) {
        float *g[3];
        for (int k = 0; k < 3; k++) {
            cr_assert(isfinite(trainer_step(&G[k])));
            g[k] = download(&G[k], G[k].model.params.grad, ps->padded);
        }
        for (int k = 1; k < 3; k++) {
            size_t differ = 0;
            for (size_t i = 0; i < ps->padded; i++) differ += memcmp(&g[k][i], &g[0][i], sizeof(float)) != 0;
            printf("recompute %s on %s, step %d: %zu of %zu gradients differ in some bit\n", levels[k], TEST_DEVICE,
                   step, differ, ps->padded);
            expect_params_close(ps, g[k], g[0], 1e-5, levels[k]);
        }
        for (int k = 0; k < 3; k++) free(g[k]);
    }
    for (int k = 0; k < 3; k++) trainer_free(&G[k]);
}

static void make_rgb_data(void) { fixture_make_rgb_data("jit-cuda-train"); }

Test(cuda_train, pixelgen_step_matches_cpu, .init = make_rgb_data) {
    const char *losses = "losses: {repa_weight: 0.5, lpips_weight: 1.0, pdino_weight: 1.0, frozen_random_div: 16,\n"
                         "         align_layer: 1, adaptive_start: 0, adaptive_every: 1}\n";
    char data[320];
    snprintf(data, sizeof data, "data.train=%s/rgb", fixture_dir);
    char *ov[] = {"model.in_channels=3", data};
    FixtureRun oc = {.device = "cpu", .precision = "fp32", .optim = PARITY_OPTIM, .batch = 4, .extra = losses};
    FixtureRun og = oc;
    og.device = TEST_DEVICE;
    Config cc = fixture_tiny_config("cpu-pg", 0, &oc, 2, ov), cg = fixture_tiny_config("gpu-pg", 0, &og, 2, ov);
    Trainer C, G;
    trainer_init(&C, &cc, NULL, NULL);
    trainer_init(&G, &cg, NULL, NULL);
    perturb(&C);
    perturb(&G);
    float lc = trainer_step(&C), lg = trainer_step(&G);
    printf("PixelGen: loss cpu %.7f gpu %.7f; lambda cpu %.7f gpu %.7f\n", lc, lg, C.pg.lambda, G.pg.lambda);
    cr_assert(isfinite(lc) && isfinite(lg) && C.pg.lambda != 1.0);
    expect_close_scalar(lg, lc, TOL_STEP, "loss");
    for (int i = 0; i < PG_N_TERMS; i++)
        expect_close_scalar(G.pg.value[i], C.pg.value[i], TOL_STEP, pixelgen_term_names[i]);
    expect_close_scalar(G.pg.lambda, C.pg.lambda, TOL_STEP, "lambda");
    expect_close_scalar(G.grad_norm, C.grad_norm, TOL_STEP, "gradient norm");
    ParamStore *ps = &C.model.params;
    float *g = download(&G, G.model.params.grad, ps->padded), *w = download(&G, G.model.params.data, ps->padded);
    expect_params_close(ps, g, ps->grad, TOL_STEP, "gradient");
    expect_params_close(ps, w, ps->data, TOL_STEP, "weights");
    free(g), free(w);
    trainer_free(&G);
    trainer_free(&C);
}

Test(cuda_train, sla2_step_matches_cpu, .init = make_data) { step_parity(1); }

static float *run_losses(Config *c, int steps, const char *resume) {
    Trainer T;
    trainer_init(&T, c, resume, NULL);
    float *l = calloc((size_t)steps, sizeof(float));
    for (int s = (int)T.step; s < steps; s++) l[s] = trainer_step(&T);
    trainer_free(&T);
    return l;
}

/* BF16 mode against the CPU's fp32 over 50 steps of the tiny JiT (full
 * attention, dropout on), from the same weights, batches and noise. What
 * differs is BF16's rounding of every product's operands to 8 significant
 * bits (round to nearest: relative error uniform in [-u, u], u = 2^-9,
 * rms u/sqrt(3)) and of the bias gradient's dout; the rest (norms,
 * softmax, the loss, reductions, AdamW, the EMA) is fp32 on both.
 * The bound on |loss_bf16 - loss_fp32| / loss_fp32 at step s:
 *  - one product with both operands rounded: each term of a dot product is
 *    off by rms sqrt(2/3) u relative, independently, and for terms of
 *    random sign the sum is off by the same relative rms: sqrt(2/3) u;
 *  - G = 13 products on the forward's longest path (patch embed x2, t
 *    embed, 2 blocks x (adaLN, qkv, q k^T, p v, proj, w12, w3), final x2;
 *    the attention products count although the emulator's are fp32):
 *    independent errors, x_hat off by rms sqrt(2/3) u sqrt(G) relative;
 *  - the loss, mean over n = batch x channels x pixels of e^2 with
 *    e = x_hat - v, moves by 2 mean(e dx_hat): n independent terms, so its
 *    relative change has rms sigma = 2 sqrt(2/3) u sqrt(G) / sqrt(n)
 *    (x_hat's scale is at most e's here: v is noise minus image);
 *  - later steps add the weights' divergence (gradients off by O(u), AdamW
 *    with eps 1e-3 turning that into updates off by O(u lr)): allowed to
 *    double the bound by step 50.
 * Bound: 8 sigma (1 + s / 50). For the emulator's batch of 8 one-channel
 * 16x16 images (n = 2048) sigma = 2.5e-4: 2.0e-3 at step 0, 4.0e-3 at step
 * 49. Measured (emulator): worst 3.5e-4 over the 50 steps; step 0 is exact
 * because adaLN-Zero and the zero final layer make x_hat = 0 whatever the
 * rounding. Products reading stale weights (AdamW not writing the bf16
 * mirror, with the mirror check off) fail it from step 1 (1.4e-2); a bias
 * gradient missing one row of 128 does not (4.3e-4): test_cuda_ops's
 * linear tests catch that one. */
#define BF16_STEPS 50
#define BF16_U (1.0 / 512)
#define BF16_GEMMS 13
Test(cuda_train, bf16_steps_track_cpu_fp32, .init = make_data) {
    Config cc = tiny("b16c", 0, "cpu", "fp32", PARITY_OPTIM, NULL), cg = tiny("b16g", 0, TEST_DEVICE, "bf16",
                                                                                PARITY_OPTIM, NULL);
    const double n = (double)atoi(TEST_BATCH) * cg.model.in_channels * cg.model.img_size * cg.model.img_size;
    const double sigma = 2 * sqrt(2.0 / 3.0) * BF16_U * sqrt((double)BF16_GEMMS) / sqrt(n);
    float *lc = run_losses(&cc, BF16_STEPS, NULL), *lg = run_losses(&cg, BF16_STEPS, NULL);
    double worst = 0;
    int worst_s = 0;
    for (int s = 0; s < BF16_STEPS; s++) {
        double rel = fabs((double)lg[s] - lc[s]) / fabs((double)lc[s]);
        double bound = 8 * sigma * (1.0 + s / (double)BF16_STEPS);
        cr_expect(isfinite(lg[s]) && rel <= bound, "step %d: bf16 loss %.6f, fp32 %.6f: relative %.3g > %.3g", s,
                  lg[s], lc[s], rel, bound);
        if (rel > worst) worst = rel, worst_s = s;
    }
    printf("bf16 vs fp32 over %d steps: sigma %.3g; worst relative loss difference %.3g (step %d), last %.3g\n",
           BF16_STEPS, sigma, worst, worst_s,
           fabs((double)lg[BF16_STEPS - 1] - lc[BF16_STEPS - 1]) / lc[BF16_STEPS - 1]);
    free(lc), free(lg);
}

Test(cuda_train, resume_reproduces_losses_exactly, .init = make_data) {
    Config c = tiny("gres", 1, TEST_DEVICE, "auto", NULL, NULL);
    float *straight = run_losses(&c, 8, NULL);
    Config c2 = tiny("gres2", 1, TEST_DEVICE, "auto", NULL, NULL);
    Trainer T;
    trainer_init(&T, &c2, NULL, NULL);
    for (int s = 0; s < 4; s++) trainer_step(&T);
    trainer_checkpoint(&T);
    trainer_free(&T);
    float *resumed = run_losses(&c2, 8, "auto");
    for (int s = 4; s < 8; s++)
        cr_expect_eq(straight[s], resumed[s], "step %d after resume: %.9g vs %.9g", s, resumed[s], straight[s]);
    for (int s = 0; s < 8; s++) cr_expect(isfinite(straight[s]));
    free(straight), free(resumed);
}

/* Step `steps` of a run resumed from `from` on `device`: its loss, and its
 * weights after the step (host, malloc'ed) in *w. */
static float resumed_step(const char *name, const char *device, const char *from, float **w) {
    Config c = tiny(name, 0, device, "fp32", PARITY_OPTIM, NULL);
    Trainer T;
    trainer_init(&T, &c, from, NULL);
    float l = trainer_step(&T);
    *w = download(&T, T.model.params.data, T.model.params.padded);
    if (strcmp(device, TEST_DEVICE) == 0) trainer_checkpoint(&T); /* for the way back */
    trainer_free(&T);
    return l;
}

Test(cuda_train, checkpoints_move_between_cpu_and_gpu, .init = make_data) {
    Config c = tiny("xcpu", 0, "cpu", "fp32", PARITY_OPTIM, NULL);
    Trainer T;
    trainer_init(&T, &c, NULL, NULL);
    for (int s = 0; s < 3; s++) trainer_step(&T);
    trainer_checkpoint(&T);
    ParamStore ref; /* the layout, for the per-parameter comparison */
    memcpy(&ref, &T.model.params, sizeof ref);
    char from[512];
    snprintf(from, sizeof from, "%s/xcpu/ckpt", fixture_dir);
    float *wc, *wg;
    float lc = resumed_step("xcpu-cont", "cpu", from, &wc);
    float lg = resumed_step("xgpu", TEST_DEVICE, from, &wg); /* CPU checkpoint -> GPU */
    expect_close_scalar(lg, lc, TOL_STEP, "step 4 resumed on the GPU from a CPU checkpoint: loss");
    expect_params_close(&ref, wg, wc, TOL_STEP, "weights");
    free(wc), free(wg);
    /* GPU checkpoint (after step 4) -> CPU, against the GPU going on. */
    snprintf(from, sizeof from, "%s/xgpu/ckpt", fixture_dir);
    float lc5 = resumed_step("xback-cpu", "cpu", from, &wc), lg5 = resumed_step("xback-gpu", TEST_DEVICE, from, &wg);
    expect_close_scalar(lc5, lg5, TOL_STEP, "step 5 resumed on the CPU from a GPU checkpoint: loss");
    expect_params_close(&ref, wc, wg, TOL_STEP, "weights");
    free(wc), free(wg);
    trainer_free(&T);
}

Test(cuda_train, nan_guard_skips_a_poisoned_step, .init = make_data) {
    Config c = tiny("gnan", 0, TEST_DEVICE, "auto", NULL, NULL);
    Trainer T;
    trainer_init(&T, &c, NULL, NULL);
    for (int s = 0; s < 2; s++) cr_assert(isfinite(trainer_step(&T)));
    size_t n = T.model.params.padded;
    float *before = download(&T, T.model.params.data, n), *ema = download(&T, T.ema[0], n);
    T.inject_nan_step = 2;
    cr_expect(isnan(trainer_step(&T)), "the poisoned step reports NaN");
    cr_expect_eq(T.skipped_total, 1);
    float *after = download(&T, T.model.params.data, n), *ema2 = download(&T, T.ema[0], n);
    cr_expect_eq(memcmp(before, after, n * sizeof(float)), 0, "a skipped step must not change the weights");
    cr_expect_eq(memcmp(ema, ema2, n * sizeof(float)), 0, "nor the EMA");
    cr_expect(isfinite(trainer_step(&T)), "training goes on after the skip");
    free(before), free(after), free(ema), free(ema2);
    trainer_free(&T);
}

Test(cuda_train, conversion_freezes_what_each_stage_should, .init = make_data) {
    Config full = tiny("gfull", 0, "cpu", "fp32", NULL, NULL);
    Trainer T;
    trainer_init(&T, &full, NULL, NULL);
    for (int s = 0; s < 3; s++) trainer_step(&T);
    trainer_checkpoint(&T);
    trainer_free(&T);
    char extra[1024];
    snprintf(extra, sizeof extra,
             "callbacks:\n"
             "  - {type: SLA2Conversion, from: %s/gfull/ckpt, stage1_steps: 4, stage1_lr: 1.0e-2}\n"
             "  - {type: QuantizedAttentionMonitor, every: 2}\n",
             fixture_dir);
    Config c = tiny("gconv", 1, TEST_DEVICE, "auto", NULL, extra);
    trainer_init(&T, &c, NULL, NULL);
    ParamStore *ps = &T.model.params;
    size_t n = ps->padded;
    float *start = download(&T, ps->data, n);
    for (int s = 0; s < 4; s++) cr_assert(isfinite(trainer_step(&T)));
    float *after1 = download(&T, ps->data, n);
    for (int i = 0; i < ps->n; i++) {
        const ParamInfo *p = &ps->info[i];
        int router = strstr(p->name, ".attn.sla2.") != NULL;
        int changed = memcmp(start + p->offset, after1 + p->offset, p->numel * sizeof(float)) != 0;
        cr_expect_eq(changed, router, "stage 1: %s %s", p->name,
                     router ? "did not learn" : "changed (model is frozen)");
    }
    for (int s = 4; s < 7; s++) cr_assert(isfinite(trainer_step(&T)));
    float *after2 = download(&T, ps->data, n);
    for (int i = 0; i < ps->n; i++) {
        const ParamInfo *p = &ps->info[i];
        int changed = memcmp(after1 + p->offset, after2 + p->offset, p->numel * sizeof(float)) != 0;
        if (strstr(p->name, ".attn.sla2.proj_")) cr_expect(!changed, "stage 2: router %s must stay frozen", p->name);
        else if (strstr(p->name, "alpha_logit") || strstr(p->name, "qkv.weight"))
            cr_expect(changed, "stage 2: %s must learn", p->name);
    }
    free(start), free(after1), free(after2);
    trainer_free(&T);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

Test(cuda_train, run_samples_and_checkpoints_on_gpu, .init = make_data) {
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "run: {name: grun, out_dir: %s/grun, seed: 7, device: " TEST_DEVICE "}\n"
             "model: {name: jit-tiny, img_size: 16, patch: 4, depth: 2, hidden: 64, heads: 2, bottleneck: 16,\n"
             "        in_context_len: 4, in_context_start: 1, num_classes: 4, use_sla2: true,\n"
             "        sla2_compression_ratio: 4, sla2_topk_ratio: 0.5}\n"
             "data: {train: %s/data, batch_size: " TEST_BATCH "}\n"
             "optim: {ema: [0.99]}\n"
             "sampling: {steps: 3, per_class: 2, cfg: 2.0}\n"
             "logging: {progress: false}\n",
             fixture_dir, fixture_dir);
    char *ov[] = {"train.steps=4", "train.sample_every=2", "train.checkpoint_every=2"};
    Config c;
    config_load_string(&c, "grun", yaml, 3, ov);
    Trainer T;
    trainer_init(&T, &c, NULL, NULL);
    cr_expect_eq(trainer_run(&T), 0);
    trainer_free(&T);
    char path[512];
    const char *want[] = {"samples/step-00000002.png", "samples/step-00000004.png", "samples/step-00000004.h5",
                          "ckpt/ckpt-00000002.h5", "ckpt/ckpt-00000004.h5", "ckpt/latest"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        snprintf(path, sizeof path, "%s/grun/%s", fixture_dir, want[i]);
        cr_expect(file_exists(path), "trainer_run on the GPU wrote no %s", path);
    }
}

Test(cuda_train, sampler_matches_cpu, .init = make_data) {
    Config c = tiny("gsample", 1, "cpu", "fp32", NULL, NULL);
    JitModel mc, mg;
    jit_build(&mc, &c.model, 5);
    jit_build(&mg, &c.model, 5);
    rng_fill_normal(mc.params.host, mc.params.padded, 2, RNG_STREAM_TEST, 0, 0.0f, 0.05f);
    memcpy(mg.params.host, mc.params.host, mc.params.padded * sizeof(float));
    const Backend *be = backend_open(TEST_DEVICE, BACKEND_PREC_FP32, 0, "test_cuda_train");
    jit_to_device(&mg, be);
    Graph gc, gg;
    graph_init(&gc, backend_cpu(), 1 << 20);
    graph_init(&gg, be, 1 << 20);
    const int n = 6, per = 16 * 16;
    int labels[6] = {0, 1, 2, 3, 1, 2};
    float *a = malloc(sizeof(float) * n * per), *b = malloc(sizeof(float) * n * per);
    SamplerConfig sc = {.steps = 4, .cfg = 2.0f, .cfg_lo = 0.1f, .cfg_hi = 1.0f, .noise_scale = 1.0f, .seed = 9};
    sampler_run(&mc, &gc, &sc, labels, n, 4, a);
    sampler_run(&mg, &gg, &sc, labels, n, 4, b);
    double e = rel_err(b, a, (size_t)n * per);
    printf("sampler: GPU vs CPU relative error %.3g\n", e);
    cr_expect(e <= TOL_STEP, "GPU samples differ from the CPU's: relative error %.3g", e);
    free(a), free(b);
    graph_free(&gc), graph_free(&gg);
    jit_free(&mc), jit_free(&mg);
}
