/* tests/test_cuda_fused.c — the fused element-wise CUDA kernels
 * (kernels/cuda/fused_norm.cu, fused_qkv.cu) against their CPU twins
 * (kernels/cpu/fused.c), forward and every gradient, with the harness of
 * tests/cuda_check.h (NaN-poisoned outputs, gradients accumulated onto
 * random starts, NULL gradients skipped and left untouched).
 *
 * Sizes: odd widths (the scalar instance, and partial blocks and segments),
 * widths divisible by 4 on 16-byte aligned buffers (the float4 instance), the
 * same shifted by one float (misaligned: must take the scalar instance; under
 * the emulator a float4 access there stops the test with "misaligned 16-byte
 * read"), and JiT-B/16's widths (hidden 768, head dimension 64) and JiT-H's
 * head dimension 80. A second run must be bit-identical (fixed-order sums). */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_check.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cuda/ops_cuda.h"

#define CPU ops_cpu
#define GPU ops_cuda

static void setup(void) {
    cuda_init(0);
    cuda_set_precision(CUDA_PREC_FP32);
}

static void teardown(void) { arr_free_all(); }

TestSuite(cuda_fused, .init = setup, .fini = teardown);

/* n random values at `off` floats past a 256-byte aligned allocation. */
static Arr rand_at(size_t n, size_t off) {
    Arr a = arr_rand(n + off, -1, 1);
    return (Arr){a.h + off, a.d + off, n};
}
static Arr nan_at(size_t n, size_t off) {
    Arr a = arr_nan(n + off);
    return (Arr){a.h + off, a.d + off, n};
}

/* ---- norm_modulate ---- */

/* Gradient subsets: all six; the parameters' only (the first block, whose
 * x needs none); dx alone; the residual's (dx, dgate, dy) alone. */
static const int nm_masks[] = {63, 8 | 16 | 32, 1, 1 | 2 | 4};

static void check_norm_modulate(int B, int N, int C, int resid, size_t off) {
    size_t n = (size_t)B * N * C, bc = (size_t)B * C;
    Arr x = rand_at(n, off), y = rand_at(n, off), gate = rand_at(bc, off), w = rand_at(C, off);
    Arr shift = rand_at(bc, off), scale = rand_at(bc, off);
    Arr out = nan_at(n, off), res = nan_at(n, off), rstd = arr_nan((size_t)B * N);
    CPU.norm_modulate_fwd(out.h, resid ? res.h : NULL, rstd.h, x.h, resid ? gate.h : NULL, resid ? y.h : NULL, w.h,
                          shift.h, scale.h, B, N, C, 1e-6f);
    GPU.norm_modulate_fwd(out.d, resid ? res.d : NULL, rstd.d, x.d, resid ? gate.d : NULL, resid ? y.d : NULL, w.d,
                          shift.d, scale.d, B, N, C, 1e-6f);
    EXPECT_CLOSE(out, TOL_FP32);
    EXPECT_CLOSE(rstd, TOL_FP32);
    if (resid) EXPECT_CLOSE(res, TOL_FP32);
    const Arr *r = resid ? &res : &x;
    /* The CPU's r for both sides, so backward is compared on equal inputs. */
    Arr rr = arr_copy(r), rs = arr_copy(&rstd);
    Arr dout = rand_at(n, off), dres = rand_at(n, off);
    for (size_t m = 0; m < sizeof nm_masks / sizeof nm_masks[0]; m++) {
        int mask = nm_masks[m];
        if (!resid) mask &= ~(2 | 4);
        Arr dx = rand_at(n, off), dg = arr_rand(bc, -1, 1), dy = rand_at(n, off), dw = arr_rand(C, -1, 1);
        Arr dsh = arr_rand(bc, -1, 1), dsc = arr_rand(bc, -1, 1);
        for (int with_dres = 0; with_dres <= resid; with_dres++) {
            CPU.norm_modulate_bwd(H(dx, 0), H(dg, 1), H(dy, 2), H(dw, 3), H(dsh, 4), H(dsc, 5), dout.h,
                                  with_dres ? dres.h : NULL, rr.h, resid ? gate.h : NULL, resid ? y.h : NULL, w.h,
                                  scale.h, rs.h, B, N, C);
            GPU.norm_modulate_bwd(D(dx, 0), D(dg, 1), D(dy, 2), D(dw, 3), D(dsh, 4), D(dsc, 5), dout.d,
                                  with_dres ? dres.d : NULL, rr.d, resid ? gate.d : NULL, resid ? y.d : NULL, w.d,
                                  scale.d, rs.d, B, N, C);
        }
        /* untouched gradients keep their start on both sides, so all compare */
        EXPECT_CLOSE(dx, TOL_FP32);
        EXPECT_CLOSE(dg, TOL_FP32);
        EXPECT_CLOSE(dy, TOL_FP32);
        EXPECT_CLOSE(dw, TOL_FP32);
        EXPECT_CLOSE(dsh, TOL_FP32);
        EXPECT_CLOSE(dsc, TOL_FP32);
    }
}

