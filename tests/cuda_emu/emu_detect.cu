/* tests/cuda_emu/emu_detect.cu — proof that each detector of the CUDA
 * emulator fires: small kernels with one deliberate bug each, next to the
 * fixed kernel, run through the same pipeline as kernels/cuda (transform.py,
 * instrumentation, emulated runtime). Every case runs in a child process;
 * a broken case must stop (or fail its launch) with its message, a fixed
 * case must run and give the right answer (the driver: emu_cases.h). The
 * detectors of the warp-level matrix instructions are in emu_tc_test.cu. */
#include <cuda_runtime.h>
#include <stdio.h>

#include "kernels/cuda/cuda_common.cuh"
#include "tests/cuda_emu/emu_cases.h"

static float *dev_floats(int n) {
    float *p;
    CK(cudaMalloc(&p, n * sizeof(float)));
    CK(cudaMemset(p, 0, n * sizeof(float)));
    return p;
}

/* ---- shared-memory race: a neighbour's value read without a barrier ---- */
template <int SYNC> __global__ void k_neighbour(float *out) {
    __shared__ float sh[64];
    int t = threadIdx.x;
    sh[t] = (float)t;
    if (SYNC) __syncthreads();
    out[t] = sh[(t + 1) % 64];
}
static void race(int fixed) {
    float *out = dev_floats(64);
    if (fixed) k_neighbour<1><<<1, 64>>>(out);
    else k_neighbour<0><<<1, 64>>>(out);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    expect_value(out, 5, 6.0f);
}

/* ---- write-write race inside one warp, ordered by __syncwarp when fixed ---- */
template <int SYNC> __global__ void k_warp_ww(float *out) {
    __shared__ float sh[32];
    int t = threadIdx.x;
    if (t == 0) sh[0] = 1.0f;
    if (SYNC) __syncwarp();
    if (t == 1) sh[0] = 2.0f;
    if (SYNC) __syncwarp();
    if (t == 0) out[0] = sh[0];
}
static void warp_race(int fixed) {
    float *out = dev_floats(1);
    if (fixed) k_warp_ww<1><<<1, 32>>>(out);
    else k_warp_ww<0><<<1, 32>>>(out);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    expect_value(out, 0, 2.0f);
}

/* ---- static shared memory is poisoned: an unwritten element reads NaN ---- */
template <int INIT> __global__ void k_static_poison(float *out) {
    __shared__ float acc[32];
    int t = threadIdx.x;
    if (INIT) acc[t] = 0.0f;
    acc[t] += 1.0f; /* the bug: accumulating into memory nobody cleared */
    out[t] = acc[t];
}
static void static_poison(int fixed) {
    float *out = dev_floats(32);
    if (fixed) k_static_poison<1><<<1, 32>>>(out);
    else k_static_poison<0><<<1, 32>>>(out);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    float got;
    CK(cudaMemcpy(&got, out + 3, sizeof got, cudaMemcpyDeviceToHost));
    if (got != got) {
        fprintf(stderr, "EMU poison: static __shared__ memory read before it was written (NaN)\n");
        exit(5);
    }
    expect_value(out, 3, 1.0f);
}

/* ---- warp shuffle naming lanes that have exited ---- */
template <int FIXED> __global__ void k_shuffle(float *out) {
    int t = threadIdx.x;
    if (t >= 16) return;
    float v = (float)t;
    unsigned mask = FIXED ? 0x0000ffffu : 0xffffffffu;
    for (int off = 8; off > 0; off >>= 1) v += __shfl_xor_sync(mask, v, off);
    if (t == 0) out[0] = v;
}
static void shuffle_exited(int fixed) {
    float *out = dev_floats(1);
    if (fixed) k_shuffle<1><<<1, 32>>>(out);
    else k_shuffle<0><<<1, 32>>>(out);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    expect_value(out, 0, 120.0f);
}

/* ---- more than 48 KiB of dynamic shared memory needs the attribute ---- */
__global__ void k_big_smem(float *out, int n) {
    extern __shared__ float big[];
    for (int i = threadIdx.x; i < n; i += blockDim.x) big[i] = 1.0f;
    __syncthreads();
    if (threadIdx.x == 0) out[0] = big[n - 1];
}
static void dyn_smem(int fixed) {
    float *out = dev_floats(1);
    int n = 16384; /* 64 KiB */
    if (fixed) CK(cudaFuncSetAttribute(k_big_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, n * 4));
    k_big_smem<<<1, 256, (size_t)n * 4>>>(out, n);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    expect_value(out, 0, 1.0f);
}

