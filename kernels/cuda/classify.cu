/* kernels/cuda/classify.cu — the classifier's ops, GPU twins of
 * kernels/cpu/classify.c: softmax cross-entropy (one warp per sample, the
 * per-sample losses then added in batch order by one thread, as the CPU
 * does), mean pooling over tokens (fixed-order column sums), and overlapping
 * patches (unfold, with rectangular windows in unfold2d; its backward gathers, per image pixel, the windows that
 * cover it in the CPU's token order, so there are no atomics). */
#include <math.h>

#include "kernels/cuda/cuda_util.cuh"

#define LAUNCH(n) <<<cuda_blocks((size_t)(n), CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>
#define XENT_ROWS_PER_BLOCK (CUDA_THREADS / 32)

/* ---- cross-entropy ---- */
__global__ void xent_rows_kernel(float *probs, double *per, const float *logits, const int *labels, int B, int K) {
    int row = blockIdx.x * XENT_ROWS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= B) return; /* whole warps leave together */
    const float *l = logits + (size_t)row * K;
    float *p = probs + (size_t)row * K;
    float mx = -INFINITY;
    for (int k = lane; k < K; k += 32) mx = fmaxf(mx, l[k]);
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    double s = 0.0;
    for (int k = lane; k < K; k += 32) {
        float e = expf(l[k] - mx);
        p[k] = e;
        s += e;
    }
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    float inv = (float)(1.0 / s);
    for (int k = lane; k < K; k += 32) p[k] *= inv; /* this lane wrote p[k] above */
    if (lane == 0) per[row] = (double)mx + log(s) - (double)l[labels[row]];
}

__global__ void xent_total_kernel(float *loss, const double *per, int B) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    double total = 0.0;
    for (int b = 0; b < B; b++) total += per[b];
    loss[0] = (float)(total / B);
}

extern "C" void cuda_xent_fwd(float *loss, float *probs, const float *logits, const int *labels, int B, int K) {
    if (B <= 0 || K <= 0) return;
    double *per = (double *)cuda_scratch((size_t)B * sizeof(double));
    unsigned blocks = (unsigned)((B + XENT_ROWS_PER_BLOCK - 1) / XENT_ROWS_PER_BLOCK);
    xent_rows_kernel<<<blocks, CUDA_THREADS, 0, cuda_compute_stream()>>>(probs, per, logits, labels, B, K);
    CUDA_CHECK_LAUNCH();
    xent_total_kernel<<<1, 1, 0, cuda_compute_stream()>>>(loss, per, B);
    CUDA_CHECK_LAUNCH();
}

/* d loss / d l[b,k] = (p[b,k] - [k == y_b]) / B */
__global__ void xent_bwd_kernel(float *dlogits, const float *dloss, const float *probs, const int *labels, int B,
                                int K, size_t n) {
    float g = dloss[0] / (float)B;
    CUDA_FOR(i, n) {
        int k = (int)(i % K);
        dlogits[i] += g * (probs[i] - (k == labels[i / K] ? 1.0f : 0.0f));
    }
}

extern "C" void cuda_xent_bwd(float *dlogits, const float *dloss, const float *probs, const int *labels, int B,
                              int K) {
    size_t n = (size_t)B * K;
    if (!n) return;
    xent_bwd_kernel LAUNCH(n)(dlogits, dloss, probs, labels, B, K, n);
    CUDA_CHECK_LAUNCH();
}

/* ---- mean over tokens ---- */
struct MeanVal {
    const float *x;
    int N, C;
    __device__ float operator()(int b, int n, int c) const { return x[((size_t)b * N + n) * C + c]; }
};
struct MeanFin {
    float *out;
    int C;
    float inv;
    __device__ void operator()(int b, int c, float s) const { out[(size_t)b * C + c] = s * inv; }
};

extern "C" void cuda_mean_tokens_fwd(float *out, const float *x, int B, int N, int C) {
    if (B <= 0 || C <= 0) return;
    cuda_colsum(MeanVal{x, N, C}, MeanFin{out, C, 1.0f / (float)N}, B, N, C);
}

__global__ void mean_tokens_bwd_kernel(float *dx, const float *dout, int N, int C, float inv, size_t n) {
    CUDA_FOR(i, n) dx[i] += dout[i / ((size_t)N * C) * C + i % C] * inv;
}

extern "C" void cuda_mean_tokens_bwd(float *dx, const float *dout, int B, int N, int C) {
    size_t n = (size_t)B * N * C;
    if (!n) return;
    mean_tokens_bwd_kernel LAUNCH(n)(dx, dout, N, C, 1.0f / (float)N, n);
    CUDA_CHECK_LAUNCH();
}

