/* kernels/cuda/attention.cu — flash-style softmax attention on the GPU,
 * forward and backward, for full attention (the op table's attention
 * entries) and for SLA2's sparse branch (weighted, through
 * attention_flash.cuh). No N x N matrix exists: the forward keeps only the
 * row log-sum-exp, the backward recomputes each tile's probabilities.
 *
 * These are the fp32 SIMT kernels: FP32 mode's full attention, and SLA2 in
 * both modes. Full attention in BF16 mode runs on tensor cores
 * (attention_tc_fwd.cu, attention_tc_bwd.cu); the op entries at the end
 * choose.
 *
 * Kernels (flash_tile.cuh's 16 x 16 thread tiles, one (b, h) per grid row):
 * - fwd: a block owns TR query rows, walks the key tiles with an online
 *   softmax in fp32 (running max m, sum l, rescaled accumulator);
 * - bwd_dq: a block owns TR query rows; pass 1 (SLA2's BF16 mode only)
 *   recomputes D = rowsum(P dP), pass 2 accumulates dQ over the key tiles;
 * - bwd_dkdv: a block owns TR key rows, walks the query tiles, accumulates
 *   dK and dV (FlashArgs' formulas). Two kernels instead of one with atomic
 *   dQ: every gradient element has one owner, so results are reproducible.
 * Tile sizes per head dim keep shared memory under 100 KiB (FlCfg). */
#include <math.h>

#include "kernels/cuda/attention_flash.cuh"
#include "kernels/cuda/attention_tc.cuh"
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/flash_tile.cuh"

/* Rows x columns per thread of each kernel's tile: 64 x 64 tiles up to head
 * dim 64; at 128 the K/V (and Q/dO) tiles would not fit twice, so 64 x 32
 * forward and 32 x 32 backward. */
template <int HDP>
struct FlCfg {
    static constexpr int F_RM = 4, F_CM = HDP > 64 ? 2 : 4, B_RM = HDP > 64 ? 2 : 4, B_CM = HDP > 64 ? 2 : 4;
};

/* The weight of (query row, key): 0 outside [0, N), else the block mask's
 * entry (SLA2) or 1 (full attention). */
__device__ __forceinline__ float fl_weight(const FlashArgs &a, int bh, int row, int key) {
    if (row >= a.N || key >= a.N) return 0.0f;
    if (!a.mask) return 1.0f;
    return __ldg(&a.mask[((size_t)bh * a.nq + row / a.bq) * a.nk + key / a.bk]);
}

/* Whether any weight of the rows [r0, r1) x keys [c0, c1) is nonzero, the
 * same answer in every thread. Also a barrier (__syncthreads_or): the loops
 * below rely on it before they overwrite the previous tile. */
__device__ __forceinline__ bool fl_tile_any(const FlashArgs &a, int bh, int r0, int r1, int c0, int c1) {
    int flag = 0;
    if (r0 < r1 && c0 < c1) {
        if (!a.mask) {
            flag = threadIdx.x == 0;
        } else {
            const int i0 = r0 / a.bq, ni = (r1 - 1) / a.bq - i0 + 1;
            const int j0 = c0 / a.bk, nj = (c1 - 1) / a.bk - j0 + 1;
            const float *m = a.mask + (size_t)bh * a.nq * a.nk;
            for (int t = threadIdx.x; t < ni * nj && !flag; t += FL_THREADS)
                flag = m[(size_t)(i0 + t / nj) * a.nk + j0 + t % nj] != 0.0f;
        }
    }
    return __syncthreads_or(flag) != 0;
}

__device__ __forceinline__ float fl_gscale(const FlashArgs &a, int h) {
    return a.alpha_logit ? 1.0f / (1.0f + expf(-a.alpha_logit[h])) : 1.0f;
}

/* ------------------------------------------------------------------ forward */

