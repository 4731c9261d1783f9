/* tests/cuda_emu/emu_api.cc — the CUDA runtime API of the emulator: one
 * device, its memory, streams and events, with CUDA's ordering rules kept
 * rather than simplified away.
 *
 * Work is queued, not run: a kernel launch, an asynchronous copy or memset,
 * a cuBLASLt matmul goes into its stream's queue and runs only when the host
 * waits for it (stream or event synchronisation, a synchronous copy, a
 * cudaFree, cudaDeviceSynchronize). So a host that reads a pinned buffer
 * before waiting, or rewrites the source of an asynchronous copy before the
 * copy ran, sees what it would on a GPU: the wrong data. The legacy default
 * stream (0) waits for and is waited on by blocking streams; a stream made
 * with cudaStreamNonBlocking is ordered with neither. A copy from pageable
 * host memory is staged at the call (the host may reuse the buffer at once),
 * a copy to pageable memory waits for its stream, as CUDA documents.
 * Streams. Work of different streams runs in a random interleaving that
 * keeps only stream order, cudaStreamWaitEvent on a cudaEventRecord, the
 * legacy stream's barriers and the host's waits (see "streams and events"
 * below), and emu_hazard.cc reports two unordered operations on the same
 * bytes: a missing event fails on every seed.
 *
 * Memory. cudaMalloc returns fresh host memory (the emulated kernels use
 * host pointers) filled with 0xff bytes, NaN as floats, so reading what was
 * never written shows; every allocation is registered for the kernels'
 * access checks, and freeing waits for the device first, as cudaFree does.
 *
 * Faults. A detector that fires inside a kernel stops the program with its
 * report; with EMU_FAULT=sticky it ends the kernel instead and poisons the
 * context as a GPU fault does (cudaErrorIllegalAddress from every later
 * wait), to test how the host reports it. */
#include <cstdarg>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>

#include "emu_internal.h"

/* ---- allocations ---- */

struct Alloc {
    size_t size;
    bool pinned;
};
/* Registries live as long as the process (never destroyed): LeakSanitizer
 * runs after static destructors, and what they hold is still in use then. */
static std::map<uintptr_t, Alloc> &g_allocs = *new std::map<uintptr_t, Alloc>;
static size_t g_device_bytes;
static const size_t DEVICE_TOTAL = (size_t)16 << 30;

void emu_alloc_register(void *p, size_t bytes, bool pinned) { g_allocs[(uintptr_t)p] = {bytes, pinned}; }

int emu_alloc_unregister(void *p, bool pinned) {
    auto it = g_allocs.find((uintptr_t)p);
    if (it == g_allocs.end() || it->second.pinned != pinned) return 0;
    g_allocs.erase(it);
    return 1;
}

bool emu_alloc_find(uintptr_t a, size_t n, uintptr_t *base, size_t *size, bool *pinned) {
    auto it = g_allocs.upper_bound(a);
    if (it == g_allocs.begin()) return false;
    --it;
    if (a + n > it->first + it->second.size) return false;
    *base = it->first, *size = it->second.size, *pinned = it->second.pinned;
    return true;
}

bool emu_alloc_nearest(uintptr_t a, uintptr_t *base, size_t *size) {
    auto it = g_allocs.upper_bound(a);
    if (it == g_allocs.begin()) return false;
    --it;
    *base = it->first, *size = it->second.size;
    return true;
}

/* Where the host hands the device a range: inside one device allocation (or
 * pinned memory, which the device can reach). */
static bool device_range(const void *p, size_t n, bool allow_pinned) {
    uintptr_t base;
    size_t size;
    bool pinned;
    if (!emu_alloc_find((uintptr_t)p, n ? n : 1, &base, &size, &pinned)) return false;
    return allow_pinned || !pinned;
}

static bool pinned_range(const void *p, size_t n) {
    uintptr_t base;
    size_t size;
    bool pinned;
    return emu_alloc_find((uintptr_t)p, n ? n : 1, &base, &size, &pinned) && pinned;
}

/* ---- errors ---- */

static cudaError_t g_last_error = cudaSuccess;
/* A kernel fault (EMU_FAULT=sticky) poisons the context, as on a GPU: every
 * later call that waits returns it, and queued work is dropped. */
