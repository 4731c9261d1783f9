/* core/alloc.h — counted, aligned heap allocation.
 *
 * All long-lived buffers go through core_malloc so that tests can count
 * allocations and prove the training step allocates nothing. */
#ifndef CORE_ALLOC_H
#define CORE_ALLOC_H

#include <stddef.h>

#define CORE_ALIGN 64

void *core_malloc(size_t bytes);            /* 64-byte aligned, stops on failure */
void *core_calloc(size_t bytes);            /* zeroed core_malloc */
void *core_realloc(void *p, size_t bytes);  /* unaligned growth for small tables */
void core_free(void *p);
size_t core_alloc_count(void);              /* calls to core_malloc/calloc/realloc so far */

#endif
