/* tests/cuda_emu/emu_rt.cc — the emulator's execution model: thread blocks
 * as fibers, barriers and warp operations as rendezvous points, shared
 * memory with poisoning and a race detector, and the memory-access checks
 * every kernel access goes through.
 *
 * Execution. A block is one fiber per CUDA thread (a 128 KiB stack each and
 * a hand-written context switch: ucontext's costs a system call). The
 * scheduler runs every runnable fiber up to its next barrier or warp
 * operation, in a fresh random order each round (EMU_ORDER=forward|reverse
 * to fix it), then releases warps whose lanes have all arrived and, when
 * every live thread waits at __syncthreads, the block. Anything else is a
 * divergent barrier: reported, never a hang. Blocks run one after another in
 * a random order.
 *
 * Warp collectives (the matrix instructions of emu_tc.cc: mma, ldmatrix)
 * wait like shuffles, but a warp is released from one only with all 32 lanes
 * at the same instruction (anything else is reported as divergent); the
 * first lane to resume then runs it for the whole warp.
 *
 * Memory checks. Kernel files are compiled with GCC's ThreadSanitizer
 * instrumentation but without its runtime: every load and store calls the
 * __tsan_* hooks below, which check, while a kernel runs, that the address
 * lies on the thread's own stack, in the block's shared memory (inside a
 * declared array or the dynamic allocation), in a device allocation, or in
 * the program's static data, and that an 8- or 16-byte vector access is
 * aligned to its size. Anything else (a read past a cudaMalloc'd buffer,
 * freed memory, host memory) stops with the kernel's name, the thread and
 * the source line.
 *
 * Shared memory. Static __shared__ arrays and the dynamic allocation live in
 * one per-block buffer, 16-byte red zones between them, all filled with 0xff
 * bytes (NaN as float) at every block start. The race detector keeps, per
 * byte, the last writer and up to two readers with the barrier interval
 * they acted in (a block epoch, counted by __syncthreads, and a per-warp
 * epoch, counted by warp operations): two different threads touching the
 * same byte within one interval, at least one of them writing with a plain
 * store, is reported with both source lines. Atomics are exempt. It watches
 * the first EMU_RACE_BLOCKS blocks of each launch (2; 0 for all): every
 * block runs the same code, and the block order is random. A 16-byte chunk
 * that a cp.async is still writing (its thread has not waited for it) is
 * marked in flight: any access to it is reported, in every block. */
#include <dlfcn.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <map>
#include <random>

#include "emu_internal.h"

#if !defined(__x86_64__)
#error "the CUDA emulator's context switch is written for x86-64"
#endif

emu_uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

/* ---- context switch ----
 * emu_ctx_switch(save, load): pushes the callee-saved registers, saves the
 * stack pointer in *save, loads `load` and pops the same from there. The
 * floating-point control words are not switched: no kernel changes them. A
 * new fiber's stack is laid out so that the first switch "returns" into
 * emu_ctx_trampoline. */
extern "C" void emu_ctx_switch(void **save, void *load);
extern "C" void emu_ctx_trampoline(void);
extern "C" void emu_fiber_main(void);
asm(R"(
    .text
    .globl emu_ctx_switch
    .type emu_ctx_switch, @function
emu_ctx_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_ctx_switch, .-emu_ctx_switch
    .globl emu_ctx_trampoline
    .type emu_ctx_trampoline, @function
emu_ctx_trampoline:
    call emu_fiber_main
    ud2
    .size emu_ctx_trampoline, .-emu_ctx_trampoline
)");

static const size_t STACK_BYTES = 128 * 1024;

enum { ST_RUN, ST_BAR, ST_WARP, ST_DONE };

struct Fiber {
    void *sp;
    int state;
    unsigned mask;          /* warp operation: the lanes named */
    int kind, arg, width;   /* shuffle: -1 kind for __syncwarp, KIND_COLLECTIVE for emu_warp_collective */
    uint64_t val;           /* shuffle: the value offered */
    const void *pc;         /* where it waits */
    const EmuCollective *coll; /* collective: the operation */
    void *coll_arg;            /* collective: this lane's operands (on its stack) */
};
static const int KIND_COLLECTIVE = -2;

/* ---- the running kernel (all of it is process-global: one host thread
 * runs kernels, one block at a time) ---- */

static const EmuLaunch *g_launch;
static unsigned g_nthreads;
static Fiber g_fib[EMU_MAX_THREADS];
static unsigned char *g_stacks;
static void *g_sched_sp;
static unsigned g_cur;
static int g_in_kernel;
static int g_on_fiber;      /* the code running is an emulated thread's */
static int g_kernel_faulted; /* EMU_FAULT=sticky: a detector fired in this launch */
static uintptr_t g_stack_lo;
static uint64_t g_shfl_slot[2][EMU_MAX_THREADS];
static unsigned char g_shfl_parity[EMU_MAX_THREADS];
static int g_red_slot[EMU_MAX_THREADS];
static uint32_t g_block_epoch = 1;
/* A collective the warp was released from, not yet executed: the first of
 * its lanes to resume runs it for all 32 (emu_warp_collective). */
static unsigned char g_coll_pending[EMU_MAX_THREADS / 32];
/* The thread a check acts for when it is not the running one (a warp
 * collective reads shared memory for the lane that gave the address); -1: the
 * running thread. */
static int g_as = -1;
static uint32_t g_warp_epoch[EMU_MAX_THREADS / 32];
static uint32_t g_epoch_counter = 1;
static int g_order_mode = -1; /* 0 forward, 1 reverse, 2 random */
/* The race detector records the shared accesses of the first EMU_RACE_BLOCKS
 * blocks (default 2, 0: all) each launch runs; blocks run in a random order,
 * so over the launches of a test it sees many. Every block is bounds-checked. */
