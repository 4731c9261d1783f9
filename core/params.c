/* core/params.c — flat parameter and gradient buffers with named views. */
#include "core/params.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/device.h"
#include "core/rng.h"

void params_create(ParamStore *ps) { memset(ps, 0, sizeof *ps); }

void params_destroy(ParamStore *ps) {
    core_free(ps->info);
    core_free(ps->views);
    if (ps->mem) {
        const DeviceMem *mem = ps->mem;
        mem->free(ps->data);
        mem->free(ps->grad);
        core_free(ps->host);
    } else {
        core_free(ps->data);
        core_free(ps->grad);
    }
    memset(ps, 0, sizeof *ps);
}

int params_add(ParamStore *ps, const char *name, int ndim, const int *shape, ParamInit init, float init_arg,
               bool weight_decay) {
    CHECK(ps->data == NULL, "parameter '%s' registered after params_alloc()", name);
    CHECK(strlen(name) < PARAM_NAME_MAX, "parameter name '%s' is longer than %d characters", name,
          PARAM_NAME_MAX - 1);
    CHECK(params_find(ps, name) < 0, "parameter '%s' registered twice", name);
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 64;
        ps->info = core_realloc(ps->info, (size_t)ps->cap * sizeof(ParamInfo));
    }
    ParamInfo *p = &ps->info[ps->n];
    memset(p, 0, sizeof *p);
    strcpy(p->name, name);
    Tensor tmp;
    tensor_set_shape(&tmp, ndim, shape);
    p->ndim = ndim;
    memcpy(p->shape, tmp.shape, sizeof p->shape);
    p->numel = tmp.numel;
    p->offset = ps->padded;
    p->init = init;
    p->init_arg = init_arg;
    p->weight_decay = weight_decay;
    if (init == INIT_XAVIER_UNIFORM || init == INIT_IDENTITY)
        CHECK(ndim == 2, "parameter '%s': this initialiser needs a 2D weight", name);
    if (init == INIT_IDENTITY) CHECK(shape[0] == shape[1], "parameter '%s': identity init needs a square matrix", name);
    ps->count += p->numel;
    ps->padded += (p->numel + 15) / 16 * 16;
    return ps->n++;
}

/* The views over data and grad, once both are placed. */
static void params_make_views(ParamStore *ps) {
    ps->views = core_calloc((size_t)(ps->n ? ps->n : 1) * sizeof(Tensor));
    for (int i = 0; i < ps->n; i++) {
        ParamInfo *p = &ps->info[i];
        Tensor *t = &ps->views[i];
        tensor_set_shape(t, p->ndim, p->shape);
        t->data = ps->data + p->offset;
        t->grad = ps->grad + p->offset;
        t->requires_grad = true;
        t->name = p->name;
        t->param_id = i + 1;
    }
}

void params_alloc(ParamStore *ps) {
    CHECK(ps->data == NULL, "params_alloc() called twice");
    ps->data = core_calloc((ps->padded ? ps->padded : 1) * sizeof(float));
    ps->grad = core_calloc((ps->padded ? ps->padded : 1) * sizeof(float));
    ps->host = ps->data;
    ps->device = DEVICE_CPU;
    params_make_views(ps);
}

void params_alloc_on(ParamStore *ps, const DeviceMem *mem) {
    CHECK(ps->data == NULL, "params_alloc_on() after the buffers exist");
    size_t bytes = (ps->padded ? ps->padded : 1) * sizeof(float);
    ps->data = mem->alloc(bytes);
    ps->grad = mem->alloc(bytes);
    ps->host = NULL;
    ps->device = mem->device;
    ps->mem = mem;
    params_make_views(ps);
}

void params_init(ParamStore *ps, uint64_t seed) {
    CHECK(ps->data != NULL, "params_init() before params_alloc()");
    for (int i = 0; i < ps->n; i++) {
        ParamInfo *p = &ps->info[i];
        float *w = ps->host + p->offset;
        uint64_t stream = RNG_STREAM_PARAM_INIT + (uint64_t)i;
        switch (p->init) {
        case INIT_ZERO: memset(w, 0, p->numel * sizeof(float)); break;
        case INIT_ONE:
            for (size_t j = 0; j < p->numel; j++) w[j] = 1.0f;
            break;
        case INIT_CONSTANT:
            for (size_t j = 0; j < p->numel; j++) w[j] = p->init_arg;
            break;
        case INIT_NORMAL: rng_fill_normal(w, p->numel, seed, stream, 0, 0.0f, p->init_arg); break;
        case INIT_XAVIER_UNIFORM: {
            float a = (float)sqrt(6.0 / (double)(p->shape[0] + p->shape[1]));
            rng_fill_uniform(w, p->numel, seed, stream, 0, -a, a);
            break;
        }
        case INIT_UNIFORM: rng_fill_uniform(w, p->numel, seed, stream, 0, -p->init_arg, p->init_arg); break;
        case INIT_IDENTITY:
            memset(w, 0, p->numel * sizeof(float));
            for (int r = 0; r < p->shape[0]; r++) w[(size_t)r * p->shape[1] + r] = 1.0f;
            break;
        }
    }
    params_push(ps);
}