template <int HDP, int RM, int CM>
__global__ void __launch_bounds__(FL_THREADS) fl_fwd_kernel(FlashArgs a) {
    constexpr int TR = 16 * RM, TC = 16 * CM, LD = HDP + 1, LP = TC + 1, OC = HDP / 16;
    extern __shared__ float fl_smem[];
    float *Qs = fl_smem, *Ks = Qs + TR * LD, *Vs = Ks + TC * LD, *Ps = Vs + TC * LD;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int bh = blockIdx.y, b = bh / a.H, h = bh % a.H, N = a.N, hd = a.hd;
    const int r0 = blockIdx.x * TR, r1 = min(r0 + TR, N);
    const size_t base = (size_t)bh * N * hd;

    fl_load_rows<TR, HDP>(Qs, a.q + base + (size_t)r0 * hd, hd, r1 - r0, hd, 1.0f, a.bf16);
    float m[RM], l[RM], acc[RM][OC];
#pragma unroll
    for (int i = 0; i < RM; i++) {
        m[i] = -INFINITY, l[i] = 0.0f;
#pragma unroll
        for (int j = 0; j < OC; j++) acc[i][j] = 0.0f;
    }

    for (int c0 = 0; c0 < N; c0 += TC) {
        const int c1 = min(c0 + TC, N);
        if (!fl_tile_any(a, bh, r0, r1, c0, c1)) continue; /* also the barrier before Ks/Vs/Ps are reused */
        fl_load_rows<TC, HDP>(Ks, a.k + base + (size_t)c0 * hd, hd, c1 - c0, hd, 1.0f, a.bf16);
        fl_load_rows<TC, HDP>(Vs, a.v + base + (size_t)c0 * hd, hd, c1 - c0, hd, 1.0f, a.bf16);
        __syncthreads();
        float s[RM][CM];
#pragma unroll
        for (int i = 0; i < RM; i++)
#pragma unroll
            for (int j = 0; j < CM; j++) s[i][j] = 0.0f;
        fl_mm_nt<RM, CM, HDP, LD, LD>(s, Qs, Ks, ty, tx);
#pragma unroll
        for (int i = 0; i < RM; i++) {
            const int row = r0 + ty + 16 * i;
            float w[CM], mloc = -INFINITY;
#pragma unroll
            for (int j = 0; j < CM; j++) {
                w[j] = fl_weight(a, bh, row, c0 + tx + 16 * j);
                s[i][j] *= a.scale;
                if (w[j] > 0.0f) mloc = fmaxf(mloc, s[i][j]); /* max over the weighted keys only */
            }
            mloc = fl_half_max(mloc);
            const float mnew = fmaxf(m[i], mloc);
            /* A row that has seen no weighted key yet keeps m = -inf: no exp(-inf + inf). */
            const bool live = mnew != -INFINITY;
            const float corr = live ? expf(m[i] - mnew) : 1.0f;
            float psum = 0.0f;
#pragma unroll
            for (int j = 0; j < CM; j++) {
                const float p = live && w[j] > 0.0f ? w[j] * expf(s[i][j] - mnew) : 0.0f;
                psum += p; /* the row sum stays fp32 in both modes */
                Ps[(ty + 16 * i) * LP + tx + 16 * j] = a.bf16 ? cuda_round_bf16(p) : p;
            }
            psum = fl_half_sum(psum);
            l[i] = l[i] * corr + psum;
            m[i] = mnew;
#pragma unroll
            for (int j = 0; j < OC; j++) acc[i][j] *= corr;
        }
        __syncthreads();
        fl_mm_nn<RM, OC, TC, LP, LD>(acc, Ps, Vs, ty, tx);
    }

    float *o = a.o + (size_t)b * a.o_sb + (size_t)h * a.o_sh;
#pragma unroll
    for (int i = 0; i < RM; i++) {
        const int row = r0 + ty + 16 * i;
        if (row >= N) continue;
        const float inv = 1.0f / l[i];
#pragma unroll
        for (int j = 0; j < OC; j++) {
            const int c = tx + 16 * j;
            if (c < hd) o[(size_t)row * a.o_rs + c] = acc[i][j] * inv;
        }
        if (tx == 0) a.lse[(size_t)bh * N + row] = m[i] + logf(l[i]);
    }
}

