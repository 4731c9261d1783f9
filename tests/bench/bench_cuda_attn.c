/* tests/bench/bench_cuda_attn.c — GPU attention timings: our flash-style full
 * attention (attention.cu) forward and backward, and SLA2 (top-k 0.15,
 * blocks 64/64 and 32/32, hard mask, softmax feature map) at N = 256, 1024, 4096,
 * 16384, head dim 64, with B*H = tokens / N so every size has the same
 * number of query rows and fills the GPU. One line per size and op:
 *   attn N=1024 B=4 H=16 d=64 prec=fp32 fwd_ms=... bwd_ms=... total_ms=... fwd_tflops=... bwd_tflops=...
 *        total_tflops=...
 *   sla2 N=1024 ... topk=0.15 fwd_ms=... bwd_ms=... total_ms=... dense_tflops=... vs_full=...
 * FLOPs follow FlashAttention's count: forward 4 B H N^2 d, backward 2.5x
 * that (recomputation not counted); SLA2's dense_tflops is the dense count
 * over SLA2's time (the effective rate), vs_full = full time / SLA2 time.
 * Medians over --iters runs after two warm-ups. Exit 77 without a GPU.
 *   bench_cuda_attn [--iters 10] [--max-n 16384] [--tokens 65536] [--prec fp32|bf16] [--no-sla2] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/check.h"
#include "core/ops.h"
#include "core/rng.h"
#include "kernels/cuda/ops_cuda.h"
#include "tests/bench/bench_cuda_time.h"

/* SLA2 (hard top-k, softmax features, no QAT, router gradients off): median forward and backward ms. */
static Times time_sla2(int B, int H, int N, int d, float ratio, int block, int iters) {
    Sla2Dims dm = {.B = B, .H = H, .N = N, .d = d, .block_q = block, .block_k = block, .nq = (N + block - 1) / block,
                   .nk = (N + block - 1) / block, .feature_map = SLA2_PHI_SOFTMAX, .soft = 0, .qat = 0, .tau = 0.1f};
    dm.k_sel = sla2_k_select(ratio, dm.nk);
    const size_t nt = (size_t)B * H * N * d, nb = (size_t)B * H * dm.nq * dm.nk, dd = (size_t)d * d;
    float *q = dev_normal(nt, 1, 1.0f), *k = dev_normal(nt, 2, 1.0f), *v = dev_normal(nt, 3, 1.0f);
    float *dout = dev_normal(nt, 4, 1.0f), *out = dev_zeros(nt), *dq = dev_zeros(nt), *dk = dev_zeros(nt),
          *dv = dev_zeros(nt);
    float *eye = calloc(dd, sizeof(float)), *al = malloc((size_t)H * sizeof(float));
    for (int i = 0; i < d; i++) eye[i * d + i] = 1.0f;
    for (int h = 0; h < H; h++) al[h] = 2.1972246f; /* alpha = 0.9 */
    float *pq = cuda_malloc(dd * sizeof(float)), *pk = cuda_malloc(dd * sizeof(float)),
          *dal = dev_zeros((size_t)H), *ald = cuda_malloc((size_t)H * sizeof(float));
    cuda_memcpy_h2d(pq, eye, dd * sizeof(float));
    cuda_memcpy_h2d(pk, eye, dd * sizeof(float));
    cuda_memcpy_h2d(ald, al, (size_t)H * sizeof(float));
    free(eye), free(al);
    Sla2Saved sv = {dev_zeros(nb), dev_zeros(nb), dev_zeros((size_t)B * H * N), dev_zeros(nt), NULL, dev_zeros(nt), NULL};
    float *ws = dev_zeros(ops_cuda.sla2_workspace_floats(&dm));
    double tf[256], tb[256];
    for (int it = 0; it < iters + 2; it++) {
        cuda_synchronize();
        double t0 = bench_now_ms();
        ops_cuda.sla2_fwd(out, &sv, ws, q, k, v, pq, pk, ald, &dm);
        cuda_synchronize();
        double t1 = bench_now_ms();
        ops_cuda.sla2_bwd(dq, dk, dv, NULL, NULL, dal, ws, dout, &sv, q, k, v, pq, pk, ald, &dm);
        cuda_synchronize();
        double t2 = bench_now_ms();
        if (it >= 2) tf[it - 2] = t1 - t0, tb[it - 2] = t2 - t1;
    }
    float *bufs[] = {q, k, v, dout, out, dq, dk, dv, pq, pk, dal, ald, sv.mask, sv.pc, sv.lse, sv.o_s, sv.o_l, ws};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) cuda_free(bufs[i]);
    return (Times){bench_median(tf, iters), bench_median(tb, iters)};
}

int main(int argc, char **argv) {
    int iters = 10, max_n = 16384, tokens = 65536, sla2 = 1;
    const char *prec = "fp32";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-sla2")) sla2 = 0;
        else if (i + 1 < argc && !strcmp(argv[i], "--iters")) iters = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--max-n")) max_n = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--tokens")) tokens = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--prec")) prec = argv[++i];
        else FAIL("unknown option %s (use --iters N --max-n N --tokens N --prec fp32|bf16 --no-sla2)", argv[i]);
    }
    CHECK(iters >= 1 && iters <= 256, "--iters %d: use 1 to 256", iters);
    CHECK(!strcmp(prec, "fp32") || !strcmp(prec, "bf16"), "--prec %s: use fp32 or bf16", prec);
    if (cuda_device_count() == 0) {
        fprintf(stderr, "bench_cuda_attn: no CUDA device: nothing to time (run it on a GPU machine)\n");
        return 77;
    }
    cuda_init(0);
    cuda_set_precision(!strcmp(prec, "bf16") ? CUDA_PREC_BF16 : CUDA_PREC_FP32);
    char name[256];
    printf("# %s, %d iterations (median), B*H = %d / N, d = 64\n", cuda_device_name(name, sizeof name), iters,
           tokens);
    const int d = 64, sizes[] = {256, 1024, 4096, 16384};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int N = sizes[s];
        if (N > max_n) break;
        int BH = tokens / N < 1 ? 1 : tokens / N, H = BH < 16 ? BH : 16, B = BH / H;
        double fl = 4.0 * B * H * (double)N * N * d; /* forward; backward counts 2.5x */
        Times a = time_attention(B, H, N, d, iters);
        printf("attn N=%d B=%d H=%d d=%d prec=%s fwd_ms=%.3f bwd_ms=%.3f total_ms=%.3f fwd_tflops=%.2f "
               "bwd_tflops=%.2f total_tflops=%.2f\n",
               N, B, H, d, prec, a.fwd, a.bwd, a.fwd + a.bwd, fl / a.fwd * 1e-9, 2.5 * fl / a.bwd * 1e-9,
               3.5 * fl / (a.fwd + a.bwd) * 1e-9);
        fflush(stdout);
        if (!sla2) continue;
        for (int block = 64; block >= 32; block /= 2) { /* SLA's default, then the JiT configurations' */
            Times t = time_sla2(B, H, N, d, 0.15f, block, iters);
            printf("sla2 N=%d B=%d H=%d d=%d prec=%s topk=0.15 blocks=%d fwd_ms=%.3f bwd_ms=%.3f total_ms=%.3f "
                   "dense_tflops=%.2f vs_full=%.2f\n",
                   N, B, H, d, prec, block, t.fwd, t.bwd, t.fwd + t.bwd, 3.5 * fl / (t.fwd + t.bwd) * 1e-9,
                   (a.fwd + a.bwd) / (t.fwd + t.bwd));
            fflush(stdout);
        }
    }
    return 0;
}
