/* tests/cuda_emu/emu_tc_test.cu — the emulator's warp-level matrix
 * instructions (kernels/cuda/tc.cuh on emu_tc.cc) against a reference, and
 * each of their detectors on a deliberately broken kernel, in the style of
 * emu_detect.cu (driver: emu_cases.h; every case is its own ctest).
 *
 * The product cases run a small GEMM, D = A B + C (32 x 16, k = 48 in three
 * steps of 16), the way the attention kernels do: the three k-steps are
 * copied global -> shared with cp.async in three commit groups (partial rows
 * and columns zero-filled: 29 x 44 times 44 x 13 valid, the rest of each
 * buffer is NaN, so a copy of one byte too many shows), each step waits for
 * its group, loads A and B fragments with ldmatrix (plain and .trans, x4 and
 * x2) and issues mma.sync. The emulator adds the exact bf16 products in fp32
 * in k order, so the reference doing the same must agree to the bit; a
 * double-precision reference must agree within the bound a GPU is held to. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "kernels/cuda/tc.cuh"
#include "tests/cuda_emu/emu_cases.h"

enum {
    TM = 32, TN = 16, TK = 48, /* the padded problem: 2 warps x 16 rows, 2 n-tiles of 8, 3 k-steps of 16 */
    VM = 29, VN = 13, VK = 44, /* the valid part */
    THREADS = 64,
};

/* Where A and B are in global and shared memory, and how their fragments load. */
enum { A_ROWS = 0, A_KMAJOR = 1 };                       /* A[m][k] (ldmatrix x4) or A^T[k][m] (x4.trans) */
enum { B_NMAJOR_X2, B_KMAJOR_X4T, B_NMAJOR_X4, B_KMAJOR_X2T }; /* B^T[n][k] (x2, x4) or B[k][n] (.trans) */
/* How the fragments are loaded: with ldmatrix, or by plain loads from shared
 * memory in the PTX ISA's layout; and the deliberate break of each: B loaded
 * without the .trans its k-major layout needs, fragments in a naive layout. */
enum { LOAD_LDMATRIX, LOAD_DIRECT, BREAK_NO_TRANS, BREAK_LAYOUT };

/* Copies rows [r0, r1) and columns [c0, c1) (multiples of 8) of a global
 * matrix (valid rows x cols, leading dimension ld) into a shared tile of
 * leading dimension lds, 16 bytes per cp.async, zero-filling what is not valid. */
__device__ void copy_part(uint16_t *s, int lds, const uint16_t *g, int ld, int rows, int cols, int r0, int r1, int c0,
                          int c1) {
    int per_row = (c1 - c0) / 8;
    for (int i = threadIdx.x; i < (r1 - r0) * per_row; i += blockDim.x) {
        int r = r0 + i / per_row, c = c0 + 8 * (i % per_row);
        int n = r < rows ? 2 * min(max(cols - c, 0), 8) : 0;
        tc_cp_async_16_zfill(&s[r * lds + c], n ? &g[r * ld + c] : g, n);
    }
}

__device__ void wait_for_step(int step) {
    if (step == 0) tc_cp_async_wait<2>();
    else if (step == 1) tc_cp_async_wait<1>();
    else tc_cp_async_wait<0>();
}

