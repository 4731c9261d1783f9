/* tests/bench/perf_model.c — the kernels of a JiT training step on the CUDA
 * backend with their FLOPs and bytes, and the roofline prediction of each
 * (perf_model.h says what and why; docs/performance.md the numbers' sources).
 *
 * Byte counts follow what kernels/cuda does, in fp32 storage (activations,
 * gradients and parameters are float32; BF16 mode reads weights from their
 * bf16 mirror and rounds activations into bf16 copies first, linear.cu): a forward reads its inputs and writes its
 * output once; a backward reads what it needs and accumulates (+=: read and
 * write) into gradient buffers that the graph's arena zeroed when it made them
 * (one memset each, counted as "grad buffers zeroed"). Small per-image arrays
 * (adaLN's shift/scale/gate, biases, norm weights) are counted where they are
 * a full pass, left out where they are a row. */
#include "tests/bench/perf_model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "core/params.h"

PmRates pm_rates_h100(void) {
    return (PmRates){.gpu = "H100 SXM5 (bf16 dense 989.4 TFLOP/s, fp32 66.9 TFLOP/s, HBM3 3.35 TB/s)",
                     .tc_peak = 989.4e12,
                     .simt_peak = 66.9e12,
                     .hbm = 3.35e12,
                     .f_gemm = 0.70,
                     .f_attn_tc = 0.35,
                     .f_attn_simt = 0.40,
                     .f_mem = 0.85,
                     .f_sla2_tc = 0.25,
                     .launch_s = 3e-6,
                     .tc_bwd_products = 7};
}

void pm_list_init(PmList *l, const PmRates *r) {
    memset(l, 0, sizeof *l);
    l->r = *r;
}

double pm_time(const PmRates *r, PmUnit unit, double frac, double flops, double dram, long launches) {
    double peak = unit == PM_TC ? r->tc_peak : r->simt_peak;
    double tc = unit == PM_MEM || flops <= 0 ? 0.0 : flops / (peak * frac);
    double tm = dram / (r->hbm * r->f_mem);
    return (tc > tm ? tc : tm) + (double)launches * r->launch_s;
}

/* One launch family; rows with the same name and phase are summed (the time
 * per instance, since a roofline does not add). */
static void pm_add(PmList *l, const char *name, char phase, PmUnit unit, double frac, double flops, double bytes,
                   double dram, long launches) {
    PmKernel *k = NULL;
    for (int i = 0; i < l->n; i++)
        if (l->k[i].phase == phase && strcmp(l->k[i].name, name) == 0) k = &l->k[i];
    if (!k) {
        CHECK(l->n < PM_MAX_KERNELS, "perf model: more than %d kernel rows", PM_MAX_KERNELS);
        k = &l->k[l->n++];
        memset(k, 0, sizeof *k);
        snprintf(k->name, sizeof k->name, "%s", name);
        k->phase = phase, k->unit = unit, k->frac = frac;
    }
    k->flops += flops, k->bytes += bytes, k->dram += dram, k->launches += launches;
    k->time_s += pm_time(&l->r, unit, frac, flops, dram, launches);
}

static void pm_mem(PmList *l, const char *name, char phase, double bytes, long launches) {
    pm_add(l, name, phase, PM_MEM, l->r.f_mem, 0, bytes, bytes, launches);
}

/* A graph op the step records on its tape (what --check compares). */
static void pm_op(PmList *l, const char *op, int calls) {
    for (int i = 0; i < l->n_ops; i++)
        if (strcmp(l->op[i], op) == 0) {
            l->op_calls[i] += calls;
            return;
        }
    CHECK(l->n_ops < PM_MAX_OPS, "perf model: more than %d ops", PM_MAX_OPS);
    l->op[l->n_ops] = op, l->op_calls[l->n_ops++] = calls;
}

int pm_op_calls(const PmList *l, const char *op) {
    for (int i = 0; i < l->n_ops; i++)
        if (strcmp(l->op[i], op) == 0) return l->op_calls[i];
    return 0;
}