static cudaError_t g_sticky = cudaSuccess;

static cudaError_t fail_call(cudaError_t e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "EMU: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    g_last_error = e;
    return e;
}

/* ---- streams and events ----
 * Every queued operation carries the operations it must follow on other
 * streams (an event it waits on; the legacy stream's implicit barriers) and
 * a vector clock (one component per stream ever created) for the race
 * detector. When the host waits for an operation, the emulator runs it and
 * exactly what it is ordered after, choosing at each step at random (seeded
 * by EMU_STREAM_SEED, default 1) among the streams whose next operation is
 * ready; EMU_ORDER=forward runs them in the order they were queued,
 * EMU_ORDER=reverse the latest queued ready one first. Work the host has not
 * waited for, directly or through what it waited for, does not run: a
 * consumer whose event wait is missing reads what its producer has not yet
 * written. */

struct Dep {
    struct EmuStream *stream;
    uint64_t seq;
};

struct Op {
    uint64_t seq;
    std::function<void()> run;
    const char *what;
    std::vector<Dep> deps;
    std::vector<uint64_t> vc;
};

struct EmuStream {
    bool blocking;
    int id;
    std::deque<Op> queue;
    uint64_t last_seq = 0;            /* the last operation queued */
    std::vector<uint64_t> last_vc;    /* its clock */
};

struct EmuEvent {
    EmuStream *stream = nullptr;
    uint64_t seq = 0;     /* the op that completes it */
    std::vector<uint64_t> vc;
    bool recorded = false;
    double when_ms = 0.0; /* host time it completed at */
};

static int g_stream_ids;
static EmuStream g_legacy = {true, g_stream_ids++, {}};
static std::vector<EmuStream *> &g_streams = *new std::vector<EmuStream *>{&g_legacy};
static uint64_t g_seq;
/* Everything the host has waited for: work queued later is ordered after it. */
static std::vector<uint64_t> &g_host_vc = *new std::vector<uint64_t>;

static EmuStream *S(cudaStream_t s) { return s ? (EmuStream *)s : &g_legacy; }

static bool live(const EmuStream *s) { return std::find(g_streams.begin(), g_streams.end(), s) != g_streams.end(); }

static void vc_join(std::vector<uint64_t> &a, const std::vector<uint64_t> &b) {
    if (a.size() < b.size()) a.resize(b.size(), 0);
    for (size_t i = 0; i < b.size(); i++) a[i] = std::max(a[i], b[i]);
}