template <int AL, int BL, int LOAD>
__global__ void k_gemm(float *out, const uint16_t *ga, const uint16_t *gb, const float *c0) {
    const int LDA = AL == A_ROWS ? TK + 8 : TM + 8;                     /* shared leading dimensions: */
    const int LDB = BL == B_NMAJOR_X2 || BL == B_NMAJOR_X4 ? TK + 8 : TN + 8; /* 16-byte rows, padded */
    __shared__ __align__(16) uint16_t sa[AL == A_ROWS ? TM * (TK + 8) : TK * (TM + 8)];
    __shared__ __align__(16) uint16_t sb[LDB == TK + 8 ? TN * (TK + 8) : TK * (TN + 8)];
    int lane = threadIdx.x % 32, w = threadIdx.x / 32, g = lane / 4, t = lane % 4;

    for (int s = 0; s < 3; s++) { /* one commit group per k-step */
        if (AL == A_ROWS) copy_part(sa, LDA, ga, TK, VM, VK, 0, TM, 16 * s, 16 * s + 16);
        else copy_part(sa, LDA, ga, TM, VK, VM, 16 * s, 16 * s + 16, 0, TM);
        if (LDB == TK + 8) copy_part(sb, LDB, gb, TK, VN, VK, 0, TN, 16 * s, 16 * s + 16);
        else copy_part(sb, LDB, gb, TN, VK, VN, 16 * s, 16 * s + 16, 0, TN);
        tc_cp_async_commit();
    }

    float acc[2][4];
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 4; i++) acc[j][i] = c0[(16 * w + g + 8 * (i / 2)) * TN + 8 * j + 2 * t + i % 2];

    for (int s = 0; s < 3; s++) {
        wait_for_step(s);
        __syncthreads();
        uint32_t a[4], b[2][2];
        int mi = lane / 8, r = lane % 8;
        if (LOAD == LOAD_DIRECT) { /* A[m][k], B^T[n][k]: the PTX ISA's table, two bf16 per register */
            for (int i = 0; i < 4; i++)
                a[i] = *(const uint32_t *)&sa[(16 * w + g + 8 * (i % 2)) * LDA + 16 * s + 2 * t + 8 * (i / 2)];
            for (int j = 0; j < 2; j++)
                for (int i = 0; i < 2; i++) b[j][i] = *(const uint32_t *)&sb[(8 * j + g) * LDB + 16 * s + 2 * t + 8 * i];
        } else if (LOAD == BREAK_LAYOUT) {
            /* A naive layout: lane l holds row l / 2 of A, 8 consecutive k in 4 registers, and column l / 4
               of B with k = 4 (l % 4) .. +3: not the PTX ISA's. */
            for (int i = 0; i < 4; i++)
                a[i] = *(const uint32_t *)&sa[(16 * w + lane / 2) * LDA + 16 * s + 8 * (lane % 2) + 2 * i];
            for (int j = 0; j < 2; j++)
                for (int i = 0; i < 2; i++)
                    b[j][i] = *(const uint32_t *)&sb[(8 * j + lane / 4) * LDB + 16 * s + 4 * (lane % 4) + 2 * i];
        } else {
            if (AL == A_ROWS) tc_ldmatrix_x4(a, &sa[(16 * w + lane % 16) * LDA + 16 * s + 8 * (lane / 16)]);
            else tc_ldmatrix_x4_trans(a, &sa[(16 * s + r + 8 * (mi / 2)) * LDA + 16 * w + 8 * (mi % 2)]);
            if (BL == B_NMAJOR_X2) {
                for (int j = 0; j < 2; j++)
                    tc_ldmatrix_x2(b[j], &sb[(8 * j + r) * LDB + 16 * s + 8 * (lane / 8 % 2)]);
            } else if (BL == B_NMAJOR_X4) {
                uint32_t q[4];
                tc_ldmatrix_x4(q, &sb[(r + 8 * (mi / 2)) * LDB + 16 * s + 8 * (mi % 2)]);
                b[0][0] = q[0], b[0][1] = q[1], b[1][0] = q[2], b[1][1] = q[3];
            } else if (BL == B_KMAJOR_X4T) {
                uint32_t q[4];
                const uint16_t *p = &sb[(16 * s + r + 8 * (mi % 2)) * LDB + 8 * (mi / 2)];
                if (LOAD == BREAK_NO_TRANS) tc_ldmatrix_x4(q, p);
                else tc_ldmatrix_x4_trans(q, p);
                b[0][0] = q[0], b[0][1] = q[1], b[1][0] = q[2], b[1][1] = q[3];
            } else {
                for (int j = 0; j < 2; j++) tc_ldmatrix_x2_trans(b[j], &sb[(16 * s + lane % 16) * LDB + 8 * j]);
            }
        }
        for (int j = 0; j < 2; j++) tc_mma_16816(acc[j], a, b[j], acc[j]);
    }
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 4; i++) out[(16 * w + g + 8 * (i / 2)) * TN + 8 * j + 2 * t + i % 2] = acc[j][i];
}