/* The arena's memset of a gradient buffer of n floats (graph_grad). */
static void pm_grad_zero(PmList *l, double n) { pm_mem(l, "grad buffers zeroed", 'b', 4 * n, 1); }

/* linear.cu in BF16 mode: out [M, OC] = inp [M, IC] w^T + b. The weight's
 * bf16 copy comes from the parameters' mirror (wmirror.cu, written by AdamW:
 * counted there), the activations are rounded per call (linear_to_bf16:
 * 4 bytes read, 2 written). Forward: inp rounded, one cuBLASLt product
 * (bf16 operands, fp32 output, bias in the epilogue). Backward: dout and
 * (for dw) inp rounded; dinp += dout w and dw += dout^T inp, each reading
 * and writing its fp32 output (beta = 1), the bias gradient in dw's BGRADB
 * epilogue (an OC vector written, then added into db by one small kernel).
 * With l->gemm_percall, the code before the mirror: w rounded as well at
 * every product (forward and dgrad), db as a column sum over dout (two
 * kernels). */
void pm_linear(PmList *l, const char *role, double M, double IC, double OC, int bias, int dinp) {
    char n[48];
    const double f = l->r.f_gemm, fl = 2 * M * IC * OC, wcopy = l->gemm_percall ? OC * IC : 0;
    const int wl = l->gemm_percall ? 1 : 0;
    pm_op(l, "linear", 1);
    snprintf(n, sizeof n, "%s: to bf16", role);
    pm_mem(l, n, 'f', 6 * (wcopy + M * IC), 1 + wl);
    snprintf(n, sizeof n, "%s: gemm", role);
    double b = 2 * (OC * IC + M * IC) + 4 * M * OC + (bias ? 4 * OC : 0);
    pm_add(l, n, 'f', PM_TC, f, fl, b, b, 1);
    if (bias) {
        snprintf(n, sizeof n, "%s: bias grad", role);
        if (l->gemm_percall) pm_mem(l, n, 'b', 4 * M * OC + 8 * OC, 2); /* cuda_colsum: two kernels */
        else pm_mem(l, n, 'b', 12 * OC, 1); /* BGRADB's vector (written in the product, below) added into db */
    }
    snprintf(n, sizeof n, "%s: to bf16", role);
    pm_mem(l, n, 'b', 6 * (M * OC + (dinp ? wcopy : 0) + M * IC), 2 + (dinp ? wl : 0));
    if (dinp) {
        snprintf(n, sizeof n, "%s: dgrad gemm", role);
        b = 2 * (OC * IC + M * OC) + 8 * M * IC;
        pm_add(l, n, 'b', PM_TC, f, fl, b, b, 1);
        pm_grad_zero(l, M * IC);
    }
    snprintf(n, sizeof n, "%s: wgrad gemm", role);
    b = 2 * (M * IC + M * OC) + 8 * OC * IC + (bias && !l->gemm_percall ? 4 * OC : 0);
    pm_add(l, n, 'b', PM_TC, f, fl, b, b, 1);
}

/* An element-wise op over n floats: forward reads `in` arrays and writes
 * one; backward reads `bin` arrays and accumulates into `acc` gradients, in
 * `blaunch` kernels; `zero`: how many of the gradient buffers it first
 * creates (the arena zeroes them). */
static void pm_ew(PmList *l, const char *op, const char *name, double n, int in, int bin, int acc, int blaunch,
                  int zero, int recorded) {
    if (recorded) pm_op(l, op, 1);
    pm_mem(l, name, 'f', 4 * n * (in + 1), 1);
    if (!recorded) return; /* no gradient flows through it */
    pm_mem(l, name, 'b', 4 * n * (bin + 2 * acc), blaunch);
    if (zero) pm_grad_zero(l, n * zero);
}

double pm_attention_model_flops(int B, int H, int N, int d, int backward) {
    double f = 4.0 * B * H * (double)N * N * d;
    return backward ? 2.5 * f : f;
}

