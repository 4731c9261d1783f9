/* tests/cuda_emu/emu_tc.cc — the warp-level matrix instructions of
 * kernels/cuda/tc.cuh on the CPU emulator: mma.sync m16n8k16 (bf16 in, fp32
 * accumulate), ldmatrix m8n8 (x4, x2, .trans) and cp.async (16 bytes, zfill,
 * commit_group, wait_group), with the fragment layouts of the PTX ISA
 * (docs/cuda_emu.md: the tables and their source).
 *
 * mma and ldmatrix are warp collectives (emu_rt.cc's emu_warp_collective):
 * the runtime releases them only when all 32 lanes wait at the same one, and
 * one lane then computes the whole warp's result from the 32 lanes' operands.
 * ldmatrix reads each 16-byte row for the lane that gave its address, through
 * the emulator's access checks (shared memory, inside an array, no cp.async in
 * flight, and the race detector, which records the read as that lane's).
 *
 * cp.async is per thread, as in PTX. At issue the source is checked (global
 * memory, in bounds for the bytes read, 16-byte aligned) and read, the
 * destination is checked (shared, 16-byte aligned, in bounds), recorded as a
 * write for the race detector, filled with poison and marked in flight; the
 * data lands (written, recorded again as a write) at the issuing thread's
 * first cp.async.wait_group that completes the copy's group. Reading or
 * writing the destination before then is reported by the in-flight check.
 *
 * Arithmetic of mma: every product of two bf16 values is exact in fp32 (8-bit
 * significands, a 16-bit product), barring underflow below fp32's normal range;
 * the emulator adds them to C in fp32, one rounding (to nearest even) per
 * addition, in k order 0..15. The PTX ISA does not specify the order or the
 * internal rounding of the hardware's accumulation (only that it is at least
 * fp32), so a GPU's result may differ in the last bits: tests compare with a
 * tolerance (docs/cuda_emu.md). */
#include <cmath>
#include <vector>

#include "emu_internal.h"
#include "include/emu_tc.h"

static unsigned cur_thread(void) { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }

static float bf16_lo(uint32_t v) {
    uint32_t u = v << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static float bf16_hi(uint32_t v) {
    uint32_t u = v & 0xffff0000u;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 ----
 * groupID g = lane / 4, t = lane % 4 (PTX ISA, "Matrix fragments for
 * mma.m16n8k16 with floating point type"):
 *   A register i (i = 0..3): row g + 8 * (i % 2), columns 2t + 8 * (i / 2) + {0, 1}
 *   B register i (i = 0..1): rows 2t + 8 * i + {0, 1}, column g
 *   C, D element i (0..3):   row g + 8 * (i / 2), column 2t + i % 2 */

struct MmaArgs {
    float *d;
    const uint32_t *a, *b;
    const float *c;
};

static void mma_run(unsigned, void *const args[32], const void *) {
    float A[16][16], B[16][8], C[32][4];
    for (unsigned l = 0; l < 32; l++) {
        const MmaArgs &m = *(const MmaArgs *)args[l];
        unsigned g = l / 4, t = l % 4;
        for (int i = 0; i < 4; i++) {
            int row = g + 8 * (i % 2), col = 2 * t + 8 * (i / 2);
            A[row][col] = bf16_lo(m.a[i]);
            A[row][col + 1] = bf16_hi(m.a[i]);
        }
        for (int i = 0; i < 2; i++) {
            int row = 2 * t + 8 * i;
            B[row][g] = bf16_lo(m.b[i]);
            B[row + 1][g] = bf16_hi(m.b[i]);
        }
        for (int i = 0; i < 4; i++) C[l][i] = m.c[i]; /* before any d is written: d may be c */
    }
    for (unsigned l = 0; l < 32; l++) {
        const MmaArgs &m = *(const MmaArgs *)args[l];
        unsigned g = l / 4, t = l % 4;
        for (int i = 0; i < 4; i++) {
            int row = g + 8 * (i / 2), col = 2 * t + i % 2;
            float s = C[l][i];
            for (int k = 0; k < 16; k++) {
                float p = A[row][k] * B[k][col]; /* exact */
                s = s + p;
            }
            m.d[i] = s;
        }
    }
}

static const EmuCollective MMA = {"mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (tc_mma_16816)", mma_run};

void tc_mma_16816(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    MmaArgs m = {d, a, b, c};
    emu_warp_collective(&MMA, &m, __builtin_return_address(0));
}

/* ---- ldmatrix.sync.aligned.m8n8.{x4,x2}[.trans].shared.b16 ----
 * Lane 8j + r gives the address of row r of matrix j (j < 4 for .x4, < 2 for
 * .x2; the other lanes' addresses are not used); each row is 8 b16 values,
 * 16 bytes, 16-byte aligned. Register j of lane l holds matrix j's elements
 * (row l / 4, columns 2 (l % 4) + {0, 1}), or with .trans (rows 2 (l % 4) +
 * {0, 1}, column l / 4), the first in the low half (PTX ISA, "ldmatrix"). */

struct LdmArgs {
    uint32_t *r;
    const void *p;
};

template <int NMAT, int TRANS> static void ldmatrix_run(unsigned t0, void *const args[32], const void *pc);

template <int NMAT, int TRANS> struct Ldm {
    static const EmuCollective op;
};
template <> const EmuCollective Ldm<4, 0>::op = {"ldmatrix.sync.aligned.m8n8.x4.shared.b16 (tc_ldmatrix_x4)",
                                                 ldmatrix_run<4, 0>};
template <> const EmuCollective Ldm<4, 1>::op = {
    "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 (tc_ldmatrix_x4_trans)", ldmatrix_run<4, 1>};
template <> const EmuCollective Ldm<2, 0>::op = {"ldmatrix.sync.aligned.m8n8.x2.shared.b16 (tc_ldmatrix_x2)",
                                                 ldmatrix_run<2, 0>};
template <> const EmuCollective Ldm<2, 1>::op = {
    "ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 (tc_ldmatrix_x2_trans)", ldmatrix_run<2, 1>};

template <int NMAT, int TRANS> static void ldmatrix_run(unsigned t0, void *const args[32], const void *pc) {
    const char *name = Ldm<NMAT, TRANS>::op.name;
    uint16_t M[NMAT][8][8];
    for (unsigned l = 0; l < 8 * NMAT; l++) {
        const void *p = ((const LdmArgs *)args[l])->p;
        if ((uintptr_t)p % 16)
            emu_lane_fail(t0 + l, "%s: lane %u's row address %p is not 16-byte aligned, at %s", name, l, p,
                          emu_symbolize(pc).c_str());
        emu_lane_access(t0 + l, p, 16, false, true, name, pc);
        memcpy(M[l / 8][l % 8], p, 16);
    }
    for (unsigned l = 0; l < 32; l++) {
        uint32_t *r = ((const LdmArgs *)args[l])->r;
        unsigned g = l / 4, c = 2 * (l % 4);
        for (int j = 0; j < NMAT; j++) {
            uint16_t lo = TRANS ? M[j][c][g] : M[j][g][c], hi = TRANS ? M[j][c + 1][g] : M[j][g][c + 1];
            r[j] = (uint32_t)lo | (uint32_t)hi << 16;
        }
    }
}

template <int NMAT, int TRANS> static void ldmatrix(uint32_t *r, const void *p, const void *pc) {
    LdmArgs a = {r, p};
    emu_warp_collective(&Ldm<NMAT, TRANS>::op, &a, pc);
}
void tc_ldmatrix_x4(uint32_t r[4], const void *p) { ldmatrix<4, 0>(r, p, __builtin_return_address(0)); }
void tc_ldmatrix_x4_trans(uint32_t r[4], const void *p) { ldmatrix<4, 1>(r, p, __builtin_return_address(0)); }
void tc_ldmatrix_x2(uint32_t r[2], const void *p) { ldmatrix<2, 0>(r, p, __builtin_return_address(0)); }
void tc_ldmatrix_x2_trans(uint32_t r[2], const void *p) { ldmatrix<2, 1>(r, p, __builtin_return_address(0)); }

/* ---- cp.async ---- */

struct Copy {
    unsigned char *dst;
    unsigned group; /* the thread's group count when issued: the group it joins at the next commit */
    const void *pc;
    unsigned char data[16];
};
struct AsyncState {
    unsigned open; /* committed groups so far */
    std::vector<Copy> pending;
};
static AsyncState g_async[EMU_MAX_THREADS];

void emu_tc_block_start(unsigned nthreads) {
    for (unsigned t = 0; t < nthreads; t++) {
        g_async[t].open = 0;
        g_async[t].pending.clear();
    }
}

static void cp_async(void *dst, const void *src, int n, const char *name, const void *pc) {
    unsigned t = cur_thread();
    if (n < 0 || n > 16)
        emu_fail("%s: source size %d is outside 0..16 bytes, at %s", name, n, emu_symbolize(pc).c_str());
    if ((uintptr_t)dst % 16 || (uintptr_t)src % 16)
        emu_fail("%s: the %s %p is not 16-byte aligned, at %s", name, (uintptr_t)dst % 16 ? "destination" : "source",
                 (uintptr_t)dst % 16 ? dst : src, emu_symbolize(pc).c_str());
    Copy c;
    c.dst = (unsigned char *)dst, c.group = g_async[t].open, c.pc = pc;
    memset(c.data, 0, 16);
    if (n > 0) {
        emu_lane_access(t, src, (size_t)n, false, false, name, pc);
        memcpy(c.data, src, (size_t)n);
    }
    emu_lane_access(t, dst, 16, true, true, name, pc);
    memset(dst, 0xff, 16); /* poison until it lands */
    emu_smem_inflight(dst, true, pc);
    g_async[t].pending.push_back(c);
}

void tc_cp_async_16(void *dst, const void *src) {
    cp_async(dst, src, 16, "cp.async.cg.shared.global (tc_cp_async_16)", __builtin_return_address(0));
}

void tc_cp_async_16_zfill(void *dst, const void *src, int n) {
    cp_async(dst, src, n, "cp.async.cg.shared.global with src-size (tc_cp_async_16_zfill)",
             __builtin_return_address(0));
}

void tc_cp_async_commit(void) { g_async[cur_thread()].open++; }

void emu_cp_async_wait(int n) {
    unsigned t = cur_thread();
    AsyncState &s = g_async[t];
    /* Complete every group but the n most recent committed ones (and not the
     * open one): land those copies in issue order, keep the rest in place. */
    size_t kept = 0;
    for (size_t i = 0; i < s.pending.size(); i++) {
        const Copy &c = s.pending[i];
        if (c.group + (unsigned)n >= s.open) {
            s.pending[kept++] = c;
            continue;
        }
        emu_smem_inflight(c.dst, false, c.pc);
        emu_lane_access(t, c.dst, 16, true, true, "cp.async (landing)", c.pc);
        memcpy(c.dst, c.data, 16);
    }
    s.pending.resize(kept);
}