int params_find(const ParamStore *ps, const char *name) {
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->info[i].name, name) == 0) return i;
    return -1;
}

Tensor *params_get(ParamStore *ps, const char *name) {
    int i = params_find(ps, name);
    CHECK(i >= 0, "no parameter named '%s' (the model has %d parameters; names look like 'blocks.0.attn.qkv.weight')",
          name, ps->n);
    return params_at(ps, i);
}

Tensor *params_at(ParamStore *ps, int i) {
    CHECK(ps->views != NULL, "parameter views are used before params_alloc()");
    CHECK(i >= 0 && i < ps->n, "parameter index %d out of range [0, %d)", i, ps->n);
    return &ps->views[i];
}

size_t params_count(const ParamStore *ps) { return ps->count; }

void params_zero_grad(ParamStore *ps) {
    if (ps->mem) ps->mem->zero(ps->grad, ps->padded * sizeof(float));
    else memset(ps->grad, 0, ps->padded * sizeof(float));
}

void params_to_device(ParamStore *ps, const DeviceMem *mem) {
    CHECK(ps->data != NULL, "params_to_device() before params_alloc()");
    Device d = mem->device;
    if (d == ps->device) return;
    CHECK(ps->device == DEVICE_CPU, "parameters move from the host to a device once (now on %s, asked for %s)",
          device_name(ps->device), device_name(d));
    size_t bytes = (ps->padded ? ps->padded : 1) * sizeof(float);
    /* The host buffer stays as the host copy; the host gradients are not needed any more. */
    core_free(ps->grad);
    ps->data = mem->alloc(bytes);
    ps->grad = mem->alloc(bytes);
    mem->to_device(ps->data, ps->host, bytes);
    mem->zero(ps->grad, bytes);
    ps->device = d;
    ps->mem = mem;
    for (int i = 0; i < ps->n; i++) {
        Tensor *t = &ps->views[i];
        t->data = ps->data + ps->info[i].offset;
        t->grad = ps->grad + ps->info[i].offset;
    }
}

void params_pull(ParamStore *ps) {
    if (ps->host != ps->data) ps->mem->to_host(ps->host, ps->data, ps->padded * sizeof(float));
}

void params_push(ParamStore *ps) {
    if (ps->host != ps->data) ps->mem->to_device(ps->data, ps->host, ps->padded * sizeof(float));
}

int params_set_trainable(ParamStore *ps, const char *substr, bool trainable) {
    int n = 0;
    for (int i = 0; i < ps->n; i++)
        if (!substr || strstr(ps->info[i].name, substr)) {
            ps->views[i].requires_grad = trainable;
            n++;
        }
    return n;
}

void param_reg_init(ParamReg *r, ParamStore *ps) { *r = (ParamReg){.ps = ps}; }

void param_reg_add(ParamReg *r, Tensor **slot, const char *name, ParamInit init, float arg, bool weight_decay, int ndim,
                   int d0, int d1) {
    int shape[2] = {d0, d1};
    int idx = params_add(r->ps, name, ndim, shape, init, arg, weight_decay);
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->slots = core_realloc(r->slots, (size_t)r->cap * sizeof(ParamSlot));
    }
    r->slots[r->n++] = (ParamSlot){slot, idx};
}

const char *param_name(char *buf, const char *prefix, const char *suffix) {
    int n = snprintf(buf, PARAM_NAME_MAX, "%s.%s", prefix, suffix);
    CHECK(n > 0 && n < PARAM_NAME_MAX, "parameter name %s.%s is too long", prefix, suffix);
    return buf;
}

void param_reg_linear(ParamReg *r, Tensor **w, Tensor **b, const char *prefix, int out, int in, ParamInit init,
                      float arg) {
    char name[PARAM_NAME_MAX];
    param_reg_add(r, w, param_name(name, prefix, "weight"), init, arg, true, 2, out, in);
    if (b) param_reg_add(r, b, param_name(name, prefix, "bias"), INIT_ZERO, 0.0f, false, 1, out, 0);
}

void param_reg_bind(ParamReg *r) {
    CHECK(r->ps->data != NULL, "param_reg_bind() before params_alloc()");
    for (int i = 0; i < r->n; i++) *r->slots[i].slot = params_at(r->ps, r->slots[i].index);
    param_reg_discard(r);
}

void param_reg_discard(ParamReg *r) {
    core_free(r->slots);
    r->slots = NULL;
    r->n = r->cap = 0;
}