static int pm_pad_hd(int d) { return d <= 32 ? 32 : d <= 64 ? 64 : 128; }
static double pm_ceil(double a, double b) { return ceil(a / b); }

/* Full attention. The SIMT kernels (attention.cu): head dim zero-padded to
 * 32/64/128 and tiles of 64 x 64 (64 x 32 forward, 32 x 32 backward above
 * 64); every tile computed whole (partial ones masked), with fp32 FMAs
 * (flash_tile.cuh: one ld.shared per two FMAs). Forward: 2 products; backward
 * bwd_dq: D = rowsum(P dP) recomputed (2 products, K and V read a second
 * time), then dQ (3 products); bwd_dkdv: 4 products. The tensor-core design
 * (FlashAttention-2, bf16 mma.sync, 64-row query and 64-key tiles): forward
 * 2 products; backward D = rowsum(dO . O) from the forward's output (a
 * memory pass), then tc_bwd_products products. Bytes: the tiles as the
 * kernels load them from the op's fp32 arrays (K, V once per query tile,
 * Q, dO, LSE, D once per key tile; head dim padded to 16); dram: each array once (the re-reads of
 * one (b, h) pair's tiles, whose blocks run together, hit L2). */
void pm_attention(PmList *l, PmAttn kind, int B, int H, int N, int d) {
    const int tc = kind == PM_ATTN_TC;
    /* the SIMT kernels are compiled for head dims 32, 64, 128; mma.sync's k is 16 */
    const double BH = (double)B * H, hd = tc ? 16 * pm_ceil(d, 16) : pm_pad_hd(d), E = BH * N * d, rows = BH * N;
    const double ftr = 64, ftc = tc || hd <= 64 ? 64 : 32, btr = tc || hd <= 64 ? 64 : 32, btc = btr;
    const double nq = pm_ceil(N, ftr), nkf = pm_ceil(N, ftc), nqb = pm_ceil(N, btr), nkb = pm_ceil(N, btc);
    /* one product over the padded tiles: 2 x (padded rows) x (padded keys) x hd */
    const double pf = 2 * BH * (nq * ftr) * (nkf * ftc) * hd, pb = 2 * BH * (nqb * btr) * (nkb * btc) * hd;
    const PmUnit u = tc ? PM_TC : PM_SIMT;
    const double f = tc ? l->r.f_attn_tc : l->r.f_attn_simt;
    const char *fw = tc ? "attention fwd (tensor cores)" : "attention fwd (SIMT)";
    /* forward: Q once, K and V per query tile, O and the LSE written */
    pm_add(l, fw, 'f', u, f, 2 * pf, 4 * E + 8 * E * nq + 4 * E + 4 * rows, 16 * E + 4 * rows, 1);
    if (!tc) {
        /* bwd_dq: Q, dO once; K, V twice per query tile; LSE read, D written; dQ += */
        pm_add(l, "attention bwd dQ+D (SIMT)", 'b', u, f, 5 * pb, 8 * E + 16 * E * nqb + 8 * rows + 8 * E,
               16 * E + 8 * E + 8 * rows, 1);
        /* bwd_dkdv: K, V once; Q, dO, LSE, D per key tile; dK, dV += */
        pm_add(l, "attention bwd dK dV (SIMT)", 'b', u, f, 4 * pb, 8 * E + 8 * E * nkb + 8 * rows * nkb + 16 * E,
               16 * E + 16 * E + 8 * rows, 1);
    } else {
        pm_mem(l, "attention bwd D=rowsum(dO*O)", 'b', 8 * E + 4 * rows, 1);
        /* K, V once; Q, dO, LSE, D per key tile; dK, dV written; dQ accumulated per key tile */
        pm_add(l, "attention bwd (tensor cores)", 'b', u, f, l->r.tc_bwd_products * pb,
               8 * E + 8 * E * nkb + 8 * rows * nkb + 16 * E + 8 * E * nkb, 16 * E + 24 * E + 8 * rows,
               l->r.tc_bwd_products > 5 ? 2 : 1);
    }
}

