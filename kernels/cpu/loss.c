/* kernels/cpu/loss.c — the JiT v-loss, a plain MSE (router distillation) and
 * the cosine similarity of rows (REPA, P-DINO).
 * The v-loss: With v = (x - z)/d and
 * v_hat = (x_hat - z)/d, v - v_hat = (x - x_hat)/d, so z drops out. Partial
 * sums per sample, added in order, keep the loss bit-reproducible. */
#include <math.h>

#include "kernels/cpu/cpu.h"

static inline float vloss_denom(float t) {
    float d = 1.0f - t;
    return d > 0.05f ? d : 0.05f;
}

void cpu_vloss_fwd(float *loss, const float *xhat, const float *x, const float *t, int B, int per) {
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        double s = 0.0;
        const float *xh = xhat + (size_t)b * per, *xx = x + (size_t)b * per;
        for (int i = 0; i < per; i++) {
            double e = (double)xx[i] - xh[i];
            s += e * e;
        }
        double d = vloss_denom(t[b]);
        total += s / (d * d);
    }
    loss[0] = (float)(total / ((double)B * per));
}

void cpu_vloss_bwd(float *dxhat, const float *dloss, const float *xhat, const float *x, const float *t, int B,
                   int per) {
    float g = dloss[0] * 2.0f / ((float)B * per);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float d = vloss_denom(t[b]), k = g / (d * d);
        for (int i = 0; i < per; i++) {
            size_t j = (size_t)b * per + i;
            dxhat[j] += k * (xhat[j] - x[j]);
        }
    }
}

/* Sequential double sum: reproducible and accurate for large n. */
void cpu_mse_fwd(float *loss, const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)a[i] - b[i];
        s += e * e;
    }
    loss[0] = (float)(s / (double)n);
}

void cpu_mse_bwd(float *da, float *db, const float *dloss, const float *a, const float *b, size_t n) {
    float g = dloss[0] * 2.0f / (float)n;
#pragma omp parallel for schedule(static) if (n > 16384)
    for (size_t i = 0; i < n; i++) {
        float e = g * (a[i] - b[i]);
        if (da) da[i] += e;
        if (db) db[i] -= e;
    }
}

/* Cosine similarity of rows, PyTorch's eps rule: each norm is clamped at
 * 1e-8 from below. d cos / d a = b / (na nb) - cos a / na^2 where |a| > eps
 * (the clamp is a constant below it: then only the first term). */
#define COS_EPS 1e-8

void cpu_cosine_fwd(float *out, const float *a, const float *b, int rows, int C) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *x = a + (size_t)r * C, *y = b + (size_t)r * C;
        double xy = 0, xx = 0, yy = 0;
        for (int c = 0; c < C; c++) xy += (double)x[c] * y[c], xx += (double)x[c] * x[c], yy += (double)y[c] * y[c];
        out[r] = (float)(xy / (fmax(sqrt(xx), COS_EPS) * fmax(sqrt(yy), COS_EPS)));
    }
}

void cpu_cosine_bwd(float *da, float *db, const float *dout, const float *a, const float *b, int rows, int C) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *x = a + (size_t)r * C, *y = b + (size_t)r * C;
        double xy = 0, xx = 0, yy = 0;
        for (int c = 0; c < C; c++) xy += (double)x[c] * y[c], xx += (double)x[c] * x[c], yy += (double)y[c] * y[c];
        double nx = sqrt(xx), ny = sqrt(yy), cx = fmax(nx, COS_EPS), cy = fmax(ny, COS_EPS);
        double cs = xy / (cx * cy), g = dout[r];
        for (int c = 0; c < C; c++) {
            if (da) da[(size_t)r * C + c] += (float)(g * (y[c] / (cx * cy) - (nx > COS_EPS ? cs * x[c] / xx : 0.0)));
            if (db) db[(size_t)r * C + c] += (float)(g * (x[c] / (cx * cy) - (ny > COS_EPS ? cs * y[c] / yy : 0.0)));
        }
    }
}
