/* tests/test_cuda_ops.c — every CUDA op (except attention and SLA2, tested
 * beside their kernels) against its CPU twin in ops_cpu, forward and
 * backward, on random inputs of sizes that are not multiples of 32 (37 rows,
 * 70 and 53 columns, ...), so edge threads and partial blocks are exercised.
 *
 * How a wrong kernel is caught (cuda_check.h has the harness):
 * - outputs start as NaN on both sides, so an element the kernel does not
 *   write makes the relative error infinite;
 * - gradients start from the same random, nonzero values on both sides, so
 *   a kernel that overwrites instead of accumulating is off by O(1);
 * - backward passes run once per subset of the gradients asked for (NULL =
 *   skip), so a kernel that writes through a NULL or skips a requested
 *   gradient fails;
 * - a wrong index moves values to the wrong place: O(1) errors, where the
 *   tolerance is 1e-5 relative (FP32) and 2e-2 (BF16, linear only);
 * - the reductions are tested at sizes where they are cut into several
 *   segments (more than 64 rows, more than 4096 elements), and rerun to
 *   check the result is bit-identical (determinism);
 * - dropout must equal the CPU's mask exactly (tolerance 0);
 * - ops_cuda must have every entry, and these kernels in these entries. */
#include <criterion/criterion.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "cuda_check.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cuda/ops_cuda.h"

#define CPU ops_cpu
#define GPU ops_cuda
#define CHECK_IF(a, bit, tol)                                                                                   \
    do {                                                                                                       \
        if ((mask >> (bit)) & 1) EXPECT_CLOSE(a, tol);                                                         \
    } while (0)

static void setup(void) {
    cuda_init(0);
    cuda_set_precision(CUDA_PREC_FP32);
}

static void teardown(void) { arr_free_all(); }

TestSuite(cuda_ops, .init = setup, .fini = teardown);

/* A view of n elements at offset off (misaligned pointers for cuBLASLt). */
static Arr view(Arr a, size_t off, size_t n) {
    Arr v = {a.h + off, a.d + off, n};
    return v;
}

/* ---- linear ---- */

/* off > 0 shifts every operand by off floats from its allocation, so the
 * pointers are 4-byte but not 16-byte aligned. */
/* off: floats by which the operands are shifted off their allocation's
 * alignment; boff: the same for the bias alone. */
static void check_linear_at(int M, int IC, int OC, int bias, CudaPrecision prec, double tol, size_t off,
                            size_t boff) {
    cuda_set_precision(prec);
    Arr inp = view(arr_rand((size_t)M * IC + off, -1, 1), off, (size_t)M * IC);
    Arr w = view(arr_rand((size_t)OC * IC + off, -1, 1), off, (size_t)OC * IC);
    Arr b = view(arr_rand((size_t)OC + boff, -1, 1), boff, (size_t)OC);
    Arr out = view(arr_nan((size_t)M * OC + off), off, (size_t)M * OC);
    CPU.linear_fwd(out.h, inp.h, w.h, bias ? b.h : NULL, M, IC, OC);
    GPU.linear_fwd(out.d, inp.d, w.d, bias ? b.d : NULL, M, IC, OC);
    EXPECT_CLOSE(out, tol);
    if (prec == CUDA_PREC_BF16)
        cr_expect(arr_err(&out) > 1e-5, "BF16 mode gave fp32 results (relative error %.3g): operands not rounded",
                  arr_err(&out));
    Arr dout = arr_rand((size_t)M * OC, -1, 1);
    for (int mask = 1; mask < 8; mask++) {
        Arr dinp = arr_rand((size_t)M * IC, -1, 1), dw = arr_rand((size_t)OC * IC, -1, 1);
        Arr db = arr_rand((size_t)OC, -1, 1);
        CPU.linear_bwd(H(dinp, 0), H(dw, 1), H(db, 2), dout.h, inp.h, w.h, M, IC, OC);
        GPU.linear_bwd(D(dinp, 0), D(dw, 1), D(db, 2), dout.d, inp.d, w.d, M, IC, OC);
        CHECK_IF(dinp, 0, tol);
        CHECK_IF(dw, 1, tol);
        /* The bias gradient: BGRADB's sum over dout as the product reads it
         * (bf16-rounded in BF16 mode), or the fp32 column sum when there is
         * no dw product to fuse it into (mask 4, 5). */
        CHECK_IF(db, 2, prec == CUDA_PREC_BF16 && (mask & 2) ? tol : TOL_FP32);
    }
    cuda_set_precision(CUDA_PREC_FP32);
}

static void check_linear(int M, int IC, int OC, int bias, CudaPrecision prec, double tol, size_t off) {
    check_linear_at(M, IC, OC, bias, prec, tol, off, off);
}

/* Parameter views put biases at any 4-byte boundary. cuBLASLt's BIAS
 * epilogue loads the bias as 16-byte vectors, and no preference tells the
 * heuristic otherwise: a shape first seen with an aligned bias must not have
 * its fused algorithm reused for a misaligned one (the emulated cuBLASLt
 * refuses that call, as a GPU would fault or refuse it). */
Test(cuda_ops, linear_bias_alignment) {
    check_linear_at(37, 70, 53, 1, CUDA_PREC_FP32, TOL_FP32, 0, 0);
    check_linear_at(37, 70, 53, 1, CUDA_PREC_FP32, TOL_FP32, 0, 1);
    check_linear_at(37, 70, 53, 1, CUDA_PREC_FP32, TOL_FP32, 0, 2);
    check_linear_at(37, 70, 53, 1, CUDA_PREC_BF16, TOL_BF16, 0, 1);
}

Test(cuda_ops, linear_fp32) {
    check_linear(37, 70, 53, 1, CUDA_PREC_FP32, TOL_FP32, 0);
    check_linear(37, 70, 53, 0, CUDA_PREC_FP32, TOL_FP32, 0);
    check_linear(333, 45, 29, 1, CUDA_PREC_FP32, TOL_FP32, 0); /* several bias-sum segments */
    check_linear(37, 70, 53, 1, CUDA_PREC_FP32, TOL_FP32, 1);  /* misaligned operands */
}