/* ------------------------------------------------------- backward: D and dQ */

template <int HDP, int RM, int CM>
__global__ void __launch_bounds__(FL_THREADS) fl_bwd_dq_kernel(FlashArgs a) {
    constexpr int TR = 16 * RM, TC = 16 * CM, LD = HDP + 1, LP = TC + 1, OC = HDP / 16;
    extern __shared__ float fl_smem[];
    float *Qs = fl_smem, *Gs = Qs + TR * LD, *Ks = Gs + TR * LD, *Vs = Ks + TC * LD, *Ss = Vs + TC * LD;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int bh = blockIdx.y, b = bh / a.H, h = bh % a.H, N = a.N, hd = a.hd;
    const int r0 = blockIdx.x * TR, r1 = min(r0 + TR, N);
    const size_t base = (size_t)bh * N * hd;

    fl_load_rows<TR, HDP>(Qs, a.q + base + (size_t)r0 * hd, hd, r1 - r0, hd, 1.0f, a.bf16);
    fl_load_rows<TR, HDP>(Gs, a.dout + (size_t)b * a.g_sb + (size_t)h * a.g_sh + (size_t)r0 * a.g_rs, a.g_rs,
                          r1 - r0, hd, fl_gscale(a, h), a.bf16);
    float lse[RM], Dr[RM];
#pragma unroll
    for (int i = 0; i < RM; i++) {
        const int row = r0 + ty + 16 * i;
        lse[i] = row < N ? a.lse[(size_t)bh * N + row] : 0.0f;
        Dr[i] = 0.0f;
    }

    if (a.D_compute) { /* pass 1: D = rowsum(P dP) */
        for (int c0 = 0; c0 < N; c0 += TC) {
            const int c1 = min(c0 + TC, N);
            if (!fl_tile_any(a, bh, r0, r1, c0, c1)) continue;
            fl_load_rows<TC, HDP>(Ks, a.k + base + (size_t)c0 * hd, hd, c1 - c0, hd, 1.0f, a.bf16);
            fl_load_rows<TC, HDP>(Vs, a.v + base + (size_t)c0 * hd, hd, c1 - c0, hd, 1.0f, a.bf16);
            __syncthreads();
            float s[RM][CM], dp[RM][CM];
#pragma unroll
            for (int i = 0; i < RM; i++)
#pragma unroll
                for (int j = 0; j < CM; j++) s[i][j] = dp[i][j] = 0.0f;
            fl_mm_nt<RM, CM, HDP, LD, LD>(s, Qs, Ks, ty, tx);
            fl_mm_nt<RM, CM, HDP, LD, LD>(dp, Gs, Vs, ty, tx);
#pragma unroll
            for (int i = 0; i < RM; i++)
#pragma unroll
                for (int j = 0; j < CM; j++) {
                    const float w = fl_weight(a, bh, r0 + ty + 16 * i, c0 + tx + 16 * j);
                    if (w > 0.0f) Dr[i] += w * expf(s[i][j] * a.scale - lse[i]) * dp[i][j];
                }
        }
#pragma unroll
        for (int i = 0; i < RM; i++) {
            Dr[i] = fl_half_sum(Dr[i]);
            const int row = r0 + ty + 16 * i;
            if (tx == 0 && row < N) a.D[(size_t)bh * N + row] = Dr[i];
        }
    } else {
#pragma unroll
        for (int i = 0; i < RM; i++) {
            const int row = r0 + ty + 16 * i;
            Dr[i] = row < N ? a.D[(size_t)bh * N + row] : 0.0f;
        }
    }
    if (!a.dq) return; /* uniform over the block: no barrier is left waiting */

    float acc[RM][OC];
#pragma unroll
    for (int i = 0; i < RM; i++)
#pragma unroll
        for (int j = 0; j < OC; j++) acc[i][j] = 0.0f;
    for (int c0 = 0; c0 < N; c0 += TC) { /* pass 2: dQ += dS K */
        const int c1 = min(c0 + TC, N);
        if (!fl_tile_any(a, bh, r0, r1, c0, c1)) continue;
        fl_load_rows<TC, HDP>(Ks, a.k + base + (size_t)c0 * hd, hd, c1 - c0, hd, 1.0f, a.bf16);
        fl_load_rows<TC, HDP>(Vs, a.v + base + (size_t)c0 * hd, hd, c1 - c0, hd, 1.0f, a.bf16);
        __syncthreads();
        float s[RM][CM], dp[RM][CM];
#pragma unroll
        for (int i = 0; i < RM; i++)
#pragma unroll
            for (int j = 0; j < CM; j++) s[i][j] = dp[i][j] = 0.0f;
        fl_mm_nt<RM, CM, HDP, LD, LD>(s, Qs, Ks, ty, tx);
        fl_mm_nt<RM, CM, HDP, LD, LD>(dp, Gs, Vs, ty, tx);
#pragma unroll
        for (int i = 0; i < RM; i++)
#pragma unroll
            for (int j = 0; j < CM; j++) {
                const float w = fl_weight(a, bh, r0 + ty + 16 * i, c0 + tx + 16 * j);
                const float ds = w > 0.0f ? w * expf(s[i][j] * a.scale - lse[i]) * (dp[i][j] - Dr[i]) : 0.0f;
                Ss[(ty + 16 * i) * LP + tx + 16 * j] = a.bf16 ? cuda_round_bf16(ds) : ds;
            }
        __syncthreads();
        fl_mm_nn<RM, OC, TC, LP, LD>(acc, Ss, Ks, ty, tx);
    }
    float *dq = a.dq + base;
#pragma unroll
    for (int i = 0; i < RM; i++) {
        const int row = r0 + ty + 16 * i;
        if (row >= N) continue;
#pragma unroll
        for (int j = 0; j < OC; j++) {
            const int c = tx + 16 * j;
            if (c < hd) dq[(size_t)row * hd + c] += acc[i][j] * a.scale;
        }
    }
}

