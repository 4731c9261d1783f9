/* tests/test_pixelgen.c — PixelGen's frozen networks against PyTorch: bicubic
 * resizing (op_resize_bicubic, DINOv2's input and position table) against
 * F.interpolate, and the C LPIPS (train/losses/lpips.c) and DINOv2
 * (train/losses/dinov2.c) against the PyTorch references of
 * tests/pixelgen_test.py, which writes the converted weight files,
 * lpips_ref.h5 and dino_ref.h5 into JIT_PIXELGEN_DIR and runs this:
 * - LPIPS: the five tapped VGG16 features of x_hat and LPIPS(x_hat, x) per
 *   sample (max relative error 1e-4) at 256 px (1 sample), 64 px (1) and
 *   32 px (3), and at 64 and 32 px its gradient with respect to x_hat
 *   (relative L2 error 1e-4 off its kink directions: expect_grad_off_kinks);
 * - DINOv2 at 256 px (1 sample) and 64 px (2): Phi of x and of x_hat, P-DINO
 *   and its gradient with respect to x_hat, REPA through the model's
 *   projector (jit_repa_project) and its gradients with respect to the
 *   tokens and the projector's first weight (max relative error 1e-4). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/ops.h"
#include "h5read.h"
#include "train/losses/dinov2.h"
#include "train/losses/lpips.h"
#include "train/model/jit.h"

#define TOL 1e-4
#define TOL_GRAD 1e-4 /* relative L2 error of LPIPS's gradient off its kinks (expect_grad_off_kinks) */
#define KINK_MAX 64    /* the most kink directions a gradient check may project out */

static const char *dir(void) {
    const char *d = getenv("JIT_PIXELGEN_DIR");
    cr_assert(d, "JIT_PIXELGEN_DIR is not set (tests/pixelgen_test.py runs this)");
    return d;
}

/* max |got - want| / max |want|, or with l2 |got - want| / |want| */
static double rel_err(const float *got, const double *want, size_t n, int l2) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)got[i] - want[i];
        num = l2 ? num + e * e : fmax(num, fabs(e));
        den = l2 ? den + want[i] * want[i] : fmax(den, fabs(want[i]));
    }
    return l2 ? sqrt(num / fmax(den, 1e-300)) : num / fmax(den, 1e-30);
}

static void expect_close_as(h5r_file f, const char *name, const float *got, size_t n, int l2, double tol) {
    int nd, dims[8];
    size_t want_n = h5r_numel(f, name, &nd, dims);
    cr_assert_eq(want_n, n, "%s: %zu values in the reference, %zu here", name, want_n, n);
    double *want = malloc(sizeof(double) * n);
    h5r_read_f64(f, name, want, n);
    double e = rel_err(got, want, n, l2);
    const char *kind = l2 ? "relative L2 error" : "max relative error";
    printf("test_pixelgen: %-12s %s %.2e\n", name, kind, e);
    cr_expect(e <= tol, "%s: %s %.3g > %g", name, kind, e, tol);
    free(want);
}

static void expect_close(h5r_file f, const char *name, const float *got, size_t n) {
    expect_close_as(f, name, got, n, 0, TOL);
}

/* The LPIPS gradient against its float64 reference, off the kinks: the
 * error's projection on the reference's kink directions (ReLUs and max-pool
 * windows within float32 rounding of their kink, which a BLAS kernel may
 * round to either side: tests/reference/kinks.py) is removed, and the rest
 * is held to TOL_GRAD in relative L2, as tightly as smooth code. The
 * directions are few (at most KINK_MAX) against thousands of gradient
 * values, so a real error cannot hide in their span. */