/* SLA2 (hard top-k), as kernels/cuda/sla2*.cu run it in BF16 mode. p =
 * k_sel / nk of the key blocks are selected per query block; E = B H N d.
 * Shared by both paths: the router (7 launches: smoothing mean, pooling,
 * projections, scores, top-k; q read once, k twice), the linear branch's
 * fp32 SIMT kernels (forward, on the SIMT path only: phi(q), phi(k), h_j =
 * phi(K_j)^T V_j (2 N d^2 per pair), the totals, H_i as totals minus
 * selected, den, O_l = phi(q) H_i (2 N d^2); the TC path's forward is
 * sla2_linear_tc.cu's bf16 products, below; backward on both paths: the
 * SIMT forward recomputed, dA, dH (2 N d^2), dphi_q
 * (2 N d^2), phi's backward twice, dh, dphi_k and dv (4 N d^2); each
 * N x d array read or written once per kernel that touches it) and alpha's
 * gradient; the combination alpha O_s + (1 - alpha) O_l is a kernel of its
 * own on the SIMT path and the tensor-core forward's epilogue. The sparse
 * branch:
 * - SIMT (today's path before sla2_tc.cu, and FP32 mode): attention.cu's
 *   flash tiles of 64 x 64 (64 x 32 above head dim 64) with the block mask
 *   as weights; a tile is skipped only when none of its (64/bq)(64/bk)
 *   block pairs is selected, computed fraction 1 - (1 - p)^pairs (random
 *   selection); backward recomputes D = rowsum(P dP) in BF16 mode: 2 + 3 + 4
 *   products over the computed tiles.
 * - TC (sla2_tc.cu): q, k, v (and dO) converted to bf16 (read 4, write 2
 *   bytes, head dim padded), the lists (1 launch), the block-sparse
 *   mma.sync kernels over exactly the selected pairs: forward 2 products,
 *   backward D from O_s (a memory pass) then tc_bwd_products products;
 *   K/V (forward, dQ) or Q/dO/LSE/D (dK/dV) bf16 tiles loaded once per
 *   selected pair, at f_sla2_tc of the bf16 peak. */