Test(cuda_ops, linear_bf16) {
    check_linear(37, 70, 53, 1, CUDA_PREC_BF16, TOL_BF16, 0);
    check_linear(37, 70, 53, 0, CUDA_PREC_BF16, TOL_BF16, 0);
    check_linear(333, 45, 29, 1, CUDA_PREC_BF16, TOL_BF16, 1);
}

/* ---- rmsnorm ---- */

static void check_rmsnorm(int rows, int C) {
    Arr inp = arr_rand((size_t)rows * C, -2, 2), w = arr_rand((size_t)C, 0.5f, 1.5f);
    Arr out = arr_nan((size_t)rows * C), rstd = arr_nan((size_t)rows);
    CPU.rmsnorm_fwd(out.h, rstd.h, inp.h, w.h, rows, C, 1e-6f);
    GPU.rmsnorm_fwd(out.d, rstd.d, inp.d, w.d, rows, C, 1e-6f);
    EXPECT_CLOSE(out, TOL_FP32);
    EXPECT_CLOSE(rstd, TOL_FP32);
    /* Backward from the CPU's rstd on both sides: tests backward alone. */
    Arr r = arr_rand((size_t)rows, 0, 1);
    memcpy(r.h, rstd.h, (size_t)rows * sizeof(float));
    arr_upload(&r);
    Arr dout = arr_rand((size_t)rows * C, -1, 1);
    for (int mask = 1; mask < 4; mask++) {
        Arr dinp = arr_rand((size_t)rows * C, -1, 1), dw = arr_rand((size_t)C, -1, 1);
        CPU.rmsnorm_bwd(H(dinp, 0), H(dw, 1), dout.h, inp.h, w.h, r.h, rows, C);
        GPU.rmsnorm_bwd(D(dinp, 0), D(dw, 1), dout.d, inp.d, w.d, r.d, rows, C);
        CHECK_IF(dinp, 0, TOL_FP32);
        CHECK_IF(dw, 1, TOL_FP32);
    }
}

Test(cuda_ops, rmsnorm) {
    check_rmsnorm(37, 70);
    check_rmsnorm(2 * 5 * 37, 18); /* qk-norm shape: many rows, head dim < 32 */
    check_rmsnorm(5, 333);         /* rows longer than a warp's stride */
}

/* ---- rope ---- */

Test(cuda_ops, rope) {
    int BH = 6, N = 37, hd = 18, n_ctx = 5, half = hd / 2;
    size_t n = (size_t)BH * N * hd, na = (size_t)(N - n_ctx) * half;
    Arr ang = arr_rand(na, -3.1f, 3.1f), cs = arr_rand(na, 0, 1), sn = arr_rand(na, 0, 1);
    for (size_t i = 0; i < na; i++) cs.h[i] = cosf(ang.h[i]), sn.h[i] = sinf(ang.h[i]);
    arr_upload(&cs);
    arr_upload(&sn);
    Arr inp = arr_rand(n, -1, 1), out = arr_nan(n);
    CPU.rope_fwd(out.h, inp.h, cs.h, sn.h, BH, N, hd, n_ctx);
    GPU.rope_fwd(out.d, inp.d, cs.d, sn.d, BH, N, hd, n_ctx);
    EXPECT_CLOSE(out, TOL_FP32);
    Arr dout = arr_rand(n, -1, 1), dinp = arr_rand(n, -1, 1);
    CPU.rope_bwd(dinp.h, dout.h, cs.h, sn.h, BH, N, hd, n_ctx);
    GPU.rope_bwd(dinp.d, dout.d, cs.d, sn.d, BH, N, hd, n_ctx);
    EXPECT_CLOSE(dinp, TOL_FP32);
}

/* ---- modulate, gated add ---- */

static void check_modulate(int B, int N, int C) {
    size_t n = (size_t)B * N * C;
    Arr x = arr_rand(n, -1, 1), shift = arr_rand((size_t)B * C, -1, 1), scale = arr_rand((size_t)B * C, -1, 1);
    Arr out = arr_nan(n);
    CPU.modulate_fwd(out.h, x.h, shift.h, scale.h, B, N, C);
    GPU.modulate_fwd(out.d, x.d, shift.d, scale.d, B, N, C);
    EXPECT_CLOSE(out, TOL_FP32);
    Arr dout = arr_rand(n, -1, 1);
    for (int mask = 1; mask < 8; mask++) {
        Arr dx = arr_rand(n, -1, 1), dsh = arr_rand((size_t)B * C, -1, 1), dsc = arr_rand((size_t)B * C, -1, 1);
        CPU.modulate_bwd(H(dx, 0), H(dsh, 1), H(dsc, 2), dout.h, x.h, scale.h, B, N, C);
        GPU.modulate_bwd(D(dx, 0), D(dsh, 1), D(dsc, 2), dout.d, x.d, scale.d, B, N, C);
        CHECK_IF(dx, 0, TOL_FP32);
        CHECK_IF(dsh, 1, TOL_FP32);
        CHECK_IF(dsc, 2, TOL_FP32);
    }
}

Test(cuda_ops, modulate) {
    check_modulate(3, 37, 70);
    check_modulate(2, 300, 45); /* several token segments per sample */
}

