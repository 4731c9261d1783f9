/* kernels/cuda/attention_tc.cuh — the warp-level pieces of the tensor-core
 * attention kernels (attention_tc_fwd.cu, attention_tc_bwd.cu): bf16 tiles in
 * shared memory filled by cp.async, ldmatrix address patterns that give the
 * A and B fragments of mma.m16n8k16 (tc.cuh), products of a 16-row warp
 * slice with a tile, and the conversion of an fp32 result fragment into the
 * A fragment of the next product (P V, dS K, P^T dO, dS^T Q keep P and dS in
 * registers, as FlashAttention-2 does).
 *
 * Fragment positions (PTX ISA, "Matrix fragments for mma.m16n8k16"), lane l,
 * g = l / 4, t = l % 4: result fragment c[0..1] is row g, columns 2t, 2t+1 of
 * its 16 x 8 tile; c[2..3] the same columns of row g + 8.
 *
 * Tiles are row-major bf16 (uint16_t) with a row stride of HDP + 8 elements:
 * the 8 row addresses of one ldmatrix matrix then fall 16 bytes apart modulo
 * 128 (HDP + 8 is an odd multiple of 8), so no two share a bank group.
 * Operands in global memory are bf16 [B*H, N, HDP], HDP the head dim padded
 * with zeros to 32, 64, 80 or 128 (zeros change no dot product).
 *
 * Dense or block-sparse: the kernels walk the other operand's tiles either
 * all in order (full attention) or as a list per own tile (SLA2's hard
 * mask: AtArgs.list / cnt, from sla2_tc.cu). A block-sparse launch uses
 * tiles equal to the router's blocks (own rows = block_q or block_k, 16 per
 * warp; other tile = the other block size), so a tile is exactly one
 * (query block, key block) pair and nothing computed is masked away except
 * rows past N. */
#ifndef KERNELS_CUDA_ATTENTION_TC_CUH
#define KERNELS_CUDA_ATTENTION_TC_CUH

#include <stdint.h>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/tc.cuh"

#define AT_THREADS 128 /* 4 warps */
#define AT_TILE 64     /* rows of a block's own tile: 4 warps x 16 */
#define AT_LOG2E 1.4426950408889634f
#define AT_LN2 0.6931471805599453f

/* The compiled head dims; 0: unsupported (the SIMT kernels take it). */
static inline int at_pad_hd(int hd) {
    return hd < 1 ? 0 : hd <= 32 ? 32 : hd <= 64 ? 64 : hd <= 80 ? 80 : hd <= 128 ? 128 : 0;
}

typedef struct AtArgs {
    const uint16_t *q, *k, *v; /* bf16 [B*H, N, HDP] */
    const uint16_t *g;         /* dO, bf16 [B*H, N, HDP] (backward) */
    int B, H, N, hd;
    float scale;          /* 1 / sqrt(hd) */
    float *o;             /* forward: element (b, h, n, c) at o[b*o_sb + h*o_sh + n*o_rs + c] */
    long long o_sb, o_sh, o_rs; /* at_strides_merged: out [B, N, H*hd]; at_strides_bhnd: [B, H, N, hd] */
    float *lse;           /* [B*H, N], natural log; written forward, read backward */
    const float *D;       /* [B*H, N] = rowsum(dO . O) (backward) */
    float *dq, *dk, *dv;  /* [B*H, N, hd], accumulated; NULL: skipped */
    /* Block-sparse (NULL: dense). Own tile i of pair bh visits the other
     * operand's tiles list[(bh * n_own + i) * lmax + t], t < cnt[bh * n_own + i],
     * in increasing order. Forward and dQ: own = query blocks of bq, list =
     * the selected key blocks (lmax = nk); dK/dV: own = key blocks of bk,
     * listT = the query blocks that selected it (lmax = nq). */
    const int *list, *cnt, *listT, *cntT;
    int bq, bk, nq, nk;
    /* SLA2's combination in the forward's epilogue (comb NULL: none):
     * comb[b, n, h*hd + c] = alpha_h o + (1 - alpha_h) o_l[b, h, n, c],
     * alpha_h = sigmoid(alpha_logit[h]), rounded as sla2.cu's combine kernel. */
    float *comb;
    const float *o_l, *alpha_logit;
    /* Backward: 1 adds dQ inside the dK/dV kernel with fp32 atomics (5
     * products, FlashAttention-2; dQ's rounding varies from run to run);
     * 0 (the default): the separate deterministic dQ kernel (7 products).
     * at_bwd_atomic_dq() reads the choice from JIT_CUDA_ATTN_BWD. */
    int dq_atomic;
} AtArgs;