static size_t g_race_blocks = 2;
static int g_race_block;
static std::mt19937 g_rng(12345);

/* ---- shared memory ---- */

static const size_t SMEM_CAP = 256 * 1024;
static const size_t REDZONE = 16;
static unsigned char *g_smem;
static unsigned char *g_smem_valid; /* 1: inside a declared array or the dynamic allocation */
static size_t g_smem_hwm;           /* bytes to reset before the next block */
static size_t g_smem_top;           /* end of the last static array */
static size_t g_static_bytes;

struct StaticArr {
    int id;
    size_t off, bytes;
    const char *name;
};
static std::vector<StaticArr> g_static;

struct ShadowByte {
    uint32_t wb, ww, r1b, r1w, r2b, r2w;
    uint16_t wt, r1t, r2t;
    const void *wpc, *r1pc, *r2pc;
};
static ShadowByte *g_shadow;      /* per byte: 1- and 2-byte accesses */
static ShadowByte *g_shadow_word; /* per 4-byte word: aligned accesses of 4 bytes and more (compact, so it
                                     stays in cache) */
static const uint16_t NOBODY = 0xffff;
/* Per 16-byte chunk of shared memory: the cp.async copy writing it that has
 * not landed (its thread's wait_group has not completed its group). Any
 * access to such a chunk is reported: on a GPU it reads stale or partial data. */
struct Inflight {
    uint16_t t; /* NOBODY: none */
    const void *pc;
};
static Inflight *g_inflight;
static size_t g_inflight_count;

static inline unsigned actor(void) { return g_as >= 0 ? (unsigned)g_as : g_cur; }

/* ---- error reporting ---- */

static std::string thread_str(unsigned t) {
    char b[96];
    snprintf(b, sizeof b, "thread (%u,%u,%u) of block (%u,%u,%u)", t % blockDim.x, t / blockDim.x % blockDim.y,
             t / (blockDim.x * blockDim.y), blockIdx.x, blockIdx.y, blockIdx.z);
    return b;
}

std::string emu_symbolize(const void *pc) {
    Dl_info info;
    if (!pc || !dladdr(pc, &info) || !info.dli_fname) return "?";
    char cmd[1024];
    uintptr_t off = (uintptr_t)pc - 1 - (uintptr_t)info.dli_fbase;
    snprintf(cmd, sizeof cmd, "addr2line -C -f -i -p -e '%s' 0x%lx 2>/dev/null", info.dli_fname, (unsigned long)off);
    FILE *f = popen(cmd, "r");
    std::string out;
    if (f) {
        char line[1024];
        while (fgets(line, sizeof line, f)) {
            std::string s(line);
            while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
            if (!out.empty()) out += "\n      ";
            out += s;
        }
        pclose(f);
    }
    return out.empty() ? "?" : out;
}

void emu_fail(const char *fmt, ...) {
    int was = g_in_kernel;
    g_in_kernel = 0;
    fflush(stdout);
    fprintf(stderr, "EMU ERROR: ");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    if (was && g_launch)
        fprintf(stderr, "  in kernel %s (launched at %s:%d), %s\n", g_launch->site.kernel, g_launch->site.file,
                g_launch->site.line, thread_str(actor()).c_str());
    g_as = -1;
    fflush(stderr);
    const char *mode = getenv("EMU_FAULT");
    if (was && g_on_fiber && mode && !strcmp(mode, "sticky")) {
        /* As on a GPU: the kernel stops, the host learns at its next wait. */
        g_kernel_faulted = 1;
        g_on_fiber = 0;
        emu_ctx_switch(&g_fib[g_cur].sp, g_sched_sp); /* never resumed */
    }
    abort();
}

void emu_lane_fail(unsigned t, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    g_as = (int)t;
    emu_fail("%s", msg);
}

/* ---- fibers ---- */

extern "C" void emu_fiber_main(void) {
    const EmuLaunch *L = g_launch;
    alignas(64) unsigned char params[EMU_MAX_PARAM_BYTES];
    memcpy(params, L->closure.data(), L->closure.size()); /* each thread's own copy, as on the GPU */
    L->thunk(params);
    g_fib[g_cur].state = ST_DONE;
    emu_ctx_switch(&g_fib[g_cur].sp, g_sched_sp);
    abort(); /* a finished fiber is never resumed */
}

/* EMU_STATS=1: per kernel, launches, threads, barrier/warp waits and checked
 * shared and global accesses, printed at exit (where the emulator's time goes). */
struct KStat {
    unsigned long long launches, threads, waits, smem, global;
};
static std::map<std::string, KStat> *g_stats;
static KStat *g_kstat;

static void stats_print(void) {
    std::vector<std::pair<std::string, KStat>> v(g_stats->begin(), g_stats->end());
    std::sort(v.begin(), v.end(), [](const auto &a, const auto &b) {
        return a.second.waits + a.second.smem + a.second.global > b.second.waits + b.second.smem + b.second.global;
    });
    fprintf(stderr, "%-40s %9s %12s %12s %12s %12s\n", "EMU_STATS kernel", "launches", "threads", "waits",
            "smem", "global");
    for (auto &e : v)
        fprintf(stderr, "%-40.40s %9llu %12llu %12llu %12llu %12llu\n", e.first.c_str(), e.second.launches,
                e.second.threads, e.second.waits, e.second.smem, e.second.global);
}