static void check_gated_add(int B, int N, int C) {
    size_t n = (size_t)B * N * C;
    Arr x = arr_rand(n, -1, 1), gate = arr_rand((size_t)B * C, -1, 1), y = arr_rand(n, -1, 1), out = arr_nan(n);
    CPU.gated_add_fwd(out.h, x.h, gate.h, y.h, B, N, C);
    GPU.gated_add_fwd(out.d, x.d, gate.d, y.d, B, N, C);
    EXPECT_CLOSE(out, TOL_FP32);
    Arr dout = arr_rand(n, -1, 1);
    for (int mask = 1; mask < 8; mask++) {
        Arr dx = arr_rand(n, -1, 1), dg = arr_rand((size_t)B * C, -1, 1), dy = arr_rand(n, -1, 1);
        CPU.gated_add_bwd(H(dx, 0), H(dg, 1), H(dy, 2), dout.h, gate.h, y.h, B, N, C);
        GPU.gated_add_bwd(D(dx, 0), D(dg, 1), D(dy, 2), dout.d, gate.d, y.d, B, N, C);
        CHECK_IF(dx, 0, TOL_FP32);
        CHECK_IF(dg, 1, TOL_FP32);
        CHECK_IF(dy, 2, TOL_FP32);
    }
}

Test(cuda_ops, gated_add) {
    check_gated_add(3, 37, 70);
    check_gated_add(2, 300, 45);
}

/* ---- activations and adds ---- */

Test(cuda_ops, swiglu) {
    int M = 37, h = 53;
    Arr inp = arr_rand((size_t)M * 2 * h, -4, 4), out = arr_nan((size_t)M * h);
    CPU.swiglu_fwd(out.h, inp.h, M, h);
    GPU.swiglu_fwd(out.d, inp.d, M, h);
    EXPECT_CLOSE(out, TOL_FP32);
    Arr dout = arr_rand((size_t)M * h, -1, 1), dinp = arr_rand((size_t)M * 2 * h, -1, 1);
    CPU.swiglu_bwd(dinp.h, dout.h, inp.h, M, h);
    GPU.swiglu_bwd(dinp.d, dout.d, inp.d, M, h);
    EXPECT_CLOSE(dinp, TOL_FP32);
}

Test(cuda_ops, silu) {
    size_t n = 1001;
    Arr inp = arr_rand(n, -6, 6), out = arr_nan(n);
    CPU.silu_fwd(out.h, inp.h, n);
    GPU.silu_fwd(out.d, inp.d, n);
    EXPECT_CLOSE(out, TOL_FP32);
    Arr dout = arr_rand(n, -1, 1), dinp = arr_rand(n, -1, 1);
    CPU.silu_bwd(dinp.h, dout.h, inp.h, n);
    GPU.silu_bwd(dinp.d, dout.d, inp.d, n);
    EXPECT_CLOSE(dinp, TOL_FP32);
}

Test(cuda_ops, add_and_accumulate) {
    size_t n = 1001;
    Arr a = arr_rand(n, -1, 1), b = arr_rand(n, -1, 1), out = arr_nan(n);
    CPU.add_fwd(out.h, a.h, b.h, n);
    GPU.add_fwd(out.d, a.d, b.d, n);
    EXPECT_CLOSE(out, TOL_FP32);
    CPU.accumulate(a.h, b.h, n);
    GPU.accumulate(a.d, b.d, n);
    EXPECT_CLOSE(a, TOL_FP32);
}

Test(cuda_ops, add_rows) {
    int B = 3, N = 37, C = 70;
    size_t n = (size_t)B * N * C;
    Arr x = arr_rand(n, -1, 1), y = arr_rand((size_t)N * C, -1, 1), out = arr_nan(n);
    CPU.add_rows_fwd(out.h, x.h, y.h, B, N, C);
    GPU.add_rows_fwd(out.d, x.d, y.d, B, N, C);
    EXPECT_CLOSE(out, TOL_FP32);
    Arr dout = arr_rand(n, -1, 1);
    for (int mask = 1; mask < 4; mask++) {
        Arr dx = arr_rand(n, -1, 1), dy = arr_rand((size_t)N * C, -1, 1);
        CPU.add_rows_bwd(H(dx, 0), H(dy, 1), dout.h, B, N, C);
        GPU.add_rows_bwd(D(dx, 0), D(dy, 1), dout.d, B, N, C);
        CHECK_IF(dx, 0, TOL_FP32);
        CHECK_IF(dy, 1, TOL_FP32);
    }
}

/* ---- layout ops ---- */

Test(cuda_ops, qkv_split) {
    int B = 2, N = 37, H_ = 3, hd = 18;
    size_t n = (size_t)B * H_ * N * hd;
    Arr qkv = arr_rand(3 * n, -1, 1), q = arr_nan(n), k = arr_nan(n), v = arr_nan(n);
    CPU.qkv_split_fwd(q.h, k.h, v.h, qkv.h, B, N, H_, hd);
    GPU.qkv_split_fwd(q.d, k.d, v.d, qkv.d, B, N, H_, hd);
    EXPECT_CLOSE(q, TOL_FP32);
    EXPECT_CLOSE(k, TOL_FP32);
    EXPECT_CLOSE(v, TOL_FP32);
    Arr dq = arr_rand(n, -1, 1), dk = arr_rand(n, -1, 1), dv = arr_rand(n, -1, 1);
    for (int mask = 1; mask < 8; mask++) { /* which of dq, dk, dv are given */
        Arr dqkv = arr_rand(3 * n, -1, 1);
        CPU.qkv_split_bwd(dqkv.h, H(dq, 0), H(dk, 1), H(dv, 2), B, N, H_, hd);
        GPU.qkv_split_bwd(dqkv.d, D(dq, 0), D(dk, 1), D(dv, 2), B, N, H_, hd);
        EXPECT_CLOSE(dqkv, TOL_FP32);
    }
}

Test(cuda_ops, chunk) {
    int B = 5, k = 6, C = 70;
    for (int j = 0; j < k; j += 3) {
        Arr x = arr_rand((size_t)B * k * C, -1, 1), out = arr_nan((size_t)B * C);
        CPU.chunk_fwd(out.h, x.h, B, k, C, j);
        GPU.chunk_fwd(out.d, x.d, B, k, C, j);
        EXPECT_CLOSE(out, TOL_FP32);
        Arr dout = arr_rand((size_t)B * C, -1, 1), dx = arr_rand((size_t)B * k * C, -1, 1);
        CPU.chunk_bwd(dx.h, dout.h, B, k, C, j);
        GPU.chunk_bwd(dx.d, dout.d, B, k, C, j);
        EXPECT_CLOSE(dx, TOL_FP32);
    }
}

