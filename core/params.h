/* core/params.h — the parameter store: every parameter of a model in one flat
 * buffer and every gradient in another, with named views.
 *
 * Registration (params_add) only records names, shapes and initialisers, so
 * a model's size can be counted without memory; params_alloc() then makes
 * the two buffers and params_init() fills them from Philox, one stream per
 * parameter, so initial weights do not depend on the order of allocation or
 * on the rank. Offsets are padded to 16 floats (64 bytes) for SIMD loads.
 *
 * Where the buffers live: `data` and `grad` are what the Tensor views point
 * at, so the op table always gets pointers of the store's device. `host` is
 * a host copy of `data` for initialisation, checkpoints and loading by name
 * (ckpt, jit_load_params): on the CPU it is `data` itself; after
 * params_to_device it is a separate buffer that params_pull refreshes from
 * the device and params_push uploads. */
#ifndef CORE_PARAMS_H
#define CORE_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/device.h"
#include "core/tensor.h"

#define PARAM_NAME_MAX 96

typedef enum {
    INIT_ZERO,
    INIT_ONE,
    INIT_NORMAL,          /* N(0, std) */
    INIT_XAVIER_UNIFORM,  /* U(-a, a), a = sqrt(6 / (fan_in + fan_out)) on [out, in] */
    INIT_IDENTITY,        /* square matrices: I */
    INIT_CONSTANT,        /* every element = std (used for alpha logits) */
    INIT_UNIFORM,         /* U(-a, a), a = init_arg (PyTorch's default Linear: a = 1/sqrt(fan_in)) */
} ParamInit;

typedef struct ParamInfo {
    char name[PARAM_NAME_MAX];
    int ndim;
    int shape[TENSOR_MAX_DIMS];
    size_t numel, offset;
    ParamInit init;
    float init_arg;     /* std for INIT_NORMAL, value for INIT_CONSTANT */
    bool weight_decay;  /* AdamW decays it (weight matrices only) */
} ParamInfo;

typedef struct ParamStore {
    ParamInfo *info;
    Tensor *views; /* one Tensor per parameter, valid after params_alloc */
    int n, cap;
    size_t count;  /* parameters (sum of numel) */
    size_t padded; /* floats in each flat buffer */
    float *data, *grad; /* on `device`: what the views point at */
    float *host;        /* host copy of data (== data on the CPU) */
    Device device;
    const DeviceMem *mem; /* the memory data and grad live in; NULL: host memory (core_malloc) */
} ParamStore;

void params_create(ParamStore *ps);
void params_destroy(ParamStore *ps);
/* Register a parameter; returns its index. Names must be unique. */
int params_add(ParamStore *ps, const char *name, int ndim, const int *shape, ParamInit init, float init_arg,
               bool weight_decay);
void params_alloc(ParamStore *ps);
/* data and grad straight in a device's memory, uninitialised, without a
 * host copy (the memory plan's model, core/plan_mem.h): never pulled,
 * pushed or initialised. */
void params_alloc_on(ParamStore *ps, const DeviceMem *mem);
void params_init(ParamStore *ps, uint64_t seed);
int params_find(const ParamStore *ps, const char *name); /* -1 when absent */
Tensor *params_get(ParamStore *ps, const char *name);    /* stops with a hint when absent */
Tensor *params_at(ParamStore *ps, int i);
size_t params_count(const ParamStore *ps);
void params_zero_grad(ParamStore *ps);
/* Move data and grad into a device's memory (after params_alloc; from the
 * host, once): uploads the host copy, zeroes the gradients, points the
 * views there. Host memory (DEVICE_CPU) is a no-op. */
void params_to_device(ParamStore *ps, const DeviceMem *mem);
/* host <- data (before writing a checkpoint) and data <- host (after
 * reading one into host); no-ops on the CPU, where they are one buffer. */
void params_pull(ParamStore *ps);
void params_push(ParamStore *ps);
/* Freeze or unfreeze every parameter whose name contains `substr` (NULL: all). */
int params_set_trainable(ParamStore *ps, const char *substr, bool trainable);

/* Registering a model's parameters into its named Tensor pointers: each add
 * registers the parameter and records which pointer receives its view;
 * param_reg_bind, after params_alloc, sets every pointer (and frees the
 * table); param_reg_discard drops it when only the names were wanted. */
typedef struct ParamSlot {
    Tensor **slot;
    int index;
} ParamSlot;
typedef struct ParamReg {
    ParamStore *ps;
    ParamSlot *slots;
    int n, cap;
} ParamReg;

void param_reg_init(ParamReg *r, ParamStore *ps);
void param_reg_add(ParamReg *r, Tensor **slot, const char *name, ParamInit init, float arg, bool weight_decay, int ndim,
                   int d0, int d1);
/* prefix.weight [out, in] (init, decayed) and, when b, prefix.bias [out] (zero, not decayed). */
void param_reg_linear(ParamReg *r, Tensor **w, Tensor **b, const char *prefix, int out, int in, ParamInit init,
                      float arg);
void param_reg_bind(ParamReg *r);
void param_reg_discard(ParamReg *r);
/* "prefix.suffix" into buf (PARAM_NAME_MAX), stopping when it is too long. */
const char *param_name(char *buf, const char *prefix, const char *suffix);

#endif