static void yield(int state, const void *pc) {
    Fiber &f = g_fib[g_cur];
    if (g_kstat) g_kstat->waits++;
    f.state = state;
    f.pc = pc;
    emu_ctx_switch(&f.sp, g_sched_sp);
}

static void fiber_init(unsigned t) {
    /* Six saved registers, then the return address at top - 24: the
     * trampoline's call then enters emu_fiber_main with the ABI's alignment. */
    uintptr_t top = (uintptr_t)(g_stacks + (size_t)(t + 1) * STACK_BYTES) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 72);
    for (int i = 0; i < 6; i++) sp[i] = 0;
    sp[6] = (uint64_t)(uintptr_t)emu_ctx_trampoline;
    g_fib[t].sp = sp;
    g_fib[t].state = ST_RUN;
    g_fib[t].pc = NULL;
    g_shfl_parity[t] = 0;
}

static void set_current(unsigned t) {
    g_cur = t;
    threadIdx.x = t % blockDim.x;
    threadIdx.y = t / blockDim.x % blockDim.y;
    threadIdx.z = t / (blockDim.x * blockDim.y);
    g_stack_lo = (uintptr_t)g_stacks + (size_t)t * STACK_BYTES;
}

static void *map_bytes(size_t n) {
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) emu_fail("cannot map %zu bytes for the emulator", n);
    return p;
}

static void rt_init(void) {
    if (g_stacks) return;
    g_stacks = (unsigned char *)map_bytes(STACK_BYTES * EMU_MAX_THREADS);
    g_smem = (unsigned char *)map_bytes(SMEM_CAP);
    g_smem_valid = (unsigned char *)map_bytes(SMEM_CAP);
    g_shadow = (ShadowByte *)map_bytes(SMEM_CAP * sizeof(ShadowByte));
    g_shadow_word = (ShadowByte *)map_bytes(SMEM_CAP / 4 * sizeof(ShadowByte));
    g_inflight = (Inflight *)map_bytes(SMEM_CAP / 16 * sizeof(Inflight));
    for (size_t i = 0; i < SMEM_CAP / 16; i++) g_inflight[i].t = NOBODY;
    for (size_t i = 0; i < SMEM_CAP; i++) g_shadow[i].wt = g_shadow[i].r1t = g_shadow[i].r2t = NOBODY;
    for (size_t i = 0; i < SMEM_CAP / 4; i++)
        g_shadow_word[i].wt = g_shadow_word[i].r1t = g_shadow_word[i].r2t = NOBODY;
    const char *rb = getenv("EMU_RACE_BLOCKS");
    if (rb && *rb) g_race_blocks = (size_t)strtoull(rb, NULL, 10);
    const char *o = getenv("EMU_ORDER");
    g_order_mode = o && !strcmp(o, "forward") ? 0 : o && !strcmp(o, "reverse") ? 1 : 2;
}

/* ---- warp and block rendezvous ---- */

/* Releases the lanes of warp w (lo..hi-1) named in `lanes`: a new warp epoch. */
static void warp_release(unsigned w, unsigned lo, unsigned hi, uint32_t lanes) {
    g_warp_epoch[w] = ++g_epoch_counter;
    for (unsigned t = lo; t < hi; t++)
        if (lanes >> (t - lo) & 1u) g_fib[t].state = ST_RUN;
}

static std::string lane_doing(unsigned u) {
    const Fiber &g = g_fib[u];
    if (g.state == ST_DONE) return "has exited";
    std::string at = emu_symbolize(g.pc);
    if (g.state == ST_BAR) return "waits at __syncthreads at " + at;
    if (g.kind == KIND_COLLECTIVE) return std::string("waits at ") + g.coll->name + " at " + at;
    return std::string("waits at ") + (g.kind == -1 ? "__syncwarp" : "a warp shuffle") + " at " + at;
}

/* Lanes of warp w (lanes lo..hi-1) wait at a collective and no other lane of
 * the warp can move: every one of the warp's 32 lanes must wait at the same
 * one (".sync.aligned": the same instruction, all threads of the warp).
 * Different code addresses of the same source line (code the compiler
 * duplicated) count as the same instruction. */
static void collective_check(unsigned w, unsigned lo, unsigned hi, unsigned t) {
    const Fiber &f = g_fib[t];
    g_cur = t;
    if (hi - lo < 32)
        emu_fail("%s at %s needs all 32 lanes of a warp, but warp %u of the block has only %u threads "
                 "(%u threads per block)",
                 f.coll->name, emu_symbolize(f.pc).c_str(), w, hi - lo, g_nthreads);
    std::string here;
    for (unsigned u = lo; u < hi; u++) {
        const Fiber &g = g_fib[u];
        bool same = g.state == ST_WARP && g.kind == KIND_COLLECTIVE && g.coll == f.coll;
        if (same && g.pc != f.pc) {
            if (here.empty()) here = emu_symbolize(f.pc);
            same = emu_symbolize(g.pc) == here;
        }
        if (!same)
            emu_fail("%s at %s: lane %u %s (divergent: %s needs all 32 lanes of the warp at the same "
                     "instruction; on a GPU the result is undefined)",
                     f.coll->name, emu_symbolize(f.pc).c_str(), u - lo, lane_doing(u).c_str(), f.coll->name);
    }
}

/* Lanes of warp w wait at warp operations. Shuffles and __syncwarp go
 * first: their masks must name only lanes waiting at one (else: why not),
 * and they are released. Lanes at a collective (which may wait there for
 * lanes still in a shuffle) are released only when no other lane of the warp
 * can move and all 32 are at the same one. 1: released, 0: nothing waits. */