void pm_sla2(PmList *l, PmAttn kind, int B, int H, int N, int d, int bq, int bk, float topk) {
    const double BH = (double)B * H, E = BH * N * d, rows = BH * N, nq = pm_ceil(N, bq), nk = pm_ceil(N, bk);
    double ksel = floor(topk * nk + 0.5);
    ksel = ksel < 1 ? 1 : ksel > nk ? nk : ksel;
    const double p = ksel / nk, dd = (double)d * d, per = dd + d, mm = ksel < nk - ksel ? ksel : nk - ksel;
    const double blk = BH * nk * per * 4, qblk = BH * nq * per * 4;
    /* router */
    pm_mem(l, "attention sla2 router", 'f', 12 * E + 8 * BH * (nq + nk) * d, 7);
    /* linear branch forward (SIMT path) and its recomputation in backward (both paths) */
    for (int ph = kind == PM_ATTN_TC; ph < 2; ph++) {
        const char phase = ph ? 'b' : 'f';
        pm_mem(l, "attention sla2 linear: phi", phase, 16 * E, 2);
        pm_add(l, "attention sla2 linear: h_j, O_l", phase, PM_SIMT, l->r.f_attn_simt, 4 * BH * N * dd,
               8 * E + blk + 8 * E + qblk, 16 * E + blk + qblk, 2);
        pm_mem(l, "attention sla2 linear: H_i, den", phase, 2 * blk + qblk * (mm + 1) + 8 * E, 3);
    }
    if (kind == PM_ATTN_TC) {
        /* sla2_linear_tc.cu: bf16 features (phi(q), phi(k) padded to HDP, [v | 1] to E1 = d + 1 rounded up to
         * 16), then three batched mma.sync products, each padded to 16 only: states [h_j | z_j] (rows in
         * 64-row tiles, k = the block's tokens), the (1 - M) sums (16 query blocks x 256 columns per block,
         * the states re-read per 16 query blocks) and O_l (bq rows, k = HDP, the division in the epilogue) */
        const double hp = d <= 32 ? 32 : d <= 64 ? 64 : d <= 80 ? 80 : 128, e1 = 16 * pm_ceil(d + 1, 16);
        const double S = BH * nk * hp * e1, Sq = BH * nq * hp * e1, fs = l->r.f_sla2_tc;
        pm_mem(l, "attention sla2 linear tc: features", 'f', 12 * E + 2 * rows * (2 * hp + e1), 1);
        pm_add(l, "attention sla2 linear tc: states", 'f', PM_TC, fs, 2 * BH * nk * bk * 64 * pm_ceil(hp, 64) * e1,
               2 * rows * (hp + e1 * pm_ceil(hp, 64)) + 2 * S, 2 * rows * (hp + e1) + 2 * S, 1);
        pm_add(l, "attention sla2 linear tc: (1-M) sums", 'f', PM_TC, fs,
               2 * BH * 16 * pm_ceil(nq, 16) * 16 * pm_ceil(nk, 16) * hp * e1,
               2 * S * pm_ceil(nq, 16) + 4 * BH * nq * nk * (hp * e1 / 256) + 2 * Sq, 2 * S + 4 * BH * nq * nk + 2 * Sq,
               1);
        pm_add(l, "attention sla2 linear tc: O_l", 'f', PM_TC, fs, 2 * BH * nq * bq * hp * e1,
               2 * rows * hp + 2 * Sq + 4 * E, 2 * rows * hp + 2 * Sq + 4 * E, 1);
        /* the backward's dden takes this fp32 O_l, not the forward's bf16 one: phi(q) H_i again (SIMT) */
        pm_add(l, "attention sla2 linear bwd: O_l fp32", 'b', PM_SIMT, l->r.f_attn_simt, 2 * BH * N * dd,
               4 * E + qblk + 4 * rows + 4 * E, 4 * E + qblk + 4 * rows + 4 * E, 1);
    }
    /* linear backward: dA, dH, dphi_q, phi bwd (q, k), dh, dphi_k + dv, dalpha */
    pm_mem(l, "attention sla2 linear bwd: dA, phi bwd", 'b', 12 * E + 2 * 20 * E, 3);
    pm_add(l, "attention sla2 linear bwd: dH, dphi", 'b', PM_SIMT, l->r.f_attn_simt, 8 * BH * N * dd,
           8 * E + qblk + 8 * E + qblk + 16 * E + blk + 8 * E, 40 * E + 2 * qblk + blk, 3);
    pm_mem(l, "attention sla2 linear bwd: dh_j", 'b', 2 * qblk + blk * (mm + 1), 2);
    pm_mem(l, "attention sla2 dalpha", 'b', 12 * E, 2);
    if (kind == PM_ATTN_SIMT) {
        pm_mem(l, "attention sla2 combine", 'f', 12 * E, 1);
        const double hd = pm_pad_hd(d), tr = 64, tc = hd <= 64 ? 64 : 32, ntq = pm_ceil(N, tr), ntk = pm_ceil(N, tc);
        const double pairs = (tr / bq > 1 ? tr / bq : 1) * (tc / bk > 1 ? tc / bk : 1);
        const double frac = 1 - pow(1 - p, pairs), tiles = BH * ntq * ntk * frac;
        const double pf = 2 * tiles * tr * tc * hd, f = l->r.f_attn_simt;
        pm_add(l, "attention sla2 sparse fwd (SIMT)", 'f', PM_SIMT, f, 2 * pf, 4 * E + 4 * rows + 8 * tiles * tc * hd,
               16 * E + 4 * rows, 1);
        /* D pass and dQ: Q, dO once, K, V per computed tile (twice), dQ +=; dK/dV: K, V once, Q, dO, LSE, D per
         * computed tile, dK, dV += */
        pm_add(l, "attention sla2 sparse bwd (SIMT)", 'b', PM_SIMT, f, 9 * pf,
               8 * E + 16 * tiles * tc * hd + 8 * E + 8 * E + tiles * (8 * tr * hd + 8 * tr) + 16 * E,
               16 * E + 8 * E + 16 * E + 8 * rows, 2);
        return;
    }
    const double HDP = 16 * pm_ceil(d, 16), Ep = BH * N * HDP, sel = BH * nq * ksel;
    const double pf = 2 * sel * bq * bk * HDP, f = l->r.f_sla2_tc;
    pm_mem(l, "attention sla2 to bf16 + lists", 'f', 3 * (4 * E + 2 * Ep) + 4 * BH * nq * nk * 3, 4);
    /* ... and its epilogue writes O_s and the combined output, reading O_l (no combine kernel) */
    pm_add(l, "attention sla2 sparse fwd (tensor cores)", 'f', PM_TC, f, 2 * pf,
           2 * Ep + 4 * sel * bk * HDP + 12 * E + 4 * rows, 6 * Ep + 12 * E + 4 * rows, 1);
    pm_mem(l, "attention sla2 to bf16 + lists", 'b', 3 * (4 * E + 2 * Ep) + 4 * BH * nq * nk * 3, 4);
    pm_mem(l, "attention sla2 bwd D, dO to bf16", 'b', 8 * E + 2 * Ep + 4 * rows, 1);
    /* dK/dV: K, V once, Q, dO, LSE, D per selected pair, dK, dV +=; dQ: Q, dO once, K, V per pair, dQ += */
    pm_add(l, "attention sla2 sparse bwd (tensor cores)", 'b', PM_TC, f, l->r.tc_bwd_products * pf,
           4 * Ep + sel * bq * (4 * HDP + 8) + 16 * E + 4 * Ep + 4 * sel * bk * HDP + 8 * E,
           8 * Ep + 8 * rows + 24 * E, 2);
}