/* JIT_CUDA_ATTN_BWD: unset or "deterministic" -> 0, "atomic" -> 1; any other
 * value stops with a message naming it (attention_tc_bwd.cu). */
int at_bwd_atomic_dq(void);

static inline void at_strides_merged(AtArgs *a) {
    a->o_sb = (long long)a->N * a->H * a->hd, a->o_sh = a->hd, a->o_rs = (long long)a->H * a->hd;
}
static inline void at_strides_bhnd(AtArgs *a) {
    a->o_sb = (long long)a->H * a->N * a->hd, a->o_sh = (long long)a->N * a->hd, a->o_rs = a->hd;
}

/* Block sizes a block-sparse launch compiles (a tile per 16-row warp slice). */
static inline int at_sparse_block_ok(int b) { return b == 16 || b == 32 || b == 64; }

/* Host API (attention_tc_fwd.cu, attention_tc_bwd.cu). The bf16 operand
 * buffers are cuda_scratch(): at_convert writes q, k, v there. */
void at_convert(uint16_t *dst, const float *src, int BH, int N, int hd, int HDP);
void at_fwd(const AtArgs *a);
/* D = rowsum(dO . O) and dO in bf16 [B*H, N, HDP] (gbf may be NULL: D only);
 * dout is [B, N, H*hd], o the same (o_bhnd = 0) or [B, H, N, hd] (o_bhnd =
 * 1, SLA2's O_s); alpha_logit (may be NULL): dO = sigmoid(alpha_logit[h])
 * dout, SLA2's sparse share of the gradient. */
void at_dout_prep(float *D, uint16_t *gbf, const float *dout, const float *o, int o_bhnd, const float *alpha_logit,
                  int B, int H, int N, int hd, int HDP);
void at_bwd(const AtArgs *a);

/* ROWS rows of a [N, HDP] bf16 operand from row r0 on into a shared tile
 * (stride HDP + 8), asynchronously, by NTH threads; rows at or past N become
 * zeros (the zero-filling copy reads nothing, from a valid address). */
template <int ROWS, int HDP, int NTH = AT_THREADS>
__device__ __forceinline__ void at_load_tile(uint16_t *dst, const uint16_t *__restrict__ src, int r0, int N) {
    constexpr int CH = HDP / 8, LDS = HDP + 8;
    for (int e = threadIdx.x; e < ROWS * CH; e += NTH) {
        const int r = e / CH, c = (e % CH) * 8, row = r0 + r;
        const bool ok = row < N;
        tc_cp_async_16_zfill(dst + r * LDS + c, src + (size_t)(ok ? row : 0) * HDP + c, ok ? 16 : 0);
    }
}

/* A fragment: rows [0, 16) x columns [k0, k0 + 16) of tile t (stride ld).
 * Lane l gives row l % 16 of matrix l / 8 (matrices: rows 0-7 | 8-15, then
 * columns +8). */
__device__ __forceinline__ void at_ld_a(uint32_t a[4], const uint16_t *t, int ld, int k0) {
    const int l = threadIdx.x & 31;
    tc_ldmatrix_x4(a, t + (l & 15) * ld + k0 + ((l >> 4) << 3));
}

/* B fragments of the n-tiles n0 and n0 + 8 at k0 where B[k][n] = T[n][k]
 * (Q K^T's K: key rows of dims): b[0..1] for n0, b[2..3] for n0 + 8. */
__device__ __forceinline__ void at_ld_bt(uint32_t b[4], const uint16_t *t, int ld, int n0, int k0) {
    const int l = threadIdx.x & 31;
    tc_ldmatrix_x4(b, t + (n0 + (l & 7) + ((l >> 4) << 3)) * ld + k0 + (((l >> 3) & 1) << 3));
}

/* The same where B[k][n] = T[k][n] (P V's V: rows are the summed index),
 * through the transposing ldmatrix. */
__device__ __forceinline__ void at_ld_bn(uint32_t b[4], const uint16_t *t, int ld, int n0, int k0) {
    const int l = threadIdx.x & 31;
    tc_ldmatrix_x4_trans(b, t + (k0 + (l & 7) + (((l >> 3) & 1) << 3)) * ld + n0 + ((l >> 4) << 3));
}

