/* kernels/cuda/device.cu — the device layer of the CUDA backend: device
 * discovery and selection, the one compute stream, the cuBLASLt handle and
 * its workspace, the matrix-product precision, device and pinned memory, and
 * the grow-only scratch buffer the kernels share.
 *
 * One process drives one device (data parallelism is one rank per GPU), so
 * this state is process-global. Everything runs on one non-blocking stream:
 * the copies that hand data to the host are ordered on it and then wait, so
 * they see every kernel launched before them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_util.cuh"

extern "C" {
#include "core/dynlib.h"
}

/* cuBLASLt workspace: 32 MiB is what NVIDIA recommends for Hopper. */
#define CUDA_LT_WORKSPACE_BYTES ((size_t)32 << 20)

static int g_device = -1;
static cudaStream_t g_stream;
static cublasLtHandle_t g_lt;
static void *g_lt_ws;
static CudaPrecision g_precision = CUDA_PREC_FP32;
static void *g_scratch;
static size_t g_scratch_bytes;
static CudaLtApi g_lt_api;

/* cuBLASLt's functions: from libcublasLt loaded now (the CUDA build), or
 * the emulator's stand-in linked into the program. */
#ifndef JIT_CUDA_EMU
#define CUDA_LT_LIB "libcublasLt.so." CUDA_LT_STR(CUBLAS_VER_MAJOR)
#define CUDA_LT_STR(x) CUDA_LT_STR2(x)
#define CUDA_LT_STR2(x) #x
#endif
static void cuda_lt_bind(void) {
#ifdef JIT_CUDA_EMU
#define CUDA_LT_BIND(f) g_lt_api.f = cublasLt##f
#else
    void *h = dynlib_open(CUDA_LT_LIB, "the CUDA backend's matrix products (cuBLASLt)");
#define CUDA_LT_BIND(f) g_lt_api.f = (decltype(g_lt_api.f))dynlib_sym(h, CUDA_LT_LIB, "cublasLt" #f)
#endif
    CUDA_LT_BIND(Create);
    CUDA_LT_BIND(Matmul);
    CUDA_LT_BIND(MatmulAlgoGetHeuristic);
    CUDA_LT_BIND(MatmulDescCreate);
    CUDA_LT_BIND(MatmulDescDestroy);
    CUDA_LT_BIND(MatmulDescSetAttribute);
    CUDA_LT_BIND(MatmulPreferenceCreate);
    CUDA_LT_BIND(MatmulPreferenceDestroy);
    CUDA_LT_BIND(MatmulPreferenceSetAttribute);
    CUDA_LT_BIND(MatrixLayoutCreate);
    CUDA_LT_BIND(MatrixLayoutDestroy);
#undef CUDA_LT_BIND
}

const CudaLtApi *cuda_lt(void) {
    CHECK(g_lt_api.Matmul != NULL, "cuBLASLt used before cuda_init(): call cuda_init(device) first");
    return &g_lt_api;
}

int cuda_device_count(void) {
    int n = 0;
    /* No driver, no device, a driver too old: all mean "no GPU here". */
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* clear it, so it is not reported by a later check */
#ifndef JIT_CUDA_EMU /* the emulator has a device and no driver versions */
        static int told;
        if (e == cudaErrorInsufficientDriver && !told++) {
            /* not "no GPU": a GPU the programs cannot use; say so once, with both versions */
            int drv = 0, rt = 0;
            (void)cudaDriverGetVersion(&drv), (void)cudaRuntimeGetVersion(&rt);
            if (drv > 0) /* 0: no driver at all, the ordinary machine without a GPU */
                fprintf(stderr,
                        "CUDA: the driver supports CUDA %d.%d but this program's runtime is CUDA %d.%d "
                        "(cudaErrorInsufficientDriver): no GPU can be used until the driver is updated\n",
                        drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
        }
#endif
        return 0;
    }
    return n > 0 ? n : 0;
}

void cuda_init(int device) {
    if (g_device == device) return;
    CHECK(g_device < 0, "cuda_init(%d): this process already drives device %d (one device per process)", device,
          g_device);
    int n = cuda_device_count();
    CHECK(n > 0, "cuda_init: no CUDA device or driver found (run on a GPU machine, or use the CPU backend)");
    CHECK(device >= 0 && device < n, "cuda_init: device %d does not exist (%d visible; check CUDA_VISIBLE_DEVICES)",
          device, n);
    CUDA_CHECK(cudaSetDevice(device));
    CUDA_CHECK(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
    cuda_lt_bind();
    CUBLAS_CHECK(g_lt_api.Create(&g_lt));
    CUDA_CHECK(cudaMalloc(&g_lt_ws, CUDA_LT_WORKSPACE_BYTES));
    g_device = device;
}

/* JIT_CUDA_SYNC=1: wait after every launch (debugging; slow). */
static int cuda_sync_each_launch(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("JIT_CUDA_SYNC");
        on = e && *e && strcmp(e, "0") != 0;
    }
    return on;
}

