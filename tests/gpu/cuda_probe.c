/* tests/gpu/cuda_probe.c — the first thing run_gpu_checks.sh runs on a GPU
 * machine: the CUDA driver's and runtime's versions, then the devices.
 * Linked against the CUDA runtime only (none of the bundle's libraries), so it
 * answers even when the programs' other libraries are missing.
 *
 * Why: a driver older than the runtime the programs were built with makes
 * every CUDA call fail with cudaErrorInsufficientDriver; cuda_device_count
 * then reads as "no GPU", and every test and benchmark skipped instead of
 * failing. This says so loudly, with both numbers, before anything runs.
 * Within one major version a newer runtime runs on an older driver (CUDA's
 * minor-version compatibility: no PTX JIT, which the bundle's SASS-only
 * programs do not need), so only an older major version fails.
 *
 *   cuda_probe            one line "cuda_probe driver=13000 runtime=13000 devices=1" then one per device
 * Exit: 0 fine; 3 driver older than the runtime (major); 4 no driver; 5 no
 * usable device (the runtime's error named). */
#include <cuda_runtime_api.h>
#include <stdio.h>

static void ver(char *buf, size_t n, int v) { snprintf(buf, n, "CUDA %d.%d", v / 1000, v % 1000 / 10); }

int main(void) {
    int drv = 0, rt = 0, n = 0;
    cudaError_t ed = cudaDriverGetVersion(&drv), er = cudaRuntimeGetVersion(&rt);
    char d[32], r[32];
    ver(d, sizeof d, drv), ver(r, sizeof r, rt);
    printf("cuda_probe driver=%d runtime=%d", drv, rt);
    if (ed != cudaSuccess || er != cudaSuccess || drv == 0) {
        printf("\n");
        fprintf(stderr,
                "cuda_probe: FAIL: no CUDA driver (driver version %d, runtime %s; %s): libcuda.so.1 is not installed "
                "or cannot be loaded, so no program can use a GPU\n",
                drv, r, ed != cudaSuccess ? cudaGetErrorString(ed) : "cudaDriverGetVersion reports none");
        return 4;
    }
    if (drv / 1000 < rt / 1000) {
        printf("\n");
        fprintf(stderr,
                "cuda_probe: FAIL: the driver supports %s (%d) but the programs' runtime is %s (%d): every CUDA call "
                "would fail with cudaErrorInsufficientDriver and every GPU test would read as 'no GPU'. Build the "
                "bundle with a toolkit of the driver's major version, or use a machine with a newer driver\n",
                d, drv, r, rt);
        return 3;
    }
    cudaError_t e = cudaGetDeviceCount(&n);
    printf(" devices=%d\n", e == cudaSuccess ? n : 0);
    if (drv < rt)
        printf("cuda_probe: note: driver %s is older than runtime %s within one major version (minor-version "
               "compatibility: fine for SASS-only programs)\n",
               d, r);
    if (e != cudaSuccess || n == 0) {
        fprintf(stderr, "cuda_probe: FAIL: no usable CUDA device: %s (%s)\n",
                e != cudaSuccess ? cudaGetErrorString(e) : "the driver sees none",
                e != cudaSuccess ? cudaGetErrorName(e) : "0 devices");
        return 5;
    }
    for (int i = 0; i < n; i++) {
        struct cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
        printf("cuda_probe device=%d name=\"%s\" sm=%d%d memory_gib=%.1f multiprocessors=%d\n", i, p.name, p.major,
               p.minor, (double)p.totalGlobalMem / (1 << 30), p.multiProcessorCount);
    }
    return 0;
}