static int warp_resolve(unsigned w) {
    unsigned lo = w * 32, hi = std::min(g_nthreads, lo + 32);
    uint32_t waiting = 0, coll = 0;
    for (unsigned t = lo; t < hi; t++) {
        if (g_fib[t].state != ST_WARP) continue;
        if (g_fib[t].kind == KIND_COLLECTIVE) coll |= 1u << (t - lo);
        else waiting |= 1u << (t - lo);
    }
    if (!waiting && !coll) return 0;
    if (!waiting) {
        unsigned t = lo + (unsigned)__builtin_ctz(coll);
        collective_check(w, lo, hi, t);
        warp_release(w, lo, hi, coll);
        g_coll_pending[w] = 1;
        return 1;
    }
    for (unsigned t = lo; t < hi; t++) {
        if (!(waiting >> (t - lo) & 1u) || !(g_fib[t].mask & ~waiting)) continue;
        /* A lane named in the mask is not waiting here: say why. */
        const Fiber &f = g_fib[t];
        for (unsigned l = 0; l < 32; l++) {
            if (!(f.mask >> l & 1u) || (waiting >> l & 1u)) continue;
            unsigned u = lo + l;
            const char *op = f.kind == -1 ? "__syncwarp" : "a warp shuffle";
            g_cur = t;
            if (u >= g_nthreads)
                emu_fail("%s names lane %u, which does not exist (the block has %u threads), at %s", op, l,
                         g_nthreads, emu_symbolize(f.pc).c_str());
            if (g_fib[u].state == ST_DONE)
                emu_fail("%s names lane %u, which has exited, at %s", op, l, emu_symbolize(f.pc).c_str());
            emu_fail("%s at %s waits for lane %u, which %s (divergent barrier: a deadlock on the GPU)", op,
                     emu_symbolize(f.pc).c_str(), l, lane_doing(u).c_str());
        }
    }
    warp_release(w, lo, hi, waiting);
    return 1;
}

static void run_block(void) {
    unsigned n = g_nthreads;
    for (unsigned t = 0; t < n; t++) fiber_init(t);
    for (unsigned w = 0; w < (n + 31) / 32; w++) g_warp_epoch[w] = ++g_epoch_counter;
    g_block_epoch = ++g_epoch_counter;
    for (;;) {
        /* A fresh order each round, cheaply: a random start and a random
         * stride coprime to n walk every thread once (reverse or forward
         * with EMU_ORDER). */
        unsigned start = 0, stride = 1;
        if (g_order_mode == 2 && n > 1) {
            start = g_rng() % n;
            stride = 1 + g_rng() % (n - 1);
            while (std::__gcd(stride, n) != 1) stride++;
        }
        for (unsigned i = 0; i < n; i++) {
            unsigned t = g_order_mode == 1 ? n - 1 - i : (unsigned)((start + (size_t)i * stride) % n);
            if (g_fib[t].state != ST_RUN) continue;
            set_current(t);
            g_on_fiber = 1;
            emu_ctx_switch(&g_sched_sp, g_fib[t].sp);
            g_on_fiber = 0;
            if (g_kernel_faulted) return;
        }
        int released = 0;
        for (unsigned w = 0; w < (n + 31) / 32; w++) released |= warp_resolve(w);
        if (released) continue;
        unsigned done = 0, bar = 0;
        for (unsigned t = 0; t < n; t++) done += g_fib[t].state == ST_DONE, bar += g_fib[t].state == ST_BAR;
        if (done == n) return;
        if (done + bar == n) {
            g_block_epoch = ++g_epoch_counter;
            for (unsigned t = 0; t < n; t++)
                if (g_fib[t].state == ST_BAR) g_fib[t].state = ST_RUN;
            continue;
        }
        emu_fail("the block's threads wait at different barriers (deadlock)");
    }
}

void emu_syncthreads(void) { yield(ST_BAR, __builtin_return_address(0)); }

int emu_syncthreads_op(int pred, int op) {
    const void *pc = __builtin_return_address(0);
    g_red_slot[g_cur] = pred != 0;
    yield(ST_BAR, pc);
    int r = op == 1 ? 1 : 0;
    for (unsigned t = 0; t < g_nthreads; t++) {
        if (g_fib[t].state == ST_DONE) continue;
        if (op == 0) r |= g_red_slot[t];
        else if (op == 1) r &= g_red_slot[t];
        else r += g_red_slot[t];
    }
    yield(ST_BAR, pc); /* nobody overwrites a slot before everyone has read them all */
    return r;
}

void emu_warp_collective(const EmuCollective *op, void *arg, const void *pc) {
    unsigned t = g_cur, w = t / 32;
    Fiber &f = g_fib[t];
    f.kind = KIND_COLLECTIVE, f.coll = op, f.coll_arg = arg, f.mask = 0xffffffffu;
    yield(ST_WARP, pc);
    if (!g_coll_pending[w]) return; /* another lane of the warp ran it */
    g_coll_pending[w] = 0;
    void *args[32];
    for (unsigned l = 0; l < 32; l++) args[l] = g_fib[w * 32 + l].coll_arg;
    op->run(w * 32, args, pc);
}

void emu_syncwarp(unsigned mask) {
    Fiber &f = g_fib[g_cur];
    f.mask = mask;
    f.kind = -1;
    if (!(mask >> (g_cur % 32) & 1u)) emu_fail("__syncwarp's mask does not name the calling lane %u", g_cur % 32);
    yield(ST_WARP, __builtin_return_address(0));
}

