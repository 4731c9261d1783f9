/* kernels/cpu/backend_cpu.c — the CPU as a Backend (core/backend.h): the op
 * table of kernels/cpu, host memory (core/device.c) as its memory, and core/optim.c's
 * loops for the update. Always built; the reference every other backend is
 * held to. */
#include <stdio.h>
#include <string.h>

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

/* The loops read requires_grad from the ParamStore itself: no layout. */
static BackendOptim *cpu_optim_create(const ParamStore *ps) {
    (void)ps;
    return NULL;
}
static void cpu_optim_sync(BackendOptim *o, const ParamStore *ps) { (void)o, (void)ps; }
static void cpu_optim_free(BackendOptim *o) { (void)o; }
static void cpu_adamw_step(AdamW *opt, const BackendOptim *o, ParamStore *ps, float lr) {
    (void)o;
    adamw_step(opt, ps, lr);
}
static double cpu_grad_norm(const BackendOptim *o, const ParamStore *ps) {
    (void)o;
    return params_grad_norm(ps);
}
static void cpu_scale_grad(const BackendOptim *o, ParamStore *ps, float s) {
    (void)o;
    params_scale_grad(ps, s);
}

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
    .adamw_init = adamw_init,
    .adamw_free = adamw_free,
    .adamw_step = cpu_adamw_step,
    .ema_update = ema_update,
    .grad_norm = cpu_grad_norm,
    .scale_grad = cpu_scale_grad,
};
