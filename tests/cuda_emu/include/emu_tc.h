/* tests/cuda_emu/include/emu_tc.h — the warp-level matrix instructions of
 * kernels/cuda/tc.cuh as the CPU emulator runs them (included by tc.cuh
 * under JIT_CUDA_EMU, with the same names and signatures as its PTX side).
 *
 * mma and ldmatrix are warp collectives of the emulator (emu_tc.cc): every
 * lane calls, the runtime waits until all 32 lanes of the warp are at the
 * same instruction (anything else is reported as divergent) and then moves
 * the values between lanes with the PTX ISA's fragment layouts
 * (docs/cuda_emu.md has the tables and their source). cp.async, its
 * commit_group and wait_group are per-thread, as in PTX: a copy is checked
 * (alignment, bounds, memory spaces) when it is issued and written into
 * shared memory only when a wait_group of the issuing thread completes its
 * group; until then the destination holds poison (0xff bytes, NaN) and any
 * access to it is reported.
 *
 * The functions are out of line (in the emulator's runtime, not
 * instrumented), so each sees its call site in the kernel for reports. */
#ifndef EMU_TC_H
#define EMU_TC_H

#include <stdint.h>
#include <string.h>

#include "cuda_bf16.h"
#include "cuda_runtime.h"

/* D = A*B + C: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 */
void tc_mma_16816(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]);
/* ldmatrix.sync.aligned.m8n8.{x4,x2}[.trans].shared.b16 */
void tc_ldmatrix_x4(uint32_t r[4], const void *p);
void tc_ldmatrix_x4_trans(uint32_t r[4], const void *p);
void tc_ldmatrix_x2(uint32_t r[2], const void *p);
void tc_ldmatrix_x2_trans(uint32_t r[2], const void *p);
/* cp.async.cg.shared.global [dst], [src], 16 (, n) */
void tc_cp_async_16(void *dst, const void *src);
void tc_cp_async_16_zfill(void *dst, const void *src, int n);
/* cp.async.commit_group / cp.async.wait_group n */
void tc_cp_async_commit(void);
void emu_cp_async_wait(int n);

/* Inlined, so emu_cp_async_wait's return address is the kernel's call site. */
template <int N> __attribute__((always_inline)) inline void tc_cp_async_wait(void) {
    static_assert(N >= 0, "cp.async.wait_group takes a non-negative count");
    emu_cp_async_wait(N);
}

/* Two floats rounded to nearest even into one register (lo in bits 0-15). */
inline uint32_t tc_pack_bf16x2(float lo, float hi) {
    return (uint32_t)__float2bfloat16_rn(lo).bits | ((uint32_t)__float2bfloat16_rn(hi).bits << 16);
}

inline float2 tc_unpack_bf16x2(uint32_t v) {
    uint32_t lo = v << 16, hi = v & 0xffff0000u;
    float2 r;
    memcpy(&r.x, &lo, 4);
    memcpy(&r.y, &hi, 4);
    return r;
}

#endif
