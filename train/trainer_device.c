/* train/trainer_device.c — the training state in the memory of the trainer's
 * backend, and the update steps over it (see trainer_device.h). Everything
 * device-specific is a call through the Backend (core/backend.h); what
 * differs between host memory and device memory is only whether host images
 * are needed. */
#include "train/trainer_device.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "train/trainer.h"

/* The backend's memory is host memory: the live state needs no images. */
static int on_host(const Trainer *T) { return T->be->device == DEVICE_CPU; }

size_t trainer_state_bytes(const ParamStore *ps) { return ps->padded * sizeof(float); }

static size_t state_bytes(const Trainer *T) { return trainer_state_bytes(&T->model.params); }

BackendPrecision trainer_backend_precision(RunPrecision p) {
    return p == PRECISION_FP32 ? BACKEND_PREC_FP32 : p == PRECISION_BF16 ? BACKEND_PREC_BF16 : BACKEND_PREC_AUTO;
}

void trainer_device_select(Trainer *T) {
    const Config *c = &T->cfg;
    memset(&T->st, 0, sizeof T->st);
    char who[CFG_STR + 16];
    snprintf(who, sizeof who, "%s: run.device", c->source);
    T->be = backend_open(c->device, trainer_backend_precision(c->precision), T->comm ? T->comm->local_rank : 0, who);
}

const char *trainer_device_describe(const Trainer *T, char *buf, size_t len) { return T->be->describe(buf, len); }

void trainer_device_alloc_state(Trainer *T) {
    const Config *c = &T->cfg;
    TrainerState *d = &T->st;
    ParamStore *ps = &T->model.params;
    size_t pbytes = state_bytes(T);
    AdamW *opt = on_host(T) ? &T->opt : &d->host_opt;
    float **ema = on_host(T) ? T->ema : d->host_ema;
    adamw_init(opt, ps, c->beta1, c->beta2, c->eps, c->weight_decay);
    for (int k = 0; k < c->n_ema; k++) {
        ema[k] = core_malloc(pbytes);
        memcpy(ema[k], ps->host, pbytes);
    }
    d->batch_fence = T->be->mem->fence_create();
}

void trainer_device_place(Trainer *T) {
    size_t pbytes = state_bytes(T);
    const Backend *be = T->be;
    if (on_host(T)) {
        T->backup = core_malloc(pbytes);
        return;
    }
    const Config *c = &T->cfg;
    TrainerState *d = &T->st;
    ParamStore *ps = &T->model.params;
    jit_to_device(&T->model, be); /* uploads the (loaded, broadcast) host copy */
    be->adamw_init(&T->opt, ps, c->beta1, c->beta2, c->eps, c->weight_decay);
    T->opt.step = d->host_opt.step;
    be->mem->to_device(T->opt.m, d->host_opt.m, pbytes);
    be->mem->to_device(T->opt.v, d->host_opt.v, pbytes);
    for (int k = 0; k < c->n_ema; k++) {
        T->ema[k] = be->mem->alloc(pbytes);
        be->mem->to_device(T->ema[k], d->host_ema[k], pbytes);
    }
    T->backup = be->mem->alloc(pbytes);
    d->optim = be->optim_create(ps);
    d->trainable = core_malloc((size_t)(ps->n ? ps->n : 1) * sizeof(bool));
    for (int i = 0; i < ps->n; i++) d->trainable[i] = ps->views[i].requires_grad;
    if (T->comm && trainer_world(T) > 1 && !T->comm->nccl) comm_nccl_init(T->comm);
}

