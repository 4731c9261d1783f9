/* kernels/cuda/vision.cu — the convolutional networks' ops on the GPU, twins
 * of kernels/cpu/vision.c: ReLU, 2x2 max pooling (its backward finds the
 * window's first maximum again, so it needs no index buffer and no atomics:
 * windows do not overlap) and LPIPS's per-layer distance (one thread per
 * pixel; the per-sample mean is cuda_dsum's fixed-order sum in double). */
#include <math.h>

#include "kernels/cuda/cuda_util.cuh"

#define LAUNCH(n) <<<cuda_blocks((size_t)(n), CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>
#define LPIPS_EPS 1e-10

__global__ void relu_fwd_kernel(float *out, const float *x, size_t n) {
    CUDA_FOR(i, n) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

__global__ void relu_bwd_kernel(float *dx, const float *dout, const float *out, size_t n) {
    CUDA_FOR(i, n) if (out[i] > 0.0f) dx[i] += dout[i];
}

extern "C" void cuda_relu_fwd(float *out, const float *x, size_t n) {
    if (!n) return;
    relu_fwd_kernel LAUNCH(n)(out, x, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_relu_bwd(float *dx, const float *dout, const float *out, size_t n) {
    if (!n) return;
    relu_bwd_kernel LAUNCH(n)(dx, dout, out, n);
    CUDA_CHECK_LAUNCH();
}

/* ---- 2x2 max pooling, channels last ---- */
__device__ __forceinline__ size_t pool_argmax(const float *x, size_t b, int oy, int ox, int c, int H, int W, int C) {
    size_t best = ((b * H + 2 * oy) * W + 2 * ox) * C + c;
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            size_t i = ((b * H + 2 * oy + dy) * W + 2 * ox + dx) * C + c;
            if (x[i] > x[best]) best = i;
        }
    return best;
}

__global__ void maxpool2_fwd_kernel(float *out, const float *x, int H, int W, int C, size_t n) {
    int Wo = W / 2, Ho = H / 2;
    CUDA_FOR(i, n) { /* i over [B, Ho*Wo, C] */
        int c = (int)(i % C);
        size_t bt = i / C;
        int t = (int)(bt % ((size_t)Ho * Wo));
        out[i] = x[pool_argmax(x, bt / ((size_t)Ho * Wo), t / Wo, t % Wo, c, H, W, C)];
    }
}

__global__ void maxpool2_bwd_kernel(float *dx, const float *dout, const float *x, int H, int W, int C, size_t n) {
    int Wo = W / 2, Ho = H / 2;
    CUDA_FOR(i, n) {
        int c = (int)(i % C);
        size_t bt = i / C;
        int t = (int)(bt % ((size_t)Ho * Wo));
        dx[pool_argmax(x, bt / ((size_t)Ho * Wo), t / Wo, t % Wo, c, H, W, C)] += dout[i];
    }
}

extern "C" void cuda_maxpool2_fwd(float *out, const float *x, int B, int H, int W, int C) {
    size_t n = (size_t)B * (H / 2) * (W / 2) * C;
    if (!n) return;
    maxpool2_fwd_kernel LAUNCH(n)(out, x, H, W, C, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_maxpool2_bwd(float *dx, const float *dout, const float *x, int B, int H, int W, int C) {
    size_t n = (size_t)B * (H / 2) * (W / 2) * C;
    if (!n) return;
    maxpool2_bwd_kernel LAUNCH(n)(dx, dout, x, H, W, C, n);
    CUDA_CHECK_LAUNCH();
}

/* ---- LPIPS distance of one layer ---- */
__device__ __forceinline__ double lpips_norm(const float *v, int C) {
    double s = 0.0;
    for (int c = 0; c < C; c++) s += (double)v[c] * v[c];
    return sqrt(s);
}

/* sum_c w[c] (a/(|a| + eps) - f/(|f| + eps))^2 of pixel i of sample g. */
struct LpipsPixel {
    const float *a, *f, *w;
    int N, C;
    __device__ double operator()(int g, size_t i) const {
        size_t at = ((size_t)g * N + i) * C;
        const float *pa = a + at, *pf = f + at;
        double ia = 1.0 / (lpips_norm(pa, C) + LPIPS_EPS), iff = 1.0 / (lpips_norm(pf, C) + LPIPS_EPS), s = 0.0;
        for (int c = 0; c < C; c++) {
            double d = pa[c] * ia - pf[c] * iff;
            s += w[c] * d * d;
        }
        return s;
    }
};

struct LpipsMean {
    float *out;
    int N;
    __device__ void operator()(const double *partial, int G, int S) const {
        for (int g = 0; g < G; g++) {
            double t = 0.0;
            for (int s = 0; s < S; s++) t += partial[(size_t)g * S + s];
            out[g] = (float)(t / N);
        }
    }
};

extern "C" void cuda_lpips_dist_fwd(float *out, const float *a, const float *f, const float *w, int B, int N, int C) {
    if (B <= 0 || N <= 0) return;
    cuda_dsum(LpipsPixel{a, f, w, N, C}, LpipsMean{out, N}, B, (size_t)N);
}

/* dL/dv for u = v/(|v| + eps) and g = dL/du (kernels/cpu/vision.c unit_bwd);
 * g is recomputed per channel from the pixel instead of stored. */
__global__ void lpips_dist_bwd_kernel(float *da, float *df, const float *dout, const float *a, const float *f,
                                      const float *w, int N, int C, size_t n) {
    CUDA_FOR(p, n) { /* p over the B*N pixels */
        size_t at = p * C;
        const float *pa = a + at, *pf = f + at;
        double scale = (double)dout[p / N] / N;
        double na = lpips_norm(pa, C), nf = lpips_norm(pf, C);
        double ia = 1.0 / (na + LPIPS_EPS), iff = 1.0 / (nf + LPIPS_EPS);
        double ag = 0.0, fg = 0.0; /* a.g and f.g */
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

extern "C" void cuda_lpips_dist_bwd(float *da, float *df, const float *dout, const float *a, const float *f,
                                    const float *w, int B, int N, int C) {
    size_t n = (size_t)B * N;
    if (!n || (!da && !df)) return;
    lpips_dist_bwd_kernel LAUNCH(n)(da, df, dout, a, f, w, N, C, n);
    CUDA_CHECK_LAUNCH();
}