/* ---- the product cases (host) ---- */

static float bf_value(uint16_t h) {
    __nv_bfloat16 b;
    b.bits = h;
    return __bfloat162float(b);
}

static uint16_t *dev_copy(const void *h, size_t bytes) {
    void *d;
    CK(cudaMalloc(&d, bytes));
    CK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return (uint16_t *)d;
}

/* A 29 x 44 and B 44 x 13 (zero beyond, as the zero-fill makes them), C0 32 x 16, random. */
struct Problem {
    uint16_t a[TM][TK], b[TK][TN];
    float c0[TM * TN];
};

static void make_problem(Problem *p, unsigned seed) {
    srand(seed);
    memset(p, 0, sizeof *p);
    for (int m = 0; m < VM; m++)
        for (int k = 0; k < VK; k++)
            p->a[m][k] = __float2bfloat16_rn(ldexpf((float)rand() / RAND_MAX * 2.0f - 1.0f, rand() % 7 - 3)).bits;
    for (int k = 0; k < VK; k++)
        for (int n = 0; n < VN; n++)
            p->b[k][n] = __float2bfloat16_rn(ldexpf((float)rand() / RAND_MAX * 2.0f - 1.0f, rand() % 7 - 3)).bits;
    for (int i = 0; i < TM * TN; i++) p->c0[i] = (float)rand() / RAND_MAX - 0.5f;
}

template <int AL, int BL, int LOAD> static void gemm_case(unsigned seed) {
    static Problem p;
    make_problem(&p, seed);
    /* The global buffers hold only the valid rows; the padding of each row beyond the valid columns is NaN
       (0xffff), so a zero-fill that copied too much would show. */
    static uint16_t ga[TK * TM], gb[TK * TK];
    size_t na, nb;
    if (AL == A_ROWS) {
        for (int m = 0; m < VM; m++)
            for (int k = 0; k < TK; k++) ga[m * TK + k] = k < VK ? p.a[m][k] : 0xffff;
        na = (size_t)VM * TK;
    } else {
        for (int k = 0; k < VK; k++)
            for (int m = 0; m < TM; m++) ga[k * TM + m] = m < VM ? p.a[m][k] : 0xffff;
        na = (size_t)VK * TM;
    }
    if (BL == B_NMAJOR_X2 || BL == B_NMAJOR_X4) {
        for (int n = 0; n < VN; n++)
            for (int k = 0; k < TK; k++) gb[n * TK + k] = k < VK ? p.b[k][n] : 0xffff;
        nb = (size_t)VN * TK;
    } else {
        for (int k = 0; k < VK; k++)
            for (int n = 0; n < TN; n++) gb[k * TN + n] = n < VN ? p.b[k][n] : 0xffff;
        nb = (size_t)VK * TN;
    }
    uint16_t *da = dev_copy(ga, na * 2), *db = dev_copy(gb, nb * 2);
    float *dc = (float *)dev_copy(p.c0, sizeof p.c0), *dout;
    CK(cudaMalloc(&dout, sizeof p.c0));
    k_gemm<AL, BL, LOAD><<<1, THREADS>>>(dout, da, db, dc);
    CK(cudaGetLastError());
    static float out[TM * TN];
    CK(cudaMemcpy(out, dout, sizeof out, cudaMemcpyDeviceToHost));
    for (int m = 0; m < TM; m++)
        for (int n = 0; n < TN; n++) {
            /* The emulator's arithmetic: exact products added in fp32 in k order. */
            float s = p.c0[m * TN + n];
            double exact = s, mag = fabs(s);
            for (int k = 0; k < TK; k++) {
                float prod = bf_value(p.a[m][k]) * bf_value(p.b[k][n]);
                s = s + prod;
                exact += (double)prod;
                mag += fabs((double)prod);
            }
            float got = out[m * TN + n];
            if (memcmp(&got, &s, 4)) {
                fprintf(stderr, "mma: element (%d, %d) is %.9g, the reference %.9g: differs from the reference "
                        "(A %s, B %s, seed %u)\n",
                        m, n, got, s, AL == A_ROWS ? "m-major" : "k-major",
                        BL == B_NMAJOR_X2 || BL == B_NMAJOR_X4 ? "n-major" : "k-major", seed);
                exit(4);
            }
            /* Any accumulation order in fp32 (a GPU's) is within (k + 1) u of the sum of magnitudes. */
            double tol = (TK + 1) * ldexp(1.0, -24) * mag;
            if (fabs(got - exact) > tol) {
                fprintf(stderr, "mma: element (%d, %d) is %.9g, %.3g from the exact %.9g, above %.3g\n", m, n, got,
                        fabs(got - exact), exact, tol);
                exit(4);
            }
        }
    CK(cudaFree(da));
    CK(cudaFree(db));
    CK(cudaFree(dc));
    CK(cudaFree(dout));
}

