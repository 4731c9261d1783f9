/* kernels/cuda/flash_tile.cuh — the building blocks of the tiled attention
 * kernels (full attention in attention.cu, SLA2's sparse branch in
 * sla2_sparse.cu and sla2_qat.cu).
 *
 * A block is 256 threads seen as 16 x 16 (tx = tid & 15, ty = tid >> 4); a
 * thread owns rows ty + 16 i (i < RM) and columns tx + 16 j (j < CM) of a
 * TR x TC tile (TR = 16 RM, TC = 16 CM). A warp is two rows of 16 lanes, so a
 * row's reduction is a shuffle over the 16 lanes of a half-warp.
 *
 * Tiles live in shared memory row-major with an odd row stride (width + 1):
 * the products read A by row (two distinct rows per warp: a broadcast) and B
 * either by row or by column, and with an odd stride both are free of bank
 * conflicts, so one layout serves Q K^T, P V, dS K and dS^T Q alike.
 * Products are plain fp32 FMAs (no tensor cores yet): FP32 mode is then true
 * fp32, and BF16 mode only rounds the operands as they are stored. */
#ifndef KERNELS_CUDA_FLASH_TILE_CUH
#define KERNELS_CUDA_FLASH_TILE_CUH

#include "kernels/cuda/cuda_common.cuh"

#define FL_THREADS 256

/* Head dims are compiled for 32, 64 and 128; a runtime hd below one of them
 * is zero-padded up to it (zeros change no dot product). 0: unsupported. */
static inline int fl_pad_hd(int hd) { return hd < 1 ? 0 : hd <= 32 ? 32 : hd <= 64 ? 64 : hd <= 128 ? 128 : 0; }

/* Reductions over the 16 lanes of a half-warp (one tile row). */
__device__ __forceinline__ float fl_half_max(float v) {
#pragma unroll
    for (int off = 8; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}
__device__ __forceinline__ float fl_half_sum(float v) {
#pragma unroll
    for (int off = 8; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

/* dst[r][c] (stride HDP + 1) = mul * src[r * rs + c] for r < nvalid, c < hd,
 * else 0; rounded to bf16 when bf16 (BF16 mode's operands). */
template <int ROWS, int HDP>
__device__ __forceinline__ void fl_load_rows(float *dst, const float *__restrict__ src, long long rs, int nvalid,
                                             int hd, float mul, int bf16) {
    for (int e = threadIdx.x; e < ROWS * HDP; e += FL_THREADS) {
        const int r = e / HDP, c = e % HDP;
        float x = 0.0f;
        if (r < nvalid && c < hd) {
            x = src[(long long)r * rs + c] * mul;
            if (bf16) x = cuda_round_bf16(x);
        }
        dst[r * (HDP + 1) + c] = x;
    }
}

/* acc[i][j] += sum_k A[row_i][k] * B[col_j][k]   (A B^T: Q K^T, dO V^T) */
template <int RM, int CM, int K, int LDA, int LDB>
__device__ __forceinline__ void fl_mm_nt(float (&acc)[RM][CM], const float *A, const float *B, int ty, int tx) {
#pragma unroll 8
    for (int k = 0; k < K; k++) {
        float a[RM], b[CM];
#pragma unroll
        for (int i = 0; i < RM; i++) a[i] = A[(ty + 16 * i) * LDA + k];
#pragma unroll
        for (int j = 0; j < CM; j++) b[j] = B[(tx + 16 * j) * LDB + k];
#pragma unroll
        for (int i = 0; i < RM; i++)
#pragma unroll
            for (int j = 0; j < CM; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
}

/* acc[i][j] += sum_k A[row_i][k] * B[k][col_j]   (A B: P V, dS K, P^T dO as (P^T) dO) */
template <int RM, int CM, int K, int LDA, int LDB>
__device__ __forceinline__ void fl_mm_nn(float (&acc)[RM][CM], const float *A, const float *B, int ty, int tx) {
#pragma unroll 8
    for (int k = 0; k < K; k++) {
        float a[RM], b[CM];
#pragma unroll
        for (int i = 0; i < RM; i++) a[i] = A[(ty + 16 * i) * LDA + k];
#pragma unroll
        for (int j = 0; j < CM; j++) b[j] = B[k * LDB + tx + 16 * j];
#pragma unroll
        for (int i = 0; i < RM; i++)
#pragma unroll
            for (int j = 0; j < CM; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
}

/* Opt a kernel into more than 48 KiB of dynamic shared memory (needed from
 * head dim 64 on; every configuration here stays below sm_80's 163 KiB). */
template <class Kernel>
static inline void fl_smem_optin(Kernel kern, size_t bytes) {
    if (bytes > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

#endif