/* ------------------------------------------------------ backward: dK and dV */

/* Tile rows are keys, columns are queries: S^T = K Q^T, dP^T = V dO^T. */
template <int HDP, int RM, int CM>
__global__ void __launch_bounds__(FL_THREADS) fl_bwd_dkdv_kernel(FlashArgs a) {
    constexpr int TR = 16 * RM, TC = 16 * CM, LD = HDP + 1, LP = TC + 1, OC = HDP / 16;
    extern __shared__ float fl_smem[];
    float *Ks = fl_smem, *Vs = Ks + TR * LD, *Qs = Vs + TR * LD, *Gs = Qs + TC * LD, *Ps = Gs + TC * LD;
    float *lse_s = Ps + TR * LP, *D_s = lse_s + TC;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int bh = blockIdx.y, b = bh / a.H, h = bh % a.H, N = a.N, hd = a.hd;
    const int k0 = blockIdx.x * TR, k1 = min(k0 + TR, N);
    const size_t base = (size_t)bh * N * hd;
    const float gmul = fl_gscale(a, h);
    const float *dout = a.dout + (size_t)b * a.g_sb + (size_t)h * a.g_sh;

    fl_load_rows<TR, HDP>(Ks, a.k + base + (size_t)k0 * hd, hd, k1 - k0, hd, 1.0f, a.bf16);
    fl_load_rows<TR, HDP>(Vs, a.v + base + (size_t)k0 * hd, hd, k1 - k0, hd, 1.0f, a.bf16);
    float dk[RM][OC], dv[RM][OC];
#pragma unroll
    for (int i = 0; i < RM; i++)
#pragma unroll
        for (int j = 0; j < OC; j++) dk[i][j] = dv[i][j] = 0.0f;

    for (int q0 = 0; q0 < N; q0 += TC) {
        const int q1 = min(q0 + TC, N);
        if (!fl_tile_any(a, bh, q0, q1, k0, k1)) continue; /* barrier: Qs/Gs/Ps/lse_s/D_s free again */
        fl_load_rows<TC, HDP>(Qs, a.q + base + (size_t)q0 * hd, hd, q1 - q0, hd, 1.0f, a.bf16);
        fl_load_rows<TC, HDP>(Gs, dout + (size_t)q0 * a.g_rs, a.g_rs, q1 - q0, hd, gmul, a.bf16);
        for (int t = tid; t < TC; t += FL_THREADS) {
            const bool ok = q0 + t < N;
            lse_s[t] = ok ? a.lse[(size_t)bh * N + q0 + t] : 0.0f;
            D_s[t] = ok ? a.D[(size_t)bh * N + q0 + t] : 0.0f;
        }
        __syncthreads();
        float s[RM][CM], dp[RM][CM];
#pragma unroll
        for (int i = 0; i < RM; i++)
#pragma unroll
            for (int j = 0; j < CM; j++) s[i][j] = dp[i][j] = 0.0f;
        fl_mm_nt<RM, CM, HDP, LD, LD>(s, Ks, Qs, ty, tx);
        fl_mm_nt<RM, CM, HDP, LD, LD>(dp, Vs, Gs, ty, tx);
#pragma unroll
        for (int i = 0; i < RM; i++)
#pragma unroll
            for (int j = 0; j < CM; j++) {
                const int qc = tx + 16 * j;
                const float w = fl_weight(a, bh, q0 + qc, k0 + ty + 16 * i);
                const float p = w > 0.0f ? w * expf(s[i][j] * a.scale - lse_s[qc]) : 0.0f;
                dp[i][j] = p * (dp[i][j] - D_s[qc]); /* now dS^T */
                Ps[(ty + 16 * i) * LP + qc] = a.bf16 ? cuda_round_bf16(p) : p;
            }
        __syncthreads();
        if (a.dv) fl_mm_nn<RM, OC, TC, LP, LD>(dv, Ps, Gs, ty, tx);
        __syncthreads();
#pragma unroll
        for (int i = 0; i < RM; i++)
#pragma unroll
            for (int j = 0; j < CM; j++)
                Ps[(ty + 16 * i) * LP + tx + 16 * j] = a.bf16 ? cuda_round_bf16(dp[i][j]) : dp[i][j];
        __syncthreads();
        if (a.dk) fl_mm_nn<RM, OC, TC, LP, LD>(dk, Ps, Qs, ty, tx);
    }

#pragma unroll
    for (int i = 0; i < RM; i++) {
        const int key = k0 + ty + 16 * i;
        if (key >= N) continue;
#pragma unroll
        for (int j = 0; j < OC; j++) {
            const int c = tx + 16 * j;
            if (c >= hd) continue;
            if (a.dk) a.dk[base + (size_t)key * hd + c] += dk[i][j] * a.scale;
            if (a.dv) a.dv[base + (size_t)key * hd + c] += dv[i][j];
        }
    }
}