const char *cuda_sync_hint(void) {
    return cuda_sync_each_launch() ? ""
                                   : " (a kernel launched earlier may have faulted; rerun with JIT_CUDA_SYNC=1 to name "
                                     "it)";
}

void cuda_check_launch(const char *file, int line, const char *func) {
    cudaError_t e = cudaGetLastError();
    CHECK(e == cudaSuccess, "CUDA: the launch at %s:%d (%s) failed: %s (%s)%s", file, line, func,
          cudaGetErrorString(e), cudaGetErrorName(e), cuda_sync_hint());
    if (!cuda_sync_each_launch()) return;
    e = cudaStreamSynchronize(g_stream);
    CHECK(e == cudaSuccess, "CUDA: the kernel launched at %s:%d (%s) failed while running: %s (%s)", file, line,
          func, cudaGetErrorString(e), cudaGetErrorName(e));
}

static void cuda_require_init(const char *what) {
    CHECK(g_device >= 0, "%s before cuda_init(): call cuda_init(device) first", what);
}

const char *cuda_device_name(char *buf, size_t len) {
    cuda_require_init("cuda_device_name");
    cudaDeviceProp p;
    CUDA_CHECK(cudaGetDeviceProperties(&p, g_device));
    snprintf(buf, len, "%s (sm_%d%d, %.1f GiB)", p.name, p.major, p.minor,
             (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return buf;
}

void cuda_set_precision(CudaPrecision p) {
    CHECK(p == CUDA_PREC_FP32 || p == CUDA_PREC_BF16, "cuda_set_precision: unknown precision %d", (int)p);
    g_precision = p;
}

CudaPrecision cuda_get_precision(void) { return g_precision; }

cudaStream_t cuda_compute_stream(void) {
    cuda_require_init("a CUDA kernel");
    return g_stream;
}

cublasLtHandle_t cuda_lt_handle(void) {
    cuda_require_init("a cuBLASLt matmul");
    return g_lt;
}

void *cuda_lt_workspace(size_t *bytes) {
    cuda_require_init("a cuBLASLt matmul");
    *bytes = CUDA_LT_WORKSPACE_BYTES;
    return g_lt_ws;
}

void *cuda_malloc(size_t bytes) {
    cuda_require_init("cuda_malloc");
    if (bytes == 0) return NULL;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        size_t free_b = 0, total_b = 0;
        (void)cudaMemGetInfo(&free_b, &total_b);
        FAIL("cuda_malloc(%zu bytes = %.2f GiB) failed: %s; %.2f GiB free of %.2f GiB (reduce the batch size or "
             "the model)",
             bytes, (double)bytes / (1 << 30), cudaGetErrorString(e), (double)free_b / (1 << 30),
             (double)total_b / (1 << 30));
    }
    return p;
}

void cuda_free(void *p) {
    if (p) CUDA_CHECK(cudaFree(p));
}

void cuda_memset(void *dst, int byte, size_t bytes) {
    if (!bytes) return;
    cuda_wmirror_written(dst, bytes);
    CUDA_CHECK(cudaMemsetAsync(dst, byte, bytes, cuda_compute_stream()));
}

void cuda_memcpy_h2d(void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    cuda_wmirror_written(dst, bytes);
    /* On the compute stream, so a kernel still reading dst finishes first. */
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cuda_compute_stream()));
    CUDA_CHECK(cudaStreamSynchronize(g_stream));
}

void cuda_memcpy_d2h(void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cuda_compute_stream()));
    CUDA_CHECK(cudaStreamSynchronize(g_stream));
}

void cuda_memcpy_d2d(void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    cuda_wmirror_written(dst, bytes);
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cuda_compute_stream()));
}

void *cuda_host_alloc(size_t bytes) {
    cuda_require_init("cuda_host_alloc");
    void *p = NULL;
    CUDA_CHECK(cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocDefault));
    return p;
}

void cuda_host_free(void *p) {
    if (p) CUDA_CHECK(cudaFreeHost(p));
}

void cuda_synchronize(void) { CUDA_CHECK(cudaStreamSynchronize(cuda_compute_stream())); }

void *cuda_stream(void) { return (void *)cuda_compute_stream(); }

void *cuda_scratch(size_t bytes) {
    cuda_require_init("cuda_scratch");
    if (bytes > g_scratch_bytes) {
        /* Kernels queued earlier may still read the old buffer. */
        CUDA_CHECK(cudaStreamSynchronize(g_stream));
        if (g_scratch) CUDA_CHECK(cudaFree(g_scratch));
        size_t grow = g_scratch_bytes + g_scratch_bytes / 2; /* amortise growth over a first step */
        g_scratch_bytes = bytes > grow ? bytes : grow;
        g_scratch = cuda_malloc(g_scratch_bytes);
    }
    return g_scratch;
}
