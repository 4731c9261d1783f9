/* train/trainer_device.h — where one rank's training state lives, and the
 * update steps over it.
 *
 * The state is the parameters and gradients (the model's ParamStore), the
 * AdamW moments, the EMA copies and the backup of the raw weights while
 * sampling, in the memory of the trainer's backend (core/backend.h), which
 * also updates it. On the CPU that is host memory and core/optim.c's loops.
 * On a GPU it is device memory (the Tensor views point there, so the op
 * table only ever gets device pointers); host images of the moments and EMA
 * copies stage it for checkpoints and for the broadcast from rank 0 at
 * start. Checkpoints hold the same datasets either way, so a GPU checkpoint
 * resumes on the CPU and back.
 *
 * The order in trainer_init: select (the backend), build the model on the
 * host, alloc_state (host images: on the CPU the live state), load a
 * checkpoint into the host images and broadcast them, then place (a GPU:
 * upload everything; the CPU: nothing). */
#ifndef TRAIN_TRAINER_DEVICE_H
#define TRAIN_TRAINER_DEVICE_H

#include <stdbool.h>

#include "core/backend.h"
#include "core/optim.h"
#include "io/ckpt.h"
#include "train/config/config.h"

/* What the trainer keeps beside its backend (Trainer.be) for the update. */
typedef struct TrainerState {
    /* Host images of the moments and EMA copies when the backend's memory is
     * not host memory (on the CPU the live buffers are host memory and
     * these stay empty). */
    AdamW host_opt;
    float *host_ema[CFG_MAX_EMA];
    /* The trainable flags the backend's optimiser layout was built with:
     * callbacks freeze and unfreeze parameters between steps. */
    bool *trainable;
    BackendOptim *optim; /* the backend's view of the parameters (NULL on the CPU) */
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
/* The AdamW moments, EMA copies (= the initial weights) and batch fence:
 * the live state on the CPU, host images off the host. After jit_build. */
void trainer_device_alloc_state(struct Trainer *T);
/* Off the host: the model (parameters, fixed tables), moments, EMA copies
 * and backup to the device, the optimiser layout, NCCL when several ranks.
 * After loading and broadcasting the host images. The CPU: only the backup. */
void trainer_device_place(struct Trainer *T);
void trainer_device_free(struct Trainer *T);

/* The state as a checkpoint sees it (host buffers). stage: copy the device
 * state into the host images first (before a save); without it the images
 * are left for ckpt_load to fill (before place). */
void trainer_device_ckpt_data(struct Trainer *T, CkptData *d, int stage);

/* The update, over the flat buffers of T's device. */
void trainer_device_sync_trainable(struct Trainer *T); /* after callbacks change requires_grad */
void trainer_device_allreduce_grads(struct Trainer *T); /* ranks off the host: NCCL mean (blocking) */
double trainer_device_grad_norm(struct Trainer *T);
void trainer_device_scale_grad(struct Trainer *T, float s);
void trainer_device_adamw(struct Trainer *T, float lr);
void trainer_device_ema(struct Trainer *T, int k, float decay);
/* Tests: NaN into the first gradient. */
void trainer_device_poison_grad(struct Trainer *T);

/* The batch's host buffers (T->img, T->z, T->t: pinned on a GPU) are reused
 * every micro-batch: batch_begin waits until the device has read the last
 * one, batch_upload queues the copies into the step's tensors and returns. */
void trainer_device_batch_begin(struct Trainer *T);
void trainer_device_batch_upload(struct Trainer *T, Tensor *x, Tensor *z, Tensor *t);

#endif
