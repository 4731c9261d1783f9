/* kernels/cuda/sla2_tc.cu — SLA2's sparse branch on tensor cores (BF16 mode,
 * hard top-k): the block-sparse launches of the FlashAttention-2-style
 * kernels (attention_tc_fwd.cu, attention_tc_bwd.cu) driven by the router's
 * mask as lists, so only selected (query block, key block) pairs are
 * computed, each as exactly one tile (tiles = the router's blocks, 16, 32 or
 * 64 tokens). The computation is the CPU's sparse_fwd / sparse_bwd
 * (kernels/cpu/sla2.c): exact softmax over the selected key blocks, LSE
 * saved, and in backward dO_s = alpha dout with D = rowsum(bf16(dO_s) . O_s)
 * from the forward's O_s (as full attention takes it from its O). Without
 * QAT the forward's epilogue also writes the op's output alpha O_s +
 * (1 - alpha) O_l (sla2.cu runs the linear branch first), so no separate
 * combine pass reads O_s and O_l again.
 *
 * Lists (one pass over the mask, ascending block order, in cuda_scratch
 * after the bf16 operands):
 *   list[bh][i][t], cnt[bh][i]:   the key blocks query block i selected
 *                                  (forward and dQ walk these);
 *   listT[bh][j][t], cntT[bh][j]: the query blocks that selected key block j
 *                                  (dK/dV walk these).
 * Soft top-k (router training) weights every pair and needs dL/dM; it keeps
 * the SIMT path of sla2_sparse.cu, as do blocks other than 16/32/64 and FP32
 * mode (the exact reference). */
#include <math.h>

#include "kernels/cuda/attention_tc.cuh"
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/sla2_internal.cuh"

int cuda_sla2_tc_ok(const Sla2Dims *dm, int bf16) {
    return bf16 && !dm->soft && at_sparse_block_ok(dm->block_q) && at_sparse_block_ok(dm->block_k) &&
           at_pad_hd(dm->d) != 0;
}

/* Threads [0, BH nq): one mask row each -> list, cnt; threads [BH nq, BH (nq + nk)):
 * one mask column each -> listT, cntT. */
__global__ void s2tc_lists_kernel(int *list, int *cnt, int *listT, int *cntT, const float *__restrict__ mask, int BH,
                                  int nq, int nk) {
    const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x, rows = (size_t)BH * nq;
    if (t < rows) {
        const float *m = mask + t * nk;
        int *l = list + t * nk, n = 0;
        for (int j = 0; j < nk; j++)
            if (m[j] != 0.0f) l[n++] = j;
        cnt[t] = n;
    } else if (t < rows + (size_t)BH * nk) {
        const size_t u = t - rows, bh = u / nk, j = u % nk;
        const float *m = mask + bh * nq * nk + j;
        int *l = listT + u * nq, n = 0;
        for (int i = 0; i < nq; i++)
            if (m[(size_t)i * nk] != 0.0f) l[n++] = i;
        cntT[u] = n;
    }
}

/* The bf16 operands (q, k, v, and dO's slot when `with_g`) and the lists in
 * one cuda_scratch buffer; the arguments of a block-sparse launch. */
static AtArgs s2tc_prepare(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                           int with_g) {
    const int BH = dm->B * dm->H, N = dm->N, d = dm->d, HDP = at_pad_hd(d), nq = dm->nq, nk = dm->nk;
    const size_t n = (size_t)BH * N * HDP, nl = (size_t)BH * nq * nk;
    const size_t bytes = sizeof(uint16_t) * n * (with_g ? 4 : 3) + sizeof(int) * (2 * nl + (size_t)BH * (nq + nk));
    uint16_t *bf = (uint16_t *)cuda_scratch(bytes);
    int *list = (int *)(bf + n * (with_g ? 4 : 3)), *listT = list + nl, *cnt = listT + nl, *cntT = cnt + (size_t)BH * nq;
    cudaStream_t st = cuda_compute_stream();
    at_convert(bf, q, BH, N, d, HDP);
    at_convert(bf + n, k, BH, N, d, HDP);
    at_convert(bf + 2 * n, v, BH, N, d, HDP);
    s2tc_lists_kernel<<<sla2_grid((size_t)BH * (nq + nk)), 256, 0, st>>>(list, cnt, listT, cntT, mask, BH, nq, nk);
    CUDA_CHECK_LAUNCH();
    AtArgs a = {};
    a.q = bf, a.k = bf + n, a.v = bf + 2 * n, a.g = with_g ? bf + 3 * n : NULL;
    a.B = dm->B, a.H = dm->H, a.N = N, a.hd = d;
    a.scale = 1.0f / sqrtf((float)d);
    at_strides_bhnd(&a); /* o_s is [B, H, N, d] */
    a.list = list, a.cnt = cnt, a.listT = listT, a.cntT = cntT;
    a.bq = dm->block_q, a.bk = dm->block_k, a.nq = nq, a.nk = nk;
    return a;
}

void cuda_sla2_sparse_tc_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                             float *o, float *lse, float *out, const float *o_l, const float *alpha_logit) {
    AtArgs a = s2tc_prepare(dm, q, k, v, mask, 0);
    a.o = o;
    a.lse = lse;
    a.comb = out, a.o_l = o_l, a.alpha_logit = alpha_logit;
    at_fwd(&a);
}

void cuda_sla2_sparse_tc_bwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                             const float *o_ref, const float *lse, const float *dout, const float *alpha_logit,
                             float *dq, float *dk, float *dv, float *D) {
    if (!dq && !dk && !dv) return;
    AtArgs a = s2tc_prepare(dm, q, k, v, mask, 1);
    at_dout_prep(D, (uint16_t *)a.g, dout, o_ref, 1, alpha_logit, dm->B, dm->H, dm->N, dm->d, at_pad_hd(dm->d));
    a.lse = (float *)lse; /* read only in backward */
    a.D = D;
    a.dq = dq, a.dk = dk, a.dv = dv;
    a.dq_atomic = at_bwd_atomic_dq();
    at_bwd(&a);
}