static double now_ms(void) {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

static std::mt19937 &stream_rng(void) {
    static std::mt19937 *rng;
    if (!rng) {
        const char *e = getenv("EMU_STREAM_SEED");
        rng = new std::mt19937(e && *e ? (unsigned)strtoul(e, NULL, 10) : 1u);
    }
    return *rng;
}

static int order_mode(void) { /* 0 forward, 1 reverse, 2 random */
    static int mode = -1;
    if (mode < 0) {
        const char *o = getenv("EMU_ORDER");
        mode = o && !strcmp(o, "forward") ? 0 : o && !strcmp(o, "reverse") ? 1 : 2;
    }
    return mode;
}

static bool dep_done(const Dep &d) {
    return !live(d.stream) || d.stream->queue.empty() || d.stream->queue.front().seq > d.seq;
}

/* need[stream] = the last op of it that must run for (st, seq) to complete. */
typedef std::vector<std::pair<EmuStream *, uint64_t>> Need;
static void need_add(Need &need, EmuStream *st, uint64_t seq) {
    if (!live(st)) return;
    uint64_t old = 0;
    auto it = std::find_if(need.begin(), need.end(), [&](const auto &p) { return p.first == st; });
    if (it != need.end()) {
        if (it->second >= seq) return;
        old = it->second, it->second = seq;
    } else need.push_back({st, seq});
    for (size_t i = 0; i < st->queue.size() && st->queue[i].seq <= seq; i++)
        if (st->queue[i].seq > old)
            for (const Dep &d : st->queue[i].deps) need_add(need, d.stream, d.seq);
}

static bool nothing_queued(void) {
    for (EmuStream *s : g_streams)
        if (!s->queue.empty()) return false;
    return true;
}

static void run_op(EmuStream *st) {
    Op op = std::move(st->queue.front());
    st->queue.pop_front();
    if (g_sticky != cudaSuccess) return; /* a faulted context runs nothing more */
    emu_hz_begin(st->id, op.seq, &op.vc, op.what);
    op.run();
    emu_hz_end(NULL);
}

/* Runs what `need` names and what that is ordered after, in a random valid
 * order. Re-entrant: an operation may itself run others. */
static void run_need(Need &need) {
    for (;;) {
        EmuStream *pick = nullptr;
        size_t nready = 0;
        uint64_t best = 0;
        for (auto &p : need) {
            EmuStream *s = p.first;
            if (!live(s) || s->queue.empty() || s->queue.front().seq > p.second) continue;
            const Op &f = s->queue.front();
            if (!std::all_of(f.deps.begin(), f.deps.end(), dep_done)) continue;
            nready++;
            int mode = order_mode();
            if (!pick || (mode == 0 && f.seq < best) || (mode == 1 && f.seq > best) ||
                (mode == 2 && stream_rng()() % nready == 0))
                pick = s, best = f.seq;
        }
        if (!pick) break;
        run_op(pick);
    }
    if (nothing_queued()) emu_hz_prune(g_host_vc);
}

static void run_until(EmuStream *st, uint64_t seq) {
    Need need;
    need_add(need, st, seq);
    run_need(need);
}

/* The host waits for (st, seq), whose clock is vc. */
static void host_wait(EmuStream *st, uint64_t seq, const std::vector<uint64_t> &vc) {
    vc_join(g_host_vc, vc);
    run_until(st, seq);
}

static void host_wait_stream(EmuStream *st) { host_wait(st, UINT64_MAX, st->last_vc); }

void emu_flush_all(void) {
    for (EmuStream *s : g_streams) vc_join(g_host_vc, s->last_vc);
    while (!nothing_queued()) { /* an operation may queue more */
        Need need;
        for (EmuStream *s : g_streams) need_add(need, s, UINT64_MAX);
        run_need(need);
    }
}

static void enqueue_op(EmuStream *st, const char *what, std::function<void()> fn, std::vector<Dep> deps,
                       const std::vector<uint64_t> *also) {
    /* The legacy stream waits for every blocking stream and they for it. */
    std::vector<uint64_t> vc = st->last_vc;
    if (st->blocking)
        for (EmuStream *o : g_streams)
            if (o != st && o->blocking && (st == &g_legacy || o == &g_legacy) && o->last_seq) {
                deps.push_back({o, o->last_seq});
                vc_join(vc, o->last_vc);
            }
    vc_join(vc, g_host_vc);
    if (also) vc_join(vc, *also);
    Op op{++g_seq, std::move(fn), what, std::move(deps), std::move(vc)};
    if (op.vc.size() <= (size_t)st->id) op.vc.resize((size_t)st->id + 1, 0);
    op.vc[(size_t)st->id] = op.seq;
    st->last_seq = op.seq;
    st->last_vc = op.vc;
    st->queue.push_back(std::move(op));
}

static void enqueue(cudaStream_t s, const char *what, std::function<void()> fn) {
    enqueue_op(S(s), what, std::move(fn), {}, nullptr);
}

/* ---- launches ---- */

static std::map<const void *, int> &g_func_dyn_smem = *new std::map<const void *, int>;

int emu_func_max_dyn_smem(const void *key) {
    auto it = g_func_dyn_smem.find(key);
    return it == g_func_dyn_smem.end() ? 0 : it->second;
}

extern "C" cudaError_t emu_func_set_attribute(const void *func, enum cudaFuncAttribute attr, int value) {
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize)
        return fail_call(cudaErrorNotSupported, "cudaFuncSetAttribute: attribute %d is not emulated", (int)attr);
    if (value < 0 || (unsigned)value > EMU_SMEM_OPTIN)
        return fail_call(cudaErrorInvalidValue,
                         "cudaFuncSetAttribute: %d bytes of dynamic shared memory exceed sm_80's %u per block", value,
                         EMU_SMEM_OPTIN);
    g_func_dyn_smem[func] = value;
    return cudaSuccess;
}