/* ---- unfold: token (oy, ox) = the k x k window at (oy*s - pad, ox*s - pad) ---- */
/* Where pixel (c, y, x) of image b lives: [B, C, H, W] or channels last [B, H, W, C]. */
__device__ __forceinline__ size_t unfold_at(int channels_last, size_t b, int c, int y, int x, int C, int H, int W) {
    return channels_last ? ((b * H + y) * W + x) * C + c : ((b * C + c) * H + y) * W + x;
}

__global__ void unfold_fwd_kernel(float *out, const float *img, int C, int H, int W, int kh, int kw, int s, int ph,
                                  int pw, int Ho, int Wo, int channels_last, size_t n) {
    int P = C * kh * kw;
    CUDA_FOR(i, n) { /* i over [B, Ho*Wo, P] */
        int e = (int)(i % P);
        size_t bt = i / P;
        int t = (int)(bt % ((size_t)Ho * Wo));
        size_t b = bt / ((size_t)Ho * Wo);
        int c = e / (kh * kw), ky = e / kw % kh, kx = e % kw;
        int y = t / Wo * s - ph + ky, x = t % Wo * s - pw + kx;
        out[i] = y >= 0 && y < H && x >= 0 && x < W ? img[unfold_at(channels_last, b, c, y, x, C, H, W)] : 0.0f;
    }
}

/* Windows covering coordinate y: oy with 0 <= y + pad - oy*s < k. */
__device__ __forceinline__ void unfold_cover(int y, int k, int s, int pad, int Ho, int *lo, int *hi) {
    int num = y + pad - k + 1;
    *lo = num <= 0 ? 0 : (num + s - 1) / s;
    int h = (y + pad) / s;
    *hi = h < Ho - 1 ? h : Ho - 1;
}

__global__ void unfold_bwd_kernel(float *dimg, const float *dout, int C, int H, int W, int k, int s, int pad, int Ho,
                                  int Wo, int channels_last, size_t n) {
    int P = C * k * k;
    CUDA_FOR(j, n) { /* j over [B, C, H, W] */
        int x = (int)(j % W);
        size_t r = j / W;
        int y = (int)(r % H);
        size_t bc = r / H;
        int c = (int)(bc % C);
        size_t b = bc / C;
        size_t i = unfold_at(channels_last, b, c, y, x, C, H, W);
        int oy0, oy1, ox0, ox1;
        unfold_cover(y, k, s, pad, Ho, &oy0, &oy1);
        unfold_cover(x, k, s, pad, Wo, &ox0, &ox1);
        float acc = dimg[i]; /* added in token order, like the CPU */
        for (int oy = oy0; oy <= oy1; oy++)
            for (int ox = ox0; ox <= ox1; ox++) {
                int ky = y + pad - oy * s, kx = x + pad - ox * s;
                acc += dout[(b * Ho * Wo + (size_t)oy * Wo + ox) * P + ((size_t)c * k + ky) * k + kx];
            }
        dimg[i] = acc;
    }
}

/* Rectangular windows (the FID Inception's 1x7, 7x1, ... convolutions);
 * unfold is the square case. */
extern "C" void cuda_unfold2d_fwd(float *out, const float *img, int B, int C, int H, int W, int kh, int kw, int s, int ph,
                                  int pw, int channels_last) {
    int Ho = (H + 2 * ph - kh) / s + 1, Wo = (W + 2 * pw - kw) / s + 1;
    size_t n = (size_t)B * Ho * Wo * C * kh * kw;
    if (!n) return;
    unfold_fwd_kernel LAUNCH(n)(out, img, C, H, W, kh, kw, s, ph, pw, Ho, Wo, channels_last, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_unfold_fwd(float *out, const float *img, int B, int C, int H, int W, int k, int s, int pad,
                                int channels_last) {
    cuda_unfold2d_fwd(out, img, B, C, H, W, k, k, s, pad, pad, channels_last);
}

extern "C" void cuda_unfold_bwd(float *dimg, const float *dout, int B, int C, int H, int W, int k, int s, int pad,
                                int channels_last) {
    int Ho = (H + 2 * pad - k) / s + 1, Wo = (W + 2 * pad - k) / s + 1;
    size_t n = (size_t)B * C * H * W;
    if (!n) return;
    unfold_bwd_kernel LAUNCH(n)(dimg, dout, C, H, W, k, s, pad, Ho, Wo, channels_last, n);
    CUDA_CHECK_LAUNCH();
}