/* ldmatrix x4, x4.trans, x2, x2.trans into mma.sync, from cp.async'd tiles;
   broken: the k-major B loaded without .trans. */
static void mma_ldmatrix(int fixed) {
    if (!fixed) {
        gemm_case<A_ROWS, B_KMAJOR_X4T, BREAK_NO_TRANS>(1);
        return;
    }
    for (unsigned seed = 1; seed <= 3; seed++) {
        gemm_case<A_ROWS, B_NMAJOR_X2, LOAD_LDMATRIX>(seed);
        gemm_case<A_ROWS, B_KMAJOR_X4T, LOAD_LDMATRIX>(seed);
        gemm_case<A_KMAJOR, B_NMAJOR_X4, LOAD_LDMATRIX>(seed);
        gemm_case<A_KMAJOR, B_KMAJOR_X2T, LOAD_LDMATRIX>(seed);
    }
}

/* mma.sync alone, its fragments read from shared memory by the PTX ISA's table;
   broken: a kernel that assumes another layout. */
static void wrong_layout(int fixed) {
    for (unsigned seed = 1; seed <= 3; seed++) {
        if (fixed) gemm_case<A_ROWS, B_NMAJOR_X2, LOAD_DIRECT>(seed);
        else gemm_case<A_ROWS, B_NMAJOR_X2, BREAK_LAYOUT>(seed);
    }
}

/* ---- the detectors: each break next to its fix ----
 * The reports must name the kernel, the thread and the source line of the
 * instruction: each instruction under test is called from a helper whose
 * line the expected report holds (where[], filled by main). */

static char where[4][64];

static const int LDM_LINE = __LINE__ + 2;
__device__ void ldm_x4(uint32_t a[4], const uint16_t *p) {
    tc_ldmatrix_x4(a, p);
}
static const int CP_LINE = __LINE__ + 2;
__device__ void cp16(void *dst, const void *src) {
    tc_cp_async_16(dst, src);
}
static const int MMA_LINE = __LINE__ + 2;
__device__ void mma(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    tc_mma_16816(d, a, b, c);
}

/* n floats v, v + 1, ... in device memory. */
static float *dev_ramp(int n, float v) {
    float *p, *h = (float *)malloc(n * sizeof(float));
    for (int i = 0; i < n; i++) h[i] = v + (float)i;
    CK(cudaMalloc(&p, n * sizeof(float)));
    CK(cudaMemcpy(p, h, n * sizeof(float), cudaMemcpyHostToDevice));
    free(h);
    return p;
}

