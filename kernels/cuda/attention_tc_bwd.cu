/* kernels/cuda/attention_tc_bwd.cu — full attention's backward on tensor
 * cores (BF16 mode), FlashAttention-2 style, deterministic.
 *
 * Per (b, h), with P = exp(S - lse) recomputed tile by tile from the saved
 * LSE, dP = dO V^T, dS = P (dP - D):
 *   dV = P^T dO, dK = dS^T Q scale, dQ = dS K scale,
 * and D = rowsum(dO . O) computed once from the forward's output by a small
 * pre-kernel (at_dout_prep, which also writes dO in bf16), not from
 * rowsum(P dP) in an extra pass over the keys.
 *
 * Two kernels, each gradient element owned by one warp lane, no atomics
 * (results are bit-reproducible, as the CPU backend's are):
 * - dkdv: a block owns 64 keys (16 per warp) and walks the query tiles,
 *   Q and dO (and their lse, D) double-buffered by cp.async; it computes
 *   S^T = K Q^T, dP^T = V dO^T, dV += P^T dO, dK += dS^T Q (4 products);
 * - dq: a block owns 64 queries and walks the key tiles, K and V
 *   double-buffered; S = Q K^T, dP = dO V^T, dQ += dS K (3 products).
 * So 7 N^2 d products instead of FlashAttention-2's 5: its single pass adds
 * each key block's dS K into dQ with float atomics, whose order (and so the
 * rounding) changes from run to run. The price of determinism here is 40%
 * more backward FLOPs; a single pass whose dQ additions are ordered by a
 * per-query-tile semaphore (as FlashAttention-3's deterministic mode does)
 * would remove it and is the next step once a GPU can measure it.
 * Non-deterministic mode (AtArgs.dq_atomic, JIT_CUDA_ATTN_BWD=atomic):
 * FlashAttention-2's single pass, dQ added inside the dK/dV kernel with
 * fp32 atomics (at_dq_atomic): 5 products, run-dependent rounding of dQ.
 *
 * SLA2's sparse branch (hard top-k) runs the same two kernels block-sparse:
 * the dQ kernel walks a query block's selected key blocks, the dK/dV kernel
 * the query blocks that selected its key block (the transposed list), each
 * tile one router block (AtArgs.list / listT). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/attention_tc.cuh"
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/flash_tile.cuh"

/* ----------------------------------------------------- D and dO in bf16 */

/* One warp per row (b, h, n): D = dO . O in fp32, and the row of dO in bf16
 * (padded to HDP) when gbf is set; D then uses the rounded dO, the one the
 * products use (with the fp32 dO, a row whose softmax is one key, where
 * the exact dS is 0, would get dS = dO's rounding error times V). */
__global__ void at_dout_prep_kernel(float *D, uint32_t *gbf, const float *__restrict__ dout,
                                    const float *__restrict__ o, int o_bhnd, const float *alpha_logit, size_t rows,
                                    int H, int N, int hd, int HDP) {
    const int lane = threadIdx.x & 31, wpb = blockDim.x / 32;
    for (size_t row = (size_t)blockIdx.x * wpb + threadIdx.x / 32; row < rows; row += (size_t)gridDim.x * wpb) {
        const size_t bh = row / N, n = row % N, b = bh / H, h = bh % H;
        const size_t off = (b * N + n) * H * hd + h * hd;  /* [B, N, H*hd] */
        const size_t ooff = o_bhnd ? row * hd : off;       /* o: the same or [B, H, N, hd] */
        const float mul = alpha_logit ? 1.0f / (1.0f + expf(-alpha_logit[h])) : 1.0f;
        float acc = 0.0f; /* dO as the products see it (bf16), so D and rowsum(P dP) agree to P's rounding */
        for (int c = lane; c < hd; c += 32) {
            const float g = mul * dout[off + c];
            acc += (gbf ? cuda_round_bf16(g) : g) * o[ooff + c];
        }
        for (int sh = 16; sh > 0; sh >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, sh);
        if (lane == 0) D[row] = acc;
        if (gbf)
            for (int c = 2 * lane; c < HDP; c += 64)
                gbf[row * (HDP / 2) + c / 2] = tc_pack_bf16x2(c < hd ? mul * dout[off + c] : 0.0f,
                                                              c + 1 < hd ? mul * dout[off + c + 1] : 0.0f);
    }
}

