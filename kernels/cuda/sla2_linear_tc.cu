/* kernels/cuda/sla2_linear_tc.cu — SLA2's linear branch forward as batched
 * bf16 tensor-core products (mma.sync through tc.cuh / attention_tc.cuh),
 * for the path whose sparse branch runs block-sparse on tensor cores
 * (sla2_tc.cu: BF16 mode, hard top-k). Four launches instead of the SIMT
 * path's seven (sla2_linear.cu, which stays as FP32 mode's exact reference
 * and runs every backward, recomputing O_l in fp32 after this forward). O_l
 * is written as the fp32 array the sparse kernel's epilogue reads to form
 * alpha O_s + (1 - alpha) O_l:
 *
 *   1. features: phi(q), phi(k) as bf16 [BH, N, HDP] and [V | 1] as bf16
 *      [BH, N, E1] (E1 = d + 1 rounded up to 16; the ones column makes z_j
 *      and the denominator fall out of the same products);
 *   2. states: [h_j | z_j] = phi(K_j)^T [V_j | 1] for every key block j of
 *      every pair, one strided batch (HDP x E1 each, bf16, k = the block's
 *      tokens);
 *   3. sums: [H_i | Z_i] = sum_j (1 - M_ij) [h_j | z_j], per pair the product
 *      of (1 - M) [nq x nk] with the stacked states [nk x HDP E1]; the hard
 *      mask's 0/1 is exact in bf16, so this is the linear blocks' sum
 *      directly (the SIMT path's "totals minus the selected" gives the same
 *      sum, with one more rounding);
 *   4. output: phi(Q_i) [H_i | Z_i] per query block, and in the epilogue
 *      O_l = num / (phi(q) . Z_i + eps), the denominator being column d of
 *      the same product. A query block with no linear block has H_i = 0,
 *      Z_i = 0 and gets 0 / eps = 0, as the CPU defines it.
 *
 * Precision: phi(q), phi(k), h_j and H_i are each rounded to bf16 once
 * (fp32 accumulation in every product); V is rounded to bf16 (exact when it
 * is a bf16 value). Every term of the numerator and denominator is a
 * product of non-negative features with v, so the error of O_l is at most
 * about 4u (sum |terms| / den + |O_l|), u = 2^-8 (test_cuda_sla2_tc.c). */
#include <math.h>

#include "kernels/cuda/attention_tc.cuh"
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/sla2_internal.cuh"

#define LTC_BK 16 /* k per shared-memory chunk: one mma.m16n8k16 step */
#define LTC_LDA (LTC_BK + 8)

static inline int ltc_e1(int d) { return (d + 1 + 15) / 16 * 16; }

__device__ __forceinline__ uint16_t ltc_bf16(float x) { return (uint16_t)(tc_pack_bf16x2(x, 0.0f) & 0xffffu); }

/* Warps (part, row) over 3 BH N rows: part 0 phi(q) -> fq, 1 phi(k) -> fk
 * (HDP channels, zeros past d), 2 [v | 1 | 0...] -> ve (E1 channels). */
__global__ void ltc_feat_kernel(uint16_t *fq, uint16_t *fk, uint16_t *ve, const float *q, const float *k,
                                const float *v, size_t rows, int d, int HDP, int E1, int fm) {
    const size_t w = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    if (w >= 3 * rows) return; /* whole warps */
    const int part = (int)(w / rows);
    const size_t row = w % rows;
    if (part == 2) {
        const float *vr = v + row * d;
        for (int c = lane; c < E1; c += 32) ve[row * E1 + c] = ltc_bf16(c < d ? vr[c] : c == d ? 1.0f : 0.0f);
        return;
    }
    const float *xr = (part ? k : q) + row * d;
    uint16_t *y = (part ? fk : fq) + row * HDP;
    const LinPhiRow p = lin_phi_row(xr, d, fm, lane);
    for (int c = lane; c < HDP; c += 32) y[c] = c < d ? ltc_bf16(p.at(xr[c])) : 0;
}

