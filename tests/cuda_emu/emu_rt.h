/* tests/cuda_emu/emu_rt.h — a CPU emulation of the CUDA execution model, to
 * run the attention and SLA2 kernels' logic on a machine without a GPU
 * (run_emu.sh). One fiber per CUDA thread; __syncthreads, __syncthreads_or
 * and warp shuffles are rendezvous points (a barrier some threads never
 * reach is reported as a deadlock); between barriers the fibers run in a
 * random order, so a missing barrier shows up as a wrong result; dynamic
 * shared memory starts as NaN. Device pointers are host pointers. Numerics
 * are the host's (glibc expf, no FMA contraction), not the GPU's: this
 * checks indexing, tiling and synchronisation, not speed or last bits. */
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <algorithm>
using std::min; using std::max;
struct dim3 { unsigned x, y, z; dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {} };
struct emu_uint3 { unsigned x, y, z; };
extern emu_uint3 threadIdx, blockIdx, blockDim, gridDim;
extern void *emu_dyn_smem;
extern int emu_cur;
extern double emu_slot[4096];
extern int emu_islot[4096];
void emu_yield(int state);
void emu_launch_impl(dim3 g, dim3 b, size_t smem, const std::function<void()> &f);
template <class G, class B, class F> void emu_launch(G g, B b, size_t smem, F f) { emu_launch_impl(dim3(g), dim3(b), smem, std::function<void()>(f)); }
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__
#define __launch_bounds__(...)
#define __shared__ static
typedef int cudaStream_t;
typedef int cudaError_t;
#define cudaSuccess 0
inline void __syncthreads() { emu_yield(1); }
inline void __syncwarp() { emu_yield(2); }
inline int __syncthreads_or(int p) { emu_islot[emu_cur] = p != 0; emu_yield(1); int r = 0; for (unsigned t = 0; t < blockDim.x * blockDim.y * blockDim.z; t++) r |= emu_islot[t]; emu_yield(1); return r; }
template <class T> inline T __shfl_xor_sync(unsigned, T v, int off) {
    emu_slot[emu_cur] = (double)v; emu_yield(2);
    T r = (T)emu_slot[(emu_cur & ~31) | ((emu_cur & 31) ^ off)]; emu_yield(2); return r; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
template <class T> inline T __ldg(const T *p) { return *p; }
inline int atomicMax(int *p, int v) { int o = *p; if (v > o) *p = v; return o; }
template <class K> inline int cudaFuncSetAttribute(K, int, int) { return 0; }
#define cudaFuncAttributeMaxDynamicSharedMemorySize 0
using std::isnan;
