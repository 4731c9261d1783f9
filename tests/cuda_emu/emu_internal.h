/* tests/cuda_emu/emu_internal.h — what the emulator's parts share: the
 * queued kernel launch, the device-memory registry the access checks use,
 * the per-kernel shared-memory attribute, and error reporting. */
#ifndef EMU_INTERNAL_H
#define EMU_INTERNAL_H

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "include/emu_device.h"

/* The shared-memory limits the emulator enforces: those of the strictest
 * architecture the project builds for (sm_80: 48 KiB without opt-in, 163 KiB
 * with it; sm_90 allows 227 KiB), so a launch that passes here runs on both. */
#define EMU_SMEM_DEFAULT (48u * 1024u)
#define EMU_SMEM_OPTIN (163u * 1024u)
#define EMU_MAX_THREADS 1024u
#define EMU_MAX_PARAM_BYTES 4096u

struct EmuLaunch {
    EmuSite site;
    const void *key;   /* the kernel's address where the launch could name it, else NULL */
    dim3 grid, block;
    size_t smem;       /* dynamic shared memory */
    int max_dyn_smem;  /* the kernel's attribute at launch time */
    std::vector<unsigned char> closure;
    void (*thunk)(void *);
};

/* Runs every block of a launch (emu_rt.cc). Returns 0, or 1 when the kernel
 * faulted with EMU_FAULT=sticky (the run goes on as after a GPU fault: the
 * error is reported by the next call that waits). */
int emu_run_kernel(const EmuLaunch &L);

/* Device allocations (cudaMalloc) and pinned host memory (cudaHostAlloc,
 * device-accessible): the only memory a kernel may touch besides its own
 * stack, shared memory and the program's static data. */
void emu_alloc_register(void *p, size_t bytes, bool pinned);
/* 1 if p was registered (and is now forgotten), 0 if not. */
int emu_alloc_unregister(void *p, bool pinned);
/* The allocation holding [a, a + n), if one does. */
bool emu_alloc_find(uintptr_t a, size_t n, uintptr_t *base, size_t *size, bool *pinned);
/* The allocation nearest below a (for messages); false when none. */
bool emu_alloc_nearest(uintptr_t a, uintptr_t *base, size_t *size);

/* cudaFuncSetAttribute's MaxDynamicSharedMemorySize for a kernel (0: unset). */
int emu_func_max_dyn_smem(const void *key);

/* "file:line (function)" for a code address, through addr2line. */
std::string emu_symbolize(const void *pc);

/* Prints "EMU ERROR: ..." (with the running kernel and thread when inside
 * one) and aborts: every detector ends here. */
[[noreturn]] void emu_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A warp-collective operation (the warp-level matrix instructions of
 * emu_tc.cc): every lane calls emu_warp_collective with its operands; when
 * all 32 lanes of the warp wait at the same one (anything else is reported as
 * divergent), the first lane to resume calls run once for the warp, with the
 * 32 lanes' operands and t0, the block-local index of lane 0. */
struct EmuCollective {
    const char *name; /* for reports: "ldmatrix.sync.aligned.m8n8.x4 (tc_ldmatrix_x4)" */
    void (*run)(unsigned t0, void *const args[32], const void *pc);
};
void emu_warp_collective(const EmuCollective *op, void *arg, const void *pc);
/* Whether p lies in the block's shared memory. */
bool emu_is_shared(const void *p);
/* Checks (and, in shared memory, records for the race detector) an access
 * of n bytes at p made for thread t of the block by the instruction op:
 * shared memory (inside an array, no copy in flight) or, with !shared,
 * global memory (a device allocation or static data). */
void emu_lane_access(unsigned t, const void *p, size_t n, bool write, bool shared, const char *op, const void *pc);
/* Marks the 16-byte shared chunk at p as written by an in-flight cp.async of
 * the running thread (on), or landed (!on). */
void emu_smem_inflight(const void *p, bool on, const void *pc);
/* A block starts: the cp.async state of its threads is cleared (emu_tc.cc). */
void emu_tc_block_start(unsigned nthreads);

/* emu_fail, reporting thread t of the block as the one that failed. */
[[noreturn]] void emu_lane_fail(unsigned t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs all queued work of every stream (cudaDeviceSynchronize). */
void emu_flush_all(void);
/* Queues host work on a stream (library calls: cuBLASLt, NCCL), named for
 * the race detector's reports; the work notes its accesses itself
 * (emu_hz_note_range). */
void emu_enqueue(cudaStream_t s, const char *what, std::function<void()> fn);
/* Runs a stream's queued work and what it is ordered after (not a host
 * wait: the host learns nothing of its completion). */
void emu_stream_flush(cudaStream_t s);
/* The cross-stream race detector (emu_hazard.cc). emu_hz_begin/end bracket
 * one queued operation (its stream's index, its sequence number, its vector
 * clock, a name); between them emu_hz_note records the span of an
 * allocation it reads or writes, emu_hz_note_range the same from a pointer
 * (ignored outside device allocations). emu_hz_end reports a race and
 * aborts. emu_hz_prune forgets what the host clock covers (call it only with
 * no work queued); emu_hz_forget forgets a freed allocation. */
void emu_hz_begin(int stream, uint64_t seq, const std::vector<uint64_t> *vc, const char *what);
void emu_hz_note(uintptr_t base, uintptr_t lo, uintptr_t hi, bool write);
void emu_hz_note_range(const void *p, size_t n, bool write);
void emu_hz_end(const char *detail);
void emu_hz_prune(const std::vector<uint64_t> &host_vc);
void emu_hz_forget(uintptr_t base);
/* Whether [p, p + n) lies in one device (or pinned) allocation. */
bool emu_device_range(const void *p, size_t n);

#endif
