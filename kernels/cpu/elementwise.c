/* kernels/cpu/elementwise.c — the cheap ops: adaLN modulate, gated residual,
 * SwiGLU, SiLU, broadcast and plain adds, chunking, dropout. Reductions over
 * tokens (d shift, d scale, d gate) run per sample, so they are reproducible. */
#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/cpu/cpu.h"

#define PAR_IF(n) if ((size_t)(n) > 16384)

void cpu_modulate_fwd(float *out, const float *x, const float *shift, const float *scale, int B, int N, int C) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++) {
            const float *xi = x + ((size_t)b * N + n) * C, *sh = shift + (size_t)b * C, *sc = scale + (size_t)b * C;
            float *o = out + ((size_t)b * N + n) * C;
            for (int c = 0; c < C; c++) o[c] = xi[c] * (1.0f + sc[c]) + sh[c];
        }
}

void cpu_modulate_bwd(float *dx, float *dshift, float *dscale, const float *dout, const float *x, const float *scale,
                      int B, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const float *sc = scale + (size_t)b * C;
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)b * N + n) * C;
            const float *d = dout + off, *xi = x + off;
            if (dx)
                for (int c = 0; c < C; c++) dx[off + c] += d[c] * (1.0f + sc[c]);
            if (dshift)
                for (int c = 0; c < C; c++) dshift[(size_t)b * C + c] += d[c];
            if (dscale)
                for (int c = 0; c < C; c++) dscale[(size_t)b * C + c] += d[c] * xi[c];
        }
    }
}

void cpu_gated_add_fwd(float *out, const float *x, const float *gate, const float *y, int B, int N, int C) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)b * N + n) * C;
            const float *g = gate + (size_t)b * C;
            for (int c = 0; c < C; c++) out[off + c] = x[off + c] + g[c] * y[off + c];
        }
}

void cpu_gated_add_bwd(float *dx, float *dgate, float *dy, const float *dout, const float *gate, const float *y, int B,
                       int N, int C) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const float *g = gate + (size_t)b * C;
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)b * N + n) * C;
            const float *d = dout + off;
            if (dx)
                for (int c = 0; c < C; c++) dx[off + c] += d[c];
            if (dy)
                for (int c = 0; c < C; c++) dy[off + c] += d[c] * g[c];
            if (dgate)
                for (int c = 0; c < C; c++) dgate[(size_t)b * C + c] += d[c] * y[off + c];
        }
    }
}

static inline float sigmoidf_(float x) { return 1.0f / (1.0f + cpu_expf(-x)); }

void cpu_swiglu_fwd(float *out, const float *inp, int M, int h) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        const float *a = inp + (size_t)m * 2 * h, *bb = a + h;
        float *o = out + (size_t)m * h;
        for (int j = 0; j < h; j++) o[j] = a[j] * sigmoidf_(a[j]) * bb[j];
    }
}

/* d silu(a)/da = s (1 + a (1 - s)), s = sigmoid(a) */
void cpu_swiglu_bwd(float *dinp, const float *dout, const float *inp, int M, int h) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        const float *a = inp + (size_t)m * 2 * h, *bb = a + h, *d = dout + (size_t)m * h;
        float *da = dinp + (size_t)m * 2 * h, *db = da + h;
        for (int j = 0; j < h; j++) {
            float s = sigmoidf_(a[j]);
            da[j] += d[j] * bb[j] * s * (1.0f + a[j] * (1.0f - s));
            db[j] += d[j] * a[j] * s;
        }
    }
}

void cpu_silu_fwd(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) PAR_IF(n)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] * sigmoidf_(inp[i]);
}

void cpu_silu_bwd(float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) PAR_IF(n)
    for (size_t i = 0; i < n; i++) {
        float s = sigmoidf_(inp[i]);
        dinp[i] += dout[i] * s * (1.0f + inp[i] * (1.0f - s));
    }
}

void cpu_add_rows_fwd(float *out, const float *x, const float *y, int B, int N, int C) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)b * N + n) * C;
            for (int c = 0; c < C; c++) out[off + c] = x[off + c] + y[(size_t)n * C + c];
        }
}

void cpu_add_rows_bwd(float *dx, float *dy, const float *dout, int B, int N, int C) {
    if (dx) cpu_accumulate(dx, dout, (size_t)B * N * C);
    if (!dy) return;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int b = 0; b < B; b++) {
            const float *d = dout + ((size_t)b * N + n) * C;
            for (int c = 0; c < C; c++) dy[(size_t)n * C + c] += d[c];
        }
}

void cpu_add_fwd(float *out, const float *a, const float *b, size_t n) {
#pragma omp parallel for schedule(static) PAR_IF(n)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void cpu_chunk_fwd(float *out, const float *x, int B, int k, int C, int j) {
    for (int b = 0; b < B; b++) memcpy(out + (size_t)b * C, x + ((size_t)b * k + j) * C, (size_t)C * sizeof(float));
}

void cpu_chunk_bwd(float *dx, const float *dout, int B, int k, int C, int j) {
    for (int b = 0; b < B; b++) cpu_accumulate(dx + ((size_t)b * k + j) * C, dout + (size_t)b * C, (size_t)C);
}

void cpu_dropout_fwd(float *out, const float *x, size_t n, float p, uint64_t seed, uint64_t stream) {
    float keep = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) PAR_IF(n)
    for (size_t i = 0; i < n; i++) out[i] = rng_uniform(seed, stream, i) >= p ? x[i] * keep : 0.0f;
}

void cpu_dropout_bwd(float *dx, const float *dout, size_t n, float p, uint64_t seed, uint64_t stream) {
    float keep = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) PAR_IF(n)
    for (size_t i = 0; i < n; i++)
        if (rng_uniform(seed, stream, i) >= p) dx[i] += dout[i] * keep;
}

void cpu_accumulate(float *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static) PAR_IF(n)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

/* Exact GELU (DINOv2's nn.GELU): x Phi(x); d/dx = Phi(x) + x phi(x). */
#define GELU_SQRT1_2 0.70710678118654752440
#define GELU_INV_SQRT_2PI 0.39894228040143267794
void cpu_gelu_fwd(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = (float)(0.5 * inp[i] * (1.0 + erf(inp[i] * GELU_SQRT1_2)));
}

void cpu_gelu_bwd(float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        double d = 0.5 * (1.0 + erf(x * GELU_SQRT1_2)) + x * exp(-0.5 * x * x) * GELU_INV_SQRT_2PI;
        dinp[i] += (float)(dout[i] * d);
    }
}
