/* kernels/cpu/classify.c — the ops a classifier needs on top of the
 * transformer kernels: softmax cross-entropy over class logits, mean
 * pooling over tokens, and overlapping patches (unfold; with rectangular
 * windows, unfold2d, for the FID Inception's convolutions). Sums over the batch run in a fixed order (per sample,
 * then added in order), so results are bit-reproducible. */
#include <math.h>

#include "kernels/cpu/cpu.h"

/* Per sample b: lse = max + log(sum exp(l - max)) (no overflow for any
 * logit size), loss_b = lse - l[y_b], probs[b] = softmax(l). */
void cpu_xent_fwd(float *loss, float *probs, const float *logits, const int *labels, int B, int K) {
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *l = logits + (size_t)b * K;
        float *p = probs + (size_t)b * K;
        float mx = l[0];
        for (int k = 1; k < K; k++) mx = l[k] > mx ? l[k] : mx;
        double s = 0.0;
        for (int k = 0; k < K; k++) {
            p[k] = expf(l[k] - mx);
            s += p[k];
        }
        float inv = (float)(1.0 / s);
        for (int k = 0; k < K; k++) p[k] *= inv;
        total += (double)mx + log(s) - (double)l[labels[b]];
    }
    loss[0] = (float)(total / B);
}

/* d loss / d l[b,k] = (p[b,k] - [k == y_b]) / B */
void cpu_xent_bwd(float *dlogits, const float *dloss, const float *probs, const int *labels, int B, int K) {
    float g = dloss[0] / (float)B;
    for (int b = 0; b < B; b++) {
        const float *p = probs + (size_t)b * K;
        float *d = dlogits + (size_t)b * K;
        for (int k = 0; k < K; k++) d[k] += g * (p[k] - (k == labels[b] ? 1.0f : 0.0f));
    }
}

void cpu_mean_tokens_fwd(float *out, const float *x, int B, int N, int C) {
    float inv = 1.0f / (float)N;
#pragma omp parallel for schedule(static) if ((size_t)B * N * C > 16384)
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * C;
        for (int c = 0; c < C; c++) o[c] = 0.0f;
        for (int n = 0; n < N; n++) {
            const float *xi = x + ((size_t)b * N + n) * C;
            for (int c = 0; c < C; c++) o[c] += xi[c];
        }
        for (int c = 0; c < C; c++) o[c] *= inv;
    }
}

void cpu_mean_tokens_bwd(float *dx, const float *dout, int B, int N, int C) {
    float inv = 1.0f / (float)N;
#pragma omp parallel for schedule(static) if ((size_t)B * N * C > 16384)
    for (int b = 0; b < B; b++) {
        const float *d = dout + (size_t)b * C;
        for (int n = 0; n < N; n++) {
            float *o = dx + ((size_t)b * N + n) * C;
            for (int c = 0; c < C; c++) o[c] += d[c] * inv;
        }
    }
}

/* Where pixel (c, y, x) of image b lives: [B, C, H, W] or channels last [B, H, W, C]. */
static inline size_t unfold_at(int channels_last, int b, int c, int y, int x, int C, int H, int W) {
    return channels_last ? (((size_t)b * H + y) * W + x) * C + c : (((size_t)b * C + c) * H + y) * W + x;
}

/* Overlapping patches (im2col): token (oy, ox) holds the kh x kw window at
 * rows oy*s - ph .. + kh, columns ox*s - pw .. + kw of every channel, in
 * (channel, row, col) order, zero outside the image. kh = kw = s, no
 * padding is patchify. */
void cpu_unfold2d_fwd(float *out, const float *img, int B, int C, int H, int W, int kh, int kw, int s, int ph, int pw,
                      int channels_last) {
    int Ho = (H + 2 * ph - kh) / s + 1, Wo = (W + 2 * pw - kw) / s + 1, P = C * kh * kw;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < Ho * Wo; t++) {
            int oy = t / Wo, ox = t % Wo;
            float *o = out + ((size_t)b * Ho * Wo + t) * P;
            for (int c = 0; c < C; c++)
                for (int ky = 0; ky < kh; ky++) {
                    int y = oy * s - ph + ky;
                    for (int kx = 0; kx < kw; kx++) {
                        int x = ox * s - pw + kx;
                        o[((size_t)c * kh + ky) * kw + kx] =
                            y >= 0 && y < H && x >= 0 && x < W ? img[unfold_at(channels_last, b, c, y, x, C, H, W)] : 0.0f;
                    }
                }
        }
}

void cpu_unfold_fwd(float *out, const float *img, int B, int C, int H, int W, int k, int s, int pad, int channels_last) {
    cpu_unfold2d_fwd(out, img, B, C, H, W, k, k, s, pad, pad, channels_last);
}

/* Per sample: a sample's windows only touch its own image, so the sums are
 * in a fixed order whatever the threads. */
void cpu_unfold_bwd(float *dimg, const float *dout, int B, int C, int H, int W, int k, int s, int pad,
                    int channels_last) {
    int Ho = (H + 2 * pad - k) / s + 1, Wo = (W + 2 * pad - k) / s + 1, P = C * k * k;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < Ho * Wo; t++) {
            int oy = t / Wo, ox = t % Wo;
            const float *d = dout + ((size_t)b * Ho * Wo + t) * P;
            for (int c = 0; c < C; c++)
                for (int ky = 0; ky < k; ky++) {
                    int y = oy * s - pad + ky;
                    if (y < 0 || y >= H) continue;
                    for (int kx = 0; kx < k; kx++) {
                        int x = ox * s - pad + kx;
                        if (x >= 0 && x < W)
                            dimg[unfold_at(channels_last, b, c, y, x, C, H, W)] += d[((size_t)c * k + ky) * k + kx];
                    }
                }
        }
}