double pm_forward_flops(const JitConfig *c) {
    double D = c->hidden, h = c->mlp_hidden, N = c->tokens, L = c->in_context_len;
    double f = 2 * N * (c->in_channels * c->patch * c->patch) * c->bottleneck + 2 * N * c->bottleneck * D;
    f += 2 * (256 * D + D * D); /* timestep MLP */
    for (int i = 0; i < c->depth; i++) {
        double n = N + (L > 0 && i >= c->in_context_start ? L : 0);
        f += 2 * n * D * 3 * D + 4 * n * n * D + 2 * n * D * D + 2 * n * D * 2 * h + 2 * n * h * D;
        f += 2 * D * 6 * D; /* adaLN */
    }
    f += 2 * D * 2 * D + 2 * N * D * (c->patch * c->patch * c->in_channels);
    return f;
}

/* gated_add(x, gate, a) = x + gate a: backward dx += dout and da += gate
 * dout in one kernel, dgate per-image column sums of dout a (two kernels). */
static void pm_gated_add(PmList *l, double T) {
    pm_op(l, "gated_add", 1);
    pm_mem(l, "gated_add", 'f', 12 * T, 1);
    pm_mem(l, "gated_add", 'b', 4 * T + 8 * T + 8 * T + 8 * T, 3);
    pm_grad_zero(l, 2 * T);
}

/* norm_modulate (fused_norm.cu): [x + gate y, then] RMSNorm and adaLN
 * modulation in one kernel each way over T = rows x C floats. Forward reads
 * x (and y) and writes out (and the residual), plus a row rstd; backward
 * reads dout and r (and res's gradient and y), accumulates dx (and dy), and
 * finishes the column sums of dw, dshift, dscale (and dgate) from per-segment
 * partials (one small kernel each). It first creates the gradient of x (and
 * of y). The chain it replaces (gated_add; rmsnorm: forward 8 T, backward
 * 24 T in 3 kernels; modulate: 8 T, 24 T in 5) moved 168 T bytes with the
 * residual, 64 T without. */