/* A cp.async read before its wait_group: the destination is still in flight. */
template <int WAIT> __global__ void k_skip_wait(float *out, const float *in) {
    __shared__ __align__(16) float s[THREADS * 4];
    int t = threadIdx.x;
    cp16(&s[4 * t], &in[4 * t]);
    tc_cp_async_commit();
    if (WAIT) tc_cp_async_wait<0>();
    __syncthreads();
    out[t] = s[4 * ((t + 1) % THREADS) + 1];
}
static void skip_wait(int fixed) {
    float *in = dev_ramp(THREADS * 4, 0.0f), *out = dev_ramp(THREADS, 0.0f);
    if (fixed) k_skip_wait<1><<<1, THREADS>>>(out, in);
    else k_skip_wait<0><<<1, THREADS>>>(out, in);
    CK(cudaDeviceSynchronize());
    expect_value(out, 3, 17.0f);
}

/* Two groups in flight; the loop waits for one too few (wait_group 1 where the second group is needed). */
template <int N> __global__ void k_wait_count(float *out, const float *in) {
    __shared__ __align__(16) float s[2][THREADS * 4];
    int t = threadIdx.x;
    for (int g = 0; g < 2; g++) {
        tc_cp_async_16(&s[g][4 * t], &in[g * THREADS * 4 + 4 * t]);
        tc_cp_async_commit();
    }
    tc_cp_async_wait<N>();
    __syncthreads();
    out[t] = s[0][4 * t] + s[1][4 * t];
}
static void wait_count(int fixed) {
    float *in = dev_ramp(2 * THREADS * 4, 0.0f), *out = dev_ramp(THREADS, 0.0f);
    if (fixed) k_wait_count<0><<<1, THREADS>>>(out, in);
    else k_wait_count<1><<<1, THREADS>>>(out, in);
    CK(cudaDeviceSynchronize());
    expect_value(out, 1, 4.0f + 260.0f);
}

/* The landing write of a cp.async is a write for the race detector: read by another thread without a barrier. */
template <int SYNC> __global__ void k_cp_race(float *out, const float *in) {
    __shared__ __align__(16) float s[32 * 4];
    int t = threadIdx.x;
    tc_cp_async_16(&s[4 * t], &in[4 * t]);
    tc_cp_async_commit();
    tc_cp_async_wait<0>();
    if (SYNC) __syncthreads();
    out[t] = s[4 * ((t + 1) % 32)];
}
static void cp_race(int fixed) {
    float *in = dev_ramp(32 * 4, 0.0f), *out = dev_ramp(32, 0.0f);
    if (fixed) k_cp_race<1><<<1, 32>>>(out, in);
    else k_cp_race<0><<<1, 32>>>(out, in);
    CK(cudaDeviceSynchronize());
    expect_value(out, 3, 16.0f);
}

/* ldmatrix rows of a padded tile: 36 bf16 (72 bytes) per row is not 16-byte aligned, 40 is. */
template <int LD> __global__ void k_ldm_stride(float *out) {
    __shared__ __align__(16) uint16_t s[16 * 40];
    int lane = threadIdx.x;
    for (int i = lane; i < 16 * 40; i += 32) s[i] = 0x3f80; /* 1.0 */
    __syncwarp();
    uint32_t a[4];
    ldm_x4(a, &s[(lane % 16) * LD + 8 * (lane / 16)]);
    float2 v = tc_unpack_bf16x2(a[3]);
    out[lane] = v.x + v.y;
}
static void ldmatrix_misaligned(int fixed) {
    float *out = dev_ramp(32, 0.0f);
    if (fixed) k_ldm_stride<40><<<1, 32>>>(out);
    else k_ldm_stride<36><<<1, 32>>>(out);
    CK(cudaDeviceSynchronize());
    expect_value(out, 5, 2.0f);
}

