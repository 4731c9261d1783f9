/* core/alloc.c — counted, aligned heap allocation (see alloc.h). */
#include "core/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

static atomic_size_t alloc_count;

void *core_malloc(size_t bytes) {
    atomic_fetch_add(&alloc_count, 1);
    size_t rounded = (bytes + CORE_ALIGN - 1) / CORE_ALIGN * CORE_ALIGN;
    void *p = aligned_alloc(CORE_ALIGN, rounded ? rounded : CORE_ALIGN);
    CHECK(p != NULL, "out of memory allocating %zu bytes; reduce batch size or model size", bytes);
    return p;
}

void *core_calloc(size_t bytes) {
    void *p = core_malloc(bytes);
    memset(p, 0, bytes);
    return p;
}

void *core_realloc(void *p, size_t bytes) {
    atomic_fetch_add(&alloc_count, 1);
    void *q = realloc(p, bytes ? bytes : 1);
    CHECK(q != NULL, "out of memory growing a table to %zu bytes", bytes);
    return q;
}

void core_free(void *p) { free(p); }

size_t core_alloc_count(void) { return atomic_load(&alloc_count); }
