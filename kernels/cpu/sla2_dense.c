/* kernels/cpu/sla2_dense.c — SLA2's sparse branch as one dense masked
 * attention per (batch, head): S = Q K^T / sqrt(d) over all N x N pairs in
 * one sgemm, every score outside the selected blocks masked out, then the
 * same weighted softmax and P V as kernels/cpu/sla2.c's block path.
 *
 * Why: at short sequences the blocks are too few for sparsity to pay, and
 * one N x N product replaces dozens of tile products. The result is the
 * block path's up to float rounding (the row sums are accumulated in another
 * order); test_sla2's sla2_paths tests hold the paths together, forward and
 * backward, hard and soft, with and without QAT. Measured
 * (tests/bench/bench_sla2.c, 2 cores), it is not faster than the tile path
 * at N = 96, 288 or 1024 (the N x N products do the masked-out work too),
 * so it runs only when asked (Sla2Config.cpu_path): a second, independently
 * written computation of the sparse branch that the tests hold the others to. */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/sla2_internal.h"

size_t sla2_dense_scratch_floats(const Sla2Dims *dm) { return 2 * (size_t)dm->N * dm->N; }

/* The per-column weight of query block i's row (the mask expanded over the
 * key tokens). */
static void dense_row_weights(const Sla2Dims *dm, const float *mask, int i, float *wrow) {
    for (int b = 0; b < dm->N; b++) wrow[b] = mask[(size_t)i * dm->nk + b / dm->block_k];
}

void sla2_sparse_fwd_dense(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                           float *o, float *lse, float *scratch) {
    int N = dm->N, d = dm->d;
    float scale = 1.0f / sqrtf((float)d), *S = scratch, *wrow = scratch + (size_t)N * N;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, d, scale, q, d, k, d, 0.0f, S, N);
    for (int i = 0; i < dm->nq; i++) {
        dense_row_weights(dm, mask, i, wrow);
        int a0 = i * dm->block_q, na = sla2_block_len(i, dm->block_q, N);
        for (int a = a0; a < a0 + na; a++) {
            float *row = S + (size_t)a * N, mx = -INFINITY;
            for (int b = 0; b < N; b++) mx = wrow[b] != 0.0f && row[b] > mx ? row[b] : mx;
            float l = 0.0f;
            for (int b = 0; b < N; b++) {
                float p = wrow[b] != 0.0f ? wrow[b] * cpu_expf(row[b] - mx) : 0.0f;
                row[b] = p;
                l += p;
            }
            lse[a] = mx + logf(l);
            float inv = 1.0f / l;
            for (int b = 0; b < N; b++) row[b] *= inv;
        }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, d, N, 1.0f, S, N, v, d, 0.0f, o, d);
}

void sla2_sparse_bwd_dense(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                           const float *o_ref, const float *lse, const float *gs, float *dq, float *dk, float *dv,
                           float *dmask, double *blocksum, float *scratch) {
    int N = dm->N, d = dm->d, nk = dm->nk;
    float scale = 1.0f / sqrtf((float)d), *S = scratch, *P = scratch + (size_t)N * N;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, d, scale, q, d, k, d, 0.0f, S, N);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, d, 1.0f, gs, d, v, d, 0.0f, P, N); /* dP */
    for (int i = 0; i < dm->nq; i++) {
        int a0 = i * dm->block_q, na = sla2_block_len(i, dm->block_q, N);
        if (dm->soft) memset(blocksum, 0, sizeof(double) * (size_t)nk);
        const float *mrow = mask + (size_t)i * nk;
        for (int a = a0; a < a0 + na; a++) {
            float D = cblas_sdot(d, gs + (size_t)a * d, 1, o_ref + (size_t)a * d, 1), la = lse[a];
            float *srow = S + (size_t)a * N, *prow = P + (size_t)a * N;
            for (int b = 0; b < N; b++) {
                float wgt = mrow[b / dm->block_k];
                if (wgt == 0.0f) {
                    srow[b] = prow[b] = 0.0f;
                    continue;
                }
                float p = cpu_expf(srow[b] - la); /* unweighted: P = wgt * p */
                float g = p * (prow[b] - D);
                if (dm->soft) blocksum[b / dm->block_k] += g;
                srow[b] = wgt * g; /* dS */
                prow[b] = wgt * p; /* P */
            }
        }
        if (dm->soft)
            for (int j = 0; j < nk; j++) dmask[(size_t)i * nk + j] += (float)blocksum[j];
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, d, N, 1.0f, P, N, gs, d, 1.0f, dv, d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, d, N, scale, S, N, k, d, 1.0f, dq, d);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, d, N, scale, S, N, q, d, 1.0f, dk, d);
}
