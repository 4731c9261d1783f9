/* core/backend.h — a compute backend, as everything above the kernels sees
 * it: the op table (core/op_table.h), where tensor data lives (core/device.h),
 * the optimiser and EMA over the flat parameter buffers, the gradient norm
 * and scaling, and a description. Implementations live in kernels/<name>/
 * (kernels/cpu/backend_cpu.c, kernels/cuda/backend_cuda.c); the registry
 * (kernels/backends.c) is the one place that knows which are built.
 *
 * One backend per process: backend_open makes it current (a GPU backend
 * selects the device of the rank's local index and the matrix-product
 * precision) and returns it; the graph, the model's parameters and the
 * trainer then hold that pointer. */
#ifndef CORE_BACKEND_H
#define CORE_BACKEND_H

#include <stddef.h>

#include "core/device.h"
#include "core/op_table.h"
#include "core/optim.h"
#include "core/params.h"

/* Matrix-product precision: auto is the backend's default (fp32 on the CPU,
 * bf16 on a GPU); fp32 is the parity mode; bf16 rounds operands to bf16
 * with fp32 accumulation. */
typedef enum { BACKEND_PREC_AUTO = 0, BACKEND_PREC_FP32 = 1, BACKEND_PREC_BF16 = 2 } BackendPrecision;

/* A backend's view of the range of a ParamStore it updates (CUDA: the
 * chunk layout of kernels/cuda/ops_cuda.h; the CPU: the range, its loops
 * read the flags from the ParamStore directly). */
typedef struct BackendOptim BackendOptim;

typedef struct Backend {
    const char *name; /* "cpu", "cuda": run.device and --device */
    Device device;
    const OpTable *ops;
    const DeviceMem *mem;

    /* Make the backend current for this process: the device of local_rank
     * (one rank per device) and the precision. Returns NULL, or what is
     * missing (written into err) when the machine cannot run it. */
    const char *(*open)(BackendPrecision precision, int local_rank, char *err, size_t errlen);
    /* "cpu", or "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB), bf16 matrix products" */
    const char *(*describe)(char *buf, size_t len);
    /* The compute stream collectives are ordered on (NCCL), NULL on the CPU. */
    void *(*stream)(void);

    /* The update over floats [lo, hi) of a ParamStore's flat buffers on this
     * backend (all of them, or this rank's shard when the optimiser state is
     * sharded: dist/grad_reduce.h), with the semantics of core/optim.c.
     * optim_sync after requires_grad flags change; adamw_init allocates the
     * moments of floats [lo, lo + n) in the backend's memory. grad_sq is the
     * sum of squares of the range's trainable gradients (the ranks add
     * theirs for the global norm); it waits for the value. */
    BackendOptim *(*optim_create)(const ParamStore *ps, size_t lo, size_t hi);
    void (*optim_sync)(BackendOptim *o, const ParamStore *ps);
    void (*optim_free)(BackendOptim *o);
    void (*adamw_init)(AdamW *opt, size_t lo, size_t n, float beta1, float beta2, float eps, float weight_decay);
    void (*adamw_free)(AdamW *opt);
    void (*adamw_step)(AdamW *opt, const BackendOptim *o, ParamStore *ps, float lr);
    void (*ema_update)(float *ema, const float *w, size_t n, float decay);
    double (*grad_sq)(const BackendOptim *o, const ParamStore *ps);
    void (*scale_grad)(const BackendOptim *o, ParamStore *ps, float s);
    /* Device memory [dst, dst + bytes) was written by something other than
     * the backend's own copies and kernels (a collective): what the backend
     * derived from it (CUDA: the bf16 weight mirror) is out of date. NULL
     * where the backend derives nothing. */
    void (*written)(const void *dst, size_t bytes);
} Backend;

/* The backend called `name`, opened (see Backend.open). Stops with a message
 * starting with `who` when the name is unknown, the backend is not in this
 * build, or the machine cannot run it. */
const Backend *backend_open(const char *name, BackendPrecision precision, int local_rank, const char *who);
/* The backend called `name` if this build has it (not opened), else NULL. */
const Backend *backend_find(const char *name);
/* The host CPU backend, always built (bookkeeping, evaluation, tests). */
const Backend *backend_cpu(void);
/* The names this build has, comma-separated ("cpu, cuda"). */
const char *backend_names(void);

#endif
