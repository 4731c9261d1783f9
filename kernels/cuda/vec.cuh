/* kernels/cuda/vec.cuh — 16-byte vector access for the fused element-wise
 * kernels (fused_norm.cu, fused_qkv.cu, the SwiGLU and loss kernels).
 *
 * A kernel is written once over "units" of V floats and instantiated twice:
 * V = 4 moves each unit as one float4 (one 16-byte load or store, the
 * widest a thread issues), the other instance moves the same unit as V
 * scalars. The host picks the vector instance only when every pointer the
 * kernel touches with it is 16-byte aligned and the row length is a
 * multiple of 4 (vec_ok); otherwise the scalar one runs, with the same
 * arithmetic in the same order, so the two give identical results. A
 * float4 access at an address that is not a multiple of 16 stops a GPU
 * ("misaligned address"), and the emulator checks the same
 * (docs/cuda_emu.md): a wrong choice fails there, not silently.
 * Also the last step of those kernels' backward passes: the in-order sum
 * of per-segment column partials (vec_sum_partials). */
#ifndef KERNELS_CUDA_VEC_CUH
#define KERNELS_CUDA_VEC_CUH

#include <initializer_list>

#include "kernels/cuda/cuda_util.cuh"

/* d = the V floats at p (V = 4: one float4 access; else V scalar ones). */
template <int V, bool Wide>
__device__ __forceinline__ void vec_load(float (&d)[V], const float *p) {
    if constexpr (Wide && V == 4) {
        float4 t = *reinterpret_cast<const float4 *>(p);
        d[0] = t.x, d[1] = t.y, d[2] = t.z, d[3] = t.w;
    } else {
#pragma unroll
        for (int e = 0; e < V; e++) d[e] = p[e];
    }
}

template <int V, bool Wide>
__device__ __forceinline__ void vec_store(float *p, const float (&d)[V]) {
    if constexpr (Wide && V == 4) {
        *reinterpret_cast<float4 *>(p) = make_float4(d[0], d[1], d[2], d[3]);
    } else {
#pragma unroll
        for (int e = 0; e < V; e++) p[e] = d[e];
    }
}

/* The 16-byte rule of the vector instances: every non-NULL pointer aligned. */
static inline bool vec_aligned(std::initializer_list<const void *> ptrs) {
    for (const void *p : ptrs)
        if (p && (uintptr_t)p % 16) return false;
    return true;
}

/* Sum over the block (every thread gets the same value, the warps' sums
 * added in warp order: deterministic). sh: 32 floats of shared memory; all
 * threads of the block must call it. */
__device__ __forceinline__ float vec_block_sum(float v, float *sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int warp = threadIdx.x / 32, nw = (blockDim.x + 31) / 32;
    __syncthreads(); /* the previous call's readers are done with sh */
    if (threadIdx.x % 32 == 0) sh[warp] = v;
    __syncthreads();
    float t = sh[0];
    for (int i = 1; i < nw; i++) t += sh[i];
    return t;
}

/* dst[g C + c] += sum over s < S of part[(g S + s) C + c], in s order: the
 * column sums the fused backward kernels leave as one partial row per
 * segment of rows (fixed-order, so reproducible). */
template <class T> /* a template: each file that uses it gets its own copy, the others none */
__global__ void vec_sum_partials_kernel(T *dst, const T *part, int G, size_t S, int C) {
    CUDA_FOR(i, (size_t)G * C) {
        size_t g = i / C, c = i % C;
        const T *p = part + g * S * C + c;
        T t = 0;
        for (size_t s = 0; s < S; s++) t += p[s * C];
        dst[i] += t;
    }
}

static inline void vec_sum_partials(float *dst, const float *part, int G, size_t S, int C) {
    if (!dst || G <= 0 || C <= 0) return;
    unsigned blocks = cuda_blocks((size_t)G * C, CUDA_THREADS);
    vec_sum_partials_kernel<float><<<blocks, CUDA_THREADS, 0, cuda_compute_stream()>>>(dst, part, G, S, C);
    CUDA_CHECK_LAUNCH();
}

#endif