/* ------------------------------------------------------------------- launch */

template <int HDP>
static void fl_launch_fwd(const FlashArgs &a) {
    constexpr int RM = FlCfg<HDP>::F_RM, CM = FlCfg<HDP>::F_CM, TR = 16 * RM, TC = 16 * CM, LD = HDP + 1;
    const size_t smem = sizeof(float) * (size_t)(TR * LD + 2 * TC * LD + TR * (TC + 1));
    fl_smem_optin(fl_fwd_kernel<HDP, RM, CM>, smem);
    dim3 grid((unsigned)((a.N + TR - 1) / TR), (unsigned)(a.B * a.H));
    fl_fwd_kernel<HDP, RM, CM><<<grid, FL_THREADS, smem, cuda_compute_stream()>>>(a);
    CUDA_CHECK_LAUNCH();
}

template <int HDP>
static void fl_launch_bwd(const FlashArgs &a) {
    constexpr int RM = FlCfg<HDP>::B_RM, CM = FlCfg<HDP>::B_CM, TR = 16 * RM, TC = 16 * CM, LD = HDP + 1;
    cudaStream_t st = cuda_compute_stream();
    if (a.dq || a.D_compute) {
        const size_t smem = sizeof(float) * (size_t)(2 * TR * LD + 2 * TC * LD + TR * (TC + 1));
        fl_smem_optin(fl_bwd_dq_kernel<HDP, RM, CM>, smem);
        dim3 grid((unsigned)((a.N + TR - 1) / TR), (unsigned)(a.B * a.H));
        fl_bwd_dq_kernel<HDP, RM, CM><<<grid, FL_THREADS, smem, st>>>(a);
        CUDA_CHECK_LAUNCH();
    }
    if (a.dk || a.dv) {
        const size_t smem = sizeof(float) * (size_t)(2 * TR * LD + 2 * TC * LD + TR * (TC + 1) + 2 * TC);
        fl_smem_optin(fl_bwd_dkdv_kernel<HDP, RM, CM>, smem);
        dim3 grid((unsigned)((a.N + TR - 1) / TR), (unsigned)(a.B * a.H));
        fl_bwd_dkdv_kernel<HDP, RM, CM><<<grid, FL_THREADS, smem, st>>>(a);
        CUDA_CHECK_LAUNCH();
    }
}