static void expect_grad_off_kinks(h5r_file f, const char *group, const float *got, size_t n) {
    char name[64];
    int nd, dims[8];
    snprintf(name, sizeof name, "%s/grad", group);
    cr_assert_eq(h5r_numel(f, name, &nd, dims), n);
    double *want = malloc(sizeof(double) * n), *err = malloc(sizeof(double) * n);
    h5r_read_f64(f, name, want, n);
    snprintf(name, sizeof name, "%s/grad_kinks", group);
    size_t kn = h5r_numel(f, name, &nd, dims);
    int k = nd == 2 ? dims[0] : 0;
    cr_assert(kn == (size_t)k * n, "%s: %d directions of %zu values expected", name, k, n);
    cr_assert(k <= KINK_MAX, "%s: %d kink directions, more than %d: the check would weaken", name, k, KINK_MAX);
    double *dirs = malloc(sizeof(double) * (kn ? kn : 1));
    if (kn) h5r_read_f64(f, name, dirs, kn);
    double den = 0.0, before = 0.0;
    for (size_t i = 0; i < n; i++) {
        err[i] = (double)got[i] - want[i];
        den += want[i] * want[i];
        before += err[i] * err[i];
    }
    /* Modified Gram-Schmidt: orthonormalise the directions, removing each
     * one's component from the error as it is made. */
    int used = 0;
    for (int a = 0; a < k; a++) {
        double *u = dirs + (size_t)a * n, norm0 = 0.0, norm = 0.0;
        for (size_t i = 0; i < n; i++) norm0 += u[i] * u[i];
        for (int b = 0; b < used; b++) {
            const double *v = dirs + (size_t)b * n;
            double dot = 0.0;
            for (size_t i = 0; i < n; i++) dot += u[i] * v[i];
            for (size_t i = 0; i < n; i++) u[i] -= dot * v[i];
        }
        for (size_t i = 0; i < n; i++) norm += u[i] * u[i];
        if (norm <= 1e-20 * norm0 || norm == 0.0) continue; /* in the span already */
        double dot = 0.0, s = 1.0 / sqrt(norm);
        for (size_t i = 0; i < n; i++) u[i] *= s, dot += u[i] * err[i];
        for (size_t i = 0; i < n; i++) err[i] -= dot * u[i];
        if (used != a) memcpy(dirs + (size_t)used * n, u, sizeof(double) * n);
        used++;
    }
    double after = 0.0;
    for (size_t i = 0; i < n; i++) after += err[i] * err[i];
    double e0 = sqrt(before / fmax(den, 1e-300)), e1 = sqrt(after / fmax(den, 1e-300));
    printf("test_pixelgen: %s/grad     relative L2 error %.2e, %.2e off %d kink directions\n", group, e0, e1, k);
    cr_expect(e1 <= TOL_GRAD, "%s/grad: relative L2 error %.3g off the %d kink directions > %g", group, e1, k,
              TOL_GRAD);
    free(want), free(err), free(dirs);
}

static void check_size(const char *group) {
    char path[1024], name[64];
    snprintf(path, sizeof path, "%s/weights/vgg16.h5", dir());
    char lin[1024];
    snprintf(lin, sizeof lin, "%s/weights/lpips_vgg.h5", dir());
    LpipsNet net;
    lpips_init(&net, lpips_file_div(path, "vgg"));
    lpips_load(&net, path, "vgg", lin, "lpips");
    snprintf(path, sizeof path, "%s/lpips_ref.h5", dir());
    h5r_file f = h5r_open(path);
    int nd, dims[8];
    snprintf(name, sizeof name, "%s/x_hat", group);
    size_t n = h5r_numel(f, name, &nd, dims);
    cr_assert(nd == 4 && dims[1] == 3);
    Graph g;
    graph_init(&g, backend_cpu(), (size_t)4 << 30);
    Tensor *xh = graph_new(&g, 4, dims[0], 3, dims[2], dims[3]), *x = graph_new(&g, 4, dims[0], 3, dims[2], dims[3]);
    h5r_read_f32(f, name, xh->data, n);
    snprintf(name, sizeof name, "%s/x", group);
    h5r_read_f32(f, name, x->data, n);
    xh->requires_grad = true;
    Tensor *taps[LPIPS_N_TAPS];
    Tensor *d = lpips_distance(&g, &net, xh, x, taps);
    for (int l = 0; l < LPIPS_N_TAPS; l++) {
        snprintf(name, sizeof name, "%s/tap%d", group, l);
        expect_close(f, name, taps[l]->data, taps[l]->numel);
    }
    snprintf(name, sizeof name, "%s/lpips", group);
    expect_close(f, name, d->data, d->numel);
    float *ones = malloc(sizeof(float) * d->numel);
    for (size_t i = 0; i < d->numel; i++) ones[i] = 1.0f;
    graph_backward_from(&g, d, ones);
    free(ones);
    if (strcmp(group, "s256")) expect_grad_off_kinks(f, group, graph_grad(&g, xh), n); /* not at 256 px: pixelgen_test.py */
    for (int i = 0; i < net.vgg.n; i++) cr_expect(!net.vgg.views[i].requires_grad, "VGG16 is frozen");
    graph_free(&g);
    h5r_close(f);
    lpips_free(&net);
}

