/* kernels/cpu/fused.c — the fused element-wise chains of a JiT block, the
 * references their CUDA twins (kernels/cuda/fused_norm.cu, fused_qkv.cu)
 * are held to:
 *   norm_modulate   [gated residual +] RMSNorm + adaLN modulation;
 *   qkv_norm_rope   head split + q/k RMSNorm + 2D RoPE.
 * On the CPU fusing saves nothing worth the risk, so each kernel repeats,
 * expression for expression and in the same summation order, what the
 * unfused chain (gated_add, rmsnorm, modulate; qkv_split, rmsnorm, rope in
 * kernels/cpu/elementwise.c, norm.c, rope.c) computes: the model's results
 * are bit-identical to the unfused ops' (the build has -ffp-contract=off).
 * Where the chain accumulated into a freshly zeroed gradient buffer, the
 * `0.0f + v` below keeps that (it turns -0 into +0, as the buffer did). */
#include <math.h>

#include "kernels/cpu/cpu.h"

/* r = x + gate y (the gated residual, when gate is given) or x. */
void cpu_norm_modulate_fwd(float *out, float *res, float *rstd, const float *x, const float *gate, const float *y,
                           const float *w, const float *shift, const float *scale, int B, int N, int C, float eps) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++) {
            size_t row = (size_t)b * N + n, off = row * C;
            const float *r = x + off, *sh = shift + (size_t)b * C, *sc = scale + (size_t)b * C;
            if (gate) {
                const float *g = gate + (size_t)b * C;
                for (int c = 0; c < C; c++) res[off + c] = x[off + c] + g[c] * y[off + c];
                r = res + off;
            }
            float s = cpu_rms_rstd(r, C, eps);
            rstd[row] = s;
            float *o = out + off;
            for (int c = 0; c < C; c++) {
                float xn = r[c] * s * w[c];
                o[c] = xn * (1.0f + sc[c]) + sh[c];
            }
        }
}

/* With dy = dout (1 + scale) (modulate's backward) and the RMSNorm backward
 * dr = r (w dy) - r^3/C x sum(w dy x) added to res's own gradient dres, the
 * residual's backward spreads the total t: dx += t, dy += gate t,
 * dgate += sum_n t y. dshift, dscale, dgate sum over tokens per sample in
 * token order (as modulate and gated_add); dw over all rows in row order. */
void cpu_norm_modulate_bwd(float *dx, float *dgate, float *dy, float *dw, float *dshift, float *dscale,
                           const float *dout, const float *dres, const float *r, const float *gate, const float *y,
                           const float *w, const float *scale, const float *rstd, int B, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const float *sc = scale + (size_t)b * C;
        for (int n = 0; n < N; n++) {
            size_t row = (size_t)b * N + n, off = row * C;
            const float *d = dout + off, *ri = r + off;
            float s = rstd[row];
            for (int c = 0; c < C; c++) {
                if (dshift) dshift[(size_t)b * C + c] += d[c];
                if (dscale) dscale[(size_t)b * C + c] += d[c] * (ri[c] * s * w[c]);
            }
            if (!dx && !dgate && !dy) continue;
            double dot = 0.0;
            for (int c = 0; c < C; c++) dot += (double)w[c] * (0.0f + d[c] * (1.0f + sc[c])) * ri[c];
            float k = (float)(dot * s * s * s / C);
            for (int c = 0; c < C; c++) {
                float g = 0.0f + d[c] * (1.0f + sc[c]);
                float t = s * w[c] * g - k * ri[c];
                if (dres) t = dres[off + c] + t;
                else if (gate) t = 0.0f + t;
                if (dx) dx[off + c] += t;
                if (gate && dy) dy[off + c] += t * gate[(size_t)b * C + c];
                if (gate && dgate) dgate[(size_t)b * C + c] += t * y[off + c];
            }
        }
    }
    if (!dw) return;
#pragma omp parallel
    {
        int c0, c1;
        cpu_thread_range(C, &c0, &c1);
        for (size_t row = 0; row < (size_t)B * N; row++) {
            const float *d = dout + row * C, *ri = r + row * C, *sc = scale + row / N * C;
            float s = rstd[row];
            for (int c = c0; c < c1; c++) dw[c] += (0.0f + d[c] * (1.0f + sc[c])) * ri[c] * s;
        }
    }
}

/* ---- qkv_norm_rope ---- */

/* One head row of q or k: normalise x (in qkv) into o, then rotate o in place. */
static void fused_norm_rope_row(float *o, float *rstd, const float *x, const float *w, const float *cs,
                                const float *sn, int hd, float eps) {
    float s = cpu_rms_rstd(x, hd, eps);
    *rstd = s;
    for (int c = 0; c < hd; c++) o[c] = x[c] * s * w[c];
    if (!cs) return; /* an in-context token: not rotated */
    for (int j = 0; j < hd / 2; j++) cpu_rope_pair(&o[2 * j], &o[2 * j + 1], o[2 * j], o[2 * j + 1], cs[j], sn[j], 1.0f);
}