void cuda_flash_check(const char *who, int B, int H, int N, int hd) {
    CHECK(fl_pad_hd(hd) != 0, "%s: head dim %d is not supported by the CUDA kernels (1 to 128; compiled for 32, "
          "64 and 128, smaller ones are zero-padded)", who, hd);
    CHECK(B >= 0 && H >= 0 && N >= 0, "%s: negative size (B %d, H %d, N %d)", who, B, H, N);
    CHECK((long long)B * H <= 65535, "%s: B*H = %lld exceeds the grid's y limit (65535)", who, (long long)B * H);
}

void cuda_flash_fwd(const FlashArgs *a) {
    if ((long long)a->B * a->H * a->N == 0) return;
    switch (fl_pad_hd(a->hd)) {
    case 32: fl_launch_fwd<32>(*a); break;
    case 64: fl_launch_fwd<64>(*a); break;
    default: fl_launch_fwd<128>(*a); break;
    }
}

void cuda_flash_bwd(const FlashArgs *a) {
    if ((long long)a->B * a->H * a->N == 0) return;
    switch (fl_pad_hd(a->hd)) {
    case 32: fl_launch_bwd<32>(*a); break;
    case 64: fl_launch_bwd<64>(*a); break;
    default: fl_launch_bwd<128>(*a); break;
    }
}

/* ------------------------------------------------------ op table entries */

/* Full attention: q, k, v [B, H, N, hd] -> out [B, N, H*hd]; saved = LSE.
 * BF16 mode runs the tensor-core kernels (attention_tc_*.cu) on bf16 copies
 * of the operands in cuda_scratch; FP32 mode the fp32 SIMT kernels above.
 * Both take D = rowsum(dO . O) from the forward's output. */
static FlashArgs fl_full_args(const float *q, const float *k, const float *v, int B, int H, int N, int hd) {
    FlashArgs a = {};
    a.q = q, a.k = k, a.v = v;
    a.B = B, a.H = H, a.N = N, a.hd = hd;
    a.scale = 1.0f / sqrtf((float)hd);
    a.bf16 = cuda_get_precision() == CUDA_PREC_BF16;
    a.o_sb = a.g_sb = (long long)N * H * hd;
    a.o_sh = a.g_sh = hd;
    a.o_rs = a.g_rs = (long long)H * hd;
    return a;
}