Test(cuda_ops, incontext) {
    int B = 3, N = 37, L = 4, C = 70;
    size_t nx = (size_t)B * N * C, no = (size_t)B * (L + N) * C;
    Arr x = arr_rand(nx, -1, 1), yemb = arr_rand((size_t)B * C, -1, 1), pos = arr_rand((size_t)L * C, -1, 1);
    Arr out = arr_nan(no);
    CPU.incontext_prepend_fwd(out.h, x.h, yemb.h, pos.h, B, N, L, C);
    GPU.incontext_prepend_fwd(out.d, x.d, yemb.d, pos.d, B, N, L, C);
    EXPECT_CLOSE(out, TOL_FP32);
    Arr dout = arr_rand(no, -1, 1);
    for (int mask = 1; mask < 8; mask++) {
        Arr dx = arr_rand(nx, -1, 1), dy = arr_rand((size_t)B * C, -1, 1), dp = arr_rand((size_t)L * C, -1, 1);
        CPU.incontext_prepend_bwd(H(dx, 0), H(dy, 1), H(dp, 2), dout.h, B, N, L, C);
        GPU.incontext_prepend_bwd(D(dx, 0), D(dy, 1), D(dp, 2), dout.d, B, N, L, C);
        CHECK_IF(dx, 0, TOL_FP32);
        CHECK_IF(dy, 1, TOL_FP32);
        CHECK_IF(dp, 2, TOL_FP32);
    }
    Arr s = arr_nan(nx);
    CPU.incontext_strip_fwd(s.h, out.h, B, N, L, C);
    GPU.incontext_strip_fwd(s.d, out.d, B, N, L, C);
    EXPECT_CLOSE(s, TOL_FP32);
    Arr ds = arr_rand(nx, -1, 1), dfull = arr_rand(no, -1, 1);
    CPU.incontext_strip_bwd(dfull.h, ds.h, B, N, L, C);
    GPU.incontext_strip_bwd(dfull.d, ds.d, B, N, L, C);
    EXPECT_CLOSE(dfull, TOL_FP32);
}

/* ---- images ---- */

static void check_patchify(int B, int C, int Hh, int W, int p) {
    size_t ni = (size_t)B * C * Hh * W, nt = (size_t)B * (Hh / p) * (W / p) * C * p * p;
    Arr img = arr_rand(ni, -1, 1), tok = arr_nan(nt);
    CPU.patchify_fwd(tok.h, img.h, B, C, Hh, W, p);
    GPU.patchify_fwd(tok.d, img.d, B, C, Hh, W, p);
    EXPECT_CLOSE(tok, TOL_FP32);
    Arr dtok = arr_rand(nt, -1, 1), dimg = arr_rand(ni, -1, 1);
    CPU.patchify_bwd(dimg.h, dtok.h, B, C, Hh, W, p);
    GPU.patchify_bwd(dimg.d, dtok.d, B, C, Hh, W, p);
    EXPECT_CLOSE(dimg, TOL_FP32);
}

static void check_unpatchify(int B, int C, int Hh, int W, int p) {
    size_t ni = (size_t)B * C * Hh * W, nt = (size_t)B * (Hh / p) * (W / p) * C * p * p;
    Arr tok = arr_rand(nt, -1, 1), img = arr_nan(ni);
    CPU.unpatchify_fwd(img.h, tok.h, B, C, Hh, W, p);
    GPU.unpatchify_fwd(img.d, tok.d, B, C, Hh, W, p);
    EXPECT_CLOSE(img, TOL_FP32);
    Arr dimg = arr_rand(ni, -1, 1), dtok = arr_rand(nt, -1, 1);
    CPU.unpatchify_bwd(dtok.h, dimg.h, B, C, Hh, W, p);
    GPU.unpatchify_bwd(dtok.d, dimg.d, B, C, Hh, W, p);
    EXPECT_CLOSE(dtok, TOL_FP32);
}

Test(cuda_ops, patchify_unpatchify) {
    check_patchify(2, 3, 10, 14, 2);
    check_patchify(2, 3, 9, 15, 3);
    check_patchify(2, 1, 11, 15, 2); /* trailing row and column outside the grid */
    check_unpatchify(2, 3, 10, 14, 2);
    check_unpatchify(2, 3, 9, 15, 3);
}

static void check_unfold(int B, int C, int Hh, int W, int k, int s, int pad, int cl) {
    int Ho = (Hh + 2 * pad - k) / s + 1, Wo = (W + 2 * pad - k) / s + 1;
    size_t ni = (size_t)B * C * Hh * W, nt = (size_t)B * Ho * Wo * C * k * k;
    Arr img = arr_rand(ni, -1, 1), out = arr_nan(nt);
    CPU.unfold_fwd(out.h, img.h, B, C, Hh, W, k, s, pad, cl);
    GPU.unfold_fwd(out.d, img.d, B, C, Hh, W, k, s, pad, cl);
    EXPECT_CLOSE(out, TOL_FP32);
    Arr dout = arr_rand(nt, -1, 1), dimg = arr_rand(ni, -1, 1);
    CPU.unfold_bwd(dimg.h, dout.h, B, C, Hh, W, k, s, pad, cl);
    GPU.unfold_bwd(dimg.d, dout.d, B, C, Hh, W, k, s, pad, cl);
    EXPECT_CLOSE(dimg, TOL_FP32);
}

Test(cuda_ops, unfold) {
    for (int cl = 0; cl <= 1; cl++) { /* [B, C, H, W] and channels last */
        check_unfold(2, 3, 11, 13, 4, 3, 1, cl); /* overlapping windows, padding */
        check_unfold(2, 2, 12, 9, 3, 2, 1, cl);
        check_unfold(2, 3, 10, 14, 2, 2, 0, cl); /* = patchify */
        check_unfold(1, 1, 7, 7, 5, 1, 2, cl);   /* every pixel in up to 25 windows */
        check_unfold(1, 5, 8, 6, 3, 1, 1, cl);   /* VGG's 3x3 convolution */
    }
}

