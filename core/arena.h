/* core/arena.h — the per-step memory arena for activations and their gradients.
 *
 * A step bump-allocates from one block and arena_reset() takes it all back.
 * When a step needs more than the block holds, the overflow is served from
 * extra chunks and the next reset replaces everything by one block of the
 * high-water size: after the first (warm-up) step the loop allocates nothing.
 * The memory comes from a DeviceMem (host by default; GPU memory for a CUDA
 * graph's activations), so the arena never touches the bytes it hands out,
 * except through mem->zero. */
#ifndef CORE_ARENA_H
#define CORE_ARENA_H

#include <stddef.h>

#include "core/device.h"

typedef struct Arena {
    const DeviceMem *mem; /* where the blocks live */
    char *base;        /* the main block */
    size_t capacity;   /* its size in bytes */
    size_t used;       /* bytes handed out from base this step */
    void **extra;      /* overflow chunks of this step */
    int n_extra, cap_extra;
    size_t extra_bytes; /* bytes handed out from the overflow chunks */
    size_t high_water; /* most bytes one step has needed */
} Arena;

void arena_init(Arena *a, size_t capacity); /* host memory */
void arena_init_on(Arena *a, size_t capacity, const DeviceMem *mem);
void arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t bytes);      /* 64-byte aligned, uninitialised */
void *arena_calloc(Arena *a, size_t bytes);     /* zeroed */
void arena_reset(Arena *a);
size_t arena_high_water(const Arena *a);
/* Bytes handed out this step so far (the plan reads it between phases). */
size_t arena_in_use(const Arena *a);

#endif