/* C = A B over k < K on a block of WM x WN warps: warp (wm, wn) holds rows
 * [16 wm, 16 wm + 16) and columns [8 NT wn, 8 NT (wn + 1)) of the block's
 * 16 WM x 8 NT WN tile in acc (fp32). la(m, k) and lb(k, n) give A's and B's
 * bf16 bits (0 outside the operand), staged through shared memory 16 values
 * of k at a time (k padded to 16 only: the router's blocks, HDP and the
 * block counts are multiples of 16 or padded to them). AMF: A is read
 * m-fastest (it is stored k-major: coalesced for phi(K)^T). */
template <int NT, int WM, int WN, bool AMF, class LA, class LB>
__device__ __forceinline__ void ltc_gemm(float (&acc)[NT][4], uint16_t *As, uint16_t *Bs, int K, LA la, LB lb) {
    constexpr int BM = 16 * WM, BN = 8 * NT * WN, LDB = BN + 8, NTH = 32 * WM * WN;
    const int tid = threadIdx.x, warp = tid >> 5, wm = warp % WM, wn = warp / WM;
    at_zero(acc);
    for (int k0 = 0; k0 < K; k0 += LTC_BK) {
        __syncthreads(); /* the previous chunk is consumed */
        for (int e = tid; e < BM * LTC_BK; e += NTH) {
            const int m = AMF ? e % BM : e / LTC_BK, kk = AMF ? e / BM : e % LTC_BK;
            As[m * LTC_LDA + kk] = la(m, k0 + kk);
        }
        for (int e = tid; e < LTC_BK * BN; e += NTH) Bs[(e / BN) * LDB + e % BN] = lb(k0 + e / BN, e % BN);
        __syncthreads();
        uint32_t af[4];
        at_ld_a(af, As + wm * 16 * LTC_LDA, LTC_LDA, 0);
#pragma unroll
        for (int n = 0; n < NT; n += 2) {
            uint32_t bf[4];
            at_ld_bn(bf, Bs, LDB, wn * 8 * NT + 8 * n, 0);
            tc_mma_16816(acc[n], af, bf, acc[n]);
            tc_mma_16816(acc[n + 1], af, bf + 2, acc[n + 1]);
        }
    }
}

/* st(row, col, value) for every element the warp holds, in block coordinates. */
template <int NT, int WM, class ST>
__device__ __forceinline__ void ltc_store(const float (&acc)[NT][4], ST st) {
    const int l = threadIdx.x & 31, g = l >> 2, t = l & 3, warp = threadIdx.x >> 5;
    const int r0 = (warp % WM) * 16, c0 = (warp / WM) * 8 * NT;
#pragma unroll
    for (int n = 0; n < NT; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) st(r0 + g + 8 * (e >> 1), c0 + 8 * n + 2 * t + (e & 1), acc[n][e]);
}

/* Shared tiles of a WM x WN block: A [16 WM][LTC_LDA], B [16][8 NT WN + 8]
 * bf16, as uint4 so each is 16-byte aligned (ldmatrix's rule). */
#define LTC_SMEM(NT, WM, WN)                                                                                      \
    __shared__ uint4 As4[16 * (WM) * LTC_LDA / 8], Bs4[LTC_BK * (8 * (NT) * (WN) + 8) / 8];                       \
    uint16_t *As = (uint16_t *)As4, *Bs = (uint16_t *)Bs4

/* 2. [h_j | z_j] (HDP x E1, bf16) per key block, 64 rows of it per block
 * of 4 warps: grid (BH nk, HDP / 64 rounded up). */
template <int NT>
__global__ void __launch_bounds__(128)
    ltc_state_kernel(uint16_t *hst, const uint16_t *fk, const uint16_t *ve, int N, int HDP, int bk, int nk) {
    constexpr int E1 = 8 * NT;
    LTC_SMEM(NT, 4, 1);
    const int bh = blockIdx.x / nk, j = blockIdx.x % nk, m0 = blockIdx.y * 64;
    const int t0 = j * bk, nt = min(bk, N - t0);
    const size_t r0 = (size_t)bh * N + t0;
    float acc[NT][4];
    ltc_gemm<NT, 4, 1, true>(
        acc, As, Bs, bk,
        [&](int m, int t) -> uint16_t { return t < nt && m0 + m < HDP ? fk[(r0 + t) * HDP + m0 + m] : 0; },
        [&](int t, int n) -> uint16_t { return t < nt ? ve[(r0 + t) * E1 + n] : 0; });
    uint16_t *o = hst + (size_t)blockIdx.x * HDP * E1;
    ltc_store<NT, 4>(acc, [&](int m, int n, float x) {
        if (m0 + m < HDP) o[(size_t)(m0 + m) * E1 + n] = ltc_bf16(x);
    });
}

