/* core/alloc.h — counted, aligned heap allocation.
 *
 * All long-lived buffers go through core_malloc so that tests can count
 * allocations and prove the training step allocates nothing, and measure
 * the bytes held (the memory plan's check). */
#ifndef CORE_ALLOC_H
#define CORE_ALLOC_H

#include <stddef.h>

#define CORE_ALIGN 64

void *core_malloc(size_t bytes);            /* 64-byte aligned, stops on failure */
void *core_calloc(size_t bytes);            /* zeroed core_malloc */
void *core_realloc(void *p, size_t bytes);  /* unaligned growth for small tables */
void core_free(void *p);
size_t core_alloc_count(void);              /* calls to core_malloc/calloc/realloc so far */
/* Bytes held through these functions now, and the most held at once since
 * the last core_alloc_peak_reset (which sets it to what is held now): the
 * measured side of the memory plan (train/mem_plan.h). Counted by the
 * allocator's usable size of each block (glibc's malloc_usable_size), so
 * a block freed by plain free() would stay counted. */
size_t core_alloc_live_bytes(void);
size_t core_alloc_peak_bytes(void);
void core_alloc_peak_reset(void);

#endif
