/* tests/test_cuda_inception.c — the FID Inception-v3 (train/eval/inception.c)
 * on the CUDA backend against the CPU backend: the same random weights
 * (inception_random, 1/16 width) and images, features and logits within
 * 1e-4 (max relative error; the matrix products in fp32, so only summation
 * order differs). Under the emulator the input side is 75 (the smallest the
 * trunk takes) to keep it quick; on a GPU 299, the real size. Exits 77
 * without a GPU. Per-op checks are in test_cuda_ops (unfold2d, pool2d,
 * concat_cols, resize_bilinear_tf). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/backend.h"
#include "cuda_check.h"
#include "train/eval/inception.h"

static const Backend *gpu(void) {
    const Backend *be = backend_find("cuda");
    char err[512];
    if (!be || be->open(BACKEND_PREC_FP32, 0, err, sizeof err)) {
        fprintf(stderr, "test_cuda_inception: no CUDA device (%s): skipped\n", be ? err : "not built");
        exit(77);
    }
    return be;
}

Test(cuda_inception, forward_equals_cpu) {
    const Backend *be = gpu();
    int side = GPU_OR_EMU(299, 75), div = GPU_OR_EMU(1, 16), n = 2, h = 64, w = 48;
    InceptionNet *c = inception_random(div, 7, backend_cpu()), *g = inception_random(div, 7, be);
    inception_set_size(c, side);
    inception_set_size(g, side);
    int P = inception_pool_dim(c), L = inception_logit_dim(c);
    uint8_t *img = malloc((size_t)n * 3 * h * w);
    for (size_t i = 0; i < (size_t)n * 3 * h * w; i++) img[i] = (uint8_t)(i * 2654435761u >> 11);
    float *pc = malloc(sizeof(float) * n * P), *pg = malloc(sizeof(float) * n * P);
    float *lc = malloc(sizeof(float) * n * L), *lg = malloc(sizeof(float) * n * L);
    inception_forward(c, img, n, h, w, pc, lc);
    inception_forward(g, img, n, h, w, pg, lg);
    double ep = rel_err(pg, pc, (size_t)n * P), el = rel_err(lg, lc, (size_t)n * L);
    printf("test_cuda_inception: 1/%d width at %d px: pool %.2e, logits %.2e (max relative error)\n", div, side, ep,
           el);
    cr_expect(ep <= 1e-4 && el <= 1e-4, "CUDA against CPU: pool %.3g, logits %.3g > 1e-4", ep, el);
    free(img), free(pc), free(pg), free(lc), free(lg);
    inception_free(c);
    inception_free(g);
}
