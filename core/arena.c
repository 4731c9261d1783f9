/* core/arena.c — per-step bump allocator with self-sizing (see arena.h). */
#include "core/arena.h"

#include <string.h>

#include "core/alloc.h"
#include "core/check.h"

static size_t arena_round(size_t bytes) { return (bytes + CORE_ALIGN - 1) / CORE_ALIGN * CORE_ALIGN; }

void arena_init_on(Arena *a, size_t capacity, const DeviceMem *mem) {
    memset(a, 0, sizeof *a);
    a->mem = mem;
    a->capacity = arena_round(capacity ? capacity : CORE_ALIGN);
    a->base = mem->alloc(a->capacity);
}

void arena_init(Arena *a, size_t capacity) { arena_init_on(a, capacity, &device_mem_host); }

void arena_free(Arena *a) {
    for (int i = 0; i < a->n_extra; i++) a->mem->free(a->extra[i]);
    core_free(a->extra);
    if (a->mem) a->mem->free(a->base);
    memset(a, 0, sizeof *a);
}

void *arena_alloc(Arena *a, size_t bytes) {
    bytes = arena_round(bytes ? bytes : 1);
    if (a->used + bytes <= a->capacity) {
        void *p = a->base + a->used;
        a->used += bytes;
        return p;
    }
    /* Overflow: only during a step larger than any before it. */
    if (a->n_extra == a->cap_extra) {
        a->cap_extra = a->cap_extra ? 2 * a->cap_extra : 16;
        a->extra = core_realloc(a->extra, (size_t)a->cap_extra * sizeof(void *));
    }
    void *p = a->mem->alloc(bytes);
    a->extra[a->n_extra++] = p;
    a->extra_bytes += bytes;
    return p;
}

void *arena_calloc(Arena *a, size_t bytes) {
    void *p = arena_alloc(a, bytes);
    a->mem->zero(p, bytes);
    return p;
}

void arena_reset(Arena *a) {
    size_t step = arena_in_use(a);
    if (step > a->high_water) a->high_water = step;
    if (a->n_extra > 0) {
        for (int i = 0; i < a->n_extra; i++) a->mem->free(a->extra[i]);
        a->n_extra = 0;
        a->extra_bytes = 0;
        a->mem->free(a->base);
        /* One block that holds the largest step seen, so later steps do not overflow. */
        a->capacity = arena_round(a->high_water);
        a->base = a->mem->alloc(a->capacity);
    }
    a->used = 0;
}

size_t arena_in_use(const Arena *a) { return a->used + a->extra_bytes; }

size_t arena_high_water(const Arena *a) {
    size_t step = arena_in_use(a);
    return step > a->high_water ? step : a->high_water;
}

