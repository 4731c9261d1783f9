/* kernels/cuda/backend_cuda.c — the CUDA backend as a Backend (core/backend.h):
 * ops_cuda, device memory (device_mem.c), the optimiser kernels of optim.cu
 * over the chunk layout, one GPU per rank. Built only with the CUDA backend
 * (CMakeLists.txt; kernels/backends.c lists it then). */
#include <stdio.h>

#include "core/alloc.h"
#include "core/backend.h"
#include "kernels/cuda/ops_cuda.h"

extern const DeviceMem device_mem_cuda; /* kernels/cuda/device_mem.c */

static int cuda_gpu = -1; /* the device this process drives, once opened */

static const char *cuda_open(BackendPrecision precision, int local_rank, char *err, size_t errlen) {
    int n = cuda_device_count();
    if (n <= 0) {
        snprintf(err, errlen, "the cuda device was asked for but none is visible (no GPU, no driver, or an empty "
                              "CUDA_VISIBLE_DEVICES); use the cpu device");
        return err;
    }
    /* local_rank % n: with mpirun every rank sees the node's GPUs and takes
     * its own; with srun --gpus-per-task each sees one (n = 1) and takes it.
     * More ranks than GPUs cannot be told apart from the second case by
     * counting; NCCL stops such a run ("duplicate GPU"). */
    cuda_gpu = local_rank % n;
    cuda_init(cuda_gpu);
    cuda_set_precision(precision == BACKEND_PREC_FP32 ? CUDA_PREC_FP32 : CUDA_PREC_BF16);
    return NULL;
}

static const char *cuda_describe(char *buf, size_t len) {
    char name[160];
    snprintf(buf, len, "cuda:%d %s, %s matrix products", cuda_gpu, cuda_device_name(name, sizeof name),
             cuda_get_precision() == CUDA_PREC_FP32 ? "fp32" : "bf16");
    return buf;
}

struct BackendOptim {
    CudaOptimLayout lo;
    const float *mirrored; /* the parameter buffer given a bf16 mirror (BF16 mode), else NULL */
};

/* The trainer's parameters: in BF16 mode their bf16 mirror (wmirror.cu) lives
 * as long as the optimiser that keeps it up to date. */
static BackendOptim *cuda_optim_create(const ParamStore *ps, size_t lo, size_t hi) {
    BackendOptim *o = core_calloc(sizeof *o);
    cuda_optim_layout_create_range(&o->lo, ps, lo, hi);
    if (cuda_get_precision() == CUDA_PREC_BF16) {
        cuda_wmirror_attach(ps->data, ps->padded);
        o->mirrored = ps->data;
    }
    return o;
}
static void cuda_optim_sync(BackendOptim *o, const ParamStore *ps) { cuda_optim_layout_sync(&o->lo, ps); }
static void cuda_optim_free(BackendOptim *o) {
    if (!o) return;
    cuda_optim_layout_free(&o->lo);
    if (o->mirrored) cuda_wmirror_detach(o->mirrored);
    core_free(o);
}
static void cuda_adamw_step_ps(AdamW *opt, const BackendOptim *o, ParamStore *ps, float lr) {
    cuda_adamw_step(opt, &o->lo, ps->data, ps->grad, lr);
}
static double cuda_grad_sq_ps(const BackendOptim *o, const ParamStore *ps) { return cuda_grad_sq(&o->lo, ps->grad); }
static void cuda_scale_grad_ps(const BackendOptim *o, ParamStore *ps, float s) { cuda_scale_grad(&o->lo, ps->grad, s); }

const Backend backend_cuda_impl = {
    .name = "cuda",
    .device = DEVICE_CUDA,
    .ops = &ops_cuda,
    .mem = &device_mem_cuda,
    .open = cuda_open,
    .describe = cuda_describe,
    .stream = cuda_stream,
    .optim_create = cuda_optim_create,
    .optim_sync = cuda_optim_sync,
    .optim_free = cuda_optim_free,
    .adamw_init = cuda_adamw_init_range,
    .adamw_free = cuda_adamw_free,
    .adamw_step = cuda_adamw_step_ps,
    .ema_update = cuda_ema_update,
    .grad_sq = cuda_grad_sq_ps,
    .scale_grad = cuda_scale_grad_ps,
    .written = cuda_wmirror_written,
};
