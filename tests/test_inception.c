/* tests/test_inception.c — the FID Inception-v3 (train/eval/inception.c)
 * against the PyTorch reference of tests/inception_test.py, which writes
 * the converted random weights and inception_ref.h5 into JIT_INCEPTION_DIR
 * and runs the parity/ tests:
 * - the 2048-d pool features and 1008 logits at full width (1 image of
 *   64x64) and 1/8 width (2 of 64x64, 1 of 320x300), max relative error
 *   TOL (relative to the largest magnitude of the set);
 * - at 1/8 width, the same outputs are more than 10 TOL away from those of
 *   a wrong normalisation, (x - 127.5) / 127.5: the check can tell;
 * - TensorFlow's bilinear resize (op_resize_bilinear_tf) bit for bit against
 *   torch-fidelity's float32 formula;
 * - the same images in the same chunks give the same bits; other chunkings
 *   agree to rounding (BLAS picks its kernels by matrix size).
 * inception/load loads JIT_INCEPTION_WEIGHTS (the loader's refusals). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/ops.h"
#include "h5read.h"
#include "train/eval/inception.h"

#define TOL 1e-5 /* PyTorch float32 is 4e-7 from the float64 reference (inception_test.py) */

static const char *dir(void) {
    const char *d = getenv("JIT_INCEPTION_DIR");
    cr_assert(d, "JIT_INCEPTION_DIR is not set (tests/inception_test.py runs this)");
    return d;
}

/* max |got - want| / max |want| */
static double rel_err(const float *got, const double *want, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)got[i] - want[i]));
        den = fmax(den, fabs(want[i]));
        if (!isfinite(got[i])) return INFINITY;
    }
    return num / fmax(den, 1e-30);
}

static double err_against(h5r_file f, const char *name, const float *got, size_t n) {
    int nd, dims[8];
    size_t want_n = h5r_numel(f, name, &nd, dims);
    cr_assert_eq(want_n, n, "%s: %zu values in the reference, %zu here", name, want_n, n);
    double *want = malloc(sizeof(double) * n);
    h5r_read_f64(f, name, want, n);
    double e = rel_err(got, want, n);
    free(want);
    return e;
}

/* images [n, 3, h, w] of a group as uint8 */
static uint8_t *read_images(h5r_file f, const char *name, int dims[8]) {
    int nd;
    size_t n = h5r_numel(f, name, &nd, dims);
    cr_assert(nd == 4 && dims[1] == 3, "%s: not [n, 3, h, w]", name);
    int *v = malloc(sizeof(int) * n);
    h5r_read_i32(f, name, v, n);
    uint8_t *u = malloc(n);
    for (size_t i = 0; i < n; i++) u[i] = (uint8_t)v[i];
    free(v);
    return u;
}

static void check_group(const char *group) {
    char path[1024], name[128], wname[256];
    snprintf(path, sizeof path, "%s/inception_ref.h5", dir());
    h5r_file f = h5r_open(path);
    snprintf(name, sizeof name, "%s/weights", group);
    h5r_attr_str(f, name, wname, sizeof wname);
    snprintf(path, sizeof path, "%s/%s", dir(), wname);
    InceptionNet *net = inception_load(path, backend_cpu());
    int dims[8];
    snprintf(name, sizeof name, "%s/images", group);
    uint8_t *img = read_images(f, name, dims);
    int n = dims[0], P = inception_pool_dim(net), L = inception_logit_dim(net);
    cr_assert_eq(P, 2048 / inception_width_div(net));
    cr_assert_eq(L, 1008);
    float *pool = malloc(sizeof(float) * (size_t)n * P), *logits = malloc(sizeof(float) * (size_t)n * L);
    inception_forward(net, img, n, dims[2], dims[3], pool, logits);
    snprintf(name, sizeof name, "%s/pool", group);
    double ep = err_against(f, name, pool, (size_t)n * P);
    snprintf(name, sizeof name, "%s/logits", group);
    double el = err_against(f, name, logits, (size_t)n * L);
    printf("test_inception: %-12s (1/%d width, %d x %dx%d) pool %.2e, logits %.2e (max relative error)\n", group,
           inception_width_div(net), n, dims[2], dims[3], ep, el);
    cr_expect(ep <= TOL && el <= TOL, "%s: pool %.3g, logits %.3g > %g", group, ep, el, TOL);
    snprintf(name, sizeof name, "%s/pool_norm127", group);
    if (h5r_exists(f, name)) {
        double wp = err_against(f, name, pool, (size_t)n * P);
        snprintf(name, sizeof name, "%s/logits_norm127", group);
        double wl = err_against(f, name, logits, (size_t)n * L);
        printf("test_inception: %-12s against the wrong normalisation (x - 127.5) / 127.5: pool %.2e, logits %.2e\n",
               group, wp, wl);
        cr_expect(wp > 10 * TOL && wl > 10 * TOL, "%s: the wrong normalisation is within 10 TOL (%.3g, %.3g)", group,
                  wp, wl);
    }
    free(pool), free(logits), free(img);
    inception_free(net);
    h5r_close(f);
}

