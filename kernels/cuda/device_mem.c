/* kernels/cuda/device_mem.c — GPU memory as a DeviceMem (core/device.h), over the
 * CUDA backend's memory helpers (kernels/cuda/ops_cuda.h). Every copy is
 * ordered on the one compute stream; copies to the host return when the data
 * is there. The asynchronous copy from pinned memory and the fences (CUDA
 * events) are the runtime's own calls: the backend has no wrapper for them,
 * and the trainer needs them to hand a batch over without waiting. Built
 * only with the CUDA backend (CMakeLists.txt). */
#include <cuda_runtime.h>

#include "core/check.h"
#include "core/device.h"
#include "kernels/cuda/ops_cuda.h"

#define DEV_CUDA_CHECK(call)                                                                          \
    do {                                                                                              \
        cudaError_t e_ = (call);                                                                      \
        CHECK(e_ == cudaSuccess, "CUDA: %s failed: %s", #call, cudaGetErrorString(e_));               \
    } while (0)

static void cuda_zero(void *p, size_t bytes) { cuda_memset(p, 0, bytes); }

static void cuda_h2d_async(void *dst, const void *host_src, size_t bytes) {
    if (!bytes) return;
    cuda_wmirror_written(dst, bytes);
    DEV_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, (cudaStream_t)cuda_stream()));
}

static void *cuda_fence_create(void) {
    cudaEvent_t e;
    DEV_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return (void *)e;
}

static void cuda_fence_record(void *fence) {
    DEV_CUDA_CHECK(cudaEventRecord((cudaEvent_t)fence, (cudaStream_t)cuda_stream()));
}

/* An event never recorded counts as passed: the first wait returns at once. */
static void cuda_fence_wait(void *fence) { DEV_CUDA_CHECK(cudaEventSynchronize((cudaEvent_t)fence)); }

static void cuda_fence_destroy(void *fence) {
    if (fence) DEV_CUDA_CHECK(cudaEventDestroy((cudaEvent_t)fence));
}

const DeviceMem device_mem_cuda = {
    .device = DEVICE_CUDA,
    .name = "cuda",
    .alloc = cuda_malloc,
    .free = cuda_free,
    .zero = cuda_zero,
    .to_device = cuda_memcpy_h2d,
    .to_host = cuda_memcpy_d2h,
    .copy = cuda_memcpy_d2d,
    .host_alloc = cuda_host_alloc,
    .host_free = cuda_host_free,
    .to_device_async = cuda_h2d_async,
    .fence_create = cuda_fence_create,
    .fence_record = cuda_fence_record,
    .fence_wait = cuda_fence_wait,
    .fence_destroy = cuda_fence_destroy,
    .synchronize = cuda_synchronize,
};