/* ---- the convolutional networks' ops (kernels/cpu/vision.c) ---- */

Test(cuda_ops, relu) {
    size_t n = 1001;
    Arr x = arr_rand(n, -1, 1), out = arr_nan(n);
    CPU.relu_fwd(out.h, x.h, n);
    GPU.relu_fwd(out.d, x.d, n);
    EXPECT_CLOSE(out, TOL_FP32);
    Arr dout = arr_rand(n, -1, 1), dx = arr_rand(n, -1, 1);
    CPU.relu_bwd(dx.h, dout.h, out.h, n);
    GPU.relu_bwd(dx.d, dout.d, out.d, n);
    EXPECT_CLOSE(dx, TOL_FP32);
}

static void check_maxpool2(int B, int Hh, int W, int C, int ties) {
    size_t ni = (size_t)B * Hh * W * C, no = (size_t)B * (Hh / 2) * (W / 2) * C;
    Arr x = arr_rand(ni, -1, 1), out = arr_nan(no);
    if (ties) { /* values from {0, 1}: windows with equal maxima, the first wins on both sides */
        for (size_t i = 0; i < ni; i++) x.h[i] = x.h[i] > 0 ? 1.0f : 0.0f;
        arr_upload(&x);
    }
    CPU.maxpool2_fwd(out.h, x.h, B, Hh, W, C);
    GPU.maxpool2_fwd(out.d, x.d, B, Hh, W, C);
    EXPECT_CLOSE(out, TOL_FP32);
    Arr dout = arr_rand(no, -1, 1), dx = arr_rand(ni, -1, 1);
    CPU.maxpool2_bwd(dx.h, dout.h, x.h, B, Hh, W, C);
    GPU.maxpool2_bwd(dx.d, dout.d, x.d, B, Hh, W, C);
    EXPECT_CLOSE(dx, TOL_FP32);
}

Test(cuda_ops, maxpool2) {
    check_maxpool2(2, 8, 6, 5, 0);
    check_maxpool2(2, 7, 9, 3, 0); /* odd sizes: the last row and column are dropped */
    check_maxpool2(1, 6, 6, 4, 1);
}

static void check_lpips_dist(int B, int N, int C, int zero_pixel) {
    size_t n = (size_t)B * N * C;
    Arr a = arr_rand(n, -1, 1), f = arr_rand(n, -1, 1), w = arr_rand((size_t)C, 0, 1), out = arr_nan((size_t)B);
    if (zero_pixel) { /* an all-zero feature vector (after a ReLU): zero gradient, not NaN */
        for (int c = 0; c < C; c++) a.h[c] = 0.0f, f.h[(size_t)N * C + c] = 0.0f;
        arr_upload(&a), arr_upload(&f);
    }
    CPU.lpips_dist_fwd(out.h, a.h, f.h, w.h, B, N, C);
    GPU.lpips_dist_fwd(out.d, a.d, f.d, w.d, B, N, C);
    EXPECT_CLOSE(out, TOL_FP32);
    Arr dout = arr_rand((size_t)B, -1, 1);
    for (int mask = 1; mask <= 3; mask++) {
        Arr da = arr_rand(n, -1, 1), df = arr_rand(n, -1, 1);
        CPU.lpips_dist_bwd(H(da, 0), H(df, 1), dout.h, a.h, f.h, w.h, B, N, C);
        GPU.lpips_dist_bwd(D(da, 0), D(df, 1), dout.d, a.d, f.d, w.d, B, N, C);
        CHECK_IF(da, 0, TOL_FP32);
        CHECK_IF(df, 1, TOL_FP32);
    }
}

/* ---- DINOv2's ops ---- */

static void check_layernorm(int rows, int C) {
    Arr x = arr_rand((size_t)rows * C, -2, 3), w = arr_rand((size_t)C, 0.5f, 1.5f), b = arr_rand((size_t)C, -1, 1);
    Arr out = arr_nan((size_t)rows * C), st = arr_nan((size_t)2 * rows);
    CPU.layernorm_fwd(out.h, st.h, st.h + rows, x.h, w.h, b.h, rows, C, 1e-6f);
    GPU.layernorm_fwd(out.d, st.d, st.d + rows, x.d, w.d, b.d, rows, C, 1e-6f);
    EXPECT_CLOSE(out, TOL_FP32);
    EXPECT_CLOSE(st, TOL_FP32);
    Arr dout = arr_rand((size_t)rows * C, -1, 1);
    for (int mask = 1; mask <= 7; mask++) {
        Arr dx = arr_rand((size_t)rows * C, -1, 1), dw = arr_rand((size_t)C, -1, 1), db = arr_rand((size_t)C, -1, 1);
        CPU.layernorm_bwd(H(dx, 0), H(dw, 1), H(db, 2), dout.h, x.h, w.h, st.h, st.h + rows, rows, C);
        GPU.layernorm_bwd(D(dx, 0), D(dw, 1), D(db, 2), dout.d, x.d, w.d, st.d, st.d + rows, rows, C);
        CHECK_IF(dx, 0, TOL_FP32);
        CHECK_IF(dw, 1, TOL_FP32);
        CHECK_IF(db, 2, TOL_FP32);
    }
}

Test(cuda_ops, layernorm) {
    check_layernorm(7, 768); /* DINOv2's width */
    check_layernorm(33, 10);
}

