/* tests/cuda_emu/shadow/kernels/cuda/cuda_common.cuh — stands in for the real
 * header when the kernels are compiled for the emulator (run_emu.sh puts
 * shadow/ first on the include path): the CUDA runtime pieces the attention
 * and SLA2 files use, on the host. */
#pragma once
#include "emu_rt.h"
extern "C" {
#include "core/check.h"
}
#include "kernels/cuda/ops_cuda.h"
#define CUDA_CHECK(call) (void)(call)
#define CUDA_CHECK_LAUNCH() ((void)0)
inline cudaStream_t cuda_compute_stream(void) { return 0; }
inline float cuda_round_bf16(float x) { uint32_t u; memcpy(&u, &x, 4); if ((u & 0x7fffffff) > 0x7f800000) return x; u += 0x7fff + ((u >> 16) & 1); u &= 0xffff0000u; memcpy(&x, &u, 4); return x; }
