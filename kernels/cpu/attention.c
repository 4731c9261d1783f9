/* kernels/cpu/attention.c — head split and full multi-head softmax attention.
 *
 * One (batch, head) pair per OpenMP iteration; the products inside are sgemm
 * calls, which the OpenMP build of OpenBLAS runs single-threaded inside a
 * parallel region. The probabilities P are kept for backward (the CPU is the
 * reference, not the memory-lean path; the CUDA kernel recomputes them). */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "kernels/cpu/cpu.h"

void cpu_qkv_split_fwd(float *q, float *k, float *v, const float *qkv, int B, int N, int H, int hd) {
    int D = H * hd;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++) {
            const float *src = qkv + ((size_t)b * N + n) * 3 * D;
            for (int h = 0; h < H; h++) {
                size_t dst = (((size_t)b * H + h) * N + n) * hd;
                memcpy(q + dst, src + h * hd, (size_t)hd * sizeof(float));
                memcpy(k + dst, src + D + h * hd, (size_t)hd * sizeof(float));
                memcpy(v + dst, src + 2 * D + h * hd, (size_t)hd * sizeof(float));
            }
        }
}

void cpu_qkv_split_bwd(float *dqkv, const float *dq, const float *dk, const float *dv, int B, int N, int H, int hd) {
    int D = H * hd;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++) {
            float *dst = dqkv + ((size_t)b * N + n) * 3 * D;
            for (int h = 0; h < H; h++) {
                size_t src = (((size_t)b * H + h) * N + n) * hd;
                for (int c = 0; c < hd; c++) {
                    if (dq) dst[h * hd + c] += dq[src + c];
                    if (dk) dst[D + h * hd + c] += dk[src + c];
                    if (dv) dst[2 * D + h * hd + c] += dv[src + c];
                }
            }
        }
}

/* The CPU keeps the probabilities for backward (one sgemm instead of
 * recomputing them), and backward needs one N x N buffer per (b, h). */
size_t cpu_attention_saved_floats(int B, int H, int N, int hd) {
    (void)hd;
    return (size_t)B * H * N * N;
}
size_t cpu_attention_scratch_floats(int B, int H, int N, int hd) {
    (void)hd;
    return (size_t)B * H * N * N;
}

void cpu_attention_fwd(float *out, float *att, const float *q, const float *k, const float *v, int B, int H, int N,
                       int hd) {
    int C = H * hd;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t bh = (size_t)b * H + h;
            const float *qb = q + bh * N * hd, *kb = k + bh * N * hd, *vb = v + bh * N * hd;
            float *P = att + bh * N * N;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, hd, scale, qb, hd, kb, hd, 0.0f, P, N);
            for (int i = 0; i < N; i++) {
                float *row = P + (size_t)i * N;
                float mx = cpu_max_f32(row, N);
                for (int j = 0; j < N; j++) row[j] = cpu_expf(row[j] - mx);
                float inv = (float)(1.0 / cpu_sum_f64(row, N));
                for (int j = 0; j < N; j++) row[j] *= inv;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, hd, N, 1.0f, P, N, vb, hd, 0.0f,
                        out + (size_t)b * N * C + (size_t)h * hd, C);
        }
}

/* dP = dO V^T; dV += P^T dO; dS = P (dP - rowsum(P dP)); dQ += dS K s; dK += dS^T Q s */
void cpu_attention_bwd(float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *out,
                       const float *att, const float *q, const float *k, const float *v, int B, int H, int N, int hd) {
    (void)out; /* D = rowsum(P dP) comes from the saved probabilities */
    int C = H * hd;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t bh = (size_t)b * H + h;
            const float *qb = q + bh * N * hd, *kb = k + bh * N * hd, *vb = v + bh * N * hd;
            const float *P = att + bh * N * N;
            const float *dO = dout + (size_t)b * N * C + (size_t)h * hd;
            float *dS = scratch + bh * N * N;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, hd, 1.0f, dO, C, vb, hd, 0.0f, dS, N);
            if (dv)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, hd, N, 1.0f, P, N, dO, C, 1.0f, dv + bh * N * hd,
                            hd);
            for (int i = 0; i < N; i++) {
                float *ds = dS + (size_t)i * N;
                const float *p = P + (size_t)i * N;
                float fd = (float)cpu_dot_f64(p, ds, N);
                for (int j = 0; j < N; j++) ds[j] = p[j] * (ds[j] - fd);
            }
            if (dq)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, hd, N, scale, dS, N, kb, hd, 1.0f,
                            dq + bh * N * hd, hd);
            if (dk)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, hd, N, scale, dS, N, qb, hd, 1.0f,
                            dk + bh * N * hd, hd);
        }
}