/* 3. [H_i | Z_i] = (1 - M) [h | z] per pair over the flattened HDP E1
 * columns (E, a multiple of 256), 16 query blocks x 256 columns per block of
 * 4 warps (few query blocks: JiT has 9): grid (E / 256, nq / 16 rounded up, BH). */
__global__ void __launch_bounds__(128)
    ltc_sum_kernel(uint16_t *Hst, const uint16_t *hst, const float *mask, int nq, int nk, int E) {
    constexpr int NT = 8;
    LTC_SMEM(NT, 1, 4);
    const int n0 = blockIdx.x * 256, i0 = blockIdx.y * 16, bh = blockIdx.z;
    const float *mk = mask + (size_t)bh * nq * nk;
    const uint16_t *hs = hst + (size_t)bh * nk * E + n0;
    float acc[NT][4];
    ltc_gemm<NT, 1, 4, false>(
        acc, As, Bs, nk,
        [&](int i, int j) -> uint16_t {
            return i0 + i < nq && j < nk ? ltc_bf16(1.0f - mk[(size_t)(i0 + i) * nk + j]) : 0;
        },
        [&](int j, int n) -> uint16_t { return j < nk ? hs[(size_t)j * E + n] : 0; });
    uint16_t *o = Hst + (size_t)bh * nq * E + n0;
    ltc_store<NT, 1>(acc, [&](int i, int n, float x) {
        if (i0 + i < nq) o[(size_t)(i0 + i) * E + n] = ltc_bf16(x);
    });
}

/* 4. O_l over query block i (bq = 16 WM rows, a warp per 16): phi(Q_i)
 * [H_i | Z_i], then num / (den + eps) with den = column d, shuffled from the
 * lane holding it. Grid (nq, BH). */
template <int NT, int WM>
__global__ void __launch_bounds__(32 * WM)
    ltc_out_kernel(float *o_l, const uint16_t *fq, const uint16_t *Hst, int N, int d, int HDP, int nq) {
    constexpr int E1 = 8 * NT, bq = 16 * WM;
    LTC_SMEM(NT, WM, 1);
    const int i = blockIdx.x, bh = blockIdx.y, a0 = i * bq, na = min(bq, N - a0);
    const size_t r0 = (size_t)bh * N + a0;
    const uint16_t *H = Hst + ((size_t)bh * nq + i) * HDP * E1;
    float acc[NT][4];
    ltc_gemm<NT, WM, 1, false>(
        acc, As, Bs, HDP, [&](int m, int c) -> uint16_t { return m < na ? fq[(r0 + m) * HDP + c] : 0; },
        [&](int r, int n) -> uint16_t { return H[(size_t)r * E1 + n]; });
    /* den of rows g and g + 8: column d = 8 nd + 2 td + ed lives in lane 4 g + td */
    const int lane = threadIdx.x & 31, nd = d / 8, td = (d % 8) / 2, ed = d % 2;
    float lo = 0.0f, hi = 0.0f;
#pragma unroll
    for (int n = 0; n < NT; n++)
        if (n == nd) lo = ed ? acc[n][1] : acc[n][0], hi = ed ? acc[n][3] : acc[n][2]; /* no dynamic index: registers */
    const float den_lo = __shfl_sync(0xffffffffu, lo, (lane & ~3) | td) + SLA2_LINEAR_EPS;
    const float den_hi = __shfl_sync(0xffffffffu, hi, (lane & ~3) | td) + SLA2_LINEAR_EPS;
    ltc_store<NT, WM>(acc, [&](int m, int c, float x) {
        if (m < na && c < d) o_l[(r0 + m) * d + c] = x / ((m & 15) < 8 ? den_lo : den_hi);
    });
}

