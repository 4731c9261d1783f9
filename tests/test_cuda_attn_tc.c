/* tests/test_cuda_attn_tc.c — full attention on tensor cores (BF16 mode:
 * attention_tc_fwd.cu, attention_tc_bwd.cu) against the CPU op, forward and
 * every gradient, at head dims 64, 80, 128 and N = 1, 63, 96, 288 (JiT:
 * 256 patches + 32 in-context tokens), 1024: one tile, partial tiles, whole
 * tiles, several tiles with a partial last one, many tiles.
 *
 * Tolerance, from bf16's precision. The inputs (q, k, v, dO) are drawn and
 * then rounded to bf16 on the host, so both sides compute on the same values
 * and the kernels' operand conversion is exact. What remains are the
 * roundings the kernels add, each a relative error of at most u = 2^-8
 * (bf16 keeps 8 significant bits, round to nearest):
 *   P to bf16 before P V and P^T dO (the row sum l stays fp32),
 *   dS to bf16 before dS K and dS^T Q,
 * and D = dO . O taken from the forward's O, which carries O's error.
 * To first order in u, element by element, with P and dS the CPU's:
 *                  eO[a,c]  = u sum_j P_aj |v_jc|
 *                  eD[a]    = sum_c |dO_ac| eO[a,c]
 *                  edS[a,j] = P_aj eD[a] + u |dS_aj|
 *                  edV[j,c] = u sum_a P_aj |dO_ac|
 *                  edQ[a,c] = scale sum_j edS[a,j] |k_jc|
 *                  edK[j,c] = scale sum_a edS[a,j] |q_ac|
 * and each result must lie within 1.25 e + 1e-5 max|ref| of the CPU's: the
 * factor covers second-order terms, the additive part both sides' fp32
 * accumulation (S and the sums differ in order, about N 2^-24 relative).
 * The saved LSE is exact up to fp32 (the bf16 products are exact in fp32):
 * within 1e-4 of a double reference. Measured: every element within 0.4 of
 * its bound (relative errors 1e-3 to 2.6e-3). Breaks tried, each failing:
 * the forward's partial-tile key mask removed (out 1.5x, LSE 127x its
 * bound at N = 63, though only 5e-3 relative: a plain relative tolerance of
 * 2e-2 would pass it), D written as 0 (dQ 36x), the D pre-kernel skipped
 * (NaN), ldmatrix.trans addresses of the wrong matrix order (out 1e3x), the
 * dQ loop's closing barrier removed (the emulator's race detector), the
 * zero-filling copy reading past N (its bounds detector).
 *
 * Sizes are minimal for the emulator (every access checked, about 1000x
 * slower): B = 2, H = 2 up to N = 96 (the heads-merged output layout and
 * per-(b, h) offsets are exercised), one (b, h) from N = 288 on. The
 * harness is tests/cuda_check.h's (outputs NaN-poisoned, gradients
 * accumulated onto random values). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "attn_bounds.h"
#include "cuda_check.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cuda/ops_cuda.h"

#define CPU ops_cpu
#define GPU ops_cuda

TestSuite(attn_tc, .init = tc_setup, .fini = tc_teardown);

/* Forward and backward at one size; `subsets`: also run backward for dQ
 * alone, dK alone and dV alone (the others must stay untouched). */
