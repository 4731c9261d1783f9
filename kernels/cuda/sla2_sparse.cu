/* kernels/cuda/sla2_sparse.cu — SLA2's sparse branch on the GPU (twin of
 * sparse_fwd / sparse_bwd in kernels/cpu/sla2.c): exact softmax attention
 * over the selected (hard) or weighted (soft) key blocks, through
 * attention.cu's flash kernels with the block mask as weights, so no N x N
 * matrix is formed and unselected key tiles are skipped. The row
 * log-sum-exp is saved; the backward takes D = dO_s . O_s from the saved
 * full-precision branch output instead of recomputing it (FP32 mode).
 *
 * Soft top-k also needs dL/dM per (query block, key block): the sum of
 * p (dP - D) over the block pair. One thread block per pair computes it in
 * a fixed order (no atomics), recomputing the pair's logits.
 *
 * BF16 mode with a hard mask and blocks of 16, 32 or 64 runs the
 * tensor-core kernels block-sparse instead (sla2_tc.cu); the kernels here
 * stay for FP32 mode (the exact reference), soft top-k and other blocks. */
#include <math.h>

#include "kernels/cuda/attention_flash.cuh"
#include "kernels/cuda/flash_tile.cuh"
#include "kernels/cuda/sla2_internal.cuh"

static FlashArgs sp_args(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                         int bf16) {
    FlashArgs a = {};
    a.q = q, a.k = k, a.v = v;
    a.B = dm->B, a.H = dm->H, a.N = dm->N, a.hd = dm->d;
    a.scale = 1.0f / sqrtf((float)dm->d);
    a.bf16 = bf16;
    a.o_sb = (long long)dm->H * dm->N * dm->d; /* o_s is [B, H, N, d] */
    a.o_sh = (long long)dm->N * dm->d;
    a.o_rs = dm->d;
    a.g_sb = (long long)dm->N * dm->H * dm->d; /* dout is [B, N, H*d] */
    a.g_sh = dm->d;
    a.g_rs = (long long)dm->H * dm->d;
    a.mask = mask;
    a.bq = dm->block_q, a.bk = dm->block_k, a.nq = dm->nq, a.nk = dm->nk;
    return a;
}

void cuda_sla2_sparse_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                          float *o, float *lse, int bf16) {
    if (cuda_sla2_tc_ok(dm, bf16)) return cuda_sla2_sparse_tc_fwd(dm, q, k, v, mask, o, lse, NULL, NULL, NULL);
    FlashArgs a = sp_args(dm, q, k, v, mask, bf16);
    a.o = o;
    a.lse = lse;
    cuda_flash_fwd(&a);
}

/* D[bh][n] = (alpha dout[b, n, h]) . o_ref[bh][n]: one warp per row. */
__global__ void sp_D_kernel(float *D, const float *dout, const float *o_ref, const float *alpha_logit, int B, int H,
                            int N, int d) {
    const size_t row = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    if (row >= (size_t)B * H * N) return; /* whole warps leave together */
    const int n = (int)(row % N), h = (int)(row / N % H), b = (int)(row / ((size_t)N * H));
    const float alpha = 1.0f / (1.0f + expf(-alpha_logit[h]));
    const float *g = dout + ((size_t)b * N + n) * H * d + (size_t)h * d, *o = o_ref + row * d;
    float s = 0.0f;
    for (int c = lane; c < d; c += 32) s += (alpha * g[c]) * o[c];
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (lane == 0) D[row] = s;
}

/* dmask[bh][i][j] = sum over the pair's tokens of p (dP - D), p = exp(s - lse)
 * unweighted (the weight's own gradient). Grid (nq*nk, B*H). */
