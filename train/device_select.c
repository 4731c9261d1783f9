/* train/device_select.c — opening the CPU or a GPU by name (see
 * device_select.h). The only place outside trainer_device.c that calls the
 * CUDA backend's device functions. */
#include "train/device_select.h"

#include <stdio.h>
#include <string.h>

#include "core/check.h"
#ifdef JIT_HAVE_CUDA
#include "kernels/cuda/ops_cuda.h"
#endif

DeviceChoice device_select(const char *name, RunPrecision precision, int local_rank, const char *who) {
    if (strcmp(name, "cpu") == 0) {
        CHECK(precision != PRECISION_BF16, "%s: bf16 matrix products need the cuda device; the CPU computes in fp32",
              who);
        return (DeviceChoice){.device = DEVICE_CPU, .ops = &ops_cpu, .gpu = -1};
    }
    CHECK(strcmp(name, "cuda") == 0, "%s: unknown device '%s' (cpu or cuda)", who, name);
#ifdef JIT_HAVE_CUDA
    int n = cuda_device_count();
    CHECK(n > 0, "%s: the cuda device was asked for but none is visible (no GPU, no driver, or an empty "
                 "CUDA_VISIBLE_DEVICES); use the cpu device",
          who);
    /* local_rank % n: with mpirun every rank sees the node's GPUs and takes
     * its own; with srun --gpus-per-task each sees one (n = 1) and takes it.
     * More ranks than GPUs cannot be told apart from the second case by
     * counting; NCCL stops such a run ("duplicate GPU"). */
    DeviceChoice d = {.device = DEVICE_CUDA, .ops = &ops_cuda, .gpu = local_rank % n};
    cuda_init(d.gpu);
    cuda_set_precision(precision == PRECISION_FP32 ? CUDA_PREC_FP32 : CUDA_PREC_BF16);
    return d;
#else
    (void)precision, (void)local_rank;
    FAIL("%s: the cuda device is not available in this build: it was configured without the CUDA backend (no nvcc "
         "found, or -DJIT_CUDA=OFF); rebuild with the CUDA toolkit, or use the cpu device",
         who);
#endif
}

const char *device_describe(const DeviceChoice *d, char *buf, size_t len) {
    snprintf(buf, len, "cpu");
#ifdef JIT_HAVE_CUDA
    if (d->device == DEVICE_CUDA) {
        char name[160];
        snprintf(buf, len, "cuda:%d %s, %s matrix products", d->gpu, cuda_device_name(name, sizeof name),
                 cuda_get_precision() == CUDA_PREC_FP32 ? "fp32" : "bf16");
    }
#endif
    return buf;
}