void emu_launch_impl(const EmuSite &site, const void *key, dim3 g, dim3 b, size_t smem, cudaStream_t stream,
                     const void *closure, size_t size, void (*thunk)(void *)) {
    const char *k = site.kernel;
    unsigned long long nt = (unsigned long long)b.x * b.y * b.z;
    if (!g.x || !g.y || !g.z || !b.x || !b.y || !b.z) {
        fail_call(cudaErrorInvalidConfiguration, "launch of %s at %s:%d: a zero grid or block dimension (%ux%ux%u, %ux%ux%u)",
                  k, site.file, site.line, g.x, g.y, g.z, b.x, b.y, b.z);
        return;
    }
    if (nt > EMU_MAX_THREADS || b.x > 1024 || b.y > 1024 || b.z > 64) {
        fail_call(cudaErrorInvalidConfiguration,
                  "launch of %s at %s:%d: block %ux%ux%u is above the limits (1024 threads; x, y <= 1024, z <= 64)", k,
                  site.file, site.line, b.x, b.y, b.z);
        return;
    }
    if (g.x > 2147483647u || g.y > 65535 || g.z > 65535) {
        fail_call(cudaErrorInvalidConfiguration,
                  "launch of %s at %s:%d: grid %ux%ux%u is above the limits (x < 2^31, y, z <= 65535)", k, site.file,
                  site.line, g.x, g.y, g.z);
        return;
    }
    int dyn_max = key ? emu_func_max_dyn_smem(key) : 0;
    size_t allowed = dyn_max ? (size_t)dyn_max : EMU_SMEM_DEFAULT;
    if (smem > allowed) {
        fail_call(cudaErrorInvalidValue,
                  "launch of %s at %s:%d: %zu bytes of dynamic shared memory, above %s (%zu bytes)", k, site.file,
                  site.line, smem,
                  dyn_max ? "the kernel's cudaFuncAttributeMaxDynamicSharedMemorySize"
                          : "the 48 KiB default: the kernel needs cudaFuncSetAttribute(MaxDynamicSharedMemorySize)",
                  allowed);
        return;
    }
    if (size > EMU_MAX_PARAM_BYTES) {
        fail_call(cudaErrorInvalidValue, "launch of %s at %s:%d: %zu bytes of kernel parameters (at most %u)", k,
                  site.file, site.line, size, EMU_MAX_PARAM_BYTES);
        return;
    }
    auto L = std::make_shared<EmuLaunch>();
    L->site = site;
    L->key = key;
    L->grid = g, L->block = b, L->smem = smem, L->max_dyn_smem = dyn_max;
    L->closure.assign((const unsigned char *)closure, (const unsigned char *)closure + size);
    L->thunk = thunk;
    enqueue(stream, site.kernel, [L]() {
        if (g_sticky == cudaSuccess && emu_run_kernel(*L)) g_sticky = g_last_error = cudaErrorIllegalAddress;
    });
}

/* ---- device ---- */

extern "C" {

cudaError_t cudaGetDeviceCount(int *count) {
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    if (device != 0) return fail_call(cudaErrorInvalidDevice, "cudaSetDevice(%d): the emulator has one device", device);
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device) {
    *device = 0;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int device) {
    if (device != 0) return fail_call(cudaErrorInvalidDevice, "cudaGetDeviceProperties(%d)", device);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "CUDA emulator (CPU)");
    p->totalGlobalMem = DEVICE_TOTAL;
    p->sharedMemPerBlock = EMU_SMEM_DEFAULT;
    p->sharedMemPerBlockOptin = EMU_SMEM_OPTIN;
    p->regsPerBlock = 65536;
    p->warpSize = 32;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = 1024, p->maxThreadsDim[1] = 1024, p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 2147483647, p->maxGridSize[1] = 65535, p->maxGridSize[2] = 65535;
    p->major = 8, p->minor = 0; /* the limits it enforces are sm_80's */
    p->multiProcessorCount = 1;
    p->l2CacheSize = 0;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
    emu_flush_all();
    return g_sticky;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    *total_bytes = DEVICE_TOTAL;
    *free_bytes = DEVICE_TOTAL > g_device_bytes ? DEVICE_TOTAL - g_device_bytes : 0;
    return cudaSuccess;
}

/* ---- memory ---- */