void at_dout_prep(float *D, uint16_t *gbf, const float *dout, const float *o, int o_bhnd, const float *alpha_logit,
                  int B, int H, int N, int hd, int HDP) {
    const size_t rows = (size_t)B * H * N, wpb = CUDA_THREADS / 32;
    if (rows == 0) return;
    const unsigned grid = (unsigned)((rows + wpb - 1) / wpb < 4096 ? (rows + wpb - 1) / wpb : 4096);
    at_dout_prep_kernel<<<grid, CUDA_THREADS, 0, cuda_compute_stream()>>>(D, (uint32_t *)gbf, dout, o, o_bhnd,
                                                                           alpha_logit, rows, H, N, hd, HDP);
    CUDA_CHECK_LAUNCH();
}

int at_bwd_atomic_dq(void) {
    const char *e = getenv("JIT_CUDA_ATTN_BWD");
    if (!e || !*e || !strcmp(e, "deterministic")) return 0;
    CHECK(!strcmp(e, "atomic"), "JIT_CUDA_ATTN_BWD=%s: use 'deterministic' (the default: separate dQ kernel, "
          "bit-reproducible) or 'atomic' (dQ with fp32 atomics in the dK/dV kernel: 5 products, not reproducible)", e);
    return 1;
}

/* ------------------------------------------------------------ dK and dV */

/* dq_atomic (FlashAttention-2's single pass): dQ[q0 + r] += scale dS K for
 * the query tile q0 of BR rows, inside the dK/dV kernel. Each warp writes
 * its 16 keys' dS^T (result fragments, rounded to bf16 as for dK) into Ss
 * transposed ([query][key]); after a barrier the warps take 16-query slices
 * and multiply them by the block's own K tile, two n-tiles at a time (so
 * only 8 more accumulator registers), adding with fp32 atomics: other key
 * blocks add to the same dQ rows in an order that changes from run to run. */
template <int HDP, int NW, int BR>
__device__ __forceinline__ void at_dq_atomic(const AtArgs &a, uint16_t *Ss, const float (&ds)[BR / 8][4],
                                             const uint16_t *Ks, int bh, int q0) {
    constexpr int LD = HDP + 8, BK = 16 * NW, LS = BK + 8, OT = HDP / 8;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
#pragma unroll
    for (int n = 0; n < BR / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int key = warp * 16 + g + 8 * (e >> 1), qr = 8 * n + 2 * tq + (e & 1);
            Ss[qr * LS + key] = (uint16_t)(tc_pack_bf16x2(ds[n][e], 0.0f) & 0xffffu);
        }
    __syncthreads();
    float *dq = a.dq + (size_t)bh * a.N * a.hd;
    for (int sl = warp; sl < BR / 16; sl += NW)
#pragma unroll
        for (int n0 = 0; n0 < OT; n0 += 2) {
            float acc[2][4] = {};
#pragma unroll
            for (int k0 = 0; k0 < BK; k0 += 16) {
                uint32_t af[4], bf[4];
                at_ld_a(af, Ss + sl * 16 * LS, LS, k0);
                at_ld_bn(bf, Ks, LD, 8 * n0, k0);
                tc_mma_16816(acc[0], af, bf, acc[0]);
                tc_mma_16816(acc[1], af, bf + 2, acc[1]);
            }
#pragma unroll
            for (int h = 0; h < 2; h++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int row = q0 + sl * 16 + g + 8 * (e >> 1), c = 8 * (n0 + h) + 2 * tq + (e & 1);
                    if (row < a.N && c < a.hd) atomicAdd(dq + (size_t)row * a.hd + c, a.scale * acc[h][e]);
                }
        }
}

/* NW warps own 16 NW keys; query tiles of BR (dense: NW = 4, BR = 32 at
 * head dim 128, where 64 would spill, else 64; block-sparse: NW = bk / 16,
 * BR = bq, the query blocks that selected this key block). */
