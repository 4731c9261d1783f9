/* kernels/cuda/cuda_common.cuh — what every .cu file of the CUDA backend
 * shares: error checks that stop through core/check.h, the compute stream and
 * cuBLASLt handle, launch-size helpers, bf16 rounding, and (through
 * kernels/cuda/ops_cuda.h) the declarations of every cuda_* kernel entry,
 * made from core/op_list.h. */
#ifndef KERNELS_CUDA_CUDA_COMMON_CUH
#define KERNELS_CUDA_CUDA_COMMON_CUH

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "core/check.h"
}
#include "kernels/cuda/ops_cuda.h"

/* A kernel's fault is reported by the next call that waits for it, often
 * far from the kernel: the hint says how to find it (JIT_CUDA_SYNC=1). */
#define CUDA_CHECK(call)                                                                                   \
    do {                                                                                                   \
        cudaError_t e_ = (call);                                                                           \
        CHECK(e_ == cudaSuccess, "CUDA: %s failed: %s (%s)%s", #call, cudaGetErrorString(e_),             \
              cudaGetErrorName(e_), cuda_sync_hint());                                                     \
    } while (0)

#define CUBLAS_CHECK(call)                                                                                 \
    do {                                                                                                   \
        cublasStatus_t s_ = (call);                                                                        \
        CHECK(s_ == CUBLAS_STATUS_SUCCESS, "cuBLAS(Lt): %s failed with status %d", #call, (int)s_);       \
    } while (0)

/* After a launch: a bad configuration is reported here, at its kernel; with
 * JIT_CUDA_SYNC=1 (the debug switch) the launch is also waited for, so a
 * kernel that faults is named by its launch site. */
#define CUDA_CHECK_LAUNCH() cuda_check_launch(__FILE__, __LINE__, __func__)
void cuda_check_launch(const char *file, int line, const char *func);
/* "" when JIT_CUDA_SYNC=1 is set, else the hint to set it. */
const char *cuda_sync_hint(void);

/* The compute stream and the cuBLASLt handle of cuda_init. */
cudaStream_t cuda_compute_stream(void);
cublasLtHandle_t cuda_lt_handle(void);
/* cuBLASLt workspace on the device (its size in bytes). */
void *cuda_lt_workspace(size_t *bytes);

/* The cuBLASLt functions the backend calls, loaded by cuda_init (device.cu)
 * with core/dynlib.h rather than linked: libcublasLt is half a gigabyte and
 * took about a second of every start of every program of the CUDA build,
 * which most runs (CPU tests, --help, the CPU device) never use. The
 * emulator build binds the table to its stand-in directly. */
typedef struct CudaLtApi {
    decltype(&cublasLtCreate) Create;
    decltype(&cublasLtMatmul) Matmul;
    decltype(&cublasLtMatmulAlgoGetHeuristic) MatmulAlgoGetHeuristic;
    decltype(&cublasLtMatmulDescCreate) MatmulDescCreate;
    decltype(&cublasLtMatmulDescDestroy) MatmulDescDestroy;
    decltype(&cublasLtMatmulDescSetAttribute) MatmulDescSetAttribute;
    decltype(&cublasLtMatmulPreferenceCreate) MatmulPreferenceCreate;
    decltype(&cublasLtMatmulPreferenceDestroy) MatmulPreferenceDestroy;
    decltype(&cublasLtMatmulPreferenceSetAttribute) MatmulPreferenceSetAttribute;
    decltype(&cublasLtMatrixLayoutCreate) MatrixLayoutCreate;
    decltype(&cublasLtMatrixLayoutDestroy) MatrixLayoutDestroy;
} CudaLtApi;
/* The table (after cuda_init). */
const CudaLtApi *cuda_lt(void);

static inline unsigned cuda_blocks(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b < 1 ? 1 : b > 65535u * 32u ? 65535u * 32u : b);
}

/* Round to bf16 and back (round to nearest even), for BF16-mode operands. */
__device__ __forceinline__ float cuda_round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

#endif