Test(parity, full_width) { check_group("full"); }
Test(parity, reduced_width) { check_group("reduced"); }
Test(parity, reduced_width_rectangular) { check_group("reduced_rect"); }

Test(parity, resize_bit_exact) {
    char path[1024];
    snprintf(path, sizeof path, "%s/inception_ref.h5", dir());
    h5r_file f = h5r_open(path);
    const char *groups[2] = {"resize_up/x", "resize_down/x"};
    for (int t = 0; t < 2; t++) {
        int dims[8];
        uint8_t *u = read_images(f, groups[t], dims);
        size_t ni = (size_t)dims[0] * 3 * dims[2] * dims[3], no = (size_t)dims[0] * 3 * 299 * 299;
        Graph g;
        graph_init(&g, backend_cpu(), 64u << 20);
        graph_set_grad(&g, false);
        Tensor *x = graph_new(&g, 4, dims[0], 3, dims[2], dims[3]);
        for (size_t i = 0; i < ni; i++) x->data[i] = u[i];
        Tensor *y = op_resize_bilinear_tf(&g, x, 299, 299);
        float *want = malloc(sizeof(float) * no);
        char name[64];
        snprintf(name, sizeof name, "%.*s/y", (int)(strchr(groups[t], '/') - groups[t]), groups[t]);
        h5r_read_f32(f, name, want, no);
        size_t diff = 0;
        for (size_t i = 0; i < no; i++) diff += memcmp(&y->data[i], &want[i], sizeof(float)) != 0;
        printf("test_inception: %s %dx%d -> 299x299: %zu of %zu values differ in any bit\n", name, dims[2], dims[3],
               diff, no);
        cr_expect_eq(diff, 0, "%s: %zu values differ from torch-fidelity's float32 resize", name, diff);
        free(want), free(u);
        graph_free(&g);
    }
    h5r_close(f);
}

/* A rerun gives the same bits; chunks of 1 and of 3 images agree to
 * rounding only: a chunk is one matrix product per layer, and OpenBLAS
 * chooses its kernel (so its summation order) by the product's size. An
 * image's features are a function of its chunk's images: callers that need
 * the same bits for any rank count cut chunks at the same global indices. */
Test(parity, chunking) {
    char path[1024];
    snprintf(path, sizeof path, "%s/inception_div8.h5", dir());
    InceptionNet *net = inception_load(path, backend_cpu());
    int n = 3, h = 40, w = 48, P = inception_pool_dim(net);
    uint8_t *img = malloc((size_t)n * 3 * h * w);
    for (size_t i = 0; i < (size_t)n * 3 * h * w; i++) img[i] = (uint8_t)(i * 2654435761u >> 13);
    float *a = malloc(sizeof(float) * n * P), *b = malloc(sizeof(float) * n * P), *c = malloc(sizeof(float) * n * P);
    inception_set_size(net, 75);
    inception_set_chunk(net, 3);
    inception_forward(net, img, n, h, w, a, NULL);
    inception_forward(net, img, n, h, w, b, NULL);
    cr_expect(memcmp(a, b, sizeof(float) * n * P) == 0, "the same chunks gave other bits");
    inception_set_chunk(net, 1);
    inception_forward(net, img, n, h, w, c, NULL);
    double e = 0.0, m = 0.0;
    for (int i = 0; i < n * P; i++) e = fmax(e, fabs((double)a[i] - c[i])), m = fmax(m, fabs((double)a[i]));
    printf("test_inception: chunks of 1 against 3 images: max relative difference %.2e\n", e / m);
    cr_expect(e <= TOL * m, "chunks of 1 and 3 images differ by %.3g relative", e / m);
    free(a), free(b), free(c), free(img);
    inception_free(net);
}

/* Loads JIT_INCEPTION_WEIGHTS: inception_test.py checks the refusal's words. */
Test(inception, load) {
    const char *p = getenv("JIT_INCEPTION_WEIGHTS");
    cr_assert(p, "JIT_INCEPTION_WEIGHTS is not set");
    InceptionNet *net = inception_load(p, backend_cpu());
    printf("test_inception: %s: 1/%d width, %d features\n", p, inception_width_div(net), inception_pool_dim(net));
    inception_free(net);
}