Test(cuda_fused, norm_modulate_odd) {
    check_norm_modulate(2, 37, 70, 0, 0); /* C % 4 != 0: scalar; two token segments, one partial */
    check_norm_modulate(3, 5, 13, 1, 0);
}

Test(cuda_fused, norm_modulate_vector) {
    check_norm_modulate(2, 37, 72, 0, 0); /* float4 */
    check_norm_modulate(2, 37, 72, 1, 0);
}

Test(cuda_fused, norm_modulate_misaligned) {
    check_norm_modulate(2, 9, 72, 1, 1); /* 4-byte aligned only: scalar */
    check_norm_modulate(2, 9, 72, 0, 2);
}

Test(cuda_fused, norm_modulate_model) {
    check_norm_modulate(GPU_OR_EMU(2, 1), 256, 768, 1, 0); /* JiT-B/16: 256 tokens of width 768 */
}

Test(cuda_fused, norm_modulate_deterministic) {
    int B = 2, N = 70, C = 72;
    size_t n = (size_t)B * N * C;
    Arr r = arr_rand(n, -1, 1), w = arr_rand(C, -1, 1), sc = arr_rand((size_t)B * C, -1, 1);
    Arr rstd = arr_rand((size_t)B * N, 0.5f, 1.5f), dout = arr_rand(n, -1, 1);
    Arr dw[2], dsc[2], dx[2];
    for (int i = 0; i < 2; i++) {
        dw[i] = arr_rand(C, 0, 0), dsc[i] = arr_rand((size_t)B * C, 0, 0), dx[i] = arr_rand(n, 0, 0);
        GPU.norm_modulate_bwd(dx[i].d, NULL, NULL, dw[i].d, NULL, dsc[i].d, dout.d, NULL, r.d, NULL, NULL, w.d, sc.d,
                              rstd.d, B, N, C);
    }
    cr_expect(same_bits(&dw[0], &dw[1]) && same_bits(&dsc[0], &dsc[1]) && same_bits(&dx[0], &dx[1]),
              "norm_modulate backward differs between two runs");
}

/* ---- qkv_norm_rope ---- */

static void check_qkv_norm_rope(int B, int N, int H_, int hd, int n_ctx, size_t off) {
    size_t n = (size_t)B * H_ * N * hd, nt = (size_t)(N - n_ctx) * (hd / 2), rows = (size_t)B * H_ * N;
    Arr qkv = rand_at(3 * n, off), qw = rand_at(hd, off), kw = rand_at(hd, off);
    Arr cs = rand_at(nt, off), sn = rand_at(nt, off);
    Arr q = nan_at(n, off), k = nan_at(n, off), v = nan_at(n, off), rstd = arr_nan(2 * rows);
    CPU.qkv_norm_rope_fwd(q.h, k.h, v.h, rstd.h, qkv.h, qw.h, kw.h, cs.h, sn.h, B, N, H_, hd, n_ctx, 1e-6f);
    GPU.qkv_norm_rope_fwd(q.d, k.d, v.d, rstd.d, qkv.d, qw.d, kw.d, cs.d, sn.d, B, N, H_, hd, n_ctx, 1e-6f);
    EXPECT_CLOSE(q, TOL_FP32);
    EXPECT_CLOSE(k, TOL_FP32);
    EXPECT_CLOSE(v, TOL_FP32);
    EXPECT_CLOSE(rstd, TOL_FP32);
    Arr rs = arr_copy(&rstd);
    Arr dq = rand_at(n, off), dk = rand_at(n, off), dv = rand_at(n, off);
    /* bits 0-2: which of dq, dk, dv arrive; 3-5: which of dqkv, dqw, dkw are wanted */
    static const int masks[] = {63, 7 | 8, 1 | 16, 2 | 32, 4 | 8, 3 | 16 | 32};
    for (size_t m = 0; m < sizeof masks / sizeof masks[0]; m++) {
        int mask = masks[m];
        Arr dqkv = rand_at(3 * n, off), dqw = arr_rand(hd, -1, 1), dkw = arr_rand(hd, -1, 1);
        CPU.qkv_norm_rope_bwd(H(dqkv, 3), H(dqw, 4), H(dkw, 5), H(dq, 0), H(dk, 1), H(dv, 2), qkv.h, qw.h, kw.h,
                              rs.h, cs.h, sn.h, B, N, H_, hd, n_ctx);
        GPU.qkv_norm_rope_bwd(D(dqkv, 3), D(dqw, 4), D(dkw, 5), D(dq, 0), D(dk, 1), D(dv, 2), qkv.d, qw.d, kw.d,
                              rs.d, cs.d, sn.d, B, N, H_, hd, n_ctx);
        EXPECT_CLOSE(dqkv, TOL_FP32);
        EXPECT_CLOSE(dqw, TOL_FP32);
        EXPECT_CLOSE(dkw, TOL_FP32);
    }
}

Test(cuda_fused, qkv_norm_rope_small) {
    check_qkv_norm_rope(2, 37, 3, 16, 3, 0); /* float4, 4 lanes a row, 4 backward segments (one partial) */
    check_qkv_norm_rope(1, 5, 2, 4, 0, 0);   /* one unit a row */
}

