/* tests/test_interop.c — an official-format JiT checkpoint imported by
 * scripts/jit_interop.py, held to PyTorch: the C forward of the imported
 * weights and of both EMA copies equals the official-layout PyTorch model's
 * (tests/reference/official_jit.py), and one AdamW step from the imported
 * moments and step equals torch.optim.AdamW's next step from the same state.
 * tests/interop_test.py writes the import and the expectations and runs
 * this binary with JIT_INTEROP_DIR set; alone it has nothing to read. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/ops.h"
#include "core/optim.h"
#include "h5read.h"
#include "io/ckpt.h"
#include "train/config/config.h"
#include "train/model/jit.h"

typedef struct Imported {
    Config cfg;
    JitModel m;
    AdamW opt;
    float *ema[CFG_MAX_EMA];
    CkptState st;
    h5r_file expect;
} Imported;

static void interop_open(Imported *im) {
    const char *dir = getenv("JIT_INTEROP_DIR");
    cr_assert(dir, "JIT_INTEROP_DIR is not set (tests/interop_test.py runs this binary)");
    char ckdir[1024], path[1100], ex[1100];
    snprintf(ckdir, sizeof ckdir, "%s/imported", dir);
    ckpt_resolve(ckdir, path, sizeof path);
    char *yaml = ckpt_read_config(path);
    cr_assert(yaml, "%s has no configuration", path);
    config_load_string(&im->cfg, path, yaml, 0, NULL);
    free(yaml);
    jit_build(&im->m, &im->cfg.model, 0);
    if (im->cfg.official_decay_set) jit_use_official_decay_set(&im->m);
    adamw_init(&im->opt, &im->m.params, im->cfg.beta1, im->cfg.beta2, im->cfg.eps, im->cfg.weight_decay);
    for (int k = 0; k < im->cfg.n_ema; k++) im->ema[k] = core_malloc(im->m.params.padded * sizeof(float));
    CkptData d = {.params = &im->m.params, .opt = &im->opt, .ema = im->ema, .n_ema = im->cfg.n_ema};
    cr_assert_eq(ckpt_load(path, &d, &im->st, NULL), 0, "the import lacks parameters of its own model");
    snprintf(ex, sizeof ex, "%s/expect.h5", dir);
    im->expect = h5r_open(ex);
}

static void interop_close(Imported *im) {
    h5r_close(im->expect);
    for (int k = 0; k < im->cfg.n_ema; k++) core_free(im->ema[k]);
    adamw_free(&im->opt);
    jit_free(&im->m);
}

/* max |a - b| / max |b| over the tensor. */
static double interop_rel(const float *a, const double *b, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs(b[i]));
    }
    return den > 0 ? num / den : num;
}

Test(interop, forward_of_weights_and_emas_equals_pytorch) {
    Imported im;
    interop_open(&im);
    cr_assert_eq(im.cfg.n_ema, 2, "the test imports both official EMA copies");
    const JitConfig *mc = &im.cfg.model;
    int B = (int)h5r_attr_i64(im.expect, "batch"), img = mc->img_size, C = mc->in_channels;
    int y[16];
    cr_assert_leq(B, 16);
    Graph g;
    graph_init(&g, backend_cpu(), 1 << 22);
    size_t nz = (size_t)B * C * img * img;
    float *zin = malloc(sizeof(float) * nz), tin[16];
    h5r_read_f32(im.expect, "inputs/z", zin, nz);
    h5r_read_f32(im.expect, "inputs/t", tin, (size_t)B);
    h5r_read_i32(im.expect, "inputs/y", y, (size_t)B);
    ParamStore *ps = &im.m.params;
    float *raw = core_malloc(ps->padded * sizeof(float));
    memcpy(raw, ps->host, ps->padded * sizeof(float));
    const char *label[3] = {"params", "ema0", "ema1"};
    const float *weights[3] = {raw, im.ema[0], im.ema[1]};
    double *ref = NULL;
    for (int w = 0; w < 3; w++) {
        memcpy(ps->host, weights[w], ps->padded * sizeof(float));
        Tensor *z = graph_new(&g, 4, B, C, img, img), *t = graph_new(&g, 1, B); /* the arena is reset below */
        memcpy(z->data, zin, sizeof(float) * nz);
        memcpy(t->data, tin, sizeof(float) * (size_t)B);
        Tensor *xhat = jit_forward(&im.m, &g, z, t, y, NULL);
        ref = realloc(ref, sizeof(double) * xhat->numel);
        char name[64];
        snprintf(name, sizeof name, "out/%s", label[w]);
        h5r_read_f64(im.expect, name, ref, xhat->numel);
        double e = interop_rel(xhat->data, ref, xhat->numel);
        printf("interop: forward of the imported %s: relative error %.2e against PyTorch\n", label[w], e);
        cr_expect_lt(e, 1e-5, "%s: C forward differs from the official-layout PyTorch model by %.2e", label[w], e);
        graph_reset(&g);
    }
    free(ref);
    free(zin);
    core_free(raw);
    graph_free(&g);
    interop_close(&im);
}

Test(interop, adamw_step_from_the_imported_state_equals_torch) {
    Imported im;
    interop_open(&im);
    ParamStore *ps = &im.m.params;
    cr_assert_eq(im.opt.step, (uint64_t)h5r_attr_i64(im.expect, "adam_step"), "AdamW step not imported");
    char name[300];
    for (int i = 0; i < ps->n; i++) {
        snprintf(name, sizeof name, "grads/%s", ps->info[i].name);
        h5r_read_f32(im.expect, name, ps->grad + ps->info[i].offset, ps->info[i].numel);
    }
    adamw_step(&im.opt, ps, (float)h5r_attr_f64(im.expect, "lr"));
    const char *what[3] = {"after", "m", "v"};
    const float *mine[3] = {ps->data, im.opt.m, im.opt.v};
    double worst[3] = {0};
    for (int i = 0; i < ps->n; i++) {
        size_t n = ps->info[i].numel;
        double *ref = malloc(sizeof(double) * n);
        for (int k = 0; k < 3; k++) {
            snprintf(name, sizeof name, "%s/%s", what[k], ps->info[i].name);
            h5r_read_f64(im.expect, name, ref, n);
            double e = interop_rel(mine[k] + ps->info[i].offset, ref, n);
            worst[k] = fmax(worst[k], e);
            cr_expect_lt(e, 1e-6, "%s of %s after one AdamW step: relative error %.2e against torch", what[k],
                         ps->info[i].name, e);
        }
        free(ref);
    }
    printf("interop: one AdamW step after import: worst relative error weights %.2e, m %.2e, v %.2e\n", worst[0],
           worst[1], worst[2]);
    interop_close(&im);
}
