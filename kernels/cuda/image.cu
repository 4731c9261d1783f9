/* kernels/cuda/image.cu — patch extraction and its inverse, GPU twins of
 * kernels/cpu/image.c: patches enter the model in (channel, row, col) order
 * and leave it in (row, col, channel) order. Each is a permutation, so one
 * thread per element gathers (forward) or adds (backward) without conflicts;
 * threads run along the token (patchify) or the image row (unpatchify),
 * whichever is written. Bicubic resizing (DINOv2) shares its taps with the
 * CPU (kernels/bicubic.h); its backward gathers per input pixel. */
#include "kernels/bicubic.h"
#include "kernels/bilinear_tf.h"
#include "kernels/cuda/cuda_util.cuh"

#define LAUNCH(n) <<<cuda_blocks((size_t)(n), CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>

/* i indexes the token array [B, gh*gw, C*p*p] in (c, py, px) order; the
 * matching image offset. */
__device__ __forceinline__ size_t patch_img_index(size_t i, int C, int H, int W, int p) {
    int gw = W / p, gh = H / p, P = C * p * p;
    int e = (int)(i % P);
    size_t bt = i / P;
    int t = (int)(bt % ((size_t)gh * gw));
    size_t b = bt / ((size_t)gh * gw);
    int gy = t / gw, gx = t % gw;
    int c = e / (p * p), py = e / p % p, px = e % p;
    return ((b * C + c) * H + gy * p + py) * W + gx * p + px;
}

/* i indexes the image [B, C, H, W]; the matching token offset in (py, px, c)
 * order. Pixels outside the patch grid (H or W not a multiple of p) map to
 * none: -1. */
__device__ __forceinline__ long long unpatch_tok_index(size_t i, int C, int H, int W, int p) {
    int gw = W / p, gh = H / p, P = C * p * p;
    int x = (int)(i % W);
    size_t r = i / W;
    int y = (int)(r % H);
    size_t bc = r / H;
    int c = (int)(bc % C);
    size_t b = bc / C;
    int gy = y / p, gx = x / p;
    if (gy >= gh || gx >= gw) return -1;
    int py = y % p, px = x % p;
    return (long long)(((b * gh + gy) * gw + gx) * P + (size_t)(py * p + px) * C + c);
}

__global__ void patchify_kernel(float *tok, float *img, int C, int H, int W, int p, size_t n, int backward) {
    CUDA_FOR(i, n) {
        size_t j = patch_img_index(i, C, H, W, p);
        if (backward)
            img[j] += tok[i]; /* img = dimg, tok = dout */
        else
            tok[i] = img[j];
    }
}

__global__ void unpatchify_kernel(float *img, float *tok, int C, int H, int W, int p, size_t n, int backward) {
    CUDA_FOR(i, n) {
        long long j = unpatch_tok_index(i, C, H, W, p);
        if (j < 0) continue;
        if (backward)
            tok[j] += img[i]; /* tok = dtok, img = dimg */
        else
            img[i] = tok[j];
    }
}

static size_t patch_count(int B, int C, int H, int W, int p) { return (size_t)B * (H / p) * (W / p) * C * p * p; }

