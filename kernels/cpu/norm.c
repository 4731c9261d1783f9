/* kernels/cpu/norm.c — RMSNorm with a learnable weight (also per-head qk-norm:
 * rows = B*H*N, C = head dim, one weight shared by the heads). Math in fp32
 * with a double accumulator for the mean square. */
#include <math.h>

#include "kernels/cpu/cpu.h"

void cpu_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int rows, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (size_t)r * C;
        float *o = out + (size_t)r * C;
        double ss = 0.0;
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        float s = (float)(1.0 / sqrt(ss / C + eps));
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
