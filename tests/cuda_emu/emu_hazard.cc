/* tests/cuda_emu/emu_hazard.cc — the cross-stream race detector: two pieces
 * of queued work on different streams that touch the same device bytes, at
 * least one writing, with no event or synchronisation ordering them, are
 * reported, whatever order the emulator happened to run them in.
 *
 * Why a detector and not only a random order: a missing cudaStreamWaitEvent
 * gives a wrong result only in the interleavings where the consumer runs
 * first; this names the two operations in every interleaving, so a test
 * fails on every seed, and says where.
 *
 * Ordering is a vector clock per operation (emu_api.cc computes it: its
 * stream's previous work, the events it waits on, the legacy stream's
 * implicit barriers, and everything the host has waited for before queuing
 * it). Each operation reports, per device allocation it touched, the span
 * of bytes it read and the span it wrote (a kernel's accesses through the
 * memory checks of emu_rt.cc; copies, memsets, cuBLASLt and NCCL their
 * arguments). A span is a hull: a kernel that reads bytes 0-3 and 96-99
 * "reads" 0-99, which can report a race between operations whose exact
 * bytes are disjoint but interleaved; the project's streams hand each other
 * contiguous buffers and buckets, where the hull is exact.
 *
 * History per allocation: the spans of operations the host has not yet
 * waited for (later work is ordered after what the host waited for), at most
 * HISTORY per allocation (the oldest dropped: a missed report, never a
 * false one). When no work is queued, what the host has waited for is
 * forgotten: everything queued later is ordered after it. */
#include <algorithm>
#include <map>
#include <vector>

#include "emu_internal.h"

namespace {

struct Entry {
    int stream;
    uint64_t seq; /* the operation's own clock component */
    uintptr_t lo, hi;
    bool write;
    std::string what;
};

const size_t HISTORY = 512;

std::map<uintptr_t, std::vector<Entry>> &g_hist = *new std::map<uintptr_t, std::vector<Entry>>;

struct Span {
    uintptr_t base, lo, hi;
    bool write;
};

/* The operation running now (set by emu_api.cc around each op). */
struct Current {
    bool on = false;
    int stream;
    uint64_t seq;
    const std::vector<uint64_t> *vc;
    const char *what;
    std::vector<Span> spans;
} g_cur;

bool ordered_before(const Entry &e, const std::vector<uint64_t> &vc) {
    return (size_t)e.stream < vc.size() && e.seq <= vc[(size_t)e.stream];
}

} // namespace

void emu_hz_begin(int stream, uint64_t seq, const std::vector<uint64_t> *vc, const char *what) {
    g_cur.on = true;
    g_cur.stream = stream, g_cur.seq = seq, g_cur.vc = vc, g_cur.what = what;
    g_cur.spans.clear();
}

void emu_hz_note(uintptr_t base, uintptr_t lo, uintptr_t hi, bool write) {
    if (!g_cur.on || hi <= lo) return;
    for (Span &s : g_cur.spans)
        if (s.base == base && s.write == write) {
            s.lo = std::min(s.lo, lo), s.hi = std::max(s.hi, hi);
            return;
        }
    g_cur.spans.push_back({base, lo, hi, write});
}

void emu_hz_note_range(const void *p, size_t n, bool write) {
    uintptr_t base;
    size_t size;
    bool pinned;
    if (g_cur.on && n && emu_alloc_find((uintptr_t)p, n, &base, &size, &pinned))
        emu_hz_note(base, (uintptr_t)p, (uintptr_t)p + n, write);
}

void emu_hz_end(const char *detail) {
    if (!g_cur.on) return;
    g_cur.on = false;
    std::string what = detail && *detail ? std::string(g_cur.what) + " " + detail : std::string(g_cur.what);
    for (const Span &s : g_cur.spans) {
        std::vector<Entry> &h = g_hist[s.base];
        for (const Entry &e : h) {
            if (e.stream == g_cur.stream || !(e.write || s.write) || e.hi <= s.lo || s.hi <= e.lo) continue;
            if (ordered_before(e, *g_cur.vc)) continue;
            uintptr_t lo = std::max(e.lo, s.lo);
            emu_fail("cross-stream race on the device allocation at %p (bytes %zu-%zu): %s (%s, stream %d) and %s "
                     "(%s, stream %d) are not ordered by an event, stream order or a synchronisation; on a GPU "
                     "they may run in either order or at once",
                     (void *)s.base, (size_t)(lo - s.base), (size_t)(std::min(e.hi, s.hi) - s.base), e.what.c_str(),
                     e.write ? "writes" : "reads", e.stream, what.c_str(), s.write ? "writes" : "reads",
                     g_cur.stream);
        }
        /* An earlier span of this stream inside this one is dropped: an
         * operation unordered with it is unordered with this one too, unless
         * ordered before this one (then a race is missed, never invented). */
        h.erase(std::remove_if(h.begin(), h.end(),
                               [&](const Entry &e) {
                                   return e.stream == g_cur.stream && (s.write || !e.write) && s.lo <= e.lo &&
                                          e.hi <= s.hi;
                               }),
                h.end());
        if (h.size() >= HISTORY) h.erase(h.begin());
        h.push_back({g_cur.stream, g_cur.seq, s.lo, s.hi, s.write, what});
    }
}

void emu_hz_prune(const std::vector<uint64_t> &host_vc) {
    for (auto it = g_hist.begin(); it != g_hist.end();) {
        std::vector<Entry> &h = it->second;
        h.erase(std::remove_if(h.begin(), h.end(), [&](const Entry &e) { return ordered_before(e, host_vc); }),
                h.end());
        it = h.empty() ? g_hist.erase(it) : std::next(it);
    }
}

void emu_hz_forget(uintptr_t base) { g_hist.erase(base); }