template <int HDP, int NW, int BR, bool ATOMIC_DQ>
__global__ void __launch_bounds__(32 * NW) at_bwd_dkdv_kernel(AtArgs a) {
    constexpr int LD = HDP + 8, BK = 16 * NW, NTH = 32 * NW, QT = BR / 8, OT = HDP / 8, TILE = BR * LD;
    extern __shared__ float at_smem_f[];
    uint16_t *Ks = (uint16_t *)at_smem_f, *Vs = Ks + BK * LD, *Qs = Vs + BK * LD, *Gs = Qs + 2 * TILE;
    float *Ls = (float *)(Gs + 2 * TILE), *Ds = Ls + 2 * BR; /* lse * log2 e and D per query, 2 buffers */
    uint16_t *Ss = (uint16_t *)(Ds + 2 * BR); /* dq_atomic: dS of the tile, [BR][BK + 8] bf16 */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, tq = lane & 3;
    const int bh = blockIdx.y, N = a.N, c0 = blockIdx.x * BK;
    const size_t base = (size_t)bh * N * HDP;
    const float sl2 = a.scale * AT_LOG2E;
    const AtWalk walk(a.listT, a.cntT, (size_t)bh * gridDim.x + blockIdx.x, a.nq, N, BR);
    const int ntiles = walk.n;

    at_load_tile<BK, HDP, NTH>(Ks, a.k + base, c0, N);
    at_load_tile<BK, HDP, NTH>(Vs, a.v + base, c0, N);
    if (ntiles > 0) {
        const int r0 = walk.tile(0) * BR;
        at_load_tile<BR, HDP, NTH>(Qs, a.q + base, r0, N);
        at_load_tile<BR, HDP, NTH>(Gs, a.g + base, r0, N);
        for (int i = threadIdx.x; i < BR; i += NTH) { /* padding queries: P = exp2(-inf) = 0 */
            Ls[i] = r0 + i < N ? a.lse[(size_t)bh * N + r0 + i] * AT_LOG2E : INFINITY;
            Ds[i] = r0 + i < N ? a.D[(size_t)bh * N + r0 + i] : 0.0f;
        }
    }
    tc_cp_async_commit();

    float dk[OT][4], dv[OT][4];
    at_zero(dk);
    at_zero(dv);
    for (int j = 0; j < ntiles; j++) {
        const int buf = j & 1, nb = buf ^ 1;
        if (j + 1 < ntiles) { /* buffer nb was released by the barrier ending tile j - 1 */
            const int r0 = walk.tile(j + 1) * BR;
            at_load_tile<BR, HDP, NTH>(Qs + nb * TILE, a.q + base, r0, N);
            at_load_tile<BR, HDP, NTH>(Gs + nb * TILE, a.g + base, r0, N);
            for (int i = threadIdx.x; i < BR; i += NTH) {
                Ls[nb * BR + i] = r0 + i < N ? a.lse[(size_t)bh * N + r0 + i] * AT_LOG2E : INFINITY;
                Ds[nb * BR + i] = r0 + i < N ? a.D[(size_t)bh * N + r0 + i] : 0.0f;
            }
        }
        tc_cp_async_commit();
        tc_cp_async_wait<1>();
        __syncthreads();

        const uint16_t *q = Qs + buf * TILE, *g = Gs + buf * TILE;
        const float *lse = Ls + buf * BR, *Dq = Ds + buf * BR;
        float p[QT][4], dp[QT][4];
        at_zero(p);
        at_zero(dp);
        at_mm_bt<QT, HDP>(p, Ks + warp * 16 * LD, q, LD);  /* S^T: rows keys, columns queries */
        at_mm_bt<QT, HDP>(dp, Vs + warp * 16 * LD, g, LD); /* dP^T */
#pragma unroll
        for (int n = 0; n < QT; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int col = 8 * n + 2 * tq + (e & 1);
                p[n][e] = exp2f(p[n][e] * sl2 - lse[col]);
                dp[n][e] = p[n][e] * (dp[n][e] - Dq[col]); /* dS^T */
            }
        uint32_t pa[QT / 2][4], da[QT / 2][4];
        at_frag_a(pa, p);
        at_frag_a(da, dp);
        if (a.dv) at_mm_rn(dv, pa, g, LD);
        if (a.dk) at_mm_rn(dk, da, q, LD);
        if (ATOMIC_DQ) at_dq_atomic<HDP, NW, BR>(a, Ss, dp, Ks, bh, walk.tile(j) * BR);
        __syncthreads();
    }

    const int row0 = c0 + warp * 16;
    if (a.dk) at_store_grad(a.dk + (size_t)bh * N * a.hd, dk, row0, N, a.hd, a.scale);
    if (a.dv) at_store_grad(a.dv + (size_t)bh * N * a.hd, dv, row0, N, a.hd, 1.0f);
}

