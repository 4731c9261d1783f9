/* tests/bench/bench_dinov2.c — what DINOv2 ViT-B/14 costs PixelGen's REPA and
 * P-DINO: the FLOPs per image at 256 px (224 px input, 16 x 16 tokens + CLS),
 * counted from the network's own tensors (train/losses/dinov2.c: every
 * linear weight times the tokens it runs on, the attention core, the patch
 * embedding), against JiT-B/16's training step (3 x 2 x parameters x 256
 * tokens, docs/pixelgen.md's rule); then the measured time on the CPU at a
 * given grid and width: Phi of the clean image (no tape) and P-DINO's forward and
 * backward to x_hat, in the same run.
 *
 *   bench_dinov2 [--grid 4] [--div 16] [--batch 8] [--reps 5] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_pixelgen.h"
#include "bench_util.h"
#include "core/backend.h"
#include "core/ops.h"
#include "core/rng.h"
#include "train/losses/dinov2.h"
#include "train/model/jit.h"

/* Multiply-adds of one image's forward at an output grid of G x G. */
static double dino_macs(const DinoNet *n, int G) {
    double T = (double)G * G + 1, macs = 0;
    for (int i = 0; i < DINO_DEPTH; i++) {
        const DinoBlock *b = &n->blk[i];
        macs += T * (double)(b->qkv_w->numel + b->proj_w->numel + b->fc1_w->numel + b->fc2_w->numel);
        macs += 2.0 * T * T * n->dim; /* q k^T and the weighted sum of v, all heads */
    }
    return macs + (double)G * G * n->pe_w->numel;
}

static DinoNet prepared(int div, int G) {
    DinoNet n;
    dino_init(&n, div);
    dino_init_random(&n, 7);
    dino_prepare(&n, G, backend_cpu());
    return n;
}

int main(int argc, char **argv) {
    int G = bench_arg_int(argc, argv, "--grid", 4), div = bench_arg_int(argc, argv, "--div", 16);
    int B = bench_arg_int(argc, argv, "--batch", 8), reps = bench_arg_int(argc, argv, "--reps", 5);
    DinoNet full = prepared(1, 16);
    double f = 2 * dino_macs(&full, 16) / 1e9;
    size_t np = params_count(&full.w);
    dino_free(&full);
    double P = bench_jit_b16_params(0), jit = bench_step_gflop(P);
    double proj = bench_step_gflop(bench_jit_b16_params(768) - P);
    printf("DINOv2 ViT-B/14: %zu parameters (with mask_token: %zu; docs/pixelgen.md: 86,580,480)\n", np, np + 768);
    printf("DINOv2 forward at 224 px (256 px images): %.2f GFLOP per image (docs/pixelgen.md: 46.3)\n", f);
    printf("REPA target (one forward, no tape): %.1f GFLOP; REPA projector (forward + backward): %.1f GFLOP\n", f, proj);
    double core = 2 * 2.0 * DINO_DEPTH * 257.0 * 257 * DINO_WIDTH / 1e9; /* q k^T and a v, all blocks */
    printf("P-DINO (forward + backward to the input: linear 1x, attention core 2x): %.1f GFLOP"
           " (docs/pixelgen.md: 95.1)\n",
           f + (f - core) + 2 * core);
    printf("JiT-B/16 training step per image: %.1f GFLOP; DINOv2 forward / JiT step: %.2fx\n", jit, f / jit);

    DinoNet n = prepared(div, G);
    int S = 16 * G;
    Graph g;
    graph_init(&g, backend_cpu(), 512u << 20);
    double tgt[64], pd[64];
    for (int r = 0; r < reps && r < 64; r++) {
        Tensor *a, *b;
        bench_image_pair(&g, B, S, &a, &b);
        double t0 = bench_now_ms();
        bool was = graph_set_grad(&g, false);
        Tensor *y = dino_features(&g, &n, b);
        graph_set_grad(&g, was);
        double t1 = bench_now_ms();
        Tensor *c = op_cosine(&g, dino_features(&g, &n, a), y);
        float *s = malloc(sizeof(float) * c->numel);
        for (size_t i = 0; i < c->numel; i++) s[i] = -1.0f / (float)c->numel;
        graph_backward_from(&g, c, s);
        free(s);
        double t2 = bench_now_ms();
        tgt[r] = t1 - t0, pd[r] = t2 - t1;
        graph_reset(&g);
    }
    double tt = bench_median(tgt, reps), tp = bench_median(pd, reps);
    printf("CPU, %d images of %dx%d (%dx%d tokens), DINOv2 at 1/%d width, median of %d: target forward %.2f ms; "
           "P-DINO forward + backward %.2f ms (%.2fx the target)\n",
           B, S, S, G, G, div, reps, tt, tp, tp / tt);
    graph_free(&g);
    dino_free(&n);
    return 0;
}
