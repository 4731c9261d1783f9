/* train/trainer_device.h — where one rank's training state lives, and the
 * update steps over it.
 *
 * The state is the parameters and gradients (the model's ParamStore), the
 * AdamW moments, the EMA copies and the backup of the raw weights while
 * sampling, in the memory of the trainer's backend (core/backend.h), which
 * also updates it: host memory and core/optim.c's loops on the CPU, device
 * memory on a GPU (the Tensor views point there, so the op table only ever
 * gets device pointers). The moments and EMA copies cover this rank's
 * range of the flat buffers (dist/grad_reduce.h): all of it, or its shard
 * when dist.shard_optimizer is on. Full-size host images of them stage
 * checkpoints (every rank's range gathered into them) and the broadcast
 * from rank 0 at start; they exist only while needed. Checkpoints hold the
 * same whole tensors either way, so a GPU checkpoint resumes on the CPU and
 * back, and a sharded one on any number of ranks.
 *
 * The order in trainer_init: select (the backend), build the model on the
 * host, alloc_state (the host images of a fresh run), load a checkpoint
 * into them and broadcast them, then place (the reduction and this rank's
 * range, the parameters and this range of the state into the backend's
 * memory; the images are dropped). The same calls on every device. */
#ifndef TRAIN_TRAINER_DEVICE_H
#define TRAIN_TRAINER_DEVICE_H

#include <stdbool.h>

#include "core/backend.h"
#include "core/optim.h"
#include "io/ckpt.h"
#include "train/config/config.h"

/* What the trainer keeps beside its backend (Trainer.be) for the update. */
typedef struct TrainerState {
    /* Full-size host images of the moments and EMA copies, while staged
     * (start, checkpoints); NULL in between. */
    AdamW host_opt;
    float *host_ema[CFG_MAX_EMA];
    /* The trainable flags the backend's optimiser layout was built with:
     * callbacks freeze and unfreeze parameters between steps. */
    bool *trainable;
    BackendOptim *optim; /* the backend's view of the range it updates */
    void *batch_fence;   /* passed once the device has read the batch's host buffers */
} TrainerState;

struct Trainer;

/* The bytes of each flat state buffer: the parameters, their gradients,
 * each AdamW moment (two), each EMA copy, the raw weights' backup while
 * sampling. What the allocations here take, and the memory plan
 * (train/mem_plan.h) with them. */
size_t trainer_state_bytes(const ParamStore *ps);

/* T->be: the backend run.device names, opened with run.precision on the
 * device of the rank's local index (one rank per GPU). Stops with the
 * config's name when it cannot be had. */
void trainer_device_select(struct Trainer *T);
/* run.precision as the backend's precision. */
BackendPrecision trainer_backend_precision(RunPrecision p);
/* "cpu", or "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB), bf16 matrix products". */
const char *trainer_device_describe(const struct Trainer *T, char *buf, size_t len);
/* The host images of a fresh run (zero moments, EMA copies = the initial
 * weights) and the batch fence. After jit_build. */
void trainer_device_alloc_state(struct Trainer *T);
/* The gradient reduction (T->red: transport, buckets, this rank's range),
 * then the model (parameters, fixed tables), this range of the moments and
 * EMA copies, the backup and the optimiser layout into the backend's
 * memory; the host images are dropped. After loading and broadcasting them. */
void trainer_device_place(struct Trainer *T);
void trainer_device_free(struct Trainer *T);

/* The state as a checkpoint sees it (full-size host images). stage: copy
 * the live state into them first, every rank's range gathered (before a
 * save: collective); without it the images are left for ckpt_load to fill
 * (before place). release_images drops them (after a save). */
void trainer_device_ckpt_data(struct Trainer *T, CkptData *d, int stage);
void trainer_device_release_images(struct Trainer *T);

/* The update, over the flat buffers of T's device. */
void trainer_device_sync_trainable(struct Trainer *T); /* after callbacks change requires_grad */
/* The global norm of the (reduced) gradients: this rank's range, the
 * ranks' squares added when sharded. */
double trainer_device_grad_norm(struct Trainer *T);
void trainer_device_scale_grad(struct Trainer *T, float s);
void trainer_device_adamw(struct Trainer *T, float lr);
void trainer_device_ema(struct Trainer *T, int k, float decay);
/* Sampling with EMA copy k: the raw weights to the backup, the EMA copy in
 * their place (every rank's range gathered: collective when sharded); raw
 * puts the weights back. */
void trainer_device_weights_ema(struct Trainer *T, int k);
void trainer_device_weights_raw(struct Trainer *T);
/* Tests: NaN into the first gradient. */
void trainer_device_poison_grad(struct Trainer *T);

/* The batch's host buffers (T->img, T->z, T->t: pinned on a GPU) are reused
 * every micro-batch: batch_begin waits until the device has read the last
 * one, batch_upload queues the copies into the step's tensors and returns. */
void trainer_device_batch_begin(struct Trainer *T);
void trainer_device_batch_upload(struct Trainer *T, Tensor *x, Tensor *z, Tensor *t);

#endif
