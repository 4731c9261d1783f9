/* tests/bench/bench_sla2.c — SLA2 forward + backward against full attention
 * on the CPU, in one run, d = 64:
 *   N = 96:   batch 32 x 3 heads, blocks 8 and 16 (the demo's jit-tiny step: 16);
 *   N = 288:  batch 4 x 12 heads, blocks 32 (JiT-B/16's 256 + 32 tokens);
 *   N = 1024, 4096: batch 1 x 4 heads, blocks 64;
 * at top-k 0.15 and 0.5 (and 0.05 from 1024 on), SLA2 by each CPU path
 * (tile by tile over the selected blocks; one dense masked attention,
 * kernels/cpu/sla2_dense.c, up to N = 1024; the selected blocks gathered,
 * kernels/cpu/sla2_gather.c), the path the CPU picks by itself (with the
 * gather path's linear form), and that path with QAT emulation.
 * Prints a markdown table of medians and full / SLA2 (above 1: SLA2 is
 * faster). A figure, not an assertion.
 *   bench_sla2 [--iters 5] [--max-n 4096] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/check.h"
#include "core/ops.h"
#include "core/rng.h"
#include "kernels/cpu/cpu.h"
#include "tests/bench/bench_util.h"

/* Median ms of forward + backward; cfg NULL = full attention. */
static double time_op(Graph *g, int B, int N, int d, int H, const Sla2Config *cfg, int iters) {
    double t[64];
    for (int it = 0; it < iters + 1; it++) {
        Tensor *q = graph_new(g, 4, B, H, N, d), *k = graph_new(g, 4, B, H, N, d), *v = graph_new(g, 4, B, H, N, d);
        Tensor *pq = graph_new(g, 2, d, d), *pk = graph_new(g, 2, d, d), *al = graph_new(g, 1, H);
        rng_fill_normal(q->data, q->numel, 1, RNG_STREAM_TEST, 0, 0, 1);
        rng_fill_normal(k->data, k->numel, 2, RNG_STREAM_TEST, 0, 0, 1);
        rng_fill_normal(v->data, v->numel, 3, RNG_STREAM_TEST, 0, 0, 1);
        memset(pq->data, 0, sizeof(float) * d * d);
        memset(pk->data, 0, sizeof(float) * d * d);
        for (int i = 0; i < d; i++) pq->data[i * d + i] = pk->data[i * d + i] = 1.0f;
        for (int h = 0; h < H; h++) al->data[h] = 2.2f;
        q->requires_grad = k->requires_grad = v->requires_grad = al->requires_grad = true;
        float *dout = graph_alloc(g, sizeof(float) * (size_t)B * N * H * d);
        rng_fill_normal(dout, (size_t)B * N * H * d, 4, RNG_STREAM_TEST, 0, 0, 1);
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
    const int d = 64;
    const struct {
        int N, B, H, block;
    } cases[] = {{96, 32, 3, 8}, {96, 32, 3, 16}, {288, 4, 12, 32}, {1024, 1, 4, 64}, {4096, 1, 4, 64}};
    Graph g;
    graph_init(&g, backend_cpu(), 1 << 20);
    printf("| N | batch x heads | blocks | top-k (k of nk) | full ms | SLA2 blocks ms | SLA2 dense ms | SLA2 gather ms "
           "| CPU picks | full / SLA2 | SLA2+QAT ms |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    static const char *path_names[] = {"auto", "blocks", "dense", "gather"};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int N = cases[ci].N, B = cases[ci].B, H = cases[ci].H, bs = cases[ci].block, nk = (N + bs - 1) / bs;
        if (N > max_n) break;
        double full = time_op(&g, B, N, d, H, NULL, iters);
        const float ratios[] = {0.05f, 0.15f, 0.5f};
        for (int r = N >= 1024 ? 0 : 1; r < 3; r++) {
            Sla2Config c = {.block_q = bs, .block_k = bs, .topk_ratio = ratios[r], .feature_map = SLA2_PHI_SOFTMAX,
                            .tau = 0.1f};
            double ms[4] = {-1, -1, -1, -1};
            for (int path = SLA2_CPU_BLOCKS; path <= SLA2_CPU_GATHER; path++) {
                if (path == SLA2_CPU_DENSE && N > 1024) continue; /* N x N per thread: too large */
                c.cpu_path = path;
                ms[path] = time_op(&g, B, N, d, H, &c, iters);
            }
            Sla2Dims dm = {.N = N, .d = d, .block_q = bs, .block_k = bs, .nq = nk, .nk = nk,
                           .k_sel = sla2_k_select(ratios[r], nk)};
            int picks = sla2_cpu_path(&dm);
            c.cpu_path = SLA2_CPU_AUTO, c.qat = 1;
            double qat = time_op(&g, B, N, d, H, &c, iters);
            char dbuf[32] = "-", pick[48];
            if (ms[SLA2_CPU_DENSE] >= 0) snprintf(dbuf, sizeof dbuf, "%.2f", ms[SLA2_CPU_DENSE]);
            snprintf(pick, sizeof pick, "%s%s", path_names[picks],
                     picks == SLA2_CPU_GATHER ? (sla2_cpu_linear_quadratic(&dm) ? " (quadratic)" : " (linear)") : "");
            printf("| %d | %d x %d | %d | %.2f (%d of %d) | %.2f | %.2f | %s | %.2f | %s | %.2fx | %.2f |\n", N, B, H, bs,
                   ratios[r], dm.k_sel, nk, full, ms[SLA2_CPU_BLOCKS], dbuf, ms[SLA2_CPU_GATHER], pick,
                   full / ms[picks], qat);
            fflush(stdout);
        }
    }
    graph_free(&g);
    return 0;
}