/* ------------------------------------------------------------------- dQ */

/* NW warps own 16 NW queries; key tiles of BC (dense: NW = 4, BC = 64;
 * block-sparse: NW = bq / 16, BC = bk, the selected key blocks). */
template <int HDP, int NW, int BC>
__global__ void __launch_bounds__(32 * NW) at_bwd_dq_kernel(AtArgs a) {
    constexpr int LD = HDP + 8, BR = 16 * NW, NTH = 32 * NW, NT = BC / 8, OT = HDP / 8, TILE = BC * LD;
    extern __shared__ float at_smem_f[];
    uint16_t *Qs = (uint16_t *)at_smem_f, *Gs = Qs + BR * LD, *Ks = Gs + BR * LD, *Vs = Ks + 2 * TILE;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, tq = lane & 3, gq = lane >> 2;
    const int bh = blockIdx.y, N = a.N, r0 = blockIdx.x * BR;
    const size_t base = (size_t)bh * N * HDP;
    const float sl2 = a.scale * AT_LOG2E;
    const AtWalk walk(a.list, a.cnt, (size_t)bh * gridDim.x + blockIdx.x, a.nk, N, BC);
    const int ntiles = walk.n;

    at_load_tile<BR, HDP, NTH>(Qs, a.q + base, r0, N);
    at_load_tile<BR, HDP, NTH>(Gs, a.g + base, r0, N);
    if (ntiles > 0) {
        at_load_tile<BC, HDP, NTH>(Ks, a.k + base, walk.tile(0) * BC, N);
        at_load_tile<BC, HDP, NTH>(Vs, a.v + base, walk.tile(0) * BC, N);
    }
    tc_cp_async_commit();
    float lse[2], Dr[2]; /* rows g and g + 8 of the warp's slice; padding rows are not stored */
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int row = r0 + warp * 16 + gq + 8 * r;
        lse[r] = row < N ? a.lse[(size_t)bh * N + row] * AT_LOG2E : 0.0f;
        Dr[r] = row < N ? a.D[(size_t)bh * N + row] : 0.0f;
    }

    float dq[OT][4];
    at_zero(dq);
    for (int j = 0; j < ntiles; j++) {
        const int buf = j & 1, kc0 = walk.tile(j) * BC;
        if (j + 1 < ntiles) {
            const int c1 = walk.tile(j + 1) * BC;
            at_load_tile<BC, HDP, NTH>(Ks + (buf ^ 1) * TILE, a.k + base, c1, N);
            at_load_tile<BC, HDP, NTH>(Vs + (buf ^ 1) * TILE, a.v + base, c1, N);
        }
        tc_cp_async_commit();
        tc_cp_async_wait<1>();
        __syncthreads();

        const uint16_t *k = Ks + buf * TILE;
        float p[NT][4], dp[NT][4];
        at_zero(p);
        at_zero(dp);
        at_mm_bt<NT, HDP>(p, Qs + warp * 16 * LD, k, LD);
        at_mm_bt<NT, HDP>(dp, Gs + warp * 16 * LD, Vs + buf * TILE, LD);
#pragma unroll
        for (int n = 0; n < NT; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int key = kc0 + 8 * n + 2 * tq + (e & 1);
                const float pr = key < N ? exp2f(p[n][e] * sl2 - lse[e >> 1]) : 0.0f;
                dp[n][e] = pr * (dp[n][e] - Dr[e >> 1]); /* dS */
            }
        uint32_t da[NT / 2][4];
        at_frag_a(da, dp);
        at_mm_rn(dq, da, k, LD);
        __syncthreads();
    }
    at_store_grad(a.dq + (size_t)bh * N * a.hd, dq, r0 + warp * 16, N, a.hd, a.scale);
}