extern "C" void cuda_patchify_fwd(float *out, const float *img, int B, int C, int H, int W, int p) {
    size_t n = patch_count(B, C, H, W, p);
    if (!n) return;
    patchify_kernel<<<cuda_blocks(n, CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>(out, (float *)img, C, H,
                                                                                              W, p, n, 0);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_patchify_bwd(float *dimg, const float *dout, int B, int C, int H, int W, int p) {
    size_t n = patch_count(B, C, H, W, p);
    if (!n) return;
    patchify_kernel<<<cuda_blocks(n, CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>((float *)dout, dimg, C,
                                                                                              H, W, p, n, 1);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_unpatchify_fwd(float *img, const float *tok, int B, int C, int H, int W, int p) {
    size_t n = (size_t)B * C * H * W;
    if (!n) return;
    unpatchify_kernel<<<cuda_blocks(n, CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>(img, (float *)tok, C,
                                                                                                H, W, p, n, 0);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_unpatchify_bwd(float *dtok, const float *dimg, int B, int C, int H, int W, int p) {
    size_t n = (size_t)B * C * H * W;
    if (!n) return;
    unpatchify_kernel<<<cuda_blocks(n, CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>((float *)dimg, dtok,
                                                                                                C, H, W, p, n, 1);
    CUDA_CHECK_LAUNCH();
}

/* ---- bicubic resize (kernels/bicubic.h) ---- */
__global__ void resize_bicubic_fwd_kernel(float *out, const float *inp, int Hi, int Wi, int Ho, int Wo, float ry,
                                          float rx, size_t n) {
    CUDA_FOR(i, n) { /* i over [P, Ho, Wo] */
        int ox = (int)(i % Wo);
        size_t r = i / Wo;
        int oy = (int)(r % Ho);
        size_t p = r / Ho;
        int iy[4], ix[4];
        float wy[4], wx[4];
        bicubic_taps(oy, ry, Hi, iy, wy);
        bicubic_taps(ox, rx, Wi, ix, wx);
        const float *src = inp + p * Hi * Wi;
        float acc = 0.0f;
        for (int a = 0; a < 4; a++) {
            const float *row = src + (size_t)iy[a] * Wi;
            acc += wy[a] * (wx[0] * row[ix[0]] + wx[1] * row[ix[1]] + wx[2] * row[ix[2]] + wx[3] * row[ix[3]]);
        }
        out[i] = acc;
    }
}

extern "C" void cuda_resize_bicubic_fwd(float *out, const float *inp, int P, int Hi, int Wi, int Ho, int Wo, float ry,
                                        float rx) {
    size_t n = (size_t)P * Ho * Wo;
    if (!n) return;
    resize_bicubic_fwd_kernel LAUNCH(n)(out, inp, Hi, Wi, Ho, Wo, ry, rx, n);
    CUDA_CHECK_LAUNCH();
}

/* The outputs o of an axis whose taps may include input index y: a
 * conservative range from inverting u = r (o + 0.5) - 0.5 over the taps'
 * reach [y - 2, y + 2), widened to the ends where clamping folds taps onto
 * the border samples. */
__device__ __forceinline__ void bicubic_cover(int y, float r, int n_in, int n_out, int *lo, int *hi) {
    int a = (int)floorf(((float)y - 2.0f + 0.5f) / r - 0.5f) - 1, b = (int)ceilf(((float)y + 2.0f + 0.5f) / r - 0.5f) + 1;
    if (y == 0) a = 0;
    if (y == n_in - 1) b = n_out - 1;
    *lo = a < 0 ? 0 : a;
    *hi = b > n_out - 1 ? n_out - 1 : b;
}

/* Gather form of the transpose (no atomics): input pixel (y, x) adds
 * dout[oy][ox] times the weights its taps give it, over the covering outputs. */
__global__ void resize_bicubic_bwd_kernel(float *dinp, const float *dout, int Hi, int Wi, int Ho, int Wo, float ry,
                                          float rx, size_t n) {
    CUDA_FOR(i, n) { /* i over [P, Hi, Wi] */
        int x = (int)(i % Wi);
        size_t r = i / Wi;
        int y = (int)(r % Hi);
        size_t p = r / Hi;
        int oy0, oy1, ox0, ox1;
        bicubic_cover(y, ry, Hi, Ho, &oy0, &oy1);
        bicubic_cover(x, rx, Wi, Wo, &ox0, &ox1);
        float acc = 0.0f;
        for (int oy = oy0; oy <= oy1; oy++) {
            int iy[4];
            float wy[4], sy = 0.0f;
            bicubic_taps(oy, ry, Hi, iy, wy);
            for (int a = 0; a < 4; a++) sy += iy[a] == y ? wy[a] : 0.0f;
            if (sy == 0.0f) continue;
            for (int ox = ox0; ox <= ox1; ox++) {
                int ix[4];
                float wx[4], sx = 0.0f;
                bicubic_taps(ox, rx, Wi, ix, wx);
                for (int c = 0; c < 4; c++) sx += ix[c] == x ? wx[c] : 0.0f;
                acc += dout[(p * Ho + oy) * Wo + ox] * sy * sx;
            }
        }
        dinp[i] += acc;
    }
}

extern "C" void cuda_resize_bicubic_bwd(float *dinp, const float *dout, int P, int Hi, int Wi, int Ho, int Wo,
                                        float ry, float rx) {
    size_t n = (size_t)P * Hi * Wi;
    if (!n) return;
    resize_bicubic_bwd_kernel LAUNCH(n)(dinp, dout, Hi, Wi, Ho, Wo, ry, rx, n);
    CUDA_CHECK_LAUNCH();
}

/* ---- TensorFlow 1.x's bilinear resize (kernels/bilinear_tf.h), one thread per output pixel ---- */
__global__ void resize_bilinear_tf_fwd_kernel(float *out, const float *inp, int Hi, int Wi, int Ho, int Wo, float sy,
                                              float sx, size_t n) {
    CUDA_FOR(i, n) { /* i over [P, Ho, Wo] */
        int ox = (int)(i % Wo);
        size_t r = i / Wo;
        int oy = (int)(r % Ho);
        out[i] = bilinear_tf_pixel(inp + r / Ho * Hi * Wi, Hi, Wi, oy, ox, sy, sx);
    }
}

extern "C" void cuda_resize_bilinear_tf_fwd(float *out, const float *inp, int P, int Hi, int Wi, int Ho, int Wo) {
    size_t n = (size_t)P * Ho * Wo;
    if (!n) return;
    resize_bilinear_tf_fwd_kernel LAUNCH(n)(out, inp, Hi, Wi, Ho, Wo, bilinear_tf_scale(Hi, Ho), bilinear_tf_scale(Wi, Wo),
                                            n);
    CUDA_CHECK_LAUNCH();
}
