/* kernels/cuda/cuda_rng.cuh — the device twin of core/rng.c: Philox4x32-10
 * and the uniform draw built on it, bit for bit the same as the CPU's, so a
 * dropout mask (or any noise) drawn on the GPU equals the one drawn on the
 * CPU for the same (seed, stream, index). Integer arithmetic only, except
 * the final scaling, which is exact (24 bits times a power of two). */
#ifndef KERNELS_CUDA_CUDA_RNG_CUH
#define KERNELS_CUDA_CUDA_RNG_CUH

#include <stdint.h>

/* Counter (block lo, block hi, stream lo, stream hi), key = seed: rng_block. */
__device__ __forceinline__ void cuda_rng_block(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4]) {
    uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32), c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
#pragma unroll
    for (int round = 0; round < 10; round++) {
        uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c1 = lo1;
        c3 = lo0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

/* 24 high bits -> (0, 1), as rng_to_open01. */
__device__ __forceinline__ float cuda_rng_open01(uint32_t x) {
    return ((float)(x >> 8) + 0.5f) * (1.0f / 16777216.0f);
}

__device__ __forceinline__ float cuda_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    uint32_t w[4];
    cuda_rng_block(seed, stream, index >> 2, w);
    return cuda_rng_open01(w[index & 3]);
}

#endif
