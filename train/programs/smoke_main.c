/* train/programs/smoke_main.c — jit-smoke: a short end-to-end training run of JiT on
 * Fashion-MNIST (or synthetic data), to show the engine works on a machine:
 * data -> noising -> forward -> v-loss -> backward -> AdamW, with timings.
 *
 *   jit-smoke [--model jit-tiny] [--steps 40] [--batch 32] [--lr 5e-4]
 *             [--seed 0] [--data DIR | --synthetic]
 *
 * The full trainer (configs, shards, checkpoints, sampling) is jit-train. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/check.h"
#include "core/ops.h"
#include "core/optim.h"
#include "core/profile.h"
#include "core/rng.h"
#include "io/idx.h"
#include "train/model/diffusion.h"
#include "train/model/jit.h"

static void usage(void) {
    fprintf(stderr, "usage: jit-smoke [--model NAME] [--steps N] [--batch B] [--lr LR] [--seed S] "
                    "[--data DIR | --synthetic]\n  models: %s\n", jit_config_list());
    exit(2);
}

int main(int argc, char **argv) {
    const char *model = "jit-tiny", *data_dir = "/usr/share/datasets/fashion-mnist";
    int steps = 40, batch = 32, synthetic = 0;
    float lr = 5e-4f;
    uint64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--synthetic")) { synthetic = 1; continue; }
        if (!v) usage();
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--lr")) lr = strtof(v, NULL);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--data")) data_dir = v;
        else usage();
        i++;
    }
    CHECK(steps > 0 && batch > 0, "--steps and --batch must be positive");
    JitConfig cfg;
    CHECK(jit_config_named(model, &cfg) == 0, "unknown --model '%s'; known: %s", model, jit_config_list());
    int S = cfg.img_size, C = cfg.in_channels, per = C * S * S;

    /* Images as [-1, 1] floats, centred in the model's canvas (28 -> 32 pads with -1). */
    int n_img = 0;
    float *images = NULL;
    int *labels = NULL;
    if (!synthetic) {
        char p1[1024], p2[1024];
        snprintf(p1, sizeof p1, "%s/train-images-idx3-ubyte.gz", data_dir);
        snprintf(p2, sizeof p2, "%s/train-labels-idx1-ubyte.gz", data_dir);
        IdxArray im, lb;
        idx_read(p1, &im);
        idx_read(p2, &lb);
        CHECK(im.ndim == 3 && lb.ndim == 1 && im.dims[0] == lb.dims[0], "%s and %s do not match", p1, p2);
        CHECK(C == 1 && im.dims[1] <= S && im.dims[2] <= S, "model %s (%d channels, %d px) cannot hold %dx%d images",
              model, C, S, im.dims[1], im.dims[2]);
        n_img = im.dims[0] < 4096 ? im.dims[0] : 4096;
        images = malloc(sizeof(float) * (size_t)n_img * per);
        labels = malloc(sizeof(int) * (size_t)n_img);
        int oy = (S - im.dims[1]) / 2, ox = (S - im.dims[2]) / 2;
        for (int k = 0; k < n_img; k++) {
            float *o = images + (size_t)k * per;
            for (int i = 0; i < per; i++) o[i] = -1.0f;
            for (int r = 0; r < im.dims[1]; r++)
                for (int c = 0; c < im.dims[2]; c++)
                    o[(r + oy) * S + c + ox] = im.data[((size_t)k * im.dims[1] + r) * im.dims[2] + c] / 127.5f - 1.0f;
            labels[k] = lb.data[k] % cfg.num_classes;
        }
        idx_free(&im);
        idx_free(&lb);
    } else {
        n_img = 4 * batch;
        images = malloc(sizeof(float) * (size_t)n_img * per);
        labels = malloc(sizeof(int) * (size_t)n_img);
        rng_fill_uniform(images, (size_t)n_img * per, seed, RNG_STREAM_DATA, 0, -1.0f, 1.0f);
        for (int k = 0; k < n_img; k++) labels[k] = k % cfg.num_classes;
    }

    JitModel m;
    jit_build(&m, &cfg, seed);
    AdamW opt;
    adamw_init(&opt, &m.params, 0.9f, 0.95f, 1e-8f, 0.0f);
    Graph g;
    graph_init(&g, backend_cpu(), 64u << 20);
    DiffusionConfig dc = {.p_mean = -0.8f, .p_std = 0.8f, .noise_scale = 1.0f};
    printf("jit-smoke: %s, %zu parameters, batch %d, %d steps, data: %s (%d images)\n", model,
           params_count(&m.params), batch, steps, synthetic ? "synthetic" : data_dir, n_img);

    int *y = malloc(sizeof(int) * (size_t)batch);
    double first = 0, last = 0, t_total = 0;
    int window = steps < 10 ? 1 : 5;
    for (int s = 0; s < steps; s++) {
        double t0 = core_now_s();
        Tensor *x = graph_new(&g, 4, batch, C, S, S), *z = graph_new(&g, 4, batch, C, S, S), *t = graph_new(&g, 1, batch);
        for (int b = 0; b < batch; b++) {
            int k = (int)(((size_t)s * batch + b) % (size_t)n_img);
            memcpy(x->data + (size_t)b * per, images + (size_t)k * per, sizeof(float) * per);
            /* Label dropout 0.1: the null class teaches the unconditional model for CFG. */
            y[b] = rng_uniform(seed, RNG_STREAM_LABEL_DROP, (uint64_t)s * batch + b) < 0.1f ? cfg.num_classes
                                                                                           : labels[k];
        }
        diffusion_noise_batch(&dc, seed, (uint64_t)s * batch, x->data, z->data, t->data, batch, per);
        params_zero_grad(&m.params);
        Tensor *loss = op_vloss(&g, jit_forward(&m, &g, z, t, y, NULL), x, t);
        graph_backward(&g, loss);
        adamw_step(&opt, &m.params, lr);
        float l = loss->data[0];
        graph_reset(&g);
        double dt = core_now_s() - t0;
        if (s > 0) t_total += dt;
        CHECK(isfinite(l), "loss became %g at step %d; lower --lr", l, s);
        if (s < window) first += l / window;
        if (s >= steps - window) last += l / window;
        printf("step %4d  loss %.4f  %.0f ms  %.1f img/s\n", s, l, dt * 1e3, batch / dt);
        fflush(stdout);
    }
    printf("jit-smoke: mean loss of the first %d steps %.4f, of the last %d steps %.4f\n", window, first, window, last);
    if (steps > 1) printf("jit-smoke: %.1f ms per step after the first, arena high-water %.1f MiB\n",
                          1e3 * t_total / (steps - 1), arena_high_water(&g.arena) / 1048576.0);
    free(y);
    free(images);
    free(labels);
    graph_free(&g);
    adamw_free(&opt);
    jit_free(&m);
    return 0;
}