/* acc (16 x 8 NT) += A B with A = rows [0, 16) of tile a, B[k][n] = T[n][k]
 * over k < K: S = Q K^T, dP = dO V^T and their transposes. */
template <int NT, int K>
__device__ __forceinline__ void at_mm_bt(float (&acc)[NT][4], const uint16_t *a, const uint16_t *t, int ld) {
    static_assert(NT % 2 == 0 && K % 16 == 0, "whole fragments");
#pragma unroll
    for (int k0 = 0; k0 < K; k0 += 16) {
        uint32_t af[4];
        at_ld_a(af, a, ld, k0);
#pragma unroll
        for (int n = 0; n < NT; n += 2) {
            uint32_t bf[4];
            at_ld_bt(bf, t, ld, 8 * n, k0);
            tc_mma_16816(acc[n], af, bf, acc[n]);
            tc_mma_16816(acc[n + 1], af, bf + 2, acc[n + 1]);
        }
    }
}

/* acc (16 x 8 NT) += A B with A in registers (KT fragments of 16 columns,
 * from at_frag_a) and B[k][n] = T[k][n]: O += P V, dQ += dS K, dV += P^T dO,
 * dK += dS^T Q. */
template <int NT, int KT>
__device__ __forceinline__ void at_mm_rn(float (&acc)[NT][4], const uint32_t (&a)[KT][4], const uint16_t *t, int ld) {
    static_assert(NT % 2 == 0, "whole fragments");
#pragma unroll
    for (int kk = 0; kk < KT; kk++)
#pragma unroll
        for (int n = 0; n < NT; n += 2) {
            uint32_t bf[4];
            at_ld_bn(bf, t, ld, 8 * n, 16 * kk);
            tc_mma_16816(acc[n], a[kk], bf, acc[n]);
            tc_mma_16816(acc[n + 1], a[kk], bf + 2, acc[n + 1]);
        }
}

/* Result fragments of a 16 x 16 KT slice (n-tiles 2kk, 2kk + 1) as the A
 * fragments of the next product, rounded to bf16: the layouts agree
 * element for element (row g / g + 8, columns 2t, 2t + 1 and + 8). */
template <int KT>
__device__ __forceinline__ void at_frag_a(uint32_t (&a)[KT][4], const float (&c)[2 * KT][4]) {
#pragma unroll
    for (int kk = 0; kk < KT; kk++) {
        a[kk][0] = tc_pack_bf16x2(c[2 * kk][0], c[2 * kk][1]);
        a[kk][1] = tc_pack_bf16x2(c[2 * kk][2], c[2 * kk][3]);
        a[kk][2] = tc_pack_bf16x2(c[2 * kk + 1][0], c[2 * kk + 1][1]);
        a[kk][3] = tc_pack_bf16x2(c[2 * kk + 1][2], c[2 * kk + 1][3]);
    }
}

template <int NT>
__device__ __forceinline__ void at_zero(float (&acc)[NT][4]) {
#pragma unroll
    for (int n = 0; n < NT; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
}

/* The other operand's tiles an own tile walks: the n-th one's first row
 * (tile size T), and how many there are. */
struct AtWalk {
    const int *list;
    int n;
    __device__ __forceinline__ AtWalk(const int *lst, const int *cnt, size_t row, int lmax, int N, int T)
        : list(lst ? lst + row * lmax : nullptr), n(lst ? cnt[row] : (N + T - 1) / T) {}
    __device__ __forceinline__ int tile(int j) const { return list ? list[j] : j; }
};

/* Reductions over the 4 lanes that hold one fragment row. */
__device__ __forceinline__ float at_quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float at_quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

/* dst[row, c] += mul * acc for the warp's 16 rows from r0 (rows < N, columns
 * < hd) of a [N, hd] fp32 gradient: dQ, dK, dV. */
template <int NT>
__device__ __forceinline__ void at_store_grad(float *dst, const float (&acc)[NT][4], int r0, int N, int hd, float mul) {
    const int l = threadIdx.x & 31, g = l >> 2, t = l & 3;
#pragma unroll
    for (int n = 0; n < NT; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int row = r0 + g + 8 * (e >> 1), c = 8 * n + 2 * t + (e & 1);
            if (row < N && c < hd) dst[(size_t)row * hd + c] += mul * acc[n][e];
        }
}

#endif
