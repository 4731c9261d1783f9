/* kernels/cuda/image.cu — patch extraction and its inverse, GPU twins of
 * kernels/cpu/image.c: patches enter the model in (channel, row, col) order
 * and leave it in (row, col, channel) order. Each is a permutation, so one
 * thread per element gathers (forward) or adds (backward) without conflicts;
 * threads run along the token (patchify) or the image row (unpatchify),
 * whichever is written. */
#include "kernels/cuda/cuda_util.cuh"

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