/* op_resize_bicubic against F.interpolate(mode="bicubic"): output, and the
 * gradient of sum(out * r). */
static void check_bicubic(const char *name) {
    char path[1024], key[128];
    snprintf(path, sizeof path, "%s/lpips_ref.h5", dir());
    h5r_file f = h5r_open(path);
    int nd, dx[8], dy[8];
    snprintf(key, sizeof key, "bicubic/%s/x", name);
    size_t nx = h5r_numel(f, key, &nd, dx);
    snprintf(key, sizeof key, "bicubic/%s/y", name);
    size_t ny = h5r_numel(f, key, &nd, dy);
    snprintf(key, sizeof key, "bicubic/%s/ry", name);
    float ry = (float)h5r_attr_f64(f, key);
    snprintf(key, sizeof key, "bicubic/%s/rx", name);
    float rx = (float)h5r_attr_f64(f, key);
    Graph g;
    graph_init(&g, backend_cpu(), 64u << 20);
    Tensor *x = graph_new(&g, 4, dx[0], dx[1], dx[2], dx[3]);
    snprintf(key, sizeof key, "bicubic/%s/x", name);
    h5r_read_f32(f, key, x->data, nx);
    x->requires_grad = true;
    Tensor *y = op_resize_bicubic(&g, x, dy[2], dy[3], ry, rx);
    cr_assert_eq(y->numel, ny);
    snprintf(key, sizeof key, "bicubic/%s/y", name);
    expect_close(f, key, y->data, ny);
    float *r = malloc(sizeof(float) * ny);
    snprintf(key, sizeof key, "bicubic/%s/r", name);
    h5r_read_f32(f, key, r, ny);
    graph_backward_from(&g, y, r);
    free(r);
    snprintf(key, sizeof key, "bicubic/%s/grad", name);
    expect_close(f, key, graph_grad(&g, x), nx);
    graph_free(&g);
    h5r_close(f);
}

Test(bicubic, to_224) { check_bicubic("to224"); }
Test(bicubic, position_table_by_scale_factor) { check_bicubic("pos16"); }
Test(bicubic, upsampling) { check_bicubic("up"); }

Test(lpips, parity_256px) { check_size("s256"); }
Test(lpips, parity_64px) { check_size("s64"); }
Test(lpips, parity_32px_batch) { check_size("s32"); }

/* 1 - mean(cosines), and the seeds of its gradient */
static double one_minus_mean(const Tensor *cs, float *seeds) {
    double s = 0.0;
    for (size_t i = 0; i < cs->numel; i++) s += 1.0 - cs->data[i], seeds[i] = -1.0f / (float)cs->numel;
    return s / (double)cs->numel;
}

static void read_into(h5r_file f, const char *group, const char *key, Tensor *t) {
    char name[128];
    int nd, dims[8];
    snprintf(name, sizeof name, "%s/%s", group, key);
    cr_assert_eq(h5r_numel(f, name, &nd, dims), t->numel, "%s: size", name);
    h5r_read_f32(f, name, t->data, t->numel);
}