static void check_tc(int B, int H, int N, int hd, int subsets) {
    const size_t nt = (size_t)B * H * N * hd, nr = (size_t)B * H * N;
    cr_assert_eq(GPU.attention_saved_floats(B, H, N, hd), nr, "the GPU saves the LSE only");
    Arr q = arr_rand_bf16(nt, -2, 2), k = arr_rand_bf16(nt, -2, 2), v = arr_rand_bf16(nt, -1, 1);
    Arr dout = arr_rand_bf16(nt, -1, 1);
    Arr out = arr_nan(nt), lse = arr_nan(nr);
    float *P = malloc(sizeof(float) * CPU.attention_saved_floats(B, H, N, hd));
    float *dS = malloc(sizeof(float) * CPU.attention_scratch_floats(B, H, N, hd));
    CPU.attention_fwd(out.h, P, q.h, k.h, v.h, B, H, N, hd);
    GPU.attention_fwd(out.d, lse.d, q.d, k.d, v.d, B, H, N, hd);
    ref_lse(lse.h, q.h, k.h, B * H, N, hd);

    Arr dq0 = arr_rand(nt, -0.1f, 0.1f), dk0 = arr_rand(nt, -0.1f, 0.1f), dv0 = arr_rand(nt, -0.1f, 0.1f);
    Arr dq = arr_copy(&dq0), dk = arr_copy(&dk0), dv = arr_copy(&dv0); /* the CPU's, on the host side */
    CPU.attention_bwd(dq.h, dk.h, dv.h, dS, dout.h, out.h, P, q.h, k.h, v.h, B, H, N, hd);
    Bounds e = attn_bounds(P, dS, q.h, k.h, v.h, dout.h, 0, B, H, N, hd);
    printf("attention tc B=%d H=%d N=%d hd=%d\n", B, H, N, hd);
    expect_within(&out, e.o, "out", N, hd);
    expect_within(&lse, NULL, "lse", N, hd);

    Arr scratch = arr_nan(GPU.attention_scratch_floats(B, H, N, hd)), g0[3] = {dq0, dk0, dv0}, g[3];
    float *want[3] = {dq.h, dk.h, dv.h};
    const int masks[] = {7, 1, 2, 4};
    for (int m = 0; m < (subsets ? 4 : 1); m++) {
        const int mask = masks[m];
        attention_bwd_subset(g, mask, g0, want, &scratch, &dout, &out, &lse, &q, &k, &v, B, H, N, hd);
        if (mask & 1) expect_within(&g[0], e.dq, "dq", N, hd);
        if (mask & 2) expect_within(&g[1], e.dk, "dk", N, hd);
        if (mask & 4) expect_within(&g[2], e.dv, "dv", N, hd);
        if (mask != 7) { /* the gradients not asked for are bit-identical to their start */
            for (int t = 0; t < 3; t++)
                cr_expect(mask & (1 << t) || same_bits(&g[t], &g0[t]), "gradient %d written though not requested "
                          "(mask %d)", t, mask);
        }
    }
    free(P), free(dS), free(e.o), free(e.dq), free(e.dk), free(e.dv);
}

/* Named so ctest can run a head dim's small sizes, and each N = 1024 case,
 * as separate entries (tests/CMakeLists.txt) of about 10 s each. */
#define TC_TESTS(D)                                                                                       \
    Test(attn_tc, hd##D##_n1) { check_tc(2, 2, 1, D, 1); }                                               \
    Test(attn_tc, hd##D##_n63) { check_tc(2, 2, 63, D, 1); }                                             \
    Test(attn_tc, hd##D##_n96) { check_tc(2, 2, 96, D, 0); }                                             \
    Test(attn_tc, hd##D##_n288) { check_tc(1, 1, 288, D, 0); }                                           \
    Test(attn_tc, n1024_hd##D) { check_tc(1, 1, 1024, D, 0); }

TC_TESTS(64)
TC_TESTS(80)
TC_TESTS(128)

/* The non-deterministic backward (JIT_CUDA_ATTN_BWD=atomic: dQ with fp32
 * atomics inside the dK/dV kernel, 5 products) within the same bounds, at
 * the partial-tile sizes and with each gradient alone. */
static void check_tc_atomic(int B, int H, int N, int hd) {
    setenv("JIT_CUDA_ATTN_BWD", "atomic", 1);
    check_tc(B, H, N, hd, 1);
    unsetenv("JIT_CUDA_ATTN_BWD");
}
Test(attn_tc, hd64_atomic_dq) { check_tc_atomic(2, 2, 63, 64); }
Test(attn_tc, hd128_atomic_dq) { check_tc_atomic(1, 2, 150, 128); }
Test(attn_tc, hd64_bad_bwd_mode_is_refused, .exit_code = 1) {
    setenv("JIT_CUDA_ATTN_BWD", "fast", 1);
    check_tc(1, 1, 16, 64, 0);
}

/* Two runs give the same bits (no atomics; a fixed summation order). */
Test(attn_tc, hd80_deterministic) { expect_attention_deterministic(1, 2, 150, 80); }
