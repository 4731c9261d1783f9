/* train/trainer_device.c — the training state on the CPU or a GPU, and the
 * update steps over it (see trainer_device.h). Every CUDA call of the
 * trainer is here, behind JIT_HAVE_CUDA; the CPU branches are the code the
 * trainer ran before, unchanged. */
#include "train/trainer_device.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "train/device_select.h"
#include "train/trainer.h"

static int on_cpu(const Trainer *T) { return T->dev.device == DEVICE_CPU; }

static size_t state_bytes(const Trainer *T) { return T->model.params.padded * sizeof(float); }

void trainer_device_select(Trainer *T) {
    const Config *c = &T->cfg;
    TrainerDevice *d = &T->dev;
    memset(d, 0, sizeof *d);
    char who[CFG_STR + 16];
    snprintf(who, sizeof who, "%s: run.device", c->source);
    DeviceChoice ch = device_select(c->device, c->precision, T->comm ? T->comm->local_rank : 0, who);
    d->device = ch.device;
    d->ops = ch.ops;
    d->gpu = ch.gpu;
    d->mem = device_mem(d->device);
}

const char *trainer_device_describe(const Trainer *T, char *buf, size_t len) {
    DeviceChoice ch = {.device = T->dev.device, .ops = T->dev.ops, .gpu = T->dev.gpu};
    return device_describe(&ch, buf, len);
}

void trainer_device_alloc_state(Trainer *T) {
    const Config *c = &T->cfg;
    TrainerDevice *d = &T->dev;
    ParamStore *ps = &T->model.params;
    size_t pbytes = state_bytes(T);
    AdamW *opt = on_cpu(T) ? &T->opt : &d->host_opt;
    float **ema = on_cpu(T) ? T->ema : d->host_ema;
    adamw_init(opt, ps, c->beta1, c->beta2, c->eps, c->weight_decay);
    for (int k = 0; k < c->n_ema; k++) {
        ema[k] = core_malloc(pbytes);
        memcpy(ema[k], ps->host, pbytes);
    }
    d->batch_fence = d->mem->fence_create();
}

void trainer_device_place(Trainer *T) {
    size_t pbytes = state_bytes(T);
    if (on_cpu(T)) {
        T->backup = core_malloc(pbytes);
        return;
    }
#ifdef JIT_HAVE_CUDA
    const Config *c = &T->cfg;
    TrainerDevice *d = &T->dev;
    ParamStore *ps = &T->model.params;
    jit_to_device(&T->model, d->device); /* uploads the (loaded, broadcast) host copy */
    cuda_adamw_init(&T->opt, ps, c->beta1, c->beta2, c->eps, c->weight_decay);
    T->opt.step = d->host_opt.step;
    d->mem->to_device(T->opt.m, d->host_opt.m, pbytes);
    d->mem->to_device(T->opt.v, d->host_opt.v, pbytes);
    for (int k = 0; k < c->n_ema; k++) {
        T->ema[k] = d->mem->alloc(pbytes);
        d->mem->to_device(T->ema[k], d->host_ema[k], pbytes);
    }
    T->backup = d->mem->alloc(pbytes);
    cuda_optim_layout_create(&d->layout, ps);
    d->trainable = core_malloc((size_t)(ps->n ? ps->n : 1) * sizeof(bool));
    for (int i = 0; i < ps->n; i++) d->trainable[i] = ps->views[i].requires_grad;
    if (T->comm && T->world > 1 && !T->comm->nccl) comm_nccl_init(T->comm);
#endif
}

void trainer_device_free(Trainer *T) {
    TrainerDevice *d = &T->dev;
    if (!d->mem) return;
    d->mem->synchronize(); /* nothing queued may still read what is freed below */
    if (on_cpu(T)) {
        adamw_free(&T->opt);
        for (int k = 0; k < T->cfg.n_ema; k++) core_free(T->ema[k]);
        core_free(T->backup);
    } else {
#ifdef JIT_HAVE_CUDA
        if (T->opt.m) cuda_adamw_free(&T->opt);
        for (int k = 0; k < T->cfg.n_ema; k++) d->mem->free(T->ema[k]);
        d->mem->free(T->backup);
        if (d->layout.chunks) cuda_optim_layout_free(&d->layout);
#endif
        adamw_free(&d->host_opt);
        for (int k = 0; k < T->cfg.n_ema; k++) core_free(d->host_ema[k]);
    }
    for (int k = 0; k < T->cfg.n_ema; k++) T->ema[k] = NULL;
    T->backup = NULL;
    core_free(d->trainable);
    d->mem->fence_destroy(d->batch_fence);
    d->trainable = NULL;
    d->batch_fence = NULL;
}