cudaError_t cudaMalloc(void **ptr, size_t bytes) {
    *ptr = NULL;
    if (bytes == 0) return cudaSuccess;
    if (bytes > DEVICE_TOTAL - g_device_bytes)
        return fail_call(cudaErrorMemoryAllocation, "cudaMalloc(%zu): out of the emulated device's 16 GiB", bytes);
    void *p = malloc(bytes);
    if (!p) return fail_call(cudaErrorMemoryAllocation, "cudaMalloc(%zu): host malloc failed", bytes);
    memset(p, 0xff, bytes);
    emu_alloc_register(p, bytes, false);
    g_device_bytes += bytes;
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaFree(void *ptr) {
    if (!ptr) return cudaSuccess;
    emu_flush_all(); /* cudaFree synchronises the device */
    uintptr_t base;
    size_t size;
    bool pinned;
    if (!emu_alloc_find((uintptr_t)ptr, 1, &base, &size, &pinned) || base != (uintptr_t)ptr || pinned)
        return fail_call(cudaErrorInvalidDevicePointer, "cudaFree(%p): not a pointer cudaMalloc returned", ptr);
    emu_alloc_unregister(ptr, false);
    emu_hz_forget((uintptr_t)ptr);
    g_device_bytes -= size;
    free(ptr);
    return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **ptr, size_t bytes, unsigned int flags) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) return fail_call(cudaErrorMemoryAllocation, "cudaHostAlloc(%zu) failed", bytes);
    memset(p, 0xff, bytes);
    emu_alloc_register(p, bytes ? bytes : 1, true);
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **ptr, size_t bytes) { return cudaHostAlloc(ptr, bytes, 0); }

cudaError_t cudaFreeHost(void *ptr) {
    if (!ptr) return cudaSuccess;
    emu_flush_all();
    if (!emu_alloc_unregister(ptr, true))
        return fail_call(cudaErrorInvalidValue, "cudaFreeHost(%p): not a pointer cudaHostAlloc returned", ptr);
    emu_hz_forget((uintptr_t)ptr);
    free(ptr);
    return cudaSuccess;
}

/* ---- copies ---- */

static cudaError_t check_copy(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind, const char *what) {
    bool ok_src = true, ok_dst = true;
    if (kind == cudaMemcpyHostToDevice) ok_dst = device_range(dst, n, true);
    else if (kind == cudaMemcpyDeviceToHost) ok_src = device_range(src, n, true);
    else if (kind == cudaMemcpyDeviceToDevice) ok_src = device_range(src, n, true), ok_dst = device_range(dst, n, true);
    else if (kind != cudaMemcpyHostToHost)
        return fail_call(cudaErrorInvalidMemcpyDirection, "%s: copy kind %d is not emulated", what, (int)kind);
    if (!ok_src)
        emu_fail("%s(%p <- %p, %zu bytes): the source is not inside one device allocation", what, dst, src, n);
    if (!ok_dst)
        emu_fail("%s(%p <- %p, %zu bytes): the destination is not inside one device allocation", what, dst, src, n);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind, cudaStream_t stream) {
    cudaError_t e = check_copy(dst, src, n, kind, "cudaMemcpyAsync");
    if (e != cudaSuccess || n == 0) return e;
    if (kind == cudaMemcpyHostToDevice && !pinned_range(src, n)) {
        /* Pageable source: staged now, so the host may reuse it at once. */
        auto staged = std::make_shared<std::vector<unsigned char>>((const unsigned char *)src,
                                                                   (const unsigned char *)src + n);
        enqueue(stream, "cudaMemcpyAsync", [dst, staged]() {
            emu_hz_note_range(dst, staged->size(), true);
            memcpy(dst, staged->data(), staged->size());
        });
        return cudaSuccess;
    }
    enqueue(stream, "cudaMemcpyAsync", [dst, src, n]() {
        emu_hz_note_range(src, n, false);
        emu_hz_note_range(dst, n, true);
        memmove(dst, src, n);
    });
    if (kind == cudaMemcpyDeviceToHost && !pinned_range(dst, n)) host_wait_stream(S(stream)); /* pageable: synchronous */
    return g_sticky;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind) {
    cudaError_t e = cudaMemcpyAsync(dst, src, n, kind, 0);
    if (e == cudaSuccess) host_wait_stream(&g_legacy);
    return e != cudaSuccess ? e : g_sticky;
}

