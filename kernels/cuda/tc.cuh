/* kernels/cuda/tc.cuh — the warp-level tensor-core instructions the attention
 * and SLA2 kernels use, as one small API: under nvcc each is the PTX
 * instruction of the same name (inline asm); under the CPU emulator
 * (JIT_CUDA_EMU) each is a warp-collective operation of the emulator
 * (tests/cuda_emu/include/emu_tc.h) that implements the PTX ISA's fragment
 * layouts and checks alignment, bounds and cp.async completion.
 *
 * Fragments are registers of 32 bits holding two bf16 values (the lower
 * address, or the lower column, in the low half), as in the PTX ISA
 * ("Matrix fragments for mma.m16n8k16 with floating point type"):
 *   A (16x16, row-major):  4 registers per lane
 *   B (16x8,  col-major):  2 registers per lane
 *   C, D (16x8, fp32):     4 floats per lane
 * Every lane of the warp must call each function together (".sync.aligned").
 *
 *   tc_mma_16816(d, a, b, c)        D = A*B + C   (mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32)
 *   tc_ldmatrix_x4(r, p)            four 8x8 b16 matrices from shared memory; lane l gives the row
 *                                   address of row (l % 8) of matrix (l / 8); 16-byte aligned
 *   tc_ldmatrix_x4_trans(r, p)      the same, each matrix transposed (.trans)
 *   tc_ldmatrix_x2(r, p)            two matrices, lanes 0..15 give addresses
 *   tc_ldmatrix_x2_trans(r, p)
 *   tc_cp_async_16(dst, src)        16 bytes global -> shared, asynchronous (cp.async.cg)
 *   tc_cp_async_16_zfill(dst, src, n)  the same, reading n (0..16) bytes and zero-filling the rest
 *   tc_cp_async_commit()            closes the lane's current group (cp.async.commit_group)
 *   tc_cp_async_wait<N>()           waits until at most N of the lane's groups are pending
 *                                   (cp.async.wait_group N); a __syncthreads() after it makes the
 *                                   data visible to the other lanes and warps
 *   tc_pack_bf16x2(lo, hi)          two floats rounded to nearest even into one register
 *   tc_unpack_bf16x2(v)             back to two floats (x = low half)
 */
#ifndef KERNELS_CUDA_TC_CUH
#define KERNELS_CUDA_TC_CUH

#include <cuda_bf16.h>
#include <stdint.h>

#ifdef JIT_CUDA_EMU
#include "emu_tc.h"
#else

__device__ __forceinline__ void tc_mma_16816(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
                   "f"(c[2]), "f"(c[3]));
}

__device__ __forceinline__ uint32_t tc_smem_addr(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ void tc_ldmatrix_x4(uint32_t r[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(tc_smem_addr(p)));
}

__device__ __forceinline__ void tc_ldmatrix_x4_trans(uint32_t r[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(tc_smem_addr(p)));
}

__device__ __forceinline__ void tc_ldmatrix_x2(uint32_t r[2], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(tc_smem_addr(p)));
}

__device__ __forceinline__ void tc_ldmatrix_x2_trans(uint32_t r[2], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(tc_smem_addr(p)));
}

__device__ __forceinline__ void tc_cp_async_16(void *dst, const void *src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(tc_smem_addr(dst)), "l"(src));
}

__device__ __forceinline__ void tc_cp_async_16_zfill(void *dst, const void *src, int n) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(tc_smem_addr(dst)), "l"(src), "r"(n));
}

__device__ __forceinline__ void tc_cp_async_commit(void) {
    asm volatile("cp.async.commit_group;\n" ::);
}

template <int N> __device__ __forceinline__ void tc_cp_async_wait(void) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ uint32_t tc_pack_bf16x2(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return (uint32_t)__bfloat16_as_ushort(h.x) | ((uint32_t)__bfloat16_as_ushort(h.y) << 16);
}

__device__ __forceinline__ float2 tc_unpack_bf16x2(uint32_t v) {
    return make_float2(__uint_as_float(v << 16), __uint_as_float(v & 0xffff0000u));
}

#endif /* JIT_CUDA_EMU */
#endif