uint64_t emu_shfl(unsigned mask, uint64_t bits, int kind, int arg, int width) {
    const void *pc = __builtin_return_address(0);
    unsigned t = g_cur, lane = t % 32, w0 = t - lane;
    if (width <= 0 || width > 32 || (width & (width - 1)))
        emu_fail("shuffle width %d is not a power of two up to 32, at %s", width, emu_symbolize(pc).c_str());
    if (!(mask >> lane & 1u))
        emu_fail("a shuffle's mask 0x%08x does not name the calling lane %u, at %s", mask, lane,
                 emu_symbolize(pc).c_str());
    Fiber &f = g_fib[t];
    f.mask = mask, f.kind = kind, f.arg = arg, f.width = width, f.val = bits;
    int p = g_shfl_parity[t];
    g_shfl_slot[p][t] = bits;
    g_shfl_parity[t] ^= 1;
    yield(ST_WARP, pc);
    unsigned base = lane & ~(unsigned)(width - 1), src = lane;
    if (kind == 0) src = base + ((unsigned)arg & (unsigned)(width - 1));
    else if (kind == 1) src = lane ^ (unsigned)arg;
    else if (kind == 2) src = lane + (unsigned)arg;
    else src = lane - (unsigned)arg;
    if (kind != 0 && (src >= 32 || (src & ~(unsigned)(width - 1)) != base)) src = lane; /* out of the group: own value */
    if (!(mask >> src & 1u))
        emu_fail("a shuffle at %s reads lane %u, which its mask 0x%08x does not name", emu_symbolize(pc).c_str(), src,
                 mask);
    return g_shfl_slot[p][w0 + src];
}

void emu_launch_bounds(unsigned max_threads, const char *kernel) {
    unsigned n = blockDim.x * blockDim.y * blockDim.z;
    if (n > max_threads)
        emu_fail("%s was launched with %u threads per block, above its __launch_bounds__(%u) (the GPU refuses such a "
                 "launch: too many resources requested)",
                 kernel, n, max_threads);
}

/* ---- shared memory ---- */

void *emu_dyn_smem(void) { return g_smem; }

void *emu_static_smem(int id, size_t bytes, size_t align, const char *name) {
    for (const StaticArr &a : g_static)
        if (a.id == id) return g_smem + a.off;
    size_t al = align < 16 ? 16 : align;
    size_t off = (g_smem_top + REDZONE + al - 1) / al * al;
    g_static_bytes += bytes;
    int dyn_max = g_launch->max_dyn_smem;
    if (g_static_bytes > EMU_SMEM_DEFAULT)
        emu_fail("static shared memory of %zu bytes (with '%s') is above the 48 KiB limit", g_static_bytes, name);
    if (!dyn_max && g_static_bytes + g_launch->smem > EMU_SMEM_DEFAULT)
        emu_fail("%zu bytes of static shared memory (with '%s') and %zu dynamic are above 48 KiB: the launch needs "
                 "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)",
                 g_static_bytes, name, g_launch->smem);
    if (g_static_bytes + (size_t)std::max<size_t>(g_launch->smem, (size_t)dyn_max) > EMU_SMEM_OPTIN)
        emu_fail("%zu bytes of static shared memory (with '%s') and %zu dynamic are above sm_80's %u per block",
                 g_static_bytes, name, std::max<size_t>(g_launch->smem, (size_t)dyn_max), EMU_SMEM_OPTIN);
    if (off + bytes + REDZONE > SMEM_CAP) emu_fail("shared memory arrays exceed the emulator's buffer");
    g_static.push_back({id, off, bytes, name});
    memset(g_smem + off, 0xff, bytes); /* poisoned: NaN as float */
    memset(g_smem_valid + off, 1, bytes);
    g_smem_top = off + bytes;
    g_smem_hwm = std::max(g_smem_hwm, g_smem_top + REDZONE);
    return g_smem + off;
}

static void smem_block_reset(size_t dyn) {
    size_t clear = std::max(g_smem_hwm, dyn + REDZONE);
    if (g_inflight_count) { /* copies of the last block that never landed */
        for (size_t c = 0; c < SMEM_CAP / 16; c++) g_inflight[c].t = NOBODY;
        g_inflight_count = 0;
    }
    emu_tc_block_start(g_nthreads);
    memset(g_smem, 0xff, clear);
    memset(g_smem_valid, 0, clear);
    memset(g_smem_valid, 1, dyn);
    g_static.clear();
    g_static_bytes = 0;
    g_smem_top = dyn;
    g_smem_hwm = dyn + REDZONE;
}

static std::string smem_where(size_t off) {
    char b[160];
    for (const StaticArr &a : g_static)
        if (off >= a.off && off < a.off + a.bytes) {
            snprintf(b, sizeof b, "byte %zu of __shared__ %s", off - a.off, a.name);
            return b;
        }
    snprintf(b, sizeof b, "byte %zu of the dynamic shared memory", off);
    return b;
}

static bool ordered(uint16_t rt, uint32_t rb, uint32_t rw, unsigned t) {
    if (rt == NOBODY || rt == t || rb != g_block_epoch) return true;
    return rt / 32 == t / 32 && rw != g_warp_epoch[t / 32];
}

static void race(size_t off, const char *mine, const void *pc, const char *theirs, uint16_t other,
                 const void *opc) {
    std::string here = emu_symbolize(pc), there = emu_symbolize(opc), other_s = thread_str(other);
    emu_fail("shared-memory race on %s: this thread %s it at %s, while %s %s it at %s, with no barrier between",
             smem_where(off).c_str(), mine, here.c_str(), other_s.c_str(), theirs, there.c_str());
}