void trainer_device_ckpt_data(Trainer *T, CkptData *out, int stage) {
    const Config *c = &T->cfg;
    TrainerDevice *d = &T->dev;
    ParamStore *ps = &T->model.params;
    *out = (CkptData){.params = ps, .opt = &T->opt, .ema = T->ema, .ema_decay = c->ema, .n_ema = c->n_ema};
    if (on_cpu(T)) return;
    if (stage) {
        size_t pbytes = state_bytes(T);
        params_pull(ps);
        d->host_opt.step = T->opt.step;
        d->mem->to_host(d->host_opt.m, T->opt.m, pbytes);
        d->mem->to_host(d->host_opt.v, T->opt.v, pbytes);
        for (int k = 0; k < c->n_ema; k++) d->mem->to_host(d->host_ema[k], T->ema[k], pbytes);
    }
    out->opt = &d->host_opt;
    out->ema = d->host_ema;
}

void trainer_device_sync_trainable(Trainer *T) {
    if (on_cpu(T)) return; /* the CPU loops read requires_grad directly */
#ifdef JIT_HAVE_CUDA
    TrainerDevice *d = &T->dev;
    ParamStore *ps = &T->model.params;
    int changed = 0;
    for (int i = 0; i < ps->n; i++)
        if (d->trainable[i] != ps->views[i].requires_grad) d->trainable[i] = ps->views[i].requires_grad, changed = 1;
    /* An upload only when a callback switched something (conversion stages). */
    if (changed) cuda_optim_layout_sync(&d->layout, ps);
#endif
}

void trainer_device_allreduce_grads(Trainer *T) {
    if (on_cpu(T) || !T->comm || T->world == 1) return;
    ParamStore *ps = &T->model.params;
    /* The whole flat buffer at once after backward, on the compute stream:
     * the kernels that follow (norm, AdamW) are ordered after it. */
    comm_nccl_allreduce_f32(T->comm, ps->grad, ps->padded, COMM_MEAN,
#ifdef JIT_HAVE_CUDA
                            cuda_stream()
#else
                            NULL
#endif
    );
}

double trainer_device_grad_norm(Trainer *T) {
    if (on_cpu(T)) return params_grad_norm(&T->model.params);
#ifdef JIT_HAVE_CUDA
    return cuda_grad_norm(&T->dev.layout, T->model.params.grad);
#else
    return 0.0;
#endif
}

void trainer_device_scale_grad(Trainer *T, float s) {
    if (on_cpu(T)) {
        params_scale_grad(&T->model.params, s);
        return;
    }
#ifdef JIT_HAVE_CUDA
    cuda_scale_grad(&T->dev.layout, T->model.params.grad, s);
#endif
}

void trainer_device_adamw(Trainer *T, float lr) {
    if (on_cpu(T)) {
        adamw_step(&T->opt, &T->model.params, lr);
        return;
    }
#ifdef JIT_HAVE_CUDA
    cuda_adamw_step(&T->opt, &T->dev.layout, T->model.params.data, T->model.params.grad, lr);
#endif
}

void trainer_device_ema(Trainer *T, int k, float decay) {
    ParamStore *ps = &T->model.params;
    if (on_cpu(T)) {
        ema_update(T->ema[k], ps->data, ps->padded, decay);
        return;
    }
#ifdef JIT_HAVE_CUDA
    cuda_ema_update(T->ema[k], ps->data, ps->padded, decay);
#endif
}

void trainer_device_poison_grad(Trainer *T) {
    T->dev.mem->to_device(T->model.params.grad, &T->inject_value, sizeof T->inject_value);
}

void trainer_device_batch_begin(Trainer *T) { T->dev.mem->fence_wait(T->dev.batch_fence); }

void trainer_device_batch_upload(Trainer *T, Tensor *x, Tensor *z, Tensor *t) {
    const DeviceMem *mem = T->dev.mem;
    mem->to_device_async(x->data, T->img, x->numel * sizeof(float));
    mem->to_device_async(z->data, T->z, z->numel * sizeof(float));
    mem->to_device_async(t->data, T->t, t->numel * sizeof(float));
    mem->fence_record(T->dev.batch_fence);
}