template <int NT>
static void ltc_launch(const Sla2Dims *dm, float *o_l, uint16_t *fq, uint16_t *fk, uint16_t *ve, uint16_t *hst,
                       uint16_t *Hst, int HDP, const float *mask) {
    const int BH = dm->B * dm->H, E = HDP * 8 * NT, nq = dm->nq;
    cudaStream_t st = cuda_compute_stream();
    CHECK(BH <= 65535 && nq <= 65535, "SLA2 linear (tensor cores): %d pairs or %d query blocks exceed the grid's "
          "limit (65535)", BH, nq);
    ltc_state_kernel<NT><<<dim3((unsigned)(BH * dm->nk), (unsigned)((HDP + 63) / 64)), 128, 0, st>>>(
        hst, fk, ve, dm->N, HDP, dm->block_k, dm->nk);
    CUDA_CHECK_LAUNCH();
    ltc_sum_kernel<<<dim3((unsigned)(E / 256), (unsigned)((nq + 15) / 16), (unsigned)BH), 128, 0, st>>>(
        Hst, hst, mask, nq, dm->nk, E);
    CUDA_CHECK_LAUNCH();
    const dim3 grid((unsigned)nq, (unsigned)BH);
    if (dm->block_q == 16) ltc_out_kernel<NT, 1><<<grid, 32, 0, st>>>(o_l, fq, Hst, dm->N, dm->d, HDP, nq);
    else if (dm->block_q == 32) ltc_out_kernel<NT, 2><<<grid, 64, 0, st>>>(o_l, fq, Hst, dm->N, dm->d, HDP, nq);
    else ltc_out_kernel<NT, 4><<<grid, 128, 0, st>>>(o_l, fq, Hst, dm->N, dm->d, HDP, nq);
    CUDA_CHECK_LAUNCH();
}

void cuda_sla2_linear_tc_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                             float *o_l) {
    const int BH = dm->B * dm->H, N = dm->N, d = dm->d, HDP = at_pad_hd(d), E1 = ltc_e1(d);
    CHECK(HDP != 0 && at_sparse_block_ok(dm->block_q) && at_sparse_block_ok(dm->block_k) && !dm->soft,
          "SLA2 linear (tensor cores): d = %d, block_q = %d, soft = %d is not a case it compiles", d, dm->block_q,
          dm->soft);
    const size_t rows = (size_t)BH * N, E = (size_t)HDP * E1;
    const size_t n = 2 * rows * HDP + rows * E1 + (size_t)BH * (dm->nk + dm->nq) * E;
    uint16_t *fq = (uint16_t *)cuda_scratch(sizeof(uint16_t) * n), *fk = fq + rows * HDP, *ve = fk + rows * HDP;
    uint16_t *hst = ve + rows * E1, *Hst = hst + (size_t)BH * dm->nk * E;
    ltc_feat_kernel<<<sla2_grid(3 * rows * 32), 256, 0, cuda_compute_stream()>>>(fq, fk, ve, q, k, v, rows, d, HDP,
                                                                                 E1, dm->feature_map);
    CUDA_CHECK_LAUNCH();
    switch (E1 / 8) {
    case 6: ltc_launch<6>(dm, o_l, fq, fk, ve, hst, Hst, HDP, mask); break;
    case 8: ltc_launch<8>(dm, o_l, fq, fk, ve, hst, Hst, HDP, mask); break;
    case 10: ltc_launch<10>(dm, o_l, fq, fk, ve, hst, Hst, HDP, mask); break; 
    case 12: ltc_launch<12>(dm, o_l, fq, fk, ve, hst, Hst, HDP, mask); break; 
    case 14: ltc_launch<14>(dm, o_l, fq, fk, ve, hst, Hst, HDP, mask); break;
    case 16: ltc_launch<16>(dm, o_l, fq, fk, ve, hst, Hst, HDP, mask); break;
    case 18: ltc_launch<18>(dm, o_l, fq, fk, ve, hst, Hst, HDP, mask); break; 
    default: /* d < 32: E1 = 16, 32 */
        if (E1 == 16) ltc_launch<2>(dm, o_l, fq, fk, ve, hst, Hst, HDP, mask);
        else ltc_launch<4>(dm, o_l, fq, fk, ve, hst, Hst, HDP, mask);
    }
}