static void smem_outside(size_t off, size_t n, bool write, const void *pc) {
    emu_fail("%zu-byte shared-memory %s at offset %zu, outside every __shared__ array and the %zu bytes of "
             "dynamic shared memory, at %s",
             n, write ? "write" : "read", off, g_launch->smem, emu_symbolize(pc).c_str());
}

/* Arrays are 16-byte red zones apart: an access of up to 16 bytes whose
 * first and last bytes are inside one is inside one throughout. */
static inline void smem_bounds(size_t off, size_t n, bool write, const void *pc) {
    bool inside = off + n <= SMEM_CAP && g_smem_valid[off] && g_smem_valid[off + n - 1];
    for (size_t i = 0; i < n && inside && n > 16; i++) inside = g_smem_valid[off + i];
    if (!inside) smem_outside(off, n, write, pc);
}

static inline void shadow_access(ShadowByte &s, size_t o, bool write, const void *pc, unsigned t) {
    uint32_t w = g_warp_epoch[t / 32];
    if (!ordered(s.wt, s.wb, s.ww, t)) race(o, write ? "writes" : "reads", pc, "wrote", s.wt, s.wpc);
    if (write) {
        if (!ordered(s.r1t, s.r1b, s.r1w, t)) race(o, "writes", pc, "read", s.r1t, s.r1pc);
        if (!ordered(s.r2t, s.r2b, s.r2w, t)) race(o, "writes", pc, "read", s.r2t, s.r2pc);
        s.wt = (uint16_t)t, s.wb = g_block_epoch, s.ww = w, s.wpc = pc;
        s.r1t = s.r2t = NOBODY;
    } else if (s.r1t == NOBODY || s.r1t == t || ordered(s.r1t, s.r1b, s.r1w, t)) {
        s.r1t = (uint16_t)t, s.r1b = g_block_epoch, s.r1w = w, s.r1pc = pc;
    } else {
        s.r2t = (uint16_t)t, s.r2b = g_block_epoch, s.r2w = w, s.r2pc = pc;
    }
}

/* both: record the access at both granularities (the 16-byte rows of the
 * matrix instructions, which kernels fill and read with accesses of every size). */
static void smem_access(size_t off, size_t n, bool write, const void *pc, bool both = false) {
    unsigned t = actor();
    /* An aligned access of 4 bytes or more (the floats, ints and vectors of
     * every kernel here) is one record per word; smaller ones are tracked
     * byte by byte. A race between accesses of different sizes to the same
     * word can go unseen (except where both granularities are recorded); none
     * is ever made up. */
    bool word = n >= 4 && off % 4 == 0;
    if (word || both)
        for (size_t i = 0; i < n / 4; i++) shadow_access(g_shadow_word[off / 4 + i], off + 4 * i, write, pc, t);
    if (!word || both)
        for (size_t i = 0; i < n; i++) shadow_access(g_shadow[off + i], off + i, write, pc, t);
}

/* ---- global memory: allocations and static data ---- */

struct Range {
    uintptr_t lo, hi;
};
static std::vector<Range> g_static_ranges;
/* The last few ranges hit (allocations and static segments): most accesses
 * end here. For an allocation it also gathers the span the kernel read and
 * wrote, handed to the cross-stream race detector when the entry is
 * replaced and when the kernel ends. */
struct Hot {
    uintptr_t lo, hi;
    bool alloc;
    uintptr_t rlo, rhi, wlo, whi;
};
static Hot g_hot[4];
static unsigned g_hot_next;

static void hot_flush(Hot &h) {
    if (!h.alloc) return;
    emu_hz_note(h.lo, h.rlo, h.rhi, false);
    emu_hz_note(h.lo, h.wlo, h.whi, true);
    h.rlo = h.wlo = UINTPTR_MAX, h.rhi = h.whi = 0;
}

static Hot &hot_put(uintptr_t lo, uintptr_t hi, bool alloc) {
    Hot &h = g_hot[g_hot_next++ % 4];
    hot_flush(h);
    h = {lo, hi, alloc, UINTPTR_MAX, 0, UINTPTR_MAX, 0};
    return h;
}

static inline void hot_span(Hot &h, uintptr_t a, size_t n, bool write) {
    if (!h.alloc) return;
    if (write) h.wlo = std::min(h.wlo, a), h.whi = std::max(h.whi, a + n);
    else h.rlo = std::min(h.rlo, a), h.rhi = std::max(h.rhi, a + n);
}

/* At a kernel's end: spans to the detector, and no range kept (an
 * allocation may be freed before the next kernel). */
static void hot_reset(void) {
    for (Hot &h : g_hot) {
        hot_flush(h);
        h = {0, 0, false, 0, 0, 0, 0};
    }
}

static int add_segments(struct dl_phdr_info *info, size_t, void *) {
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) &ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_LOAD) continue;
        uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
        g_static_ranges.push_back({lo, lo + ph.p_memsz});
    }
    return 0;
}

static bool in_static(uintptr_t a, size_t n) {
    if (g_static_ranges.empty()) {
        dl_iterate_phdr(add_segments, NULL);
        std::sort(g_static_ranges.begin(), g_static_ranges.end(),
                  [](const Range &x, const Range &y) { return x.lo < y.lo; });
    }
    auto it = std::upper_bound(g_static_ranges.begin(), g_static_ranges.end(), a,
                               [](uintptr_t v, const Range &r) { return v < r.lo; });
    if (it == g_static_ranges.begin()) return false;
    --it;
    if (a + n > it->hi) return false;
    hot_put(it->lo, it->hi, false);
    return true;
}