extern "C" size_t cuda_attention_saved_floats(int B, int H, int N, int hd) {
    (void)hd;
    return (size_t)B * H * N; /* the row log-sum-exp */
}

extern "C" size_t cuda_attention_scratch_floats(int B, int H, int N, int hd) {
    (void)hd;
    return (size_t)B * H * N; /* D = rowsum(dO . O) */
}

static bool fl_use_tc(void) { return cuda_get_precision() == CUDA_PREC_BF16; }

/* The tensor-core kernels' arguments with q, k, v converted to bf16 in
 * `bf` (3 arrays of B*H*N*HDP; a 4th, for dO, follows when the caller
 * asked for it). */
static AtArgs at_full_args(uint16_t *bf, const float *q, const float *k, const float *v, int B, int H, int N,
                           int hd) {
    const int HDP = at_pad_hd(hd);
    const size_t n = (size_t)B * H * N * HDP;
    at_convert(bf, q, B * H, N, hd, HDP);
    at_convert(bf + n, k, B * H, N, hd, HDP);
    at_convert(bf + 2 * n, v, B * H, N, hd, HDP);
    AtArgs a = {};
    a.q = bf, a.k = bf + n, a.v = bf + 2 * n, a.g = bf + 3 * n;
    a.B = B, a.H = H, a.N = N, a.hd = hd;
    a.scale = 1.0f / sqrtf((float)hd);
    at_strides_merged(&a);
    return a;
}

extern "C" void cuda_attention_fwd(float *out, float *saved, const float *q, const float *k, const float *v, int B,
                                   int H, int N, int hd) {
    cuda_flash_check("attention", B, H, N, hd);
    if (fl_use_tc()) {
        uint16_t *bf = (uint16_t *)cuda_scratch(3 * sizeof(uint16_t) * (size_t)B * H * N * at_pad_hd(hd));
        AtArgs a = at_full_args(bf, q, k, v, B, H, N, hd);
        a.o = out;
        a.lse = saved;
        at_fwd(&a);
        return;
    }
    FlashArgs a = fl_full_args(q, k, v, B, H, N, hd);
    a.o = out;
    a.lse = saved;
    cuda_flash_fwd(&a);
}

extern "C" void cuda_attention_bwd(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                                   const float *out, const float *saved, const float *q, const float *k,
                                   const float *v, int B, int H, int N, int hd) {
    cuda_flash_check("attention", B, H, N, hd);
    if (!dq && !dk && !dv) return;
    if (fl_use_tc()) {
        const int HDP = at_pad_hd(hd);
        uint16_t *bf = (uint16_t *)cuda_scratch(4 * sizeof(uint16_t) * (size_t)B * H * N * HDP);
        AtArgs a = at_full_args(bf, q, k, v, B, H, N, hd);
        at_dout_prep(scratch, (uint16_t *)a.g, dout, out, 0, NULL, B, H, N, hd, HDP);
        a.lse = (float *)saved; /* read only in backward */
        a.D = scratch;
        a.dq = dq, a.dk = dk, a.dv = dv;
        a.dq_atomic = at_bwd_atomic_dq();
        at_bwd(&a);
        return;
    }
    at_dout_prep(scratch, NULL, dout, out, 0, NULL, B, H, N, hd, 0);
    FlashArgs a = fl_full_args(q, k, v, B, H, N, hd);
    a.lse = (float *)saved; /* read only in backward */
    a.dout = dout;
    a.D = scratch;
    a.D_compute = 0; /* D = rowsum(dO . O) from the forward's output */
    a.dq = dq, a.dk = dk, a.dv = dv;
    cuda_flash_bwd(&a);
}
