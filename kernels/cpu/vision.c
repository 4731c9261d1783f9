/* kernels/cpu/vision.c — the convolutional networks' ops on the CPU (the
 * reference of kernels/cuda/vision.cu): ReLU, 2x2 max pooling, LPIPS's
 * per-layer distance, and the FID Inception-v3's k x k pooling and channel
 * concatenation, on channels-last images [B, H*W, C] (the engine's token
 * layout, so a convolution is unfold + linear; see core/op_list.h). */
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/lpips_pixel.h"
#include "kernels/pool2d.h"

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

/* Per sample, pixels in order: the sums do not depend on the threads. */
void cpu_lpips_dist_fwd(float *out, const float *a, const float *f, const float *w, int B, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        double total = 0.0;
        for (int n = 0; n < N; n++) {
            size_t at = ((size_t)b * N + n) * C;
            total += lpips_pixel_dist(a + at, f + at, w, C);
        }
        out[b] = (float)(total / N);
    }
}

/* kernels/lpips_pixel.h has the per-pixel gradient; samples in parallel. */
void cpu_lpips_dist_bwd(float *da, float *df, const float *dout, const float *a, const float *f, const float *w, int B,
                        int N, int C) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        double scale = (double)dout[b] / N;
        for (int n = 0; n < N; n++) {
            size_t at = ((size_t)b * N + n) * C;
            lpips_pixel_bwd(da ? da + at : NULL, df ? df + at : NULL, a + at, f + at, w, C, scale);
        }
    }
}

/* k x k pooling: the window clipped to the image; a max over what is left
 * (PyTorch pads a max pool with -inf), or its mean over the pixels left
 * (count_include_pad False: TensorFlow's, which the FID Inception keeps).
 * kernels/pool2d.h has the window, shared with the CUDA twin. */
void cpu_pool2d_fwd(float *out, const float *x, int B, int H, int W, int C, int k, int s, int pad, int avg) {
    int Ho = (H + 2 * pad - k) / s + 1, Wo = (W + 2 * pad - k) / s + 1;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < Ho * Wo; t++) {
            int y0, y1, x0, x1;
            pool2d_window(t / Wo, t % Wo, H, W, k, s, pad, &y0, &y1, &x0, &x1);
            const float *img = x + (size_t)b * H * W * C;
            float *o = out + ((size_t)b * Ho * Wo + t) * C;
            for (int c = 0; c < C; c++) o[c] = pool2d_value(img, W, C, c, y0, y1, x0, x1, avg);
        }
}

void cpu_concat_cols_fwd(float *out, const float *x, int rows, int Cout, int off, int C) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) memcpy(out + (size_t)r * Cout + off, x + (size_t)r * C, sizeof(float) * (size_t)C);
}
