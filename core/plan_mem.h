/* core/plan_mem.h — memory that is counted, not had: the device of the
 * memory plan (train/mem_plan.h).
 *
 * plan_backend(target) is a Backend with target's device, op table sizes
 * and memory layout rules, whose memory functions hand out addresses that
 * are never backed (any dereference faults) and count every block, and
 * whose kernels do nothing. The real code (the model, the losses, the tape,
 * the arenas) then runs a training step on it and allocates exactly what it
 * would on the target, in the same order and sizes, at no cost in memory or
 * time: the plan is the allocator's own count, not a formula beside it.
 * What the op table reports as sizes (attention's saved state, SLA2's
 * workspace) comes from target's table, so a plan for a GPU counts the
 * GPU's buffers even on a machine without one.
 *
 * One plan at a time per process (the counters are global, as the
 * DeviceMem functions take no context). */
#ifndef CORE_PLAN_MEM_H
#define CORE_PLAN_MEM_H

#include <stddef.h>

#include "core/backend.h"

/* A Backend over counted memory for target's device and sizes (static storage). */
const Backend *plan_backend(const Backend *target);
/* Forget every block and counter (before a plan). */
void plan_mem_reset(void);
size_t plan_mem_live(void); /* bytes held now */
size_t plan_mem_peak(void); /* the most held at once since plan_mem_reset or plan_mem_peak_reset */
void plan_mem_peak_reset(void);
size_t plan_mem_size(const void *p); /* the bytes of the live block at p (0: none) */

#endif
