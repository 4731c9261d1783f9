/* tests/bench/bench_lpips.c — what LPIPS costs: the FLOPs per image of VGG16's
 * features[0:30] at 256 px, counted from the network's own convolutions
 * (train/losses/lpips.c's weights and the resolution each one runs at),
 * against JiT-B/16's training step (3 x 2 x parameters x 256 tokens, the
 * rule of docs/pixelgen.md, from jit_register's count); then the measured
 * time of LPIPS forward (x_hat and x) and backward on the CPU at a given size
 * and width, against one VGG16 forward, in the same run.
 *
 *   bench_lpips [--size 32] [--div 16] [--batch 8] [--reps 5] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_pixelgen.h"
#include "bench_util.h"
#include "core/backend.h"
#include "core/ops.h"
#include "core/rng.h"
#include "train/losses/lpips.h"
#include "train/model/jit.h"

/* Multiply-adds of one image through the 13 convolutions at S x S pixels. */
static double vgg_macs(const LpipsNet *n, int S) {
    double macs = 0;
    int H = S;
    for (int i = 0; i < LPIPS_N_CONV; i++) {
        const Tensor *w = &n->w2d[i]; /* [OC, C*9] */
        macs += (double)H * H * w->shape[0] * w->shape[1];
        if (i == 1 || i == 3 || i == 6 || i == 9) H /= 2; /* the max poolings after relu1_2 .. relu4_3 */
    }
    return macs;
}

int main(int argc, char **argv) {
    int S = bench_arg_int(argc, argv, "--size", 32), div = bench_arg_int(argc, argv, "--div", 16);
    int B = bench_arg_int(argc, argv, "--batch", 8), reps = bench_arg_int(argc, argv, "--reps", 5);
    LpipsNet full;
    lpips_init(&full, 1);
    double g256 = 2 * vgg_macs(&full, 256) / 1e9;
    lpips_free(&full);
    double P = bench_jit_b16_params(0), jit = bench_step_gflop(P);
    printf("VGG16 features[0:30] at 256 px: %.2f GFLOP forward per image (docs/pixelgen.md: 40.1)\n", g256);
    printf("LPIPS per gated image (x_hat and x forward, x_hat backward to the input): %.1f GFLOP\n", 3 * g256);
    printf("JiT-B/16 training step per image: 3 x 2 x %.1fM parameters x 256 tokens = %.1f GFLOP"
           " (docs/pixelgen.md: ~201)\n",
           P / 1e6, jit);
    printf("LPIPS / JiT-B/16 per gated image: %.2fx\n", 3 * g256 / jit);

    LpipsNet n;
    lpips_init(&n, div);
    lpips_init_random(&n, 7);
    Graph g;
    graph_init(&g, backend_cpu(), 256u << 20);
    double fwd[64], all[64];
    for (int r = 0; r < reps && r < 64; r++) {
        Tensor *a, *b;
        bench_image_pair(&g, B, S, &a, &b);
        double t0 = bench_now_ms();
        Tensor *taps[LPIPS_N_TAPS];
        bool was = graph_set_grad(&g, false);
        lpips_features(&g, &n, op_patchify(&g, b, 1), S, S, taps);
        graph_set_grad(&g, was);
        double t1 = bench_now_ms();
        Tensor *d = lpips_distance(&g, &n, a, b, NULL);
        float *ones = malloc(sizeof(float) * (size_t)B);
        for (int i = 0; i < B; i++) ones[i] = 1.0f;
        graph_backward_from(&g, d, ones);
        free(ones);
        double t2 = bench_now_ms();
        fwd[r] = t1 - t0, all[r] = t2 - t1;
        graph_reset(&g);
    }
    double tf = bench_median(fwd, reps), ta = bench_median(all, reps);
    printf("CPU, %d images of %dx%d, VGG16 at 1/%d width, median of %d: one VGG16 forward %.2f ms; LPIPS forward + "
           "backward %.2f ms (%.2fx the forward); %.2f GFLOP/s\n",
           B, S, S, div, reps, tf, ta, ta / tf, 3 * 2 * vgg_macs(&n, S) * B / (ta * 1e6));
    graph_free(&g);
    lpips_free(&n);
    return 0;
}
