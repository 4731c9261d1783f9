/* core/alloc.c — counted, aligned heap allocation (see alloc.h). */
#include "core/alloc.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

static atomic_size_t alloc_count;
static atomic_size_t alloc_live, alloc_peak;

static void alloc_held(void *p) {
    size_t live = atomic_fetch_add(&alloc_live, malloc_usable_size(p)) + malloc_usable_size(p);
    size_t peak = atomic_load(&alloc_peak);
    while (live > peak && !atomic_compare_exchange_weak(&alloc_peak, &peak, live)) {
    }
}

static void alloc_released(void *p) {
    if (p) atomic_fetch_sub(&alloc_live, malloc_usable_size(p));
}

void *core_malloc(size_t bytes) {
    atomic_fetch_add(&alloc_count, 1);
    size_t rounded = (bytes + CORE_ALIGN - 1) / CORE_ALIGN * CORE_ALIGN;
    void *p = aligned_alloc(CORE_ALIGN, rounded ? rounded : CORE_ALIGN);
    CHECK(p != NULL, "out of memory allocating %zu bytes; reduce batch size or model size", bytes);
    alloc_held(p);
    return p;
}

void *core_calloc(size_t bytes) {
    void *p = core_malloc(bytes);
    memset(p, 0, bytes);
    return p;
}

void *core_realloc(void *p, size_t bytes) {
    atomic_fetch_add(&alloc_count, 1);
    alloc_released(p);
    void *q = realloc(p, bytes ? bytes : 1);
    CHECK(q != NULL, "out of memory growing a table to %zu bytes", bytes);
    alloc_held(q);
    return q;
}

void core_free(void *p) {
    alloc_released(p);
    free(p);
}

size_t core_alloc_count(void) { return atomic_load(&alloc_count); }

size_t core_alloc_live_bytes(void) { return atomic_load(&alloc_live); }
size_t core_alloc_peak_bytes(void) { return atomic_load(&alloc_peak); }
void core_alloc_peak_reset(void) { atomic_store(&alloc_peak, atomic_load(&alloc_live)); }
