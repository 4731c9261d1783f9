/* train/trainer_device.c — the training state in the memory of the trainer's
 * backend, and the update steps over it (see trainer_device.h). Everything
 * device-specific is a call through the Backend (core/backend.h) or the
 * gradient reduction (dist/grad_reduce.h): this file makes the same calls
 * on every device. */
#include "train/trainer_device.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "train/trainer.h"

size_t trainer_state_bytes(const ParamStore *ps) { return ps->padded * sizeof(float); }

static size_t state_bytes(const Trainer *T) { return trainer_state_bytes(&T->model.params); }

/* This rank's range of the flat buffers: what its optimiser state covers. */
static size_t shard_lo(const Trainer *T) { return T->red.lo; }
static size_t shard_n(const Trainer *T) { return T->red.hi - T->red.lo; }

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

/* Full-size host images of the moments and EMA copies (checkpoints, the
 * broadcast at start), made when needed and dropped after. */
static void host_images(Trainer *T) {
    TrainerState *d = &T->st;
    if (d->host_opt.m) return;
    const Config *c = &T->cfg;
    ParamStore *ps = &T->model.params;
    adamw_init(&d->host_opt, ps, c->beta1, c->beta2, c->eps, c->weight_decay);
    for (int k = 0; k < c->n_ema; k++) d->host_ema[k] = core_malloc(state_bytes(T));
}

void trainer_device_release_images(Trainer *T) {
    TrainerState *d = &T->st;
    if (d->host_opt.m) adamw_free(&d->host_opt);
    for (int k = 0; k < T->cfg.n_ema; k++) core_free(d->host_ema[k]), d->host_ema[k] = NULL;
}

void trainer_device_alloc_state(Trainer *T) {
    const Config *c = &T->cfg;
    TrainerState *d = &T->st;
    host_images(T); /* a fresh run: zero moments, EMA = the initial weights */
    for (int k = 0; k < c->n_ema; k++) memcpy(d->host_ema[k], T->model.params.host, state_bytes(T));
    d->batch_fence = T->be->mem->fence_create();
}

void trainer_device_place(Trainer *T) {
    const Config *c = &T->cfg;
    const Backend *be = T->be;
    TrainerState *d = &T->st;
    ParamStore *ps = &T->model.params;
    /* The reduction decides the range this rank updates (all, or its shard). */
    int overlap = c->allreduce == ALLREDUCE_AUTO ? -1 : c->allreduce == ALLREDUCE_OVERLAP;
    grad_reduce_init(&T->red, T->comm, be, ps, (size_t)(c->bucket_mb * 1048576.0f), overlap, c->shard_optimizer);
    size_t lo = shard_lo(T), n = shard_n(T), nb = n * sizeof(float);
    jit_to_device(&T->model, be); /* uploads the (loaded, broadcast) host copy; nothing on the CPU */
    be->adamw_init(&T->opt, lo, n, c->beta1, c->beta2, c->eps, c->weight_decay);
    T->opt.step = d->host_opt.step;
    be->mem->to_device(T->opt.m, d->host_opt.m + lo, nb);
    be->mem->to_device(T->opt.v, d->host_opt.v + lo, nb);
    for (int k = 0; k < c->n_ema; k++) {
        T->ema[k] = be->mem->alloc(nb ? nb : sizeof(float));
        be->mem->to_device(T->ema[k], d->host_ema[k] + lo, nb);
    }
    T->backup = be->mem->alloc(state_bytes(T));
    d->optim = be->optim_create(ps, lo, lo + n);
    d->trainable = core_malloc((size_t)(ps->n ? ps->n : 1) * sizeof(bool));
    for (int i = 0; i < ps->n; i++) d->trainable[i] = ps->views[i].requires_grad;
    trainer_device_release_images(T);
}

void trainer_device_free(Trainer *T) {
    TrainerState *d = &T->st;
    const Backend *be = T->be;
    if (!be) return;
    be->mem->synchronize(); /* nothing queued may still read what is freed below */
    if (T->opt.m) be->adamw_free(&T->opt);
    for (int k = 0; k < T->cfg.n_ema; k++) {
        if (T->ema[k]) be->mem->free(T->ema[k]);
        T->ema[k] = NULL;
    }
    if (T->backup) be->mem->free(T->backup);
    T->backup = NULL;
    if (d->optim) be->optim_free(d->optim);
    trainer_device_release_images(T);
    grad_reduce_free(&T->red);
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
    host_images(T);
    if (stage) {
        /* Every rank's range into the full images (the same on every rank
         * after the gather): a checkpoint holds whole tensors whatever the
         * ranks and shards that wrote it. */
        size_t lo = shard_lo(T), nb = shard_n(T) * sizeof(float);
        const DeviceMem *mem = T->be->mem;
        params_pull(ps);
        d->host_opt.step = T->opt.step;
        mem->to_host(d->host_opt.m + lo, T->opt.m, nb);
        mem->to_host(d->host_opt.v + lo, T->opt.v, nb);
        grad_reduce_gather_host(&T->red, d->host_opt.m);
        grad_reduce_gather_host(&T->red, d->host_opt.v);
        for (int k = 0; k < c->n_ema; k++) {
            mem->to_host(d->host_ema[k] + lo, T->ema[k], nb);
            grad_reduce_gather_host(&T->red, d->host_ema[k]);
        }
    }
    *out = (CkptData){.params = ps, .opt = &d->host_opt, .ema = d->host_ema, .ema_decay = c->ema, .n_ema = c->n_ema};
}

void trainer_device_sync_trainable(Trainer *T) {
    TrainerState *d = &T->st;
    ParamStore *ps = &T->model.params;
    int changed = 0;
    for (int i = 0; i < ps->n; i++)
        if (d->trainable[i] != ps->views[i].requires_grad) d->trainable[i] = ps->views[i].requires_grad, changed = 1;
    /* An upload only when a callback switched something (conversion stages). */
    if (changed) T->be->optim_sync(d->optim, ps);
}

double trainer_device_grad_norm(Trainer *T) {
    /* Each rank's range; the ranks' squares added when the ranges are shards. */
    return sqrt(grad_reduce_sum(&T->red, T->be->grad_sq(T->st.optim, &T->model.params)));
}

void trainer_device_scale_grad(Trainer *T, float s) { T->be->scale_grad(T->st.optim, &T->model.params, s); }

void trainer_device_adamw(Trainer *T, float lr) { T->be->adamw_step(&T->opt, T->st.optim, &T->model.params, lr); }

void trainer_device_ema(Trainer *T, int k, float decay) {
    T->be->ema_update(T->ema[k], T->model.params.data + shard_lo(T), shard_n(T), decay);
}

void trainer_device_weights_ema(Trainer *T, int k) {
    ParamStore *ps = &T->model.params;
    const DeviceMem *mem = T->be->mem;
    mem->copy(T->backup, ps->data, state_bytes(T));
    mem->copy(ps->data + shard_lo(T), T->ema[k], shard_n(T) * sizeof(float));
    grad_reduce_gather(&T->red, ps->data); /* sharded: every rank's part of the EMA */
}

void trainer_device_weights_raw(Trainer *T) {
    ParamStore *ps = &T->model.params;
    T->be->mem->copy(ps->data, T->backup, state_bytes(T));
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