template <int HDP, int RM, int CM>
__global__ void __launch_bounds__(FL_THREADS) sp_dmask_kernel(FlashArgs a, float *dmask) {
    constexpr int TR = 16 * RM, TC = 16 * CM, LD = HDP + 1;
    extern __shared__ float fl_smem[];
    __shared__ double red[FL_THREADS];
    float *Qs = fl_smem, *Gs = Qs + TR * LD, *Ks = Gs + TR * LD, *Vs = Ks + TC * LD;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int bh = blockIdx.y, b = bh / a.H, h = bh % a.H, N = a.N, hd = a.hd;
    const int i = blockIdx.x / a.nk, j = blockIdx.x % a.nk;
    const size_t mi = ((size_t)bh * a.nq + i) * a.nk + j, base = (size_t)bh * N * hd;
    if (a.mask[mi] == 0.0f) { /* a pair the CPU does not visit keeps 0 */
        if (tid == 0) dmask[mi] = 0.0f;
        return;
    }
    const float gmul = 1.0f / (1.0f + expf(-a.alpha_logit[h]));
    const float *dout = a.dout + (size_t)b * a.g_sb + (size_t)h * a.g_sh;
    const int qa0 = i * a.bq, qa1 = min(qa0 + a.bq, N), kb0 = j * a.bk, kb1 = min(kb0 + a.bk, N);
    double tsum = 0.0;
    for (int r0 = qa0; r0 < qa1; r0 += TR) {
        const int rn = min(TR, qa1 - r0);
        __syncthreads(); /* the previous rows' products are done with Qs, Gs */
        fl_load_rows<TR, HDP>(Qs, a.q + base + (size_t)r0 * hd, hd, rn, hd, 1.0f, a.bf16);
        fl_load_rows<TR, HDP>(Gs, dout + (size_t)r0 * a.g_rs, a.g_rs, rn, hd, gmul, a.bf16);
        float lse[RM], Dr[RM];
#pragma unroll
        for (int ii = 0; ii < RM; ii++) {
            const int r = ty + 16 * ii;
            lse[ii] = r < rn ? a.lse[(size_t)bh * N + r0 + r] : 0.0f;
            Dr[ii] = r < rn ? a.D[(size_t)bh * N + r0 + r] : 0.0f;
        }
        for (int c0 = kb0; c0 < kb1; c0 += TC) {
            const int cn = min(TC, kb1 - c0);
            __syncthreads(); /* Q/G stored; the previous columns' products are done with Ks, Vs */
            fl_load_rows<TC, HDP>(Ks, a.k + base + (size_t)c0 * hd, hd, cn, hd, 1.0f, a.bf16);
            fl_load_rows<TC, HDP>(Vs, a.v + base + (size_t)c0 * hd, hd, cn, hd, 1.0f, a.bf16);
            __syncthreads();
            float s[RM][CM], dp[RM][CM];
#pragma unroll
            for (int ii = 0; ii < RM; ii++)
#pragma unroll
                for (int jj = 0; jj < CM; jj++) s[ii][jj] = dp[ii][jj] = 0.0f;
            fl_mm_nt<RM, CM, HDP, LD, LD>(s, Qs, Ks, ty, tx);
            fl_mm_nt<RM, CM, HDP, LD, LD>(dp, Gs, Vs, ty, tx);
#pragma unroll
            for (int ii = 0; ii < RM; ii++)
#pragma unroll
                for (int jj = 0; jj < CM; jj++)
                    if (ty + 16 * ii < rn && tx + 16 * jj < cn) {
                        const float p = expf(s[ii][jj] * a.scale - lse[ii]);
                        tsum += (double)(p * (dp[ii][jj] - Dr[ii]));
                    }
        }
    }
    red[tid] = tsum;
    __syncthreads();
    for (int w = FL_THREADS / 2; w > 0; w >>= 1) {
        if (tid < w) red[tid] += red[tid + w];
        __syncthreads();
    }
    if (tid == 0) dmask[mi] = (float)red[0];
}

template <int HDP, int RM, int CM>
static void sp_launch_dmask(const FlashArgs &a, float *dmask) {
    constexpr int TR = 16 * RM, TC = 16 * CM, LD = HDP + 1;
    const size_t smem = sizeof(float) * (size_t)(2 * TR * LD + 2 * TC * LD);
    fl_smem_optin(sp_dmask_kernel<HDP, RM, CM>, smem);
    dim3 grid((unsigned)((size_t)a.nq * a.nk), (unsigned)(a.B * a.H));
    sp_dmask_kernel<HDP, RM, CM><<<grid, FL_THREADS, smem, cuda_compute_stream()>>>(a, dmask);
    CUDA_CHECK_LAUNCH();
}

/* Small blocks (both <= 16) get 16 x 16 tiles, the rest 64 x 64 (32 x 32 at head dim 128). */
template <int HDP>
static void sp_dmask(const FlashArgs &a, float *dmask) {
    if (a.bq <= 16 && a.bk <= 16) sp_launch_dmask<HDP, 1, 1>(a, dmask);
    else if (HDP > 64) sp_launch_dmask<HDP, 2, 2>(a, dmask);
    else sp_launch_dmask<HDP, 4, 4>(a, dmask);
}

void cuda_sla2_sparse_bwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                          const float *o_ref, const float *lse, const float *dout, const float *alpha_logit,
                          float *dq, float *dk, float *dv, int bf16, Sla2GpuWs *w) {
    const int BH = dm->B * dm->H, N = dm->N;
    cudaStream_t st = cuda_compute_stream();
    if (!dq && !dk && !dv && !dm->soft) return;
    if (cuda_sla2_tc_ok(dm, bf16))
        return cuda_sla2_sparse_tc_bwd(dm, q, k, v, mask, o_ref, lse, dout, alpha_logit, dq, dk, dv, w->D);
    /* FP32: D = dO . O_s from the saved branch, as the CPU. BF16: D = rowsum(P dP)
     * recomputed from the same rounded operands as dP, so every row of dS still
     * sums to zero; with D from O_s, a row whose softmax is one key (P = 1, exact
     * dS = 0) got dS = pure bf16 noise (4.8e-2 relative error in dK at N = 257). */
    if (!bf16) {
        sp_D_kernel<<<sla2_grid((size_t)BH * N * 32), 256, 0, st>>>(w->D, dout, o_ref, alpha_logit, dm->B, dm->H,
                                                                     N, dm->d);
        CUDA_CHECK_LAUNCH();
    }
    FlashArgs a = sp_args(dm, q, k, v, mask, bf16);
    a.lse = (float *)lse; /* read only in backward */
    a.dout = dout;
    a.alpha_logit = alpha_logit;
    a.D = w->D;
    a.D_compute = bf16;
    a.dq = dq, a.dk = dk, a.dv = dv;
    cuda_flash_bwd(&a);
    if (dm->soft) {
        switch (fl_pad_hd(dm->d)) {
        case 32: sp_dmask<32>(a, w->dmask); break;
        case 64: sp_dmask<64>(a, w->dmask); break;
        default: sp_dmask<128>(a, w->dmask); break;
        }
    }
}
