/* kernels/cpu/backend_cpu.c — the CPU as a Backend (core/backend.h): the op
 * table of kernels/cpu, host memory (core/device.c) as its memory, and core/optim.c's
 * loops for the update. Always built; the reference every other backend is
 * held to. */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/backend.h"
#include "core/optim.h"
#include "kernels/cpu/cpu.h"

static const char *cpu_open(BackendPrecision precision, int local_rank, char *err, size_t errlen) {
    (void)local_rank;
    if (precision != BACKEND_PREC_BF16) return NULL;
    snprintf(err, errlen, "bf16 matrix products need the cuda device; the CPU computes in fp32");
    return err;
}

static const char *cpu_describe(char *buf, size_t len) {
    snprintf(buf, len, "cpu");
    return buf;
}

static void *cpu_stream(void) { return NULL; }

/* The loops read requires_grad from the ParamStore itself: only the range. */
struct BackendOptim {
    size_t lo, hi;
};
static BackendOptim *cpu_optim_create(const ParamStore *ps, size_t lo, size_t hi) {
    (void)ps;
    BackendOptim *o = core_calloc(sizeof *o);
    o->lo = lo, o->hi = hi;
    return o;
}
static void cpu_optim_sync(BackendOptim *o, const ParamStore *ps) { (void)o, (void)ps; }
static void cpu_optim_free(BackendOptim *o) { core_free(o); }
static void cpu_adamw_step(AdamW *opt, const BackendOptim *o, ParamStore *ps, float lr) {
    (void)o; /* the moments know their range */
    adamw_step(opt, ps, lr);
}
static double cpu_grad_sq(const BackendOptim *o, const ParamStore *ps) { return params_grad_sq_range(ps, o->lo, o->hi); }
static void cpu_scale_grad(const BackendOptim *o, ParamStore *ps, float s) { params_scale_grad_range(ps, s, o->lo, o->hi); }

const Backend backend_cpu_impl = {
    .name = "cpu",
    .device = DEVICE_CPU,
    .ops = &ops_cpu,
    .mem = &device_mem_host, /* the CPU computes in host memory */
    .open = cpu_open,
    .describe = cpu_describe,
    .stream = cpu_stream,
    .optim_create = cpu_optim_create,
    .optim_sync = cpu_optim_sync,
    .optim_free = cpu_optim_free,
    .adamw_init = adamw_init_range,
    .adamw_free = adamw_free,
    .adamw_step = cpu_adamw_step,
    .ema_update = ema_update,
    .grad_sq = cpu_grad_sq,
    .scale_grad = cpu_scale_grad,
};