/* rstd: [2, B*H*N], q's rows then k's, in [B, H, N] order. */
void cpu_qkv_norm_rope_fwd(float *q, float *k, float *v, float *rstd, const float *qkv, const float *qw,
                           const float *kw, const float *cos, const float *sin, int B, int N, int H, int hd, int n_ctx,
                           float eps) {
    size_t D = (size_t)H * hd, rows = (size_t)B * H * N;
    int half = hd / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int n = 0; n < N; n++) {
                size_t row = ((size_t)b * H + h) * N + n, dst = row * hd;
                const float *src = qkv + ((size_t)b * N + n) * 3 * D + (size_t)h * hd;
                const float *cs = n < n_ctx ? NULL : cos + (size_t)(n - n_ctx) * half;
                const float *sn = n < n_ctx ? NULL : sin + (size_t)(n - n_ctx) * half;
                fused_norm_rope_row(q + dst, rstd + row, src, qw, cs, sn, hd, eps);
                fused_norm_rope_row(k + dst, rstd + rows + row, src + D, kw, cs, sn, hd, eps);
                for (int c = 0; c < hd; c++) v[dst + c] = src[2 * D + c];
            }
}

/* The gradient before the rotation (rope's backward into a zeroed buffer). */
static void fused_unrot(float *g, const float *d, const float *cs, const float *sn, int hd) {
    if (!cs) {
        for (int c = 0; c < hd; c++) g[c] = 0.0f + d[c];
        return;
    }
    for (int j = 0; j < hd / 2; j++) {
        float y0, y1;
        cpu_rope_pair(&y0, &y1, d[2 * j], d[2 * j + 1], cs[j], sn[j], -1.0f);
        g[2 * j] = 0.0f + y0, g[2 * j + 1] = 0.0f + y1;
    }
}

/* The longest head row backward keeps on the stack (op_qkv_norm_rope checks it). */
#define FUSED_MAX_HD QKV_NORM_ROPE_MAX_HD

/* Per head row: unrotate, RMSNorm's backward into the q (k) part of dqkv,
 * v's gradient copied in; the norm weights' gradients afterwards, over the
 * rows in [B, H, N] order as cpu_rmsnorm_bwd sums them. */
void cpu_qkv_norm_rope_bwd(float *dqkv, float *dqw, float *dkw, const float *dq, const float *dk, const float *dv,
                           const float *qkv, const float *qw, const float *kw, const float *rstd, const float *cos,
                           const float *sin, int B, int N, int H, int hd, int n_ctx) {
    size_t D = (size_t)H * hd, rows = (size_t)B * H * N;
    int half = hd / 2;
    for (int part = 0; part < 2; part++) {
        const float *dd = part ? dk : dq, *w = part ? kw : qw;
        float *dwp = part ? dkw : dqw;
        if (!dd) continue;
        if (dqkv) {
#pragma omp parallel for collapse(2) schedule(static)
            for (int b = 0; b < B; b++)
                for (int h = 0; h < H; h++) {
                    float g[FUSED_MAX_HD];
                    for (int n = 0; n < N; n++) {
                        size_t row = ((size_t)b * H + h) * N + n;
                        size_t src = ((size_t)b * N + n) * 3 * D + (size_t)part * D + (size_t)h * hd;
                        const float *x = qkv + src;
                        const float *cs = n < n_ctx ? NULL : cos + (size_t)(n - n_ctx) * half;
                        const float *sn = n < n_ctx ? NULL : sin + (size_t)(n - n_ctx) * half;
                        fused_unrot(g, dd + row * hd, cs, sn, hd);
                        float s = rstd[part * rows + row];
                        double dot = 0.0;
                        for (int c = 0; c < hd; c++) dot += (double)w[c] * g[c] * x[c];
                        float kk = (float)(dot * s * s * s / hd);
                        for (int c = 0; c < hd; c++) dqkv[src + c] += 0.0f + (s * w[c] * g[c] - kk * x[c]);
                    }
                }
        }
        if (!dwp) continue;
#pragma omp parallel
        {
            int c0, c1;
            float g[FUSED_MAX_HD];
            cpu_thread_range(hd, &c0, &c1);
            for (size_t row = 0; row < rows && c0 < c1; row++) {
                int n = (int)(row % N);
                size_t bh = row / N, b = bh / H, h = bh % H;
                const float *x = qkv + (b * N + n) * 3 * D + (size_t)part * D + h * hd;
                const float *cs = n < n_ctx ? NULL : cos + (size_t)(n - n_ctx) * half;
                const float *sn = n < n_ctx ? NULL : sin + (size_t)(n - n_ctx) * half;
                fused_unrot(g, dd + row * hd, cs, sn, hd);
                float s = rstd[part * rows + row];
                for (int c = c0; c < c1; c++) dwp[c] += g[c] * x[c] * s;
            }
        }
    }
    if (dv && dqkv)
#pragma omp parallel for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                for (int n = 0; n < N; n++) {
                    size_t row = ((size_t)b * H + h) * N + n;
                    float *o = dqkv + ((size_t)b * N + n) * 3 * D + 2 * D + (size_t)h * hd;
                    for (int c = 0; c < hd; c++) o[c] += dv[row * hd + c];
                }
}