static void check_dino(const char *group) {
    char path[1024], name[128];
    snprintf(path, sizeof path, "%s/weights/dinov2_vitb14.h5", dir());
    DinoNet net;
    dino_init(&net, dino_file_div(path, "dino"));
    cr_assert_eq(net.dim, 768, "the full-width network");
    dino_load(&net, path, "dino");
    snprintf(path, sizeof path, "%s/dino_ref.h5", dir());
    h5r_file f = h5r_open(path);
    int nd, dims[8];
    snprintf(name, sizeof name, "%s/x_hat", group);
    h5r_numel(f, name, &nd, dims);
    int B = dims[0], S = dims[2], grid = S / 16, N = grid * grid;
    dino_prepare(&net, grid, backend_cpu());
    Graph g;
    graph_init(&g, backend_cpu(), (size_t)6 << 30);
    Tensor *xh = graph_new(&g, 4, B, 3, S, S), *x = graph_new(&g, 4, B, 3, S, S);
    read_into(f, group, "x_hat", xh);
    read_into(f, group, "x", x);
    xh->requires_grad = true;
    bool was = graph_set_grad(&g, false);
    Tensor *y = dino_features(&g, &net, x);
    graph_set_grad(&g, was);
    Tensor *yh = dino_features(&g, &net, xh);
    cr_assert(y->ndim == 3 && y->shape[0] == B && y->shape[1] == N && y->shape[2] == 768);
    snprintf(name, sizeof name, "%s/phi_x", group);
    expect_close(f, name, y->data, y->numel);
    snprintf(name, sizeof name, "%s/phi_x_hat", group);
    expect_close(f, name, yh->data, yh->numel);

    /* P-DINO (released: every token of the batch) */
    Tensor *cs = op_cosine(&g, yh, y);
    float *seeds = malloc(sizeof(float) * cs->numel);
    float loss = (float)one_minus_mean(cs, seeds);
    snprintf(name, sizeof name, "%s/pdino", group);
    expect_close(f, name, &loss, 1);
    graph_backward_from(&g, cs, seeds);
    snprintf(name, sizeof name, "%s/pdino_grad", group);
    expect_close(f, name, graph_grad(&g, xh), xh->numel);
    free(seeds);
    for (int i = 0; i < net.w.n; i++) cr_expect(!net.w.views[i].requires_grad, "DINOv2 is frozen");

    /* REPA through the model's projector (hidden 64, out 768) */
    JitConfig mc;
    jit_config_named("jit-tiny", &mc);
    mc.hidden = 64, mc.heads = 2, mc.repa_dim = 768, mc.repa_layer = 0;
    jit_config_finish(&mc);
    JitModel m;
    jit_build(&m, &mc, 1);
    for (int k = 0; k < 3; k++) {
        char key[32];
        snprintf(key, sizeof key, "proj/%d.weight", 2 * k);
        read_into(f, group, key, m.repa_w[k]);
        snprintf(key, sizeof key, "proj/%d.bias", 2 * k);
        read_into(f, group, key, m.repa_b[k]);
    }
    graph_reset(&g);
    x = graph_new(&g, 4, B, 3, S, S);
    read_into(f, group, "x", x);
    graph_set_grad(&g, false);
    y = dino_features(&g, &net, x);
    graph_set_grad(&g, true);
    Tensor *h = graph_new(&g, 3, B, N, 64);
    read_into(f, group, "h", h);
    h->requires_grad = true;
    cs = op_cosine(&g, jit_repa_project(&m, &g, h), y);
    seeds = malloc(sizeof(float) * cs->numel);
    loss = (float)one_minus_mean(cs, seeds);
    snprintf(name, sizeof name, "%s/repa", group);
    expect_close(f, name, &loss, 1);
    graph_backward_from(&g, cs, seeds);
    snprintf(name, sizeof name, "%s/repa_grad_h", group);
    expect_close(f, name, graph_grad(&g, h), h->numel);
    snprintf(name, sizeof name, "%s/repa_grad_w0", group);
    expect_close(f, name, m.repa_w[0]->grad, m.repa_w[0]->numel);
    free(seeds);
    jit_free(&m);
    graph_free(&g);
    h5r_close(f);
    dino_free(&net);
}

Test(dinov2, parity_256px, .timeout = 600) { check_dino("s256"); }
Test(dinov2, parity_64px_batch) { check_dino("s64"); }
