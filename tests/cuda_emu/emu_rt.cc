/* tests/cuda_emu/emu_rt.cc — the fiber scheduler behind emu_rt.h: each
 * thread block is a set of ucontext fibers (warps of 32); a round runs every
 * runnable fiber up to its next barrier, then releases warps whose live
 * fibers all wait at a shuffle, else the block when all wait at
 * __syncthreads; anything else is a divergent barrier and aborts.
 * EMU order: 0 forward, 1 reverse, 2 random (default). */
#include "emu_rt.h"
#include <ucontext.h>
#include <vector>
#include <random>
emu_uint3 threadIdx, blockIdx, blockDim, gridDim;
void *emu_dyn_smem;
int emu_cur;
double emu_slot[4096];
int emu_islot[4096];
int emu_order_mode = 2; /* 0 forward, 1 reverse, 2 random */
static std::mt19937 rng(1);
static const size_t STK = 256 * 1024;
static std::vector<char> stacks;
static ucontext_t main_ctx;
static ucontext_t ctx[1024];
static int state[1024]; /* 0 runnable, 1 block barrier, 2 warp barrier, 3 done */
static int nthr;
static const std::function<void()> *body;
static unsigned bdx, bdy;
static void entry() { (*body)(); state[emu_cur] = 3; emu_islot[emu_cur] = 0; swapcontext(&ctx[emu_cur], &main_ctx); }
void emu_yield(int s) { state[emu_cur] = s; swapcontext(&ctx[emu_cur], &main_ctx); }
static void run_block(const std::function<void()> &f, int n) {
    nthr = n; body = &f;
    if (stacks.size() < (size_t)n * STK) stacks.resize((size_t)n * STK);
    for (int t = 0; t < n; t++) {
        getcontext(&ctx[t]); ctx[t].uc_stack.ss_sp = &stacks[(size_t)t * STK]; ctx[t].uc_stack.ss_size = STK;
        ctx[t].uc_link = &main_ctx; makecontext(&ctx[t], entry, 0); state[t] = 0; emu_islot[t] = 0;
    }
    std::vector<int> order(n);
    for (int t = 0; t < n; t++) order[t] = t;
    for (;;) {
        if (emu_order_mode == 1) std::reverse(order.begin(), order.end());
        else if (emu_order_mode == 2) std::shuffle(order.begin(), order.end(), rng);
        for (int i = 0; i < n; i++) {
            int t = order[i];
            if (state[t] != 0) continue;
            emu_cur = t;
            threadIdx.x = t % bdx; threadIdx.y = t / bdx % bdy; threadIdx.z = t / (bdx * bdy);
            swapcontext(&main_ctx, &ctx[t]);
        }
        int done = 0, inblk = 0, released = 0;
        for (int w = 0; w < (n + 31) / 32; w++) {
            int all2 = 1, any2 = 0;
            for (int t = w * 32; t < min(n, w * 32 + 32); t++) {
                if (state[t] == 3) continue;
                if (state[t] == 2) any2 = 1; else all2 = 0;
            }
            if (any2 && all2) { for (int t = w * 32; t < min(n, w * 32 + 32); t++) if (state[t] == 2) state[t] = 0; released = 1; }
            else if (any2) { fprintf(stderr, "EMU DEADLOCK: warp %d diverged at a shuffle (block %u,%u,%u)\n", w, blockIdx.x, blockIdx.y, blockIdx.z); abort(); }
        }
        if (released) continue;
        for (int t = 0; t < n; t++) done += state[t] == 3, inblk += state[t] == 1;
        if (done == n) break;
        if (done + inblk == n) { for (int t = 0; t < n; t++) if (state[t] == 1) state[t] = 0; continue; }
        fprintf(stderr, "EMU DEADLOCK in block %u,%u,%u\n", blockIdx.x, blockIdx.y, blockIdx.z); abort();
    }
}
void emu_launch_impl(dim3 g, dim3 b, size_t smem, const std::function<void()> &f) {
    int n = b.x * b.y * b.z;
    if (n > 1024 || n < 1) { fprintf(stderr, "EMU: bad block %d\n", n); abort(); }
    if (smem > 227 * 1024) { fprintf(stderr, "EMU: smem %zu too big\n", smem); abort(); }
    if (g.y > 65535 || g.z > 65535) { fprintf(stderr, "EMU: grid y/z too big\n"); abort(); }
    blockDim = {b.x, b.y, b.z}; gridDim = {g.x, g.y, g.z}; bdx = b.x; bdy = b.y;
    std::vector<unsigned char> sm(smem + 16, 0xff);
    for (unsigned z = 0; z < g.z; z++) for (unsigned y = 0; y < g.y; y++) for (unsigned x = 0; x < g.x; x++) {
        blockIdx = {x, y, z};
        memset(sm.data(), 0xff, sm.size());
        emu_dyn_smem = sm.data();
        run_block(f, n);
    }
}