cudaError_t cudaMemsetAsync(void *dst, int value, size_t n, cudaStream_t stream) {
    if (n && !device_range(dst, n, false))
        emu_fail("cudaMemsetAsync(%p, %d, %zu): not inside one device allocation", dst, value, n);
    if (n)
        enqueue(stream, "cudaMemsetAsync", [dst, value, n]() {
            emu_hz_note_range(dst, n, true);
            memset(dst, value, n);
        });
    return cudaSuccess;
}

cudaError_t cudaMemset(void *dst, int value, size_t n) {
    cudaError_t e = cudaMemsetAsync(dst, value, n, 0);
    host_wait_stream(&g_legacy);
    return e;
}

/* ---- streams ---- */

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags) {
    EmuStream *s = new EmuStream{!(flags & cudaStreamNonBlocking), g_stream_ids++, {}};
    g_streams.push_back(s);
    *stream = (cudaStream_t)s;
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    EmuStream *s = (EmuStream *)stream;
    auto it = std::find(g_streams.begin(), g_streams.end(), s);
    if (!s || it == g_streams.end()) return fail_call(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: bad stream");
    host_wait_stream(s); /* queued work still completes */
    g_streams.erase(it);
    delete s;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    EmuStream *s = S(stream);
    if (std::find(g_streams.begin(), g_streams.end(), s) == g_streams.end())
        return fail_call(cudaErrorInvalidResourceHandle, "cudaStreamSynchronize: bad stream");
    host_wait_stream(s);
    return g_sticky;
}

/* ---- events ---- */

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags) {
    *event = (cudaEvent_t) new EmuEvent();
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    EmuEvent *e = (EmuEvent *)event;
    if (!e) return fail_call(cudaErrorInvalidResourceHandle, "cudaEventRecord: null event");
    e->stream = S(stream);
    e->recorded = true;
    enqueue(stream, "cudaEventRecord", [e]() { e->when_ms = now_ms(); });
    e->seq = g_seq;
    e->vc = e->stream->last_vc;
    return cudaSuccess;
}

/* Later work of the stream waits for the event's last record (at the time
 * of this call); an event never recorded is no wait, as in CUDA. */
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
    EmuEvent *e = (EmuEvent *)event;
    if (!e) return fail_call(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: null event");
    if (!live(S(stream))) return fail_call(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: bad stream");
    if (flags) return fail_call(cudaErrorInvalidValue, "cudaStreamWaitEvent: flags %u (only 0 is emulated)", flags);
    if (!e->recorded) return cudaSuccess;
    enqueue_op(S(stream), "cudaStreamWaitEvent", [] {}, {{e->stream, e->seq}}, &e->vc);
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    EmuEvent *e = (EmuEvent *)event;
    if (!e) return fail_call(cudaErrorInvalidResourceHandle, "cudaEventSynchronize: null event");
    if (e->recorded) host_wait(e->stream, e->seq, e->vc); /* never recorded: returns at once, as CUDA's does */
    return g_sticky;
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
    EmuEvent *a = (EmuEvent *)start, *b = (EmuEvent *)end;
    if (!a || !b || !a->recorded || !b->recorded)
        return fail_call(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: an event was not recorded");
    host_wait(a->stream, a->seq, a->vc);
    host_wait(b->stream, b->seq, b->vc);
    *ms = (float)(b->when_ms - a->when_ms);
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
    delete (EmuEvent *)event;
    return cudaSuccess;
}

/* ---- errors ---- */

cudaError_t cudaGetLastError(void) {
    cudaError_t e = g_last_error;
    g_last_error = g_sticky; /* a sticky error is never cleared */
    return e;
}

cudaError_t cudaPeekAtLastError(void) { return g_last_error; }

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    }
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    default: return cudaGetErrorName(e);
    }
}

} /* extern "C" */

/* For emu_lt.cc and emu_nccl.cc: queue work, and run a stream up to now. */
void emu_enqueue(cudaStream_t s, const char *what, std::function<void()> fn) { enqueue(s, what, std::move(fn)); }
void emu_stream_flush(cudaStream_t s) { run_until(S(s), UINT64_MAX); }
bool emu_device_range(const void *p, size_t n) { return device_range(p, n, true); }