/* ldmatrix past the end of its array: the last row of a 16 x 16 tile declared one half-row short. */
template <int N> __global__ void k_ldm_oob(float *out) {
    __shared__ __align__(16) uint16_t s[N];
    int lane = threadIdx.x;
    for (int i = lane; i < N; i += 32) s[i] = 0x3f80;
    __syncwarp();
    uint32_t a[4];
    ldm_x4(a, &s[(lane % 16) * 16 + 8 * (lane / 16)]);
    out[lane] = tc_unpack_bf16x2(a[3]).x;
}
static void ldmatrix_oob(int fixed) {
    float *out = dev_ramp(32, 0.0f);
    if (fixed) k_ldm_oob<256><<<1, 32>>>(out);
    else k_ldm_oob<248><<<1, 32>>>(out);
    CK(cudaDeviceSynchronize());
    expect_value(out, 5, 1.0f);
}

/* ldmatrix reads for the lanes that give the addresses: a race with another warp's writes without a barrier. */
template <int SYNC> __global__ void k_ldm_race(float *out) {
    __shared__ __align__(16) uint16_t s[16 * 16];
    int lane = threadIdx.x % 32, w = threadIdx.x / 32;
    if (w == 1)
        for (int i = lane; i < 256; i += 32) s[i] = 0x3f80;
    if (SYNC) __syncthreads();
    if (w == 0) {
        uint32_t a[4];
        ldm_x4(a, &s[(lane % 16) * 16 + 8 * (lane / 16)]);
        out[lane] = tc_unpack_bf16x2(a[0]).y;
    }
}
static void ldmatrix_race(int fixed) {
    float *out = dev_ramp(32, 0.0f);
    if (fixed) k_ldm_race<1><<<1, 64>>>(out);
    else k_ldm_race<0><<<1, 64>>>(out);
    CK(cudaDeviceSynchronize());
    expect_value(out, 5, 1.0f);
}

/* cp.async from a source 8 bytes past a 16-byte boundary. */
template <int OFF> __global__ void k_cp_offset(float *out, const uint16_t *g) {
    __shared__ __align__(16) uint16_t s[32 * 8];
    int t = threadIdx.x;
    cp16(&s[8 * t], &g[8 * t + OFF]);
    tc_cp_async_commit();
    tc_cp_async_wait<0>();
    __syncthreads();
    out[t] = tc_unpack_bf16x2(*(const uint32_t *)&s[8 * ((t + 1) % 32)]).x;
}
static void cp_async_misaligned(int fixed) {
    static uint16_t h[32 * 8 + 8];
    for (int i = 0; i < 32 * 8 + 8; i++) h[i] = 0x3f80; /* 1.0 */
    uint16_t *g = dev_copy(h, sizeof h);
    float *out = dev_ramp(32, 0.0f);
    if (fixed) k_cp_offset<0><<<1, 32>>>(out, g);
    else k_cp_offset<4><<<1, 32>>>(out, g);
    CK(cudaDeviceSynchronize());
    expect_value(out, 5, 1.0f);
}

/* cp.async of a whole 16 bytes from a last row that has only 4 valid values: past the allocation; the fix
   zero-fills. */
template <int ZFILL> __global__ void k_cp_tail(float *out, const float *g, int n) {
    __shared__ __align__(16) float s[32 * 4];
    int t = threadIdx.x;
    if (4 * t < n) {
        if (ZFILL) tc_cp_async_16_zfill(&s[4 * t], &g[4 * t], 4 * min(n - 4 * t, 4));
        else tc_cp_async_16(&s[4 * t], &g[4 * t]);
    }
    tc_cp_async_commit();
    tc_cp_async_wait<0>();
    __syncthreads();
    if (t == 0) out[0] = s[4 * ((n - 1) / 4) + 3];
}
static void cp_async_oob(int fixed) {
    float *g = dev_ramp(30, 1.0f), *out = dev_ramp(1, 5.0f);
    if (fixed) k_cp_tail<1><<<1, 32>>>(out, g, 30);
    else k_cp_tail<0><<<1, 32>>>(out, g, 30);
    CK(cudaDeviceSynchronize());
    expect_value(out, 0, 0.0f); /* element 31 of the tile: zero-filled */
}

