/* core/plan_mem.c — counted memory and do-nothing kernels for the memory
 * plan (see plan_mem.h). */
#include "core/plan_mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"

/* Blocks in the order handed out: addresses only grow, so a block is found
 * by binary search. The addresses start far above anything mapped. */
#define PLAN_BASE ((uintptr_t)1 << 46)

static struct {
    uintptr_t next;
    uintptr_t *addr;
    size_t *size; /* 0 once freed */
    size_t n, cap, live, peak;
} pm;

/* The block table is the plan's own bookkeeping: plain malloc, so that it
 * does not show in the framework's host count (core_alloc_live_bytes). */
void plan_mem_reset(void) {
    free(pm.addr);
    free(pm.size);
    memset(&pm, 0, sizeof pm);
    pm.next = PLAN_BASE;
}

size_t plan_mem_live(void) { return pm.live; }
size_t plan_mem_peak(void) { return pm.peak; }
void plan_mem_peak_reset(void) { pm.peak = pm.live; }

static size_t plan_find(const void *p) {
    uintptr_t a = (uintptr_t)p;
    size_t lo = 0, hi = pm.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (pm.addr[mid] < a) lo = mid + 1;
        else hi = mid;
    }
    return lo < pm.n && pm.addr[lo] == a ? lo : SIZE_MAX;
}

size_t plan_mem_size(const void *p) {
    size_t i = plan_find(p);
    return i == SIZE_MAX ? 0 : pm.size[i];
}

/* Rounded as core_malloc rounds (the CPU's allocator); a GPU's cudaMalloc
 * rounds finer than the blocks that matter here. */
static void *plan_alloc(size_t bytes) {
    if (pm.next == 0) pm.next = PLAN_BASE;
    bytes = (bytes + CORE_ALIGN - 1) / CORE_ALIGN * CORE_ALIGN;
    if (bytes == 0) bytes = CORE_ALIGN;
    if (pm.n == pm.cap) {
        pm.cap = pm.cap ? 2 * pm.cap : 1024;
        pm.addr = realloc(pm.addr, pm.cap * sizeof *pm.addr);
        pm.size = realloc(pm.size, pm.cap * sizeof *pm.size);
        CHECK(pm.addr && pm.size, "memory plan: out of host memory for %zu blocks", pm.cap);
    }
    pm.addr[pm.n] = pm.next;
    pm.size[pm.n++] = bytes;
    void *p = (void *)pm.next;
    pm.next += bytes;
    pm.live += bytes;
    if (pm.live > pm.peak) pm.peak = pm.live;
    return p;
}

static void plan_free(void *p) {
    if (!p) return;
    size_t i = plan_find(p);
    CHECK(i != SIZE_MAX && pm.size[i] > 0, "memory plan: freeing %p, which it did not hand out (or twice)", p);
    pm.live -= pm.size[i];
    pm.size[i] = 0;
}

/* Data never moves: the plan computes nothing. Reads give zeros, so host
 * code that looks at a result (a loss, a gate) sees a defined value. */
static void plan_zero(void *p, size_t bytes) { (void)p, (void)bytes; }
static void plan_in(void *dst, const void *src, size_t bytes) { (void)dst, (void)src, (void)bytes; }
static void plan_out(void *host, const void *src, size_t bytes) {
    (void)src;
    memset(host, 0, bytes);
}
static void *plan_fence_create(void) { return NULL; }
static void plan_fence(void *f) { (void)f; }
static void plan_sync(void) {}

static DeviceMem plan_dev_mem = {
    .name = "plan",
    .alloc = plan_alloc,
    .free = plan_free,
    .zero = plan_zero,
    .to_device = plan_in,
    .to_host = plan_out,
    .copy = plan_in,
    .host_alloc = core_malloc,
    .host_free = core_free,
    .to_device_async = plan_in,
    .fence_create = plan_fence_create,
    .fence_record = plan_fence,
    .fence_wait = plan_fence,
    .fence_destroy = plan_fence,
    .synchronize = plan_sync,
};

/* One do-nothing kernel per entry of the op table; the size queries are
 * the target's (set in plan_backend). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define PLAN_BODY_void
#define PLAN_BODY_size_t return 0;
#define OP(ret, op, params) \
    static ret plan_##op params { PLAN_BODY_##ret }
#include "core/op_list.h"
#undef OP
#pragma GCC diagnostic pop

static OpTable plan_ops = {
    .name = "plan",
#define OP(ret, op, params) .op = plan_##op,
#include "core/op_list.h"
#undef OP
};

static Backend plan_be;

const Backend *plan_backend(const Backend *target) {
#define PLAN_SIZE_void(op)
#define PLAN_SIZE_size_t(op) plan_ops.op = target->ops->op;
#define OP(ret, op, params) PLAN_SIZE_##ret(op)
#include "core/op_list.h"
#undef OP
    plan_dev_mem.device = target->device;
    plan_be = (Backend){.name = target->name, .device = target->device, .ops = &plan_ops, .mem = &plan_dev_mem};
    return &plan_be;
}