/* ---- launch limits: threads per block, grid, opt-in shared memory ---- */
__global__ void k_fill(float *out, int n) {
    int i = blockIdx.y * blockDim.x + threadIdx.x;
    if (i < n) out[i] = 1.0f;
}
static void launch_threads(int fixed) {
    float *out = dev_floats(2048);
    k_fill<<<1, fixed ? 1024 : 2048>>>(out, 2048);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    expect_value(out, 1000, 1.0f);
}
static void launch_grid(int fixed) {
    float *out = dev_floats(4);
    k_fill<<<dim3(1, fixed ? 65535 : 65536), 1>>>(out, 4);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    expect_value(out, 3, 1.0f);
}
static void launch_optin(int fixed) {
    int bytes = fixed ? 163 * 1024 : 200 * 1024; /* sm_90 would allow 200 KiB; sm_80 does not */
    CK(cudaFuncSetAttribute(k_big_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
}

/* ---- __launch_bounds__ ---- */
__global__ void __launch_bounds__(128) k_bounded(float *out) { out[threadIdx.x] = 1.0f; }
static void launch_bounds(int fixed) {
    float *out = dev_floats(256);
    k_bounded<<<1, fixed ? 128 : 256>>>(out);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    expect_value(out, 100, 1.0f);
}

/* ---- global memory out of bounds (one past a cudaMalloc'd array) ---- */
template <int GUARD> __global__ void k_copy(float *dst, const float *src, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (GUARD && i >= n) return;
    dst[i < n ? i : 0] = src[i];
}
static void global_oob(int fixed) {
    float *a = dev_floats(100), *b = dev_floats(100);
    if (fixed) k_copy<1><<<1, 128>>>(b, a, 100);
    else k_copy<0><<<1, 128>>>(b, a, 100);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    expect_value(b, 99, 0.0f);
}

/* ---- host memory handed to a kernel ---- */
static void host_pointer(int fixed) {
    float *out = fixed ? dev_floats(4) : (float *)calloc(4, sizeof(float));
    k_fill<<<1, 4>>>(out, 4);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    if (fixed) expect_value(out, 2, 1.0f);
    if (fixed) CK(cudaFree(out));
    else free(out);
}

/* ---- shared memory out of bounds ---- */
template <int N> __global__ void k_smem_oob(float *out) {
    __shared__ float sh[32];
    __shared__ float other[32];
    sh[threadIdx.x] = 1.0f;
    other[threadIdx.x] = 2.0f;
    __syncthreads();
    out[threadIdx.x] = threadIdx.x < N ? sh[threadIdx.x] : 0.0f;
}
static void smem_oob(int fixed) {
    float *out = dev_floats(64);
    if (fixed) k_smem_oob<32><<<1, 32>>>(out);
    else k_smem_oob<33><<<1, 33>>>(out); /* 33 threads: sh[32] is past the array */
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    expect_value(out, 5, 1.0f);
}

/* ---- a vector access at an address its type's alignment forbids ---- */
template <int OFF> __global__ void k_vec4(float *out, const float *in) {
    const float4 *p = (const float4 *)(in + OFF);
    float4 v = p[threadIdx.x];
    ((float4 *)out)[threadIdx.x] = v;
}
static void vector_misaligned(int fixed) {
    float *in = dev_floats(40), *out = dev_floats(32);
    if (fixed) k_vec4<4><<<1, 8>>>(out, in);
    else k_vec4<2><<<1, 8>>>(out, in); /* 8 bytes past a 16-byte boundary */
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    expect_value(out, 5, 0.0f);
}

/* ---- queued work: a pinned result read before waiting is stale ---- */
static void stream_order(int fixed) {
    float *d = dev_floats(4), *h;
    CK(cudaHostAlloc(&h, 4 * sizeof(float), cudaHostAllocDefault));
    h[0] = -1.0f;
    cudaStream_t st;
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    k_fill<<<1, 4, 0, st>>>(d, 4);
    CK(cudaMemcpyAsync(h, d, 4 * sizeof(float), cudaMemcpyDeviceToHost, st));
    if (fixed) CK(cudaStreamSynchronize(st));
    if (h[0] != 1.0f) {
        fprintf(stderr, "EMU order: the host read the pinned buffer before the copy ran (%g)\n", h[0]);
        exit(6);
    }
    CK(cudaStreamDestroy(st));
    CK(cudaFreeHost(h));
    CK(cudaFree(d));
}

/* ---- the backend's debug switch: with JIT_CUDA_SYNC=1 a fault is named at
 * its launch (EMU_FAULT=sticky makes a fault a GPU-like error instead of a
 * stop); without it, the next wait reports it with the hint to set it ---- */
static void fault(int fixed, int sync) {
    setenv("EMU_FAULT", "sticky", 1);
    if (sync) setenv("JIT_CUDA_SYNC", "1", 1);
    cuda_init(0);
    float *a = (float *)cuda_malloc(100 * sizeof(float)), *b = (float *)cuda_malloc(100 * sizeof(float));
    if (fixed) k_copy<1><<<1, 128, 0, cuda_compute_stream()>>>(b, a, 100);
    else k_copy<0><<<1, 128, 0, cuda_compute_stream()>>>(b, a, 100);
    CUDA_CHECK_LAUNCH();
    cuda_synchronize();
}
static void sync_names_kernel(int fixed) { fault(fixed, 1); }
static void async_fault_hint(int fixed) { fault(fixed, 0); }

/* ---- cuBLASLt's epilogues: BGRADB (used by linear.cu) sums op(B) over k
 * into its vector; BGRADA, which nothing here uses, is refused by name ---- */
static void lt_epilogue(int fixed) {
    cuda_init(0);
    const CudaLtApi *lt = cuda_lt();
    const int m = 2, n = 3, k = 4; /* D [m x n] = A [m x k] B [k x n], column-major */
    float hb[12], *a = (float *)cuda_malloc(8 * sizeof(float)), *b = (float *)cuda_malloc(12 * sizeof(float));
    float *d = (float *)cuda_malloc(6 * sizeof(float)), *vec = (float *)cuda_malloc(4 * sizeof(float));
    for (int i = 0; i < 12; i++) hb[i] = (float)(i + 1);
    cuda_memset(a, 0, 8 * sizeof(float));
    cuda_memcpy_h2d(b, hb, sizeof hb);
    cublasLtMatmulDesc_t op;
    CUBLAS_CHECK(lt->MatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasLtEpilogue_t e = fixed ? CUBLASLT_EPILOGUE_BGRADB : CUBLASLT_EPILOGUE_BGRADA;
    CUBLAS_CHECK(lt->MatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof e));
    CUBLAS_CHECK(lt->MatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &vec, sizeof vec));
    cublasLtMatrixLayout_t la, lb, ld;
    CUBLAS_CHECK(lt->MatrixLayoutCreate(&la, CUDA_R_32F, m, k, m));
    CUBLAS_CHECK(lt->MatrixLayoutCreate(&lb, CUDA_R_32F, k, n, k));
    CUBLAS_CHECK(lt->MatrixLayoutCreate(&ld, CUDA_R_32F, m, n, m));
    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(lt->MatmulPreferenceCreate(&pref));
    uint32_t al = 16; /* what the emulator's allocations promise at least */
    for (int i = CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES; i <= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES; i++)
        CUBLAS_CHECK(lt->MatmulPreferenceSetAttribute(pref, (cublasLtMatmulPreferenceAttributes_t)i, &al, sizeof al));
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    CUBLAS_CHECK(lt->MatmulAlgoGetHeuristic(cuda_lt_handle(), op, la, lb, ld, ld, pref, 1, &res, &found));
    float alpha = 1.0f, beta = 0.0f;
    CUBLAS_CHECK(lt->Matmul(cuda_lt_handle(), op, &alpha, a, la, b, lb, &beta, d, ld, d, ld, &res.algo, NULL, 0,
                            cuda_compute_stream()));
    cuda_synchronize();
    CUBLAS_CHECK(lt->MatmulPreferenceDestroy(pref));
    CUBLAS_CHECK(lt->MatrixLayoutDestroy(la));
    CUBLAS_CHECK(lt->MatrixLayoutDestroy(lb));
    CUBLAS_CHECK(lt->MatrixLayoutDestroy(ld));
    CUBLAS_CHECK(lt->MatmulDescDestroy(op));
    expect_value(vec, 2, 9.0f + 10.0f + 11.0f + 12.0f); /* column 2 of B */
}

/* ---- the cases ---- */

static const EmuCase cases[] = {
    {"race", race, {"shared-memory race on byte"}},
    {"warp_race", warp_race, {"shared-memory race on byte 0 of __shared__ sh"}},
    {"static_poison", static_poison, {"EMU poison"}},
    {"shuffle_exited", shuffle_exited, {"which has exited"}},
    {"dyn_smem_48k", dyn_smem, {"needs cudaFuncSetAttribute"}},
    {"launch_threads", launch_threads, {"above the limits (1024 threads"}},
    {"launch_grid", launch_grid, {"grid 1x65536x1 is above the limits"}},
    {"launch_optin", launch_optin, {"exceed sm_80's"}},
    {"launch_bounds", launch_bounds, {"above its __launch_bounds__(128)"}},
    {"global_oob", global_oob, {"outside every device allocation"}},
    {"host_pointer", host_pointer, {"outside every device allocation"}},
    {"smem_oob", smem_oob, {"outside every __shared__ array"}},
    {"vector_misaligned", vector_misaligned, {"misaligned 16-byte read", "in kernel k_vec4<2>"}},
    {"stream_order", stream_order, {"EMU order"}},
    {"sync_names", sync_names_kernel, {"(fault) failed while running: an illegal memory access was encountered"}},
    {"async_fault", async_fault_hint, {"rerun with JIT_CUDA_SYNC=1 to name it"}},
    {"lt_epilogue", lt_epilogue, {"epilogue 256 is not emulated (DEFAULT, BIAS and BGRADB are)"}},
};

int main(int argc, char **argv) {
    return emu_cases_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]), "emu_detect");
}