static void pm_norm_modulate(PmList *l, const char *name, double rows, double C, int resid) {
    const double T = rows * C;
    pm_op(l, "norm_modulate", 1);
    pm_mem(l, name, 'f', (resid ? 16 : 8) * T + 4 * rows, 1);
    pm_mem(l, name, 'b', (resid ? 32 : 16) * T + 4 * rows, resid ? 5 : 4);
    pm_grad_zero(l, (resid ? 2 : 1) * T);
}

/* qkv_norm_rope (fused_qkv.cu) over T = M x D floats of each of q, k, v:
 * forward reads qkv (3 T) and writes q, k, v (3 T) and 2 rstd per head row;
 * backward reads dq, dk, dv and q's and k's part of qkv, accumulates dqkv,
 * and finishes dqw, dkw from per-segment partials. The chain it replaces
 * (qkv_split, two rmsnorm, two rope) moved 164 T bytes (56 T forward). */
static void pm_qkv_norm_rope(PmList *l, double T, double rows) {
    pm_op(l, "qkv_norm_rope", 1);
    pm_mem(l, "qkv_norm_rope", 'f', 24 * T + 8 * rows, 1);
    pm_mem(l, "qkv_norm_rope", 'b', 44 * T + 8 * rows, 3);
    pm_grad_zero(l, 3 * T);
}

/* op_chunk of [B, k C] into k parts of [B, C]: one small copy each way. */
static void pm_chunks(PmList *l, double B, double C, int k) {
    pm_op(l, "chunk", k);
    pm_mem(l, "chunk (adaLN split)", 'f', 8 * B * C * k, k);
    pm_mem(l, "chunk (adaLN split)", 'b', 12 * B * C * k, k);
    pm_grad_zero(l, B * C * k);
}

static void pm_block(PmList *l, const JitConfig *c, int i, double B, double n, PmAttn attn) {
    const double D = c->hidden, h = c->mlp_hidden, M = B * n, T = M * D;
    const int H = c->heads, hd = c->head_dim;
    const float drop = (i >= c->depth / 4 && i < 3 * c->depth / 4) ? c->dropout : 0.0f;
    pm_linear(l, "adaLN", B, D, 6 * D, 1, 1);
    pm_chunks(l, B, D, 6);
    pm_norm_modulate(l, "norm_modulate (block)", M, D, 0);
    pm_linear(l, "qkv", M, D, 3 * D, 1, 1);
    pm_qkv_norm_rope(l, T, M * H);
    if (jit_layer_uses_sla2(c, i)) {
        pm_op(l, "sla2_attention", 1);
        pm_sla2(l, attn, (int)B, H, (int)n, hd, c->sla2_block_q, c->sla2_block_k, c->sla2_topk_ratio);
    } else {
        pm_op(l, "attention", 1);
        pm_attention(l, attn, (int)B, H, (int)n, hd);
    }
    pm_grad_zero(l, 3 * T);
    pm_linear(l, "attn proj", M, D, D, 1, 1);
    if (drop > 0) pm_ew(l, "dropout", "dropout", T, 0, 0, 1, 1, 1, 1);
    pm_norm_modulate(l, "norm_modulate (block, residual)", M, D, 1);
    pm_linear(l, "mlp w12", M, D, 2 * h, 1, 1);
    /* swiglu [M, 2h] -> [M, h]: backward reads dout and both halves, accumulates both */
    pm_ew(l, "swiglu", "swiglu", M * h, 1, 3, 2, 1, 2, 1);
    if (drop > 0) pm_ew(l, "dropout", "dropout", M * h, 0, 0, 1, 1, 1, 1);
    pm_linear(l, "mlp w3", M, h, D, 1, 1);
    pm_gated_add(l, T);
}

