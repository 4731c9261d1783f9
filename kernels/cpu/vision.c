/* kernels/cpu/vision.c — the convolutional networks' ops on the CPU (the
 * reference of kernels/cuda/vision.cu): ReLU, 2x2 max pooling and LPIPS's
 * per-layer distance, on channels-last images [B, H*W, C] (the engine's
 * token layout, so a convolution is unfold + linear; see kernels/ops.h). */
#include <math.h>

#include "kernels/cpu/cpu.h"

void cpu_relu_fwd(float *out, const float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void cpu_relu_bwd(float *dx, const float *dout, const float *out, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        if (out[i] > 0.0f) dx[i] += dout[i];
}

/* The window of output pixel (oy, ox), channel c: the index of its first
 * maximum in row-major order (PyTorch keeps the first: a later equal value
 * does not replace it). */
static inline size_t pool_argmax(const float *x, int b, int oy, int ox, int c, int H, int W, int C) {
    size_t best = (((size_t)b * H + 2 * oy) * W + 2 * ox) * C + c;
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            size_t i = (((size_t)b * H + 2 * oy + dy) * W + 2 * ox + dx) * C + c;
            if (x[i] > x[best]) best = i;
        }
    return best;
}

void cpu_maxpool2_fwd(float *out, const float *x, int B, int H, int W, int C) {
    int Ho = H / 2, Wo = W / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < Ho * Wo; t++) {
            float *o = out + ((size_t)b * Ho * Wo + t) * C;
            for (int c = 0; c < C; c++) o[c] = x[pool_argmax(x, b, t / Wo, t % Wo, c, H, W, C)];
        }
}

/* Windows do not overlap: every input element gets at most one gradient. */
void cpu_maxpool2_bwd(float *dx, const float *dout, const float *x, int B, int H, int W, int C) {
    int Ho = H / 2, Wo = W / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < Ho * Wo; t++) {
            const float *d = dout + ((size_t)b * Ho * Wo + t) * C;
            for (int c = 0; c < C; c++) dx[pool_argmax(x, b, t / Wo, t % Wo, c, H, W, C)] += d[c];
        }
}

#define LPIPS_EPS 1e-10 /* LPIPS adds it to the norm, outside the square root */

static double norm2(const float *v, int C) {
    double s = 0.0;
    for (int c = 0; c < C; c++) s += (double)v[c] * v[c];
    return sqrt(s);
}

/* Per sample, pixels in order: the sums do not depend on the threads. */
void cpu_lpips_dist_fwd(float *out, const float *a, const float *f, const float *w, int B, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        double total = 0.0;
        for (int n = 0; n < N; n++) {
            const float *pa = a + ((size_t)b * N + n) * C, *pf = f + ((size_t)b * N + n) * C;
            double ia = 1.0 / (norm2(pa, C) + LPIPS_EPS), iff = 1.0 / (norm2(pf, C) + LPIPS_EPS), s = 0.0;
            for (int c = 0; c < C; c++) {
                double d = pa[c] * ia - pf[c] * iff;
                s += w[c] * d * d;
            }
            total += s;
        }
        out[b] = (float)(total / N);
    }
}

/* u = v / (|v| + eps): du/dv = I/(|v| + eps) - v v^T / (|v| (|v| + eps)^2), so
 * with g = dL/du, dL/dv = g/(|v| + eps) - v (v.g) / (|v| (|v| + eps)^2). At
 * v = 0 the second term is 0/0; LPIPS's gradient there is taken as 0. Here
 * g_c = 2 scale w_c (u_a - u_f)_c for a (its negative for f), recomputed per
 * channel rather than stored (no scratch; as the CUDA kernel does). */
void cpu_lpips_dist_bwd(float *da, float *df, const float *dout, const float *a, const float *f, const float *w, int B,
                        int N, int C) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        double scale = (double)dout[b] / N;
        for (int n = 0; n < N; n++) {
            size_t at = ((size_t)b * N + n) * C;
            const float *pa = a + at, *pf = f + at;
            double na = norm2(pa, C), nf = norm2(pf, C);
            double ia = 1.0 / (na + LPIPS_EPS), iff = 1.0 / (nf + LPIPS_EPS), ag = 0.0, fg = 0.0;
            for (int c = 0; c < C; c++) {
                double g = 2.0 * scale * w[c] * (pa[c] * ia - pf[c] * iff);
                ag += pa[c] * g, fg += pf[c] * g;
            }
            double ka = na > 0.0 ? ag * ia * ia / na : 0.0, kf = nf > 0.0 ? fg * iff * iff / nf : 0.0;
            for (int c = 0; c < C; c++) {
                double g = 2.0 * scale * w[c] * (pa[c] * ia - pf[c] * iff);
                if (da && na > 0.0) da[at + c] += (float)(g * ia - pa[c] * ka);
                if (df && nf > 0.0) df[at + c] -= (float)(g * iff - pf[c] * kf);
            }
        }
    }
}