Test(cuda_ops, gelu) {
    size_t n = 1001;
    Arr inp = arr_rand(n, -6, 6), out = arr_nan(n);
    CPU.gelu_fwd(out.h, inp.h, n);
    GPU.gelu_fwd(out.d, inp.d, n);
    EXPECT_CLOSE(out, TOL_FP32);
    Arr dout = arr_rand(n, -1, 1), dinp = arr_rand(n, -1, 1);
    CPU.gelu_bwd(dinp.h, dout.h, inp.h, n);
    GPU.gelu_bwd(dinp.d, dout.d, inp.d, n);
    EXPECT_CLOSE(dinp, TOL_FP32);
}

Test(cuda_ops, cosine) {
    int rows = 37, C = 768;
    size_t n = (size_t)rows * C;
    Arr a = arr_rand(n, -1, 1), b = arr_rand(n, -1, 1), out = arr_nan((size_t)rows);
    for (int c = 0; c < C; c++) a.h[c] = 0.0f; /* row 0 of a: the clamped norm */
    arr_upload(&a);
    CPU.cosine_fwd(out.h, a.h, b.h, rows, C);
    GPU.cosine_fwd(out.d, a.d, b.d, rows, C);
    EXPECT_CLOSE(out, TOL_FP32);
    Arr dout = arr_rand((size_t)rows, -1, 1);
    for (int mask = 1; mask <= 3; mask++) {
        Arr da = arr_rand(n, -1, 1), db = arr_rand(n, -1, 1);
        CPU.cosine_bwd(H(da, 0), H(db, 1), dout.h, a.h, b.h, rows, C);
        GPU.cosine_bwd(D(da, 0), D(db, 1), dout.d, a.d, b.d, rows, C);
        CHECK_IF(da, 0, TOL_FP32);
        CHECK_IF(db, 1, TOL_FP32);
    }
}

static void check_resize(int P, int Hi, int Wi, int Ho, int Wo, float ry, float rx) {
    size_t ni = (size_t)P * Hi * Wi, no = (size_t)P * Ho * Wo;
    Arr x = arr_rand(ni, -1, 1), out = arr_nan(no);
    CPU.resize_bicubic_fwd(out.h, x.h, P, Hi, Wi, Ho, Wo, ry, rx);
    GPU.resize_bicubic_fwd(out.d, x.d, P, Hi, Wi, Ho, Wo, ry, rx);
    EXPECT_CLOSE(out, TOL_FP32);
    Arr dout = arr_rand(no, -1, 1), dx = arr_rand(ni, -1, 1);
    CPU.resize_bicubic_bwd(dx.h, dout.h, P, Hi, Wi, Ho, Wo, ry, rx);
    GPU.resize_bicubic_bwd(dx.d, dout.d, P, Hi, Wi, Ho, Wo, ry, rx);
    EXPECT_CLOSE(dx, TOL_FP32);
}

Test(cuda_ops, resize_bicubic) {
    check_resize(3, 64, 64, 56, 56, 64.0f / 56, 64.0f / 56); /* 256 -> 224 at a quarter of the size */
    check_resize(2, 37, 37, 16, 16, 37.0f / 16.1f, 37.0f / 16.1f); /* DINOv2's position table */
    check_resize(1, 5, 9, 12, 20, 5.0f / 12, 9.0f / 20); /* upsampling: taps fold onto the borders */
}

/* ---- the FID Inception's forward-only ops ---- */

static void check_unfold2d(int B, int C, int Hh, int W, int kh, int kw, int s, int ph, int pw, int cl) {
    int Ho = (Hh + 2 * ph - kh) / s + 1, Wo = (W + 2 * pw - kw) / s + 1;
    size_t ni = (size_t)B * C * Hh * W, nt = (size_t)B * Ho * Wo * C * kh * kw;
    Arr img = arr_rand(ni, -1, 1), out = arr_nan(nt);
    CPU.unfold2d_fwd(out.h, img.h, B, C, Hh, W, kh, kw, s, ph, pw, cl);
    GPU.unfold2d_fwd(out.d, img.d, B, C, Hh, W, kh, kw, s, ph, pw, cl);
    EXPECT_CLOSE(out, TOL_FP32);
}

Test(cuda_ops, unfold2d) {
    for (int cl = 0; cl <= 1; cl++) {
        check_unfold2d(2, 3, 9, 11, 1, 7, 1, 0, 3, cl); /* the Inception's 1x7 and 7x1 */
        check_unfold2d(2, 3, 9, 11, 7, 1, 1, 3, 0, cl);
        check_unfold2d(1, 2, 8, 7, 1, 3, 1, 0, 1, cl); /* 1x3 and 3x1 (Mixed_7b, 7c) */
        check_unfold2d(1, 2, 8, 7, 3, 1, 1, 1, 0, cl);
        check_unfold2d(2, 3, 15, 13, 3, 3, 2, 0, 0, cl); /* 3x3 at stride 2, odd sides */
        check_unfold2d(1, 4, 9, 9, 5, 5, 1, 2, 2, cl);
    }
}

static void check_pool2d(int B, int Hh, int W, int C, int k, int s, int pad, int avg) {
    int Ho = (Hh + 2 * pad - k) / s + 1, Wo = (W + 2 * pad - k) / s + 1;
    Arr x = arr_rand((size_t)B * Hh * W * C, -1, 1), out = arr_nan((size_t)B * Ho * Wo * C);
    CPU.pool2d_fwd(out.h, x.h, B, Hh, W, C, k, s, pad, avg);
    GPU.pool2d_fwd(out.d, x.d, B, Hh, W, C, k, s, pad, avg);
    EXPECT_CLOSE(out, TOL_FP32);
}

Test(cuda_ops, pool2d) {
    for (int avg = 0; avg <= 1; avg++) {
        check_pool2d(2, 15, 13, 37, 3, 2, 0, avg); /* 3x3/2: the Inception's reductions (odd sides) */
        check_pool2d(2, 9, 11, 37, 3, 1, 1, avg);  /* 3x3/1 padded: the blocks' pools, border windows of 4 and 6 */
        check_pool2d(1, 6, 5, 3, 2, 2, 1, avg);
    }
}