/* own: 16 NW rows per block; T: the other operand's tile. */
template <int HDP, int NW, int T>
static void at_launch_dkdv(const AtArgs &a) {
    constexpr int LD = HDP + 8, BK = 16 * NW;
    const size_t smem = sizeof(uint16_t) * (size_t)(2 * BK + 4 * T) * LD + sizeof(float) * 4 * T +
                        (a.dq_atomic ? sizeof(uint16_t) * (size_t)T * (BK + 8) : 0);
    dim3 grid((unsigned)((a.N + BK - 1) / BK), (unsigned)(a.B * a.H));
    /* the atomic dQ as its own instantiation: the default's registers stay as they were */
    if (a.dq_atomic) {
        fl_smem_optin(at_bwd_dkdv_kernel<HDP, NW, T, true>, smem);
        at_bwd_dkdv_kernel<HDP, NW, T, true><<<grid, 32 * NW, smem, cuda_compute_stream()>>>(a);
    } else {
        fl_smem_optin(at_bwd_dkdv_kernel<HDP, NW, T, false>, smem);
        at_bwd_dkdv_kernel<HDP, NW, T, false><<<grid, 32 * NW, smem, cuda_compute_stream()>>>(a);
    }
    CUDA_CHECK_LAUNCH();
}

template <int HDP, int NW, int T>
static void at_launch_dq(const AtArgs &a) {
    constexpr int LD = HDP + 8, BR = 16 * NW;
    const size_t smem = sizeof(uint16_t) * (size_t)(2 * BR + 4 * T) * LD;
    fl_smem_optin(at_bwd_dq_kernel<HDP, NW, T>, smem);
    dim3 grid((unsigned)((a.N + BR - 1) / BR), (unsigned)(a.B * a.H));
    at_bwd_dq_kernel<HDP, NW, T><<<grid, 32 * NW, smem, cuda_compute_stream()>>>(a);
    CUDA_CHECK_LAUNCH();
}

/* Block-sparse: own tiles of 16 NW rows (one block), the other operand's
 * tiles one block of the other size (16, 32 or 64). */
template <int HDP, int NW>
static void at_sparse_dkdv(const AtArgs &a) {
    switch (a.bq) {
    case 16: return at_launch_dkdv<HDP, NW, 16>(a);
    case 32: return at_launch_dkdv<HDP, NW, 32>(a);
    default: return at_launch_dkdv<HDP, NW, 64>(a);
    }
}

template <int HDP, int NW>
static void at_sparse_dq(const AtArgs &a) {
    switch (a.bk) {
    case 16: return at_launch_dq<HDP, NW, 16>(a);
    case 32: return at_launch_dq<HDP, NW, 32>(a);
    default: return at_launch_dq<HDP, NW, 64>(a);
    }
}

template <int HDP>
static void at_launch_bwd(const AtArgs &a) {
    const bool dkdv = a.dk || a.dv || a.dq_atomic, dq = a.dq && !a.dq_atomic;
    if (!a.list) { /* dense */
        if (dkdv) at_launch_dkdv<HDP, 4, (HDP > 80 ? 32 : 64)>(a);
        if (dq) at_launch_dq<HDP, 4, 64>(a);
        return;
    }
    if (dkdv) {
        switch (a.bk) {
        case 16: at_sparse_dkdv<HDP, 1>(a); break;
        case 32: at_sparse_dkdv<HDP, 2>(a); break;
        default: at_sparse_dkdv<HDP, 4>(a); break;
        }
    }
    if (dq) {
        switch (a.bq) {
        case 16: at_sparse_dq<HDP, 1>(a); break;
        case 32: at_sparse_dq<HDP, 2>(a); break;
        default: at_sparse_dq<HDP, 4>(a); break;
        }
    }
}

void at_bwd(const AtArgs *a) {
    if ((long long)a->B * a->H * a->N == 0 || (!a->dq && !a->dk && !a->dv)) return;
    AtArgs b = *a;
    b.dq_atomic = a->dq && a->dq_atomic; /* nothing to add without dQ */
    a = &b;
    CHECK(!a->list || (a->listT && at_sparse_block_ok(a->bq) && at_sparse_block_ok(a->bk)),
          "attention (tensor cores): block-sparse backward needs both lists and blocks of 16, 32 or 64 (%d/%d)",
          a->bq, a->bk);
    switch (at_pad_hd(a->hd)) {
    case 32: at_launch_bwd<32>(*a); break;
    case 64: at_launch_bwd<64>(*a); break;
    case 80: at_launch_bwd<80>(*a); break;
    default: at_launch_bwd<128>(*a); break;
    }
}
