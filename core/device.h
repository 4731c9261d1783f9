/* core/device.h — where tensor data lives, as the core sees it: one small
 * table of memory functions per device. The CPU's is plain host memory; the
 * CUDA backend's (kernels/cuda/device_mem.c, built with CUDA) uses cudaMalloc and
 * copies on the compute stream. The graph keeps activations in an arena over
 * its device's memory and its bookkeeping (tensor structs, tape contexts) in
 * host memory, so a core op never dereferences device data itself: it calls
 * the op table, or copies through these functions. */
#ifndef CORE_DEVICE_H
#define CORE_DEVICE_H

#include <stddef.h>

#include "core/tensor.h"

typedef struct DeviceMem {
    Device device;
    const char *name;
    void *(*alloc)(size_t bytes); /* stops with a message when out of memory */
    void (*free)(void *p);
    void (*zero)(void *p, size_t bytes);
    void (*to_device)(void *dst, const void *host_src, size_t bytes);
    void (*to_host)(void *host_dst, const void *src, size_t bytes); /* returns when the data is there */
    void (*copy)(void *dst, const void *src, size_t bytes);         /* device to device */
    /* Host memory the device copies from without staging: pinned on CUDA,
     * plain on the CPU. For the training batch. */
    void *(*host_alloc)(size_t bytes);
    void (*host_free)(void *p);
    /* A copy from host memory queued on the compute stream that returns at
     * once (the CPU copies before returning). host_src must not change until
     * a fence recorded after the copy has been waited for. */
    void (*to_device_async)(void *dst, const void *host_src, size_t bytes);
    /* Fences: fence_record marks the current end of the compute stream,
     * fence_wait blocks the host until the device has passed the mark. On
     * the CPU the work is done when a call returns: they do nothing. */
    void *(*fence_create)(void);
    void (*fence_record)(void *fence);
    void (*fence_wait)(void *fence);
    void (*fence_destroy)(void *fence);
    void (*synchronize)(void); /* wait for everything queued on the device */
} DeviceMem;

/* Host memory (core_malloc): the graph's bookkeeping, the CPU backend's data. */
extern const DeviceMem device_mem_host;

/* 1 when the memory is the host's (the CPU backend): its data can be read
 * in place, and its ops run on the host's cores. What code above the
 * kernels asks instead of naming a device (tests/layering_test.sh). */
static inline int device_mem_is_host(const DeviceMem *m) { return m->device == DEVICE_CPU; }

static inline const char *device_name(Device d) {
    return d == DEVICE_CPU ? "cpu" : d == DEVICE_CUDA ? "cuda" : "unknown";
}

#endif
