/* tests/bench/bench_cuda_step.c — the training-step time of the real trainer
 * on the GPU: trainer_step (loader batch, noising, forward, v-loss, backward,
 * AdamW, EMA) of each configuration given, on a synthetic image set of the
 * model's size (random pixels, 10 classes), so it needs no data. The
 * callbacks of a config are switched off, so an SLA2 config runs at its
 * model.sla2_topk_ratio (or --topk) from the first step instead of ramping
 * down from dense. One line per config:
 *   train_step config=configs/jit-b16.yaml model=JiT-B/16 attn=full topk=- batch=64 prec=bf16 steps=10
 *              ms_median=... ms_min=... img_per_s=... params=... loss_first=... loss_last=...
 * img_per_s = batch / median seconds per step (after --warmup steps; the
 * first grows the arenas). Exit 77 without a GPU.
 *
 *   bench_cuda_step [--batch 64] [--steps 10] [--warmup 3] [--precision bf16|fp32] [--topk R]
 *                   [CONFIG ...]      (default: configs/jit-b16.yaml configs/jit-b16-sla2.yaml)
 *
 * tests/gpu/run_gpu_checks.sh runs it for JiT-B/16 at batch 64 in bf16,
 * full attention and SLA2 (top-k 0.15). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/check.h"
#include "io/shards.h"
#include "kernels/cuda/ops_cuda.h"
#include "tests/bench/bench_util.h"
#include "train/config/config.h"
#include "train/trainer.h"

/* n random C x S x S images (xorshift pixels) in 10 classes, as shards in dir. */
static void make_images(const char *dir, int n, int C, int S) {
    size_t per = (size_t)C * S * S;
    uint8_t *img = malloc((size_t)n * per);
    int *lab = malloc(sizeof(int) * (size_t)n);
    CHECK(img && lab, "out of memory for %d synthetic %dx%dx%d images", n, C, S, S);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < (size_t)n * per; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        img[i] = (uint8_t)(x >> 56);
    }
    for (int i = 0; i < n; i++) lab[i] = i % 10;
    const char *names[10] = {"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"};
    shards_write(dir, "synthetic", img, lab, n, C, S, S, n, 10, names);
    free(img);
    free(lab);
}

int main(int argc, char **argv) {
    int batch = 64, steps = 10, warmup = 3;
    float topk = -1;
    const char *prec = "bf16";
    const char *configs[16];
    int n_cfg = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            CHECK(n_cfg < 16, "at most 16 configs");
            configs[n_cfg++] = a;
            continue;
        }
        CHECK(i + 1 < argc, "%s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else if (!strcmp(a, "--precision")) prec = v;
        else if (!strcmp(a, "--topk")) topk = strtof(v, NULL);
        else FAIL("unknown option %s (use --batch --steps --warmup --precision --topk, then configs)", a);
    }
    CHECK(batch > 0 && steps >= 1 && steps <= 1000 && warmup >= 1, "bad --batch/--steps/--warmup");
    CHECK(!strcmp(prec, "bf16") || !strcmp(prec, "fp32"), "--precision %s: use bf16 or fp32", prec);
    CHECK(topk < 0 || (topk > 0 && topk <= 1), "--topk %g: use a ratio in (0, 1]", topk);
    if (n_cfg == 0) configs[n_cfg++] = "configs/jit-b16.yaml", configs[n_cfg++] = "configs/jit-b16-sla2.yaml";
    if (cuda_device_count() == 0) {
        fprintf(stderr, "bench_cuda_step: no CUDA device: nothing to time (run it on a GPU machine)\n");
        return 77;
    }
    char work[] = "/tmp/jit-bench-step-XXXXXX";
    CHECK(mkdtemp(work) != NULL, "cannot make a temporary directory");
    char name[160];
    const int n_img = 4 * batch;
    for (int ci = 0; ci < n_cfg; ci++) {
        char o_prec[64], o_out[700], o_batch[64];
        snprintf(o_prec, sizeof o_prec, "run.precision=%s", prec);
        snprintf(o_out, sizeof o_out, "run.out_dir=%s/run-%d", work, ci);
        snprintf(o_batch, sizeof o_batch, "data.batch_size=%d", batch);
        char *ov[] = {"run.device=cuda", o_prec, o_out, o_batch, "train.sample_every=0",
                      "train.checkpoint_every=0", "logging.progress=false", "optim.grad_accum=1"};
        Config c;
        config_load(&c, configs[ci], (int)(sizeof ov / sizeof ov[0]), ov);
        c.n_callbacks = 0; /* no router ramp from dense, no QAT switch, no monitor */
        if (c.model.use_sla2 && topk > 0) c.model.sla2_topk_ratio = topk;
        /* the synthetic set of the model's image size (made once per size) */
        int C = c.model.in_channels, S = c.model.img_size;
        snprintf(c.data_train, sizeof c.data_train, "%s/data-%dx%d", work, C, S);
        struct stat st;
        if (stat(c.data_train, &st) != 0) make_images(c.data_train, n_img, C, S);
        Trainer T;
        trainer_init(&T, &c, NULL, NULL);
        double *t = malloc(sizeof(double) * (size_t)steps);
        float first = 0, last = 0;
        for (int s = 0; s < warmup + steps; s++) {
            double t0 = bench_now_ms();
            float l = trainer_step(&T);
            cuda_synchronize();
            if (s >= warmup) t[s - warmup] = bench_now_ms() - t0;
            if (s == 0) first = l;
            last = l;
        }
        qsort(t, (size_t)steps, sizeof(double), bench_cmp_double);
        double med = t[steps / 2];
        char topk_s[32] = "-";
        if (c.model.use_sla2) snprintf(topk_s, sizeof topk_s, "%.2f", c.model.sla2_topk_ratio);
        if (ci == 0) printf("# %s, synthetic %d images, %d warm-up steps\n", cuda_device_name(name, sizeof name), n_img,
                            warmup);
        printf("train_step config=%s model=%s attn=%s topk=%s batch=%d prec=%s steps=%d ms_median=%.2f ms_min=%.2f "
               "img_per_s=%.1f params=%zu loss_first=%.4f loss_last=%.4f\n",
               configs[ci], c.model.name, c.model.use_sla2 ? "sla2" : "full", topk_s, batch, prec, steps, med, t[0],
               batch / (med * 1e-3), params_count(&T.model.params), first, last);
        fflush(stdout);
        free(t);
        trainer_free(&T);
    }
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
    if (system(cmd) != 0) fprintf(stderr, "bench_cuda_step: could not remove %s\n", work);
    return 0;
}
