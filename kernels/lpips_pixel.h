/* kernels/lpips_pixel.h — LPIPS's per-pixel distance and its gradient, the
 * one definition the CPU kernel (kernels/cpu/vision.c) and its CUDA twin
 * (kernels/cuda/vision.cu) share, like kernels/bicubic.h: plain C that nvcc
 * also compiles for the device. For a pixel's feature vectors a and f (C
 * channels) and the head w:
 *   u = v / (|v| + eps), eps outside the root (LPIPS's normalize_tensor);
 *   d = sum_c w_c (u_a - u_f)_c^2.
 * Sums run in double, in channel order, so both devices agree. */
#ifndef KERNELS_LPIPS_PIXEL_H
#define KERNELS_LPIPS_PIXEL_H

#include <math.h>
#include <stddef.h>

#ifdef __CUDACC__
#define LPIPS_FN __host__ __device__ static inline
#else
#define LPIPS_FN static inline
#endif

#define LPIPS_EPS 1e-10

LPIPS_FN double lpips_pixel_norm(const float *v, int C) {
    double s = 0.0;
    for (int c = 0; c < C; c++) s += (double)v[c] * v[c];
    return sqrt(s);
}

LPIPS_FN double lpips_pixel_dist(const float *a, const float *f, const float *w, int C) {
    double ia = 1.0 / (lpips_pixel_norm(a, C) + LPIPS_EPS), iff = 1.0 / (lpips_pixel_norm(f, C) + LPIPS_EPS), s = 0.0;
    for (int c = 0; c < C; c++) {
        double d = a[c] * ia - f[c] * iff;
        s += w[c] * d * d;
    }
    return s;
}

/* Adds scale x d(d)/da to da and scale x d(d)/df to df (either may be NULL).
 * du/dv = I/(|v| + eps) - v v^T / (|v| (|v| + eps)^2), so with g = dL/du,
 * dL/dv = g/(|v| + eps) - v (v.g) / (|v| (|v| + eps)^2). At v = 0 the
 * second term is 0/0; LPIPS's gradient there is taken as 0 (PyTorch gives
 * NaN). g_c = 2 scale w_c (u_a - u_f)_c for a (its negative for f) is
 * recomputed per channel rather than stored: no scratch memory. */
LPIPS_FN void lpips_pixel_bwd(float *da, float *df, const float *a, const float *f, const float *w, int C,
                              double scale) {
    double na = lpips_pixel_norm(a, C), nf = lpips_pixel_norm(f, C);
    double ia = 1.0 / (na + LPIPS_EPS), iff = 1.0 / (nf + LPIPS_EPS), ag = 0.0, fg = 0.0;
    for (int c = 0; c < C; c++) {
        double g = 2.0 * scale * w[c] * (a[c] * ia - f[c] * iff);
        ag += a[c] * g, fg += f[c] * g;
    }
    double ka = na > 0.0 ? ag * ia * ia / na : 0.0, kf = nf > 0.0 ? fg * iff * iff / nf : 0.0;
    for (int c = 0; c < C; c++) {
        double g = 2.0 * scale * w[c] * (a[c] * ia - f[c] * iff);
        if (da && na > 0.0) da[c] += (float)(g * ia - a[c] * ka);
        if (df && nf > 0.0) df[c] -= (float)(g * iff - f[c] * kf);
    }
}

#endif