Test(cuda_ops, concat_cols) {
    int rows = 37, C1 = 5, C2 = 70;
    Arr a = arr_rand((size_t)rows * C1, -1, 1), b = arr_rand((size_t)rows * C2, -1, 1);
    Arr out = arr_nan((size_t)rows * (C1 + C2));
    CPU.concat_cols_fwd(out.h, a.h, rows, C1 + C2, 0, C1);
    GPU.concat_cols_fwd(out.d, a.d, rows, C1 + C2, 0, C1);
    CPU.concat_cols_fwd(out.h, b.h, rows, C1 + C2, C1, C2);
    GPU.concat_cols_fwd(out.d, b.d, rows, C1 + C2, C1, C2);
    EXPECT_CLOSE(out, TOL_FP32); /* NaN left anywhere: a column not written */
}

static void check_bilinear(int P, int Hi, int Wi, int Ho, int Wo) {
    Arr x = arr_rand((size_t)P * Hi * Wi, 0, 255), out = arr_nan((size_t)P * Ho * Wo);
    CPU.resize_bilinear_tf_fwd(out.h, x.h, P, Hi, Wi, Ho, Wo);
    GPU.resize_bilinear_tf_fwd(out.d, x.d, P, Hi, Wi, Ho, Wo);
    EXPECT_CLOSE(out, 0.0); /* the same roundings in the same order: bit for bit */
}

Test(cuda_ops, resize_bilinear_tf) {
    check_bilinear(3, 16, 12, 37, 41); /* upsampling: the last rows and columns clamp */
    check_bilinear(2, 40, 33, 29, 29); /* downsampling */
    check_bilinear(1, 9, 9, 9, 9);     /* the same size: a copy */
}

Test(cuda_ops, lpips_dist) {
    check_lpips_dist(2, 37, 64, 0);
    check_lpips_dist(3, 5, 3, 1);
}

/* ---- conditioning ---- */

Test(cuda_ops, timestep_embed) {
    int B = 37, dim = 70;
    Arr t = arr_rand((size_t)B, 0, 1000), out = arr_nan((size_t)B * dim);
    CPU.timestep_embed_fwd(out.h, t.h, B, dim);
    GPU.timestep_embed_fwd(out.d, t.d, B, dim);
    EXPECT_CLOSE(out, TOL_FP32);
    Arr dout = arr_rand((size_t)B * dim, -1, 1), dt = arr_rand((size_t)B, -1, 1);
    CPU.timestep_embed_bwd(dt.h, dout.h, t.h, B, dim);
    GPU.timestep_embed_bwd(dt.d, dout.d, t.d, B, dim);
    EXPECT_CLOSE(dt, TOL_FP32);
}

Test(cuda_ops, embedding) {
    int B = 37, C = 70, rows = 11, idx[37];
    for (int b = 0; b < B; b++) idx[b] = (b * 7 + 3) % rows; /* every row used by several samples */
    int *didx = dev_ints(idx, B);
    Arr table = arr_rand((size_t)rows * C, -1, 1), out = arr_nan((size_t)B * C);
    CPU.embedding_fwd(out.h, table.h, idx, B, C);
    GPU.embedding_fwd(out.d, table.d, didx, B, C);
    EXPECT_CLOSE(out, TOL_FP32);
    Arr dout = arr_rand((size_t)B * C, -1, 1), dtable = arr_rand((size_t)rows * C, -1, 1);
    CPU.embedding_bwd(dtable.h, dout.h, idx, B, C);
    GPU.embedding_bwd(dtable.d, dout.d, didx, B, C);
    EXPECT_CLOSE(dtable, TOL_FP32);
}

/* ---- losses and pooling ---- */

Test(cuda_ops, vloss) {
    int B = 3, per = 3 * 61 * 67; /* 12261: several double-sum segments per sample */
    size_t n = (size_t)B * per;
    Arr xhat = arr_rand(n, -1, 1), x = arr_rand(n, -1, 1), t = arr_rand((size_t)B, 0, 0.9f);
    t.h[1] = 0.99f; /* the clamped denominator */
    arr_upload(&t);
    Arr loss = arr_nan(1);
    CPU.vloss_fwd(loss.h, xhat.h, x.h, t.h, B, per);
    GPU.vloss_fwd(loss.d, xhat.d, x.d, t.d, B, per);
    EXPECT_CLOSE(loss, TOL_FP32);
    Arr dloss = arr_rand(1, 0.5f, 2), dxhat = arr_rand(n, -1e-4f, 1e-4f);
    CPU.vloss_bwd(dxhat.h, dloss.h, xhat.h, x.h, t.h, B, per);
    GPU.vloss_bwd(dxhat.d, dloss.d, xhat.d, x.d, t.d, B, per);
    EXPECT_CLOSE(dxhat, TOL_FP32);
}

Test(cuda_ops, mse) {
    size_t n = 10007;
    Arr a = arr_rand(n, -1, 1), b = arr_rand(n, -1, 1), loss = arr_nan(1);
    CPU.mse_fwd(loss.h, a.h, b.h, n);
    GPU.mse_fwd(loss.d, a.d, b.d, n);
    EXPECT_CLOSE(loss, TOL_FP32);
    Arr dloss = arr_rand(1, 0.5f, 2);
    for (int mask = 1; mask < 4; mask++) {
        Arr da = arr_rand(n, -1e-3f, 1e-3f), db = arr_rand(n, -1e-3f, 1e-3f);
        CPU.mse_bwd(H(da, 0), H(db, 1), dloss.h, a.h, b.h, n);
        GPU.mse_bwd(D(da, 0), D(db, 1), dloss.d, a.d, b.d, n);
        CHECK_IF(da, 0, TOL_FP32);
        CHECK_IF(db, 1, TOL_FP32);
    }
}