void pm_jit_step(PmList *l, const JitConfig *c, int batch, int n_ema, PmAttn attn) {
    CHECK(c->repa_dim == 0, "perf model: %s has a REPA projector, which the model does not cover", c->name);
    const double B = batch, D = c->hidden, N = c->tokens, L = c->in_context_len;
    const double P = (double)c->in_channels * c->patch * c->patch, T0 = B * N * D, img = B * N * P;
    /* embedding: patchify (z has no gradient: not on the tape), proj1 (no dinp), proj2, position table */
    pm_mem(l, "patchify / unpatchify", 'f', 8 * img, 1);
    pm_linear(l, "patch embed", B * N, P, c->bottleneck, 0, 0);
    pm_linear(l, "patch embed", B * N, c->bottleneck, D, 1, 1);
    pm_ew(l, "add_rows", "add_rows (position table)", T0, 1, 1, 1, 1, 1, 1);
    /* conditioning: timestep features (no gradient), the t MLP, the class table, SiLU(c) */
    pm_mem(l, "conditioning (small)", 'f', 4 * B * 256, 1);
    pm_linear(l, "t embed", B, 256, D, 1, 0);
    pm_ew(l, "silu", "conditioning (small)", B * D, 1, 2, 1, 1, 1, 1);
    pm_linear(l, "t embed", B, D, D, 1, 1);
    pm_ew(l, "embedding", "conditioning (small)", B * D, 0, 1, 1, 1, 0, 1);
    pm_ew(l, "add", "conditioning (small)", B * D, 2, 1, 2, 1, 2, 1);
    pm_ew(l, "silu", "conditioning (small)", B * D, 1, 2, 1, 1, 1, 1);
    for (int i = 0; i < c->depth; i++) {
        double n = N;
        if (L > 0 && i >= c->in_context_start) {
            n = N + L;
            if (i == c->in_context_start) /* [B, N, D] + 32 class tokens -> [B, N + L, D] */
                pm_ew(l, "incontext_prepend", "in-context tokens", B * n * D, 1, 1, 1, 1, 1, 1);
        }
        pm_block(l, c, i, B, n, attn);
    }
    if (L > 0) pm_ew(l, "incontext_strip", "in-context tokens", T0, 1, 1, 1, 1, 1, 1);
    pm_linear(l, "final", B, D, 2 * D, 1, 1);
    pm_chunks(l, B, D, 2);
    pm_norm_modulate(l, "norm_modulate (final)", B * N, D, 0);
    pm_linear(l, "final", B * N, D, P, 1, 1);
    pm_op(l, "unpatchify", 1);
    pm_mem(l, "patchify / unpatchify", 'f', 8 * img, 1);
    pm_mem(l, "patchify / unpatchify", 'b', 12 * img, 1);
    pm_grad_zero(l, img);
    /* v-loss: reads x_hat, x, z; backward writes dx_hat */
    pm_op(l, "vloss", 1);
    pm_mem(l, "v-loss", 'f', 12 * img, 2);
    pm_mem(l, "v-loss", 'b', 20 * img, 1);
    /* the optimiser over the flat buffers (optim.cu): grads zeroed, the global
     * norm, AdamW (reads w, g, m, v; writes w, m, v), each EMA (reads ema, w; writes ema) */
    JitModel m;
    jit_register(&m, c);
    const double np = (double)m.params.padded;
    jit_free(&m);
    pm_mem(l, "parameter grads zeroed", 'o', 4 * np, 1);
    pm_mem(l, "gradient norm", 'o', 4 * np, 2);
    /* + the bf16 mirror's 2 bytes per float (wmirror.cu), not before it */
    pm_mem(l, "AdamW", 'o', (l->gemm_percall ? 28 : 30) * np, 1);
    pm_mem(l, "EMA", 'o', 12 * np * n_ema, n_ema);
}

double pm_total(const PmList *l, char phase, int what) {
    double s = 0;
    for (int i = 0; i < l->n; i++) {
        const PmKernel *k = &l->k[i];
        if (phase && k->phase != phase) continue;
        s += what == 0 ? k->time_s : what == 1 ? k->flops : what == 2 ? k->bytes : what == 3 ? k->dram
                                                                                     : (double)k->launches;
    }
    return s;
}
