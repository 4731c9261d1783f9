/* tests/cuda_emu/include/emu_device.h — the kernel side of the CUDA
 * emulator: what a .cu file sees of the device (threadIdx, barriers, warp
 * shuffles, atomics, the rounding intrinsics, bf16) when it is compiled for
 * the CPU. Force-included (-include) when tests/cuda_emu/emulate.cmake
 * preprocesses a kernel file; transform.py then rewrites what C++ cannot
 * express (launches, __shared__ declarations, __launch_bounds__) into calls
 * to emu_launch, emu_static_smem, emu_dyn_smem and emu_launch_bounds.
 *
 * Barriers, shuffles and atomics are calls into the runtime (emu_rt.cc), so
 * the runtime sees each one with the kernel's source position; everything
 * else is plain C++ whose memory accesses the compiler instruments
 * (-fsanitize=thread instrumentation, served by emu_rt.cc's hooks). */
#ifndef EMU_DEVICE_H
#define EMU_DEVICE_H

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "cuda_bf16.h"
#include "cuda_runtime.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __restrict__ __restrict
/* __shared__ and __launch_bounds__ are left for transform.py. */

struct emu_uint3 {
    unsigned int x, y, z;
};
/* The executing thread's coordinates: the scheduler sets them at every
 * switch between emulated threads. */
extern emu_uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
constexpr int warpSize = 32;

using std::max;
using std::min;

/* ---- launches (transform.py writes the calls) ---- */

struct EmuSite {
    const char *kernel; /* as written at the launch */
    const char *file;
    int line;
};

void emu_launch_impl(const EmuSite &site, const void *key, dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                     const void *closure, size_t size, void (*thunk)(void *));

/* f calls the kernel with its arguments, captured by value at the launch
 * (CUDA copies kernel parameters when the launch is queued). */
template <class F>
inline void emu_launch(const EmuSite &site, const void *key, dim3 grid, dim3 block, size_t smem,
                       cudaStream_t stream, const F &f) {
    static_assert(std::is_trivially_copyable<F>::value, "CUDA: kernel arguments must be trivially copyable");
    static_assert(alignof(F) <= 64, "kernel argument alignment above 64");
    emu_launch_impl(site, key, grid, block, smem, stream, &f, sizeof(F), [](void *p) { (*(F *)p)(); });
}

void *emu_dyn_smem(void);
void *emu_static_smem(int id, size_t bytes, size_t align, const char *name);
void emu_launch_bounds(unsigned max_threads, const char *kernel);

/* ---- barriers and warp operations ---- */

void emu_syncthreads(void);
int emu_syncthreads_op(int pred, int op); /* 0 or, 1 and, 2 count */
void emu_syncwarp(unsigned mask);
/* kind: 0 idx, 1 xor, 2 down, 3 up */
uint64_t emu_shfl(unsigned mask, uint64_t bits, int kind, int arg, int width);

__attribute__((always_inline)) inline void __syncthreads() { emu_syncthreads(); }
inline int __syncthreads_or(int p) { return emu_syncthreads_op(p, 0); }
inline int __syncthreads_and(int p) { return emu_syncthreads_op(p, 1); }
inline int __syncthreads_count(int p) { return emu_syncthreads_op(p, 2); }
__attribute__((always_inline)) inline void __syncwarp(unsigned mask = 0xffffffffu) { emu_syncwarp(mask); }

template <class T> __attribute__((always_inline)) inline T emu_shfl_t(unsigned mask, T v, int kind, int arg, int width) {
    static_assert(sizeof(T) <= 8, "shuffle of a type above 8 bytes");
    uint64_t b = 0;
    memcpy(&b, &v, sizeof(T));
    b = emu_shfl(mask, b, kind, arg, width);
    T r;
    memcpy(&r, &b, sizeof(T));
    return r;
}
template <class T> __attribute__((always_inline)) inline T __shfl_sync(unsigned m, T v, int src, int w = 32) { return emu_shfl_t(m, v, 0, src, w); }
template <class T> __attribute__((always_inline)) inline T __shfl_xor_sync(unsigned m, T v, int x, int w = 32) { return emu_shfl_t(m, v, 1, x, w); }
template <class T> __attribute__((always_inline)) inline T __shfl_down_sync(unsigned m, T v, unsigned d, int w = 32) {
    return emu_shfl_t(m, v, 2, (int)d, w);
}
template <class T> __attribute__((always_inline)) inline T __shfl_up_sync(unsigned m, T v, unsigned d, int w = 32) {
    return emu_shfl_t(m, v, 3, (int)d, w);
}

/* ---- atomics (checked for bounds, exempt from the race detector) ---- */

int atomicAdd(int *p, int v);
unsigned atomicAdd(unsigned *p, unsigned v);
unsigned long long atomicAdd(unsigned long long *p, unsigned long long v);
float atomicAdd(float *p, float v);
double atomicAdd(double *p, double v);
int atomicMax(int *p, int v);
int atomicMin(int *p, int v);
unsigned atomicMax(unsigned *p, unsigned v);
int atomicExch(int *p, int v);
int atomicCAS(int *p, int cmp, int v);

/* ---- arithmetic intrinsics: IEEE round-to-nearest, never contracted
 * (kernels are compiled with -ffp-contract=off) ---- */

inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((uint64_t)a * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline float __int_as_float(int i) {
    float f;
    memcpy(&f, &i, 4);
    return f;
}
inline int __float_as_int(float f) {
    int i;
    memcpy(&i, &f, 4);
    return i;
}
inline float __uint_as_float(unsigned i) {
    float f;
    memcpy(&f, &i, 4);
    return f;
}
inline unsigned __float_as_uint(float f) {
    unsigned i;
    memcpy(&i, &f, 4);
    return i;
}
template <class T> inline T __ldg(const T *p) { return *p; }

#endif