Test(cuda_ops, xent) {
    int B = 37, K = 13, labels[37];
    for (int b = 0; b < B; b++) labels[b] = (b * 5 + 2) % K;
    int *dlabels = dev_ints(labels, B);
    Arr logits = arr_rand((size_t)B * K, -8, 8), loss = arr_nan(1), probs = arr_nan((size_t)B * K);
    CPU.xent_fwd(loss.h, probs.h, logits.h, labels, B, K);
    GPU.xent_fwd(loss.d, probs.d, logits.d, dlabels, B, K);
    EXPECT_CLOSE(loss, TOL_FP32);
    EXPECT_CLOSE(probs, TOL_FP32);
    Arr p = arr_rand((size_t)B * K, 0, 1); /* backward from the CPU's probabilities on both sides */
    memcpy(p.h, probs.h, (size_t)B * K * sizeof(float));
    arr_upload(&p);
    Arr dloss = arr_rand(1, 0.5f, 2), dlogits = arr_rand((size_t)B * K, -0.1f, 0.1f);
    CPU.xent_bwd(dlogits.h, dloss.h, p.h, labels, B, K);
    GPU.xent_bwd(dlogits.d, dloss.d, p.d, dlabels, B, K);
    EXPECT_CLOSE(dlogits, TOL_FP32);
}

static void check_mean_tokens(int B, int N, int C) {
    size_t n = (size_t)B * N * C;
    Arr x = arr_rand(n, -1, 1), out = arr_nan((size_t)B * C);
    CPU.mean_tokens_fwd(out.h, x.h, B, N, C);
    GPU.mean_tokens_fwd(out.d, x.d, B, N, C);
    EXPECT_CLOSE(out, TOL_FP32);
    Arr dout = arr_rand((size_t)B * C, -1, 1), dx = arr_rand(n, -1, 1);
    CPU.mean_tokens_bwd(dx.h, dout.h, B, N, C);
    GPU.mean_tokens_bwd(dx.d, dout.d, B, N, C);
    EXPECT_CLOSE(dx, TOL_FP32);
}

Test(cuda_ops, mean_tokens) {
    check_mean_tokens(3, 37, 70);
    check_mean_tokens(2, 300, 45);
}

/* ---- dropout: the GPU's Philox must give the CPU's mask, exactly ---- */

Test(cuda_ops, dropout_mask_is_the_cpus) {
    size_t n = 1001; /* not a multiple of 4: the last Philox block is partial */
    float p = 0.3f;
    uint64_t seed = 0x0123456789abcdefull, stream = RNG_STREAM_DROPOUT + 0x9876543ull;
    Arr x = arr_rand(n, 0.5f, 1.5f), out = arr_nan(n);
    CPU.dropout_fwd(out.h, x.h, n, p, seed, stream);
    GPU.dropout_fwd(out.d, x.d, n, p, seed, stream);
    EXPECT_CLOSE(out, 0.0);
    size_t dropped = 0;
    for (size_t i = 0; i < n; i++) dropped += out.h[i] == 0.0f;
    cr_expect(dropped > n / 5 && dropped < n * 2 / 5, "dropped %zu of %zu at p = 0.3", dropped, n);
    Arr dout = arr_rand(n, -1, 1), dx = arr_rand(n, -1, 1);
    CPU.dropout_bwd(dx.h, dout.h, n, p, seed, stream);
    GPU.dropout_bwd(dx.d, dout.d, n, p, seed, stream);
    EXPECT_CLOSE(dx, 0.0);
}

/* ---- determinism: the fixed-order reductions give the same bits twice ---- */

static void expect_same_bits(const Arr *a, const float *first, const char *what) {
    float *again = arr_download(a);
    cr_expect(memcmp(again, first, a->n * sizeof(float)) == 0, "%s differs between two identical runs", what);
    free(again);
}

Test(cuda_ops, reductions_are_deterministic) {
    int M = 5000, C = 77;
    Arr x = arr_rand((size_t)M * C, -1, 1), dout = arr_rand((size_t)M * C, -1, 1), w = arr_rand((size_t)C, 0.5f, 1.5f);
    Arr rstd = arr_rand((size_t)M, 0.5f, 2), db = arr_rand((size_t)C, 0, 0), dw = arr_rand((size_t)C, 0, 0);
    Arr loss = arr_rand(1, 0, 0), t = arr_rand(2, 0, 1);
    float *first[3];
    for (int run = 0; run < 2; run++) {
        cuda_memset(db.d, 0, (size_t)C * sizeof(float));
        cuda_memset(dw.d, 0, (size_t)C * sizeof(float));
        GPU.linear_bwd(NULL, NULL, db.d, dout.d, x.d, w.d, M, 1, C);
        GPU.rmsnorm_bwd(NULL, dw.d, dout.d, x.d, w.d, rstd.d, M, C);
        GPU.vloss_fwd(loss.d, x.d, dout.d, t.d, 2, M * C / 2);
        if (run == 0) {
            first[0] = arr_download(&db), first[1] = arr_download(&dw), first[2] = arr_download(&loss);
        } else {
            expect_same_bits(&db, first[0], "linear db");
            expect_same_bits(&dw, first[1], "rmsnorm dw");
            expect_same_bits(&loss, first[2], "vloss");
        }
    }
    for (int i = 0; i < 3; i++) free(first[i]);
}

/* ---- the table: ops_cuda holds every entry of core/op_list.h, its own kernel in each ---- */

Test(cuda_ops, ops_cuda_table_is_complete) {
    /* Every function pointer after the name, whatever entries the table gains. */
    const char *base = (const char *)&ops_cuda;
    for (size_t off = offsetof(OpTable, name) + sizeof ops_cuda.name; off + sizeof(void *) <= sizeof(OpTable);
         off += sizeof(void *)) {
        void *fn;
        memcpy(&fn, base + off, sizeof fn);
        cr_expect(fn != NULL, "ops_cuda has a NULL entry at byte offset %zu", off);
    }
#define OP(ret, op, params) cr_expect(ops_cuda.op == cuda_##op, "ops_cuda." #op " is not cuda_" #op);
#include "core/op_list.h"
#undef OP
}