void trainer_device_free(Trainer *T) {
    TrainerState *d = &T->st;
    const Backend *be = T->be;
    if (!be) return;
    be->mem->synchronize(); /* nothing queued may still read what is freed below */
    if (on_host(T)) {
        adamw_free(&T->opt);
        for (int k = 0; k < T->cfg.n_ema; k++) core_free(T->ema[k]);
        core_free(T->backup);
    } else {
        if (T->opt.m) be->adamw_free(&T->opt);
        for (int k = 0; k < T->cfg.n_ema; k++) be->mem->free(T->ema[k]);
        be->mem->free(T->backup);
        be->optim_free(d->optim);
        adamw_free(&d->host_opt);
        for (int k = 0; k < T->cfg.n_ema; k++) core_free(d->host_ema[k]);
    }
    for (int k = 0; k < T->cfg.n_ema; k++) T->ema[k] = NULL;
    T->backup = NULL;
    core_free(d->trainable);
    be->mem->fence_destroy(d->batch_fence);
    d->optim = NULL;
    d->trainable = NULL;
    d->batch_fence = NULL;
}

void trainer_device_ckpt_data(Trainer *T, CkptData *out, int stage) {
    const Config *c = &T->cfg;
    TrainerState *d = &T->st;
    ParamStore *ps = &T->model.params;
    *out = (CkptData){.params = ps, .opt = &T->opt, .ema = T->ema, .ema_decay = c->ema, .n_ema = c->n_ema};
    if (on_host(T)) return;
    if (stage) {
        size_t pbytes = state_bytes(T);
        const DeviceMem *mem = T->be->mem;
        params_pull(ps);
        d->host_opt.step = T->opt.step;
        mem->to_host(d->host_opt.m, T->opt.m, pbytes);
        mem->to_host(d->host_opt.v, T->opt.v, pbytes);
        for (int k = 0; k < c->n_ema; k++) mem->to_host(d->host_ema[k], T->ema[k], pbytes);
    }
    out->opt = &d->host_opt;
    out->ema = d->host_ema;
}

void trainer_device_sync_trainable(Trainer *T) {
    if (on_host(T)) return; /* the CPU loops read requires_grad directly */
    TrainerState *d = &T->st;
    ParamStore *ps = &T->model.params;
    int changed = 0;
    for (int i = 0; i < ps->n; i++)
        if (d->trainable[i] != ps->views[i].requires_grad) d->trainable[i] = ps->views[i].requires_grad, changed = 1;
    /* An upload only when a callback switched something (conversion stages). */
    if (changed) T->be->optim_sync(d->optim, ps);
}

void trainer_device_allreduce_grads(Trainer *T) {
    if (on_host(T) || !T->comm || trainer_world(T) == 1) return;
    ParamStore *ps = &T->model.params;
    /* The whole flat buffer at once after backward, on the compute stream:
     * the kernels that follow (norm, AdamW) are ordered after it. */
    comm_nccl_allreduce_f32(T->comm, ps->grad, ps->padded, COMM_MEAN, T->be->stream());
}

double trainer_device_grad_norm(Trainer *T) { return T->be->grad_norm(T->st.optim, &T->model.params); }

void trainer_device_scale_grad(Trainer *T, float s) { T->be->scale_grad(T->st.optim, &T->model.params, s); }

void trainer_device_adamw(Trainer *T, float lr) { T->be->adamw_step(&T->opt, T->st.optim, &T->model.params, lr); }

void trainer_device_ema(Trainer *T, int k, float decay) {
    ParamStore *ps = &T->model.params;
    T->be->ema_update(T->ema[k], ps->data, ps->padded, decay);
}

void trainer_device_poison_grad(Trainer *T) {
    T->be->mem->to_device(T->model.params.grad, &T->inject_value, sizeof T->inject_value);
}

void trainer_device_batch_begin(Trainer *T) { T->be->mem->fence_wait(T->st.batch_fence); }

void trainer_device_batch_upload(Trainer *T, Tensor *x, Tensor *z, Tensor *t) {
    const DeviceMem *mem = T->be->mem;
    mem->to_device_async(x->data, T->img, x->numel * sizeof(float));
    mem->to_device_async(z->data, T->z, z->numel * sizeof(float));
    mem->to_device_async(t->data, T->t, t->numel * sizeof(float));
    mem->fence_record(T->st.batch_fence);
}