/* mma.sync under a lane-dependent branch. The fix shows the legal pattern the
   check must let through: half the warp in a shuffle of its own, then all 32
   lanes at the mma (they reconverge; the mma waits for them). */
template <int ALL> __global__ void k_mma_diverge(float *out) {
    int lane = threadIdx.x;
    uint32_t a[4] = {0x3f803f80u, 0x3f803f80u, 0x3f803f80u, 0x3f803f80u}, b[2] = {0x3f803f80u, 0x3f803f80u};
    float c[4] = {0, 0, 0, 0}, x = 1.0f;
    if (lane < 16) x = __shfl_xor_sync(0x0000ffffu, x, 1);
    if (ALL || lane < 16) mma(c, a, b, c);
    out[lane] = c[0] * x;
}
static void mma_divergent(int fixed) {
    float *out = dev_ramp(32, 0.0f);
    if (fixed) k_mma_diverge<1><<<1, 32>>>(out);
    else k_mma_diverge<0><<<1, 32>>>(out);
    CK(cudaDeviceSynchronize());
    expect_value(out, 20, 16.0f);
}

/* mma.sync in a block whose last warp is partial (48 threads). */
__global__ void k_mma_partial(float *out) {
    uint32_t a[4] = {0x3f803f80u, 0x3f803f80u, 0x3f803f80u, 0x3f803f80u}, b[2] = {0x3f803f80u, 0x3f803f80u};
    float c[4] = {0, 0, 0, 0};
    mma(c, a, b, c);
    out[threadIdx.x] = c[3];
}
static void mma_partial_warp(int fixed) {
    float *out = dev_ramp(64, 0.0f);
    k_mma_partial<<<1, fixed ? 64 : 48>>>(out);
    CK(cudaDeviceSynchronize());
    expect_value(out, 40, 16.0f);
}

/* ---- bf16x2 packing: round to nearest even, lo in the low half ---- */

/* broken: packing by truncation, the shortcut that biases every value toward zero. */
template <int RN> __global__ void k_pack(uint32_t *packed, float *back, const float *x, int n) {
    int i = threadIdx.x;
    if (2 * i + 1 >= n) return;
    uint32_t v = RN ? tc_pack_bf16x2(x[2 * i], x[2 * i + 1])
                    : __float_as_uint(x[2 * i]) >> 16 | (__float_as_uint(x[2 * i + 1]) & 0xffff0000u);
    float2 f = tc_unpack_bf16x2(v);
    packed[i] = v;
    back[2 * i] = f.x;
    back[2 * i + 1] = f.y;
}

/* x to bf16 by arithmetic, not bits: 8 significant bits (a quantum of 2^(e - 8) for x = m 2^e,
   m in [0.5, 1), never below bf16's subnormal quantum 2^-133), ties to even (nearbyint). */
static float bf16_reference(float x) {
    if (x != x || x == 0.0f || isinf(x)) return x;
    int e;
    frexp((double)x, &e);
    double q = ldexp(1.0, e - 8 > -133 ? e - 8 : -133);
    return (float)(nearbyint((double)x / q) * q); /* above bf16's largest: inf */
}

