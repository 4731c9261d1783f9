/* core/device_cuda.c — GPU memory as a DeviceMem (core/device.h), over the
 * CUDA backend's memory helpers (kernels/cuda/ops_cuda.h). Copies to the
 * device wait for nothing but are ordered on the compute stream; copies to
 * the host return when the data is there. Built only with the CUDA backend. */
#ifdef JIT_HAVE_CUDA
#include "core/device.h"
#include "kernels/cuda/ops_cuda.h"

static void cuda_zero(void *p, size_t bytes) { cuda_memset(p, 0, bytes); }

const DeviceMem device_mem_cuda = {
    .device = DEVICE_CUDA,
    .name = "cuda",
    .alloc = cuda_malloc,
    .free = cuda_free,
    .zero = cuda_zero,
    .to_device = cuda_memcpy_h2d,
    .to_host = cuda_memcpy_d2h,
    .copy = cuda_memcpy_d2d,
};
#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int device_cuda_unused;
#endif
