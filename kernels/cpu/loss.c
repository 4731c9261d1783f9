/* kernels/cpu/loss.c — the JiT v-loss and a plain MSE (router distillation).
 * The v-loss: With v = (x - z)/d and
 * v_hat = (x_hat - z)/d, v - v_hat = (x - x_hat)/d, so z drops out. Partial
 * sums per sample, added in order, keep the loss bit-reproducible. */
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
