/* kernels/cuda/vision.cu — the convolutional networks' ops on the GPU, twins
 * of kernels/cpu/vision.c: ReLU, 2x2 max pooling (its backward finds the
 * window's first maximum again, so it needs no index buffer and no atomics:
 * windows do not overlap) and LPIPS's per-layer distance (one thread per
 * pixel; the per-sample mean is cuda_dsum's fixed-order sum in double),
 * and the FID Inception-v3's k x k pooling (kernels/pool2d.h, one thread per
 * output value) and channel concatenation. */
#include <math.h>

#include "kernels/cuda/cuda_util.cuh"
#include "kernels/lpips_pixel.h"
#include "kernels/pool2d.h"

#define LAUNCH(n) <<<cuda_blocks((size_t)(n), CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>

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
/* sum_c w[c] (a/(|a| + eps) - f/(|f| + eps))^2 of pixel i of sample g. */
struct LpipsPixel {
    const float *a, *f, *w;
    int N, C;
    __device__ double operator()(int g, size_t i) const {
        size_t at = ((size_t)g * N + i) * C;
        return lpips_pixel_dist(a + at, f + at, w, C);
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

/* One thread per pixel: kernels/lpips_pixel.h's gradient (no atomics: a
 * pixel's channels are its own). */
__global__ void lpips_dist_bwd_kernel(float *da, float *df, const float *dout, const float *a, const float *f,
                                      const float *w, int N, int C, size_t n) {
    CUDA_FOR(p, n) { /* p over the B*N pixels */
        size_t at = p * C;
        lpips_pixel_bwd(da ? da + at : NULL, df ? df + at : NULL, a + at, f + at, w, C, (double)dout[p / N] / N);
    }
}

extern "C" void cuda_lpips_dist_bwd(float *da, float *df, const float *dout, const float *a, const float *f,
                                    const float *w, int B, int N, int C) {
    size_t n = (size_t)B * N;
    if (!n || (!da && !df)) return;
    lpips_dist_bwd_kernel LAUNCH(n)(da, df, dout, a, f, w, N, C, n);
    CUDA_CHECK_LAUNCH();
}

/* ---- k x k pooling and channel concatenation (the FID Inception) ---- */
__global__ void pool2d_fwd_kernel(float *out, const float *x, int H, int W, int C, int k, int s, int pad, int Ho, int Wo,
                                  int avg, size_t n) {
    CUDA_FOR(i, n) { /* i over [B, Ho*Wo, C]: neighbouring threads read neighbouring channels */
        int c = (int)(i % C);
        size_t bt = i / C;
        int t = (int)(bt % ((size_t)Ho * Wo));
        int y0, y1, x0, x1;
        pool2d_window(t / Wo, t % Wo, H, W, k, s, pad, &y0, &y1, &x0, &x1);
        out[i] = pool2d_value(x + bt / ((size_t)Ho * Wo) * H * W * C, W, C, c, y0, y1, x0, x1, avg);
    }
}

extern "C" void cuda_pool2d_fwd(float *out, const float *x, int B, int H, int W, int C, int k, int s, int pad, int avg) {
    int Ho = (H + 2 * pad - k) / s + 1, Wo = (W + 2 * pad - k) / s + 1;
    size_t n = (size_t)B * Ho * Wo * C;
    if (!n) return;
    pool2d_fwd_kernel LAUNCH(n)(out, x, H, W, C, k, s, pad, Ho, Wo, avg, n);
    CUDA_CHECK_LAUNCH();
}

__global__ void concat_cols_fwd_kernel(float *out, const float *x, int Cout, int off, int C, size_t n) {
    CUDA_FOR(i, n) out[i / C * Cout + off + i % C] = x[i];
}

extern "C" void cuda_concat_cols_fwd(float *out, const float *x, int rows, int Cout, int off, int C) {
    size_t n = (size_t)rows * C;
    if (!n) return;
    concat_cols_fwd_kernel LAUNCH(n)(out, x, Cout, off, C, n);
    CUDA_CHECK_LAUNCH();
}
