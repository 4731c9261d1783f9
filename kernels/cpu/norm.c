/* kernels/cpu/norm.c — RMSNorm with a learnable weight (also per-head qk-norm:
 * rows = B*H*N, C = head dim, one weight shared by the heads), and DINOv2's
 * LayerNorm with weight and bias. Row statistics accumulate in double. */
#include <math.h>

#include "kernels/cpu/cpu.h"

void cpu_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int rows, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (size_t)r * C;
        float *o = out + (size_t)r * C;
        float s = cpu_rms_rstd(x, C, eps);
        rstd[r] = s;
        for (int c = 0; c < C; c++) o[c] = x[c] * s * w[c];
    }
}

/* y = x r w, r = (mean x^2 + eps)^-1/2:
 * dx = r (w dy) - r^3/C x sum(w dy x);  dw = sum over rows of dy x r. */
void cpu_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w, const float *rstd,
                     int rows, int C) {
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (int r = 0; r < rows; r++) {
            const float *x = inp + (size_t)r * C, *dy = dout + (size_t)r * C;
            float *dx = dinp + (size_t)r * C;
            float s = rstd[r];
            double dot = 0.0;
            for (int c = 0; c < C; c++) dot += (double)w[c] * dy[c] * x[c];
            float k = (float)(dot * s * s * s / C);
            for (int c = 0; c < C; c++) dx[c] += s * w[c] * dy[c] - k * x[c];
        }
    }
    if (dw) {
#pragma omp parallel
        {
            int c0, c1;
            cpu_thread_range(C, &c0, &c1);
            for (int r = 0; r < rows; r++) {
                const float *x = inp + (size_t)r * C, *dy = dout + (size_t)r * C;
                float s = rstd[r];
                for (int c = c0; c < c1; c++) dw[c] += dy[c] * x[c] * s;
            }
        }
    }
}

/* LayerNorm (DINOv2): y = (x - mean) r w + b, r = (var + eps)^-1/2 with the
 * biased variance. With g = w dy and xh = (x - mean) r:
 * dx = r (g - mean(g) - xh mean(g xh));  dw = sum dy xh;  db = sum dy. */
void cpu_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, int rows,
                       int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (size_t)r * C;
        float *o = out + (size_t)r * C;
        double s = 0.0, ss = 0.0;
        for (int c = 0; c < C; c++) s += x[c];
        double mu = s / C;
        for (int c = 0; c < C; c++) ss += (x[c] - mu) * (x[c] - mu);
        double rs = 1.0 / sqrt(ss / C + eps);
        mean[r] = (float)mu, rstd[r] = (float)rs;
        for (int c = 0; c < C; c++) o[c] = (float)((x[c] - mu) * rs) * w[c] + b[c];
    }
}

void cpu_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                       const float *mean, const float *rstd, int rows, int C) {
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (int r = 0; r < rows; r++) {
            const float *x = inp + (size_t)r * C, *dy = dout + (size_t)r * C;
            float *dx = dinp + (size_t)r * C;
            double mu = mean[r], rs = rstd[r], sg = 0.0, sgx = 0.0;
            for (int c = 0; c < C; c++) {
                double g = (double)w[c] * dy[c];
                sg += g, sgx += g * (x[c] - mu) * rs;
            }
            sg /= C, sgx /= C;
            for (int c = 0; c < C; c++)
                dx[c] += (float)(rs * ((double)w[c] * dy[c] - sg - (x[c] - mu) * rs * sgx));
        }
    }
    if (dw || db) {
#pragma omp parallel
        {
            int c0, c1;
            cpu_thread_range(C, &c0, &c1);
            for (int r = 0; r < rows; r++) {
                const float *x = inp + (size_t)r * C, *dy = dout + (size_t)r * C;
                for (int c = c0; c < c1; c++) {
                    if (dw) dw[c] += dy[c] * (float)((x[c] - mean[r]) * rstd[r]);
                    if (db) db[c] += dy[c];
                }
            }
        }
    }
}
