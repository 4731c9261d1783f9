/* core/device.c — host memory as a DeviceMem: the step arena's bookkeeping,
 * and the memory of backends that compute on the host (the CPU's). */
#include "core/device.h"

#include <string.h>

#include "core/alloc.h"

static void host_zero(void *p, size_t bytes) { memset(p, 0, bytes); }
static void host_copy(void *dst, const void *src, size_t bytes) {
    if (bytes) memcpy(dst, src, bytes);
}

/* The CPU's work is finished when a call returns: nothing to wait for. */
static void *host_fence_create(void) { return NULL; }
static void host_fence_nop(void *fence) { (void)fence; }
static void host_sync(void) {}

const DeviceMem device_mem_host = {
    .device = DEVICE_CPU,
    .name = "cpu",
    .alloc = core_malloc,
    .free = core_free,
    .zero = host_zero,
    .to_device = host_copy,
    .to_host = host_copy,
    .copy = host_copy,
    .host_alloc = core_malloc,
    .host_free = core_free,
    .to_device_async = host_copy,
    .fence_create = host_fence_create,
    .fence_record = host_fence_nop,
    .fence_wait = host_fence_nop,
    .fence_destroy = host_fence_nop,
    .synchronize = host_sync,
};