static void pack_bf16x2(int fixed) {
    const float x[] = {1.0f, -2.5f, 1.0f + 0x1p-8f /* tie: to even (1) */, 1.0f + 0x3p-8f /* tie: up */,
                       1.0f + 0x1p-9f, -(1.0f + 0x1.8p-8f), 3.14159265f, -1e-3f, 65504.0f, 3.3895e38f /* to bf16's largest */, 3.4e38f /* to inf */,
                       0x1p-130f /* fp32 subnormal */, 0x1.234p-133f, -0.0f, NAN, INFINITY, 0.1f, -3.0f};
    const int n = (int)(sizeof x / sizeof x[0]);
    static_assert(sizeof x / sizeof x[0] % 2 == 0, "pairs");
    uint16_t *dx = dev_copy(x, sizeof x);
    uint32_t *dp;
    float *db;
    CK(cudaMalloc(&dp, n / 2 * sizeof(uint32_t)));
    CK(cudaMalloc(&db, n * sizeof(float)));
    if (fixed) k_pack<1><<<1, 32>>>(dp, db, (const float *)dx, n);
    else k_pack<0><<<1, 32>>>(dp, db, (const float *)dx, n);
    uint32_t packed[n / 2];
    float back[n];
    CK(cudaMemcpy(packed, dp, sizeof packed, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(back, db, sizeof back, cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++) {
        float want = bf16_reference(x[i]);
        uint32_t wb, bb;
        memcpy(&wb, &want, 4);
        memcpy(&bb, &back[i], 4);
        uint16_t half = (uint16_t)(i % 2 ? packed[i / 2] >> 16 : packed[i / 2] & 0xffff);
        int ok = want != want ? (back[i] != back[i] && (half & 0x7f80) == 0x7f80 && (half & 0x7f)) : bb == wb && half == wb >> 16;
        if (!ok) {
            fprintf(stderr, "pack: %.9g packs to 0x%04x, unpacks to %.9g; the reference %.9g (0x%04x): differs from "
                    "the reference\n", x[i], half, back[i], want, wb >> 16);
            exit(4);
        }
    }
}

static const EmuCase cases[] = {
    {"pack_bf16x2", pack_bf16x2, {"differs from the reference"}},
    {"mma_ldmatrix", mma_ldmatrix, {"differs from the reference"}},
    {"wrong_layout", wrong_layout, {"differs from the reference"}},
    {"skip_wait", skip_wait, {"which a cp.async of thread", "is still writing", where[1]}},
    {"wait_count", wait_count, {"is still writing", "in kernel k_wait_count<1>"}},
    {"cp_async_race", cp_race, {"shared-memory race on byte", "in kernel k_cp_race<0>"}},
    {"ldmatrix_misaligned", ldmatrix_misaligned,
     {"lane 1's row address", "is not 16-byte aligned", where[0], "in kernel k_ldm_stride<36> (launched at",
      "thread (1,0,0) of block (0,0,0)"}},
    {"ldmatrix_oob", ldmatrix_oob, {"outside every __shared__ array", "in kernel k_ldm_oob<248>", where[0]}},
    {"ldmatrix_race", ldmatrix_race, {"shared-memory race on byte", "in kernel k_ldm_race<0>", where[0]}},
    {"cp_async_misaligned", cp_async_misaligned,
     {"the source", "is not 16-byte aligned", where[1], "in kernel k_cp_offset<4> (launched at"}},
    {"cp_async_oob", cp_async_oob, {"outside every device allocation", "in kernel k_cp_tail<0>"}},
    {"mma_divergent", mma_divergent, {"lane 16 has exited (divergent", "in kernel k_mma_diverge<0>", where[2]}},
    {"mma_partial_warp", mma_partial_warp, {"needs all 32 lanes of a warp", "in kernel k_mma_partial", where[2]}},
};

int main(int argc, char **argv) {
    snprintf(where[0], sizeof where[0], "emu_tc_test.cu:%d", LDM_LINE);
    snprintf(where[1], sizeof where[1], "emu_tc_test.cu:%d", CP_LINE);
    snprintf(where[2], sizeof where[2], "emu_tc_test.cu:%d", MMA_LINE);
    return emu_cases_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]), "emu_tc_test");
}
