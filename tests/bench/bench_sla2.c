/* tests/bench/bench_sla2.c — SLA2 forward + backward against full attention
 * on the CPU, in one run: N = 256, 1024, 4096 (d = 64, 4 heads, batch 1,
 * blocks 64/64), top-k 0.05 / 0.15 / 0.5, with and without QAT emulation.
 * Prints a markdown table of medians and the ratio full / SLA2 (above 1:
 * SLA2 is faster). A figure, not an assertion.
 *   bench_sla2 [--iters 5] [--max-n 4096] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/check.h"
#include "core/ops.h"
#include "core/rng.h"
#include "tests/bench/bench_util.h"

/* Median ms of forward + backward; cfg NULL = full attention. */
static double time_op(Graph *g, int N, int d, int H, const Sla2Config *cfg, int iters) {
    double t[64];
    for (int it = 0; it < iters + 1; it++) {
        Tensor *q = graph_new(g, 4, 1, H, N, d), *k = graph_new(g, 4, 1, H, N, d), *v = graph_new(g, 4, 1, H, N, d);
        Tensor *pq = graph_new(g, 2, d, d), *pk = graph_new(g, 2, d, d), *al = graph_new(g, 1, H);
        rng_fill_normal(q->data, q->numel, 1, RNG_STREAM_TEST, 0, 0, 1);
        rng_fill_normal(k->data, k->numel, 2, RNG_STREAM_TEST, 0, 0, 1);
        rng_fill_normal(v->data, v->numel, 3, RNG_STREAM_TEST, 0, 0, 1);
        memset(pq->data, 0, sizeof(float) * d * d);
        memset(pk->data, 0, sizeof(float) * d * d);
        for (int i = 0; i < d; i++) pq->data[i * d + i] = pk->data[i * d + i] = 1.0f;
        for (int h = 0; h < H; h++) al->data[h] = 2.2f;
        q->requires_grad = k->requires_grad = v->requires_grad = al->requires_grad = true;
        float *dout = graph_alloc(g, sizeof(float) * (size_t)N * H * d);
        rng_fill_normal(dout, (size_t)N * H * d, 4, RNG_STREAM_TEST, 0, 0, 1);
        double t0 = bench_now_ms();
        Tensor *o = cfg ? op_sla2(g, q, k, v, pq, pk, al, cfg, NULL) : op_attention(g, q, k, v);
        graph_backward_from(g, o, dout);
        double dt = bench_now_ms() - t0;
        graph_reset(g);
        if (it > 0) t[it - 1] = dt; /* the first run sizes the arena */
    }
    qsort(t, (size_t)iters, sizeof(double), bench_cmp_double);
    return t[iters / 2];
}

int main(int argc, char **argv) {
    int iters = 5, max_n = 4096;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-n")) max_n = atoi(argv[i + 1]);
        else FAIL("unknown option %s (use --iters N --max-n N)", argv[i]);
    }
    CHECK(iters >= 1 && iters <= 64, "--iters must be in [1, 64]");
    const int d = 64, H = 4;
    Graph g;
    graph_init(&g, &ops_cpu, DEVICE_CPU, 1 << 20);
    printf("| N | full attention ms | top-k | SLA2 ms | full/SLA2 | SLA2+QAT ms | full/(SLA2+QAT) |\n");
    printf("|---|---|---|---|---|---|---|\n");
    const float ratios[] = {0.05f, 0.15f, 0.5f};
    for (int N = 256; N <= max_n; N *= 4) {
        double full = time_op(&g, N, d, H, NULL, iters);
        for (int r = 0; r < 3; r++) {
            Sla2Config c = {.block_q = 64, .block_k = 64, .topk_ratio = ratios[r], .feature_map = SLA2_PHI_SOFTMAX,
                            .tau = 0.1f};
            double s = time_op(&g, N, d, H, &c, iters);
            c.qat = 1;
            double sq = time_op(&g, N, d, H, &c, iters);
            printf("| %d | %.2f | %.2f (k=%d of %d) | %.2f | %.2fx | %.2f | %.2fx |\n", N, full, ratios[r],
                   sla2_k_select(ratios[r], N / 64), N / 64, s, full / s, sq, full / sq);
            fflush(stdout);
        }
    }
    graph_free(&g);
    return 0;
}
