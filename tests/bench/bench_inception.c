/* tests/bench/bench_inception.c — what the FID Inception-v3 costs
 * (train/eval/inception.c): its FLOPs per image at 299 x 299, counted from
 * the network's own layers (inception_flops), the measured images/s of its
 * forward on this backend (the CPU unless --cuda), chunk by chunk as
 * inception_forward runs it, and the GPU images/s predicted from the FLOPs:
 * a prediction, not a measurement, from the stated rate GPU_FP32_RATE
 * (matrix products in fp32 without TF32, as FID parity needs; see
 * docs/eval.md, "Cost").
 *
 *   bench_inception [--images 8] [--reps 3] [--div 1] [--size 256] [--chunk 4] [--cuda 0] */
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"
#include "core/backend.h"
#include "train/eval/inception.h"

/* H100 SXM: 67 TFLOP/s fp32 (CUDA cores) peak; cuBLAS SGEMM on large
 * products reaches about 60% of it. */
#define GPU_FP32_RATE 40e12

int main(int argc, char **argv) {
    int n = bench_arg_int(argc, argv, "--images", 8), reps = bench_arg_int(argc, argv, "--reps", 3);
    int div = bench_arg_int(argc, argv, "--div", 1), S = bench_arg_int(argc, argv, "--size", 256);
    int chunk = bench_arg_int(argc, argv, "--chunk", 4);
    const Backend *be = bench_arg_int(argc, argv, "--cuda", 0) ? backend_open("cuda", BACKEND_PREC_FP32, 0, "bench")
                                                              : backend_cpu();
    InceptionNet *net = inception_random(div, 1, be);
    inception_set_chunk(net, chunk);
    double flops = inception_flops(net);
    printf("Inception-v3 (FID) at 1/%d width, 299 x 299: %.3f GFLOP per image forward (2 per multiply-add, from the "
           "layers)\n",
           div, flops / 1e9);
    printf("predicted GPU (H100 SXM, fp32 products at %.0f TFLOP/s, a prediction): %.0f images/s\n",
           GPU_FP32_RATE / 1e12, GPU_FP32_RATE / flops);
    uint8_t *img = malloc((size_t)n * 3 * S * S);
    for (size_t i = 0; i < (size_t)n * 3 * S * S; i++) img[i] = (uint8_t)(i * 2654435761u >> 13);
    float *pool = malloc(sizeof(float) * (size_t)n * inception_pool_dim(net));
    inception_forward(net, img, chunk < n ? chunk : n, S, S, pool, NULL); /* warm-up: the arena's high water */
    double t[16];
    for (int r = 0; r < reps && r < 16; r++) {
        double t0 = bench_now_ms();
        inception_forward(net, img, n, S, S, pool, NULL);
        t[r] = bench_now_ms() - t0;
    }
    double ms = bench_median(t, reps < 16 ? reps : 16);
    printf("%s, %d images of %dx%d in chunks of %d, median of %d: %.0f ms, %.2f images/s, %.1f GFLOP/s\n", be->name,
           n, S, S, chunk, reps, ms, n * 1e3 / ms, flops * n / (ms * 1e6));
    free(img), free(pool);
    inception_free(net);
    return 0;
}
