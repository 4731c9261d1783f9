/* kernels/cuda/rope.cu — 2D rotary position embedding on interleaved pairs,
 * one thread per pair (2j, 2j+1). Tokens before n_ctx (the in-context class
 * tokens) are copied unrotated; backward is the rotation by the negative
 * angle (the transpose of an orthogonal map) and accumulates. */
#include "kernels/cuda/cuda_util.cuh"

/* sign = +1 forward, -1 backward (which also accumulates). */
__global__ void rope_kernel(float *out, const float *inp, const float *cs, const float *sn, int BH, int N, int hd,
                            int n_ctx, float sign, int accumulate) {
    int pairs = (hd + 1) / 2, half = hd / 2;
    CUDA_FOR(i, (size_t)BH * N * pairs) {
        int j = (int)(i % pairs);
        size_t row = i / pairs;
        int n = (int)(row % N);
        const float *x = inp + row * hd;
        float *o = out + row * hd;
        int e0 = 2 * j, e1 = 2 * j + 1;
        if (n < n_ctx) {
            o[e0] = accumulate ? o[e0] + x[e0] : x[e0];
            if (e1 < hd) o[e1] = accumulate ? o[e1] + x[e1] : x[e1];
            continue;
        }
        if (j >= half) continue; /* odd hd: the CPU leaves the last element alone too */
        float c = cs[(size_t)(n - n_ctx) * half + j], s = sign * sn[(size_t)(n - n_ctx) * half + j];
        float x0 = x[e0], x1 = x[e1];
        float y0 = x0 * c - x1 * s, y1 = x1 * c + x0 * s;
        if (accumulate) {
            o[e0] += y0;
            o[e1] += y1;
        } else {
            o[e0] = y0;
            o[e1] = y1;
        }
    }
}

static void rope_launch(float *out, const float *inp, const float *cs, const float *sn, int BH, int N, int hd,
                        int n_ctx, float sign, int accumulate) {
    size_t n = (size_t)BH * N * ((hd + 1) / 2);
    if (!n) return;
    rope_kernel<<<cuda_blocks(n, CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>(out, inp, cs, sn, BH, N, hd,
                                                                                          n_ctx, sign, accumulate);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_rope_fwd(float *out, const float *inp, const float *cos, const float *sin, int BH, int N, int hd,
                              int n_ctx) {
    rope_launch(out, inp, cos, sin, BH, N, hd, n_ctx, 1.0f, 0);
}

extern "C" void cuda_rope_bwd(float *dinp, const float *dout, const float *cos, const float *sin, int BH, int N,
                              int hd, int n_ctx) {
    rope_launch(dinp, dout, cos, sin, BH, N, hd, n_ctx, -1.0f, 1);
}
