/* train/mem_plan.h — the memory plan of a training configuration
 * (`jit-train --plan`): the bytes one rank holds, by category, counted by
 * running the allocating code itself on counted memory (core/plan_mem.h).
 *
 * What runs: the model built by jit_build_planned (its parameters,
 * gradients and fixed tables), the flat state buffers at
 * trainer_state_bytes each (AdamW's two moments, the EMA copies, the
 * sampling backup, as trainer_device.c allocates them), PixelGen's frozen
 * networks by pixelgen_open (at the configured width, with random weights:
 * the same shapes as the files), and one micro-batch exactly as the
 * trainer's micro_batch composes it (the batch tensors, jit_forward,
 * op_vloss, pixelgen_terms, the backward or pixelgen_backward) on a graph
 * whose first arena block is the trainer's (TRAINER_ARENA_BYTES), for each
 * recomputation level. The step is taken at its worst: every sample passes
 * PixelGen's perceptual gate and the adaptive weight is measured (the tape
 * replayed twice). The peak is the counted memory's own high-water mark,
 * transients of the arena's first step included.
 *
 * On the CPU, device memory is host memory: the host allocations of these
 * phases (core_malloc, counted by core_alloc_live_bytes) are included; on
 * a GPU they are reported apart. Not counted: the CUDA context, cuBLASLt's
 * workspace and NCCL's buffers (the libraries' own), the data loader's and
 * the batch's host buffers, and the SLA2 conversion's stage 1 (another
 * forward). */
#ifndef TRAIN_MEM_PLAN_H
#define TRAIN_MEM_PLAN_H

#include <stddef.h>
#include <stdio.h>

#include "train/config/config.h"

/* The state a rank keeps across steps. */
typedef enum {
    MP_PARAMS,  /* the model's parameters */
    MP_GRADS,   /* their gradients */
    MP_OPTIM,   /* AdamW's two moments */
    MP_EMA,     /* the EMA copies */
    MP_BACKUP,  /* the raw weights while sampling with EMA weights */
    MP_TABLES,  /* the position and RoPE tables (and, on the CPU, SLA2's statistics) */
    MP_FROZEN,  /* PixelGen's frozen DINOv2 and VGG16 + LPIPS heads, their tables and buffers */
    MP_N_STATE
} MemPlanState;

/* One micro-batch's step arena and what goes with it, per recomputation level. */
typedef enum {
    MP_BATCH,     /* x, z, t of the micro-batch */
    MP_ACT,       /* the JiT forward and the v-loss: activations, saved buffers, forward workspaces */
    MP_LOSS_ACT,  /* PixelGen's terms: the frozen networks' activations */
    MP_BACKWARD,  /* activation gradients and backward workspaces (every replay) */
    MP_SCRATCH,   /* the recomputation arena: one segment's activations and gradients */
    MP_SLACK,     /* the step arena's first block beyond the step's need */
    MP_HOST_STEP, /* the step's host bookkeeping (tape, contexts): CPU only */
    MP_N_STEP
} MemPlanStep;

#define MP_LEVELS 3 /* JitRecompute: none, attention, block */

typedef struct MemPlan {
    int ranks, on_cpu, pixelgen;
    const char *device;
    size_t n_params;
    size_t state[MP_N_STATE];
    size_t host_state; /* host memory counted beside a GPU's state (frozen networks' host copies, DINOv2 cache) */
    size_t step[MP_LEVELS][MP_N_STEP];
    size_t step_arena[MP_LEVELS]; /* the bytes of step arenas (batch .. slack): what 2-byte activations would halve */
    size_t peak[MP_LEVELS];       /* the counted high-water mark: state + the step's peak */
} MemPlan;

/* The plan of configuration c on `ranks` data-parallel ranks (data.batch_size each). */
void mem_plan_compute(const Config *c, int ranks, MemPlan *p);
/* The plan as a table (bytes and GiB), with what fits an 80 GB GPU. */
void mem_plan_print(FILE *f, const Config *c, const MemPlan *p);

#endif