/* record: whether the access counts for the cross-stream race detector
 * (atomics do not: they are well defined between unordered streams). */
static void global_access(uintptr_t a, size_t n, bool write, const void *pc, bool record = true) {
    for (Hot &r : g_hot)
        if (a >= r.lo && a + n <= r.hi) {
            if (record) hot_span(r, a, n, write);
            return;
        }
    uintptr_t base;
    size_t size;
    bool pinned;
    if (emu_alloc_find(a, n, &base, &size, &pinned)) {
        Hot &h = hot_put(base, base + size, true);
        if (record) hot_span(h, a, n, write);
        return;
    }
    if (in_static(a, n)) return;
    char near[160] = "";
    if (emu_alloc_nearest(a, &base, &size))
        snprintf(near, sizeof near, " (the nearest allocation below it: %zu bytes at %p, this is %zu bytes past its start)",
                 size, (void *)base, (size_t)(a - base));
    emu_fail("%zu-byte %s of %p, outside every device allocation%s, at %s", n, write ? "write" : "read", (void *)a, near,
             emu_symbolize(pc).c_str());
}

static void inflight_report(size_t off, size_t n, bool write, const void *pc, size_t chunk) {
    const Inflight &c = g_inflight[chunk];
    std::string here = emu_symbolize(pc), there = emu_symbolize(c.pc), who = thread_str(c.t);
    emu_fail("%zu-byte shared-memory %s of %s, which a cp.async of %s issued at %s is still writing: no "
             "cp.async.wait_group of that thread has completed its group (on a GPU this %s stale or partial data), "
             "at %s",
             n, write ? "write" : "read", smem_where(off).c_str(), who.c_str(), there.c_str(),
             write ? "races with the copy" : "reads", here.c_str());
}

static inline void inflight_check(size_t off, size_t n, bool write, const void *pc) {
    for (size_t c = off / 16; c <= (off + n - 1) / 16; c++)
        if (g_inflight[c].t != NOBODY) inflight_report(off, n, write, pc, c);
}

static inline void check_access(const void *addr, size_t n, bool write, const void *pc) {
    if (!g_in_kernel) return;
    uintptr_t a = (uintptr_t)addr;
    if (a - g_stack_lo < STACK_BYTES) return;
    if (a - (uintptr_t)g_smem < SMEM_CAP) {
        if (g_kstat) g_kstat->smem++;
        smem_bounds(a - (uintptr_t)g_smem, n, write, pc);
        if (g_inflight_count) inflight_check(a - (uintptr_t)g_smem, n, write, pc);
        if (g_race_block) smem_access(a - (uintptr_t)g_smem, n, write, pc);
        return;
    }
    if (g_kstat) g_kstat->global++;
    global_access(a, n, write, pc);
}

/* ---- accesses of the warp-level matrix instructions (emu_tc.cc) ---- */

bool emu_is_shared(const void *p) { return (uintptr_t)p - (uintptr_t)g_smem < SMEM_CAP; }

void emu_lane_access(unsigned t, const void *p, size_t n, bool write, bool shared, const char *op,
                     const void *pc) {
    uintptr_t a = (uintptr_t)p;
    g_as = (int)t;
    if (shared) {
        if (!emu_is_shared(p))
            emu_fail("%s: address %p is not shared memory (the instruction reads/writes only the .shared "
                     "space), at %s",
                     op, p, emu_symbolize(pc).c_str());
        size_t off = a - (uintptr_t)g_smem;
        if (g_kstat) g_kstat->smem++;
        smem_bounds(off, n, write, pc);
        if (g_inflight_count) inflight_check(off, n, write, pc);
        if (g_race_block) smem_access(off, n, write, pc, true);
    } else {
        if (emu_is_shared(p) || a - ((uintptr_t)g_stacks + (size_t)t * STACK_BYTES) < STACK_BYTES)
            emu_fail("%s: source %p is not global memory (%s), at %s", op, p,
                     emu_is_shared(p) ? "shared memory" : "the thread's stack", emu_symbolize(pc).c_str());
        if (g_in_kernel) global_access(a, n, write, pc);
    }
    g_as = -1;
}

void emu_smem_inflight(const void *p, bool on, const void *pc) {
    Inflight &c = g_inflight[((uintptr_t)p - (uintptr_t)g_smem) / 16];
    if (on) {
        c.t = (uint16_t)g_cur, c.pc = pc;
        g_inflight_count++;
    } else if (c.t != NOBODY) {
        c.t = NOBODY;
        g_inflight_count--;
    }
}

/* Atomics: bounds checked, not recorded for the race detector. */
static inline void check_atomic(const void *addr, size_t n, const void *pc) {
    if (!g_in_kernel) return;
    uintptr_t a = (uintptr_t)addr;
    if (a - (uintptr_t)g_smem < SMEM_CAP) {
        size_t off = a - (uintptr_t)g_smem;
        for (size_t i = 0; i < n; i++)
            if (!g_smem_valid[off + i])
                emu_fail("atomic on shared memory at offset %zu, outside every array, at %s", off,
                         emu_symbolize(pc).c_str());
        return;
    }
    if (a - g_stack_lo < STACK_BYTES) return;
    global_access(a, n, true, pc, false);
}

#define EMU_ATOMIC(T, name, expr)                                                                          \
    T name(T *p, T v) {                                                                                    \
        check_atomic(p, sizeof(T), __builtin_return_address(0));                                           \
        T old = *p;                                                                                        \
        *p = (expr);                                                                                       \
        return old;                                                                                        \
    }