Test(cuda_fused, qkv_norm_rope_misaligned) {
    check_qkv_norm_rope(2, 11, 3, 8, 1, 1); /* scalar pairs */
    check_qkv_norm_rope(1, 9, 2, 12, 0, 2);
}

Test(cuda_fused, qkv_norm_rope_model) {
    check_qkv_norm_rope(1, 257, GPU_OR_EMU(12, 2), 64, 1, 0); /* JiT-B/16: hd 64, 256 tokens + 1 unrotated */
    check_qkv_norm_rope(1, 17, 2, 80, 0, 0);                                   /* JiT-H: hd 80 (20 units, 32 lanes) */
}

Test(cuda_fused, qkv_norm_rope_deterministic) {
    int B = 2, N = 40, H_ = 2, hd = 16;
    size_t n = (size_t)B * H_ * N * hd;
    Arr qkv = arr_rand(3 * n, -1, 1), w = arr_rand(hd, -1, 1), cs = arr_rand((size_t)N * hd / 2, -1, 1);
    Arr rstd = arr_rand(2 * (size_t)B * H_ * N, 0.5f, 1.5f), dq = arr_rand(n, -1, 1);
    Arr dw[2];
    for (int i = 0; i < 2; i++) {
        dw[i] = arr_rand(hd, 0, 0);
        GPU.qkv_norm_rope_bwd(NULL, dw[i].d, NULL, dq.d, NULL, NULL, qkv.d, w.d, w.d, rstd.d, cs.d, cs.d, B, N, H_,
                              hd, 0);
    }
    cr_expect(same_bits(&dw[0], &dw[1]), "qkv_norm_rope's dqw differs between two runs");
}

/* ---- the float4 paths of the single-kernel ops (elementwise.cu, loss.cu):
 * the gated residual, SwiGLU and the v-loss's backward; their odd sizes are
 * in test_cuda_ops ---- */

static void check_gated_add_at(int B, int N, int C, size_t off) {
    size_t n = (size_t)B * N * C;
    Arr x = rand_at(n, off), gate = rand_at((size_t)B * C, off), y = rand_at(n, off), out = nan_at(n, off);
    CPU.gated_add_fwd(out.h, x.h, gate.h, y.h, B, N, C);
    GPU.gated_add_fwd(out.d, x.d, gate.d, y.d, B, N, C);
    EXPECT_CLOSE(out, TOL_FP32);
    Arr dout = rand_at(n, off);
    for (int mask = 1; mask < 8; mask++) {
        Arr dx = rand_at(n, off), dg = arr_rand((size_t)B * C, -1, 1), dy = rand_at(n, off);
        CPU.gated_add_bwd(H(dx, 0), H(dg, 1), H(dy, 2), dout.h, gate.h, y.h, B, N, C);
        GPU.gated_add_bwd(D(dx, 0), D(dg, 1), D(dy, 2), dout.d, gate.d, y.d, B, N, C);
        EXPECT_CLOSE(dx, TOL_FP32);
        EXPECT_CLOSE(dg, TOL_FP32);
        EXPECT_CLOSE(dy, TOL_FP32);
    }
}

static void check_swiglu_at(int M, int h, size_t off) {
    Arr inp = rand_at((size_t)M * 2 * h, off), out = nan_at((size_t)M * h, off);
    CPU.swiglu_fwd(out.h, inp.h, M, h);
    GPU.swiglu_fwd(out.d, inp.d, M, h);
    EXPECT_CLOSE(out, TOL_FP32);
    Arr dout = rand_at((size_t)M * h, off), dinp = rand_at((size_t)M * 2 * h, off);
    CPU.swiglu_bwd(dinp.h, dout.h, inp.h, M, h);
    GPU.swiglu_bwd(dinp.d, dout.d, inp.d, M, h);
    EXPECT_CLOSE(dinp, TOL_FP32);
}

static void check_vloss_bwd_at(int B, int per, size_t off) {
    size_t n = (size_t)B * per;
    Arr xhat = rand_at(n, off), x = rand_at(n, off), t = arr_rand((size_t)B, 0, 0.99f);
    Arr dloss = arr_rand(1, 0.5f, 2), dxhat = rand_at(n, off);
    CPU.vloss_bwd(dxhat.h, dloss.h, xhat.h, x.h, t.h, B, per);
    GPU.vloss_bwd(dxhat.d, dloss.d, xhat.d, x.d, t.d, B, per);
    EXPECT_CLOSE(dxhat, TOL_FP32);
}

Test(cuda_fused, vector_elementwise) {
    check_gated_add_at(2, 37, 72, 0); /* float4 */
    check_gated_add_at(2, 37, 72, 1); /* misaligned: scalar */
    check_gated_add_at(1, 40, 768, 0); /* JiT-B/16's width */
    check_swiglu_at(37, 64, 0);
    check_swiglu_at(37, 64, 3);
    check_swiglu_at(5, 48, 2); /* 8-byte aligned only */
    check_vloss_bwd_at(3, 3 * 8 * 8, 0);
    check_vloss_bwd_at(3, 3 * 8 * 8, 1);
}