EMU_ATOMIC(int, atomicAdd, old + v)
EMU_ATOMIC(unsigned, atomicAdd, old + v)
EMU_ATOMIC(unsigned long long, atomicAdd, old + v)
EMU_ATOMIC(float, atomicAdd, old + v)
EMU_ATOMIC(double, atomicAdd, old + v)
EMU_ATOMIC(int, atomicMax, old > v ? old : v)
EMU_ATOMIC(int, atomicMin, old < v ? old : v)
EMU_ATOMIC(unsigned, atomicMax, old > v ? old : v)
EMU_ATOMIC(int, atomicExch, v)
int atomicCAS(int *p, int cmp, int v) {
    check_atomic(p, sizeof(int), __builtin_return_address(0));
    int old = *p;
    if (old == cmp) *p = v;
    return old;
}

/* ---- the ThreadSanitizer instrumentation's entry points ---- */

/* The compiler calls the aligned hooks of 8 and 16 bytes only for an access
 * whose type promises that alignment (a double, a float2, a float4, a
 * uint4): at an address not aligned so, the GPU faults (misaligned address). */
static void misaligned(const void *p, size_t n, bool write, const void *pc) {
    if (!g_in_kernel) return;
    emu_fail("misaligned %zu-byte %s of %p (a vector access must be aligned to its size; the GPU stops with "
             "'misaligned address'), at %s",
             n, write ? "write" : "read", p, emu_symbolize(pc).c_str());
}

extern "C" {
#define EMU_HOOK(name, n, w)                                                                               \
    void name(void *p) { check_access(p, n, w, __builtin_return_address(0)); }
#define EMU_HOOK_ALIGNED(name, n, w)                                                                       \
    void name(void *p) {                                                                                   \
        if ((uintptr_t)p % n) misaligned(p, n, w, __builtin_return_address(0));                            \
        check_access(p, n, w, __builtin_return_address(0));                                                \
    }
EMU_HOOK(__tsan_read1, 1, false)
EMU_HOOK(__tsan_read2, 2, false)
EMU_HOOK(__tsan_read4, 4, false)
EMU_HOOK_ALIGNED(__tsan_read8, 8, false)
EMU_HOOK_ALIGNED(__tsan_read16, 16, false)
EMU_HOOK(__tsan_write1, 1, true)
EMU_HOOK(__tsan_write2, 2, true)
EMU_HOOK(__tsan_write4, 4, true)
EMU_HOOK_ALIGNED(__tsan_write8, 8, true)
EMU_HOOK_ALIGNED(__tsan_write16, 16, true)
EMU_HOOK(__tsan_unaligned_read2, 2, false)
EMU_HOOK(__tsan_unaligned_read4, 4, false)
EMU_HOOK(__tsan_unaligned_read8, 8, false)
EMU_HOOK(__tsan_unaligned_read16, 16, false)
EMU_HOOK(__tsan_unaligned_write2, 2, true)
EMU_HOOK(__tsan_unaligned_write4, 4, true)
EMU_HOOK(__tsan_unaligned_write8, 8, true)
EMU_HOOK(__tsan_unaligned_write16, 16, true)
void __tsan_read_range(void *p, unsigned long n) { check_access(p, n, false, __builtin_return_address(0)); }
void __tsan_write_range(void *p, unsigned long n) { check_access(p, n, true, __builtin_return_address(0)); }
void __tsan_init(void) {}
void __tsan_func_entry(void *) {}
void __tsan_func_exit(void) {}
void __tsan_vptr_update(void **, void *) {}
void __tsan_vptr_read(void **) {}
}

/* ---- a launch ---- */

int emu_run_kernel(const EmuLaunch &L) {
    rt_init();
    g_kernel_faulted = 0;
    if (getenv("EMU_STATS")) {
        if (!g_stats) {
            g_stats = new std::map<std::string, KStat>;
            atexit(stats_print);
        }
        g_kstat = &(*g_stats)[L.site.kernel];
        g_kstat->launches++;
        g_kstat->threads += (unsigned long long)L.grid.x * L.grid.y * L.grid.z * L.block.x * L.block.y * L.block.z;
    }
    g_launch = &L;
    g_nthreads = L.block.x * L.block.y * L.block.z;
    blockDim = L.block;
    gridDim = L.grid;
    size_t nblocks = (size_t)L.grid.x * L.grid.y * L.grid.z;
    /* Blocks in a random order: a kernel that depends on block order is wrong on the GPU. */
    size_t start = g_order_mode == 2 && nblocks ? g_rng() % nblocks : 0;
    size_t stride = 1;
    if (g_order_mode == 2 && nblocks > 1) {
        stride = 1 + g_rng() % (nblocks - 1);
        while (std::__gcd(stride, nblocks) != 1) stride++;
    }
    for (size_t i = 0; i < nblocks; i++) {
        size_t b = g_order_mode == 1 ? nblocks - 1 - i : (start + i * stride) % nblocks;
        blockIdx.x = (unsigned)(b % L.grid.x);
        blockIdx.y = (unsigned)(b / L.grid.x % L.grid.y);
        blockIdx.z = (unsigned)(b / ((size_t)L.grid.x * L.grid.y));
        smem_block_reset(L.smem);
        g_race_block = g_race_blocks == 0 || i < g_race_blocks;
        g_in_kernel = 1;
        run_block();
        g_in_kernel = 0;
        if (g_kernel_faulted) break;
    }
    hot_reset();
    g_launch = NULL;
    return g_kernel_faulted;
}
