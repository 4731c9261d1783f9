/* kernels/cuda/qkv_split.cu — the head split of attention: qkv [B, N, 3, H, hd]
 * -> q, k, v [B, H, N, hd], and its backward. Lives apart from attention.cu
 * (the flash-style kernels) because it is pure data movement. One thread per
 * element of q (it moves the three), so writes are coalesced along hd. */
#include "kernels/cuda/cuda_util.cuh"

/* i indexes [B, H, N, hd]; the matching offset in qkv of the q part. */
__device__ __forceinline__ size_t qkv_src(size_t i, int N, int H, int hd) {
    int c = (int)(i % hd);
    size_t bhn = i / hd;
    int n = (int)(bhn % N);
    size_t bh = bhn / N;
    int h = (int)(bh % H);
    size_t b = bh / H;
    return (b * N + n) * 3 * (size_t)H * hd + (size_t)h * hd + c;
}

__global__ void qkv_split_fwd_kernel(float *q, float *k, float *v, const float *qkv, int N, int H, int hd,
                                     size_t n) {
    size_t D = (size_t)H * hd;
    CUDA_FOR(i, n) {
        size_t s = qkv_src(i, N, H, hd);
        q[i] = qkv[s];
        k[i] = qkv[s + D];
        v[i] = qkv[s + 2 * D];
    }
}

__global__ void qkv_split_bwd_kernel(float *dqkv, const float *dq, const float *dk, const float *dv, int N, int H,
                                     int hd, size_t n) {
    size_t D = (size_t)H * hd;
    CUDA_FOR(i, n) {
        size_t s = qkv_src(i, N, H, hd);
        if (dq) dqkv[s] += dq[i];
        if (dk) dqkv[s + D] += dk[i];
        if (dv) dqkv[s + 2 * D] += dv[i];
    }
}

extern "C" void cuda_qkv_split_fwd(float *q, float *k, float *v, const float *qkv, int B, int N, int H, int hd) {
    size_t n = (size_t)B * H * N * hd;
    if (!n) return;
    qkv_split_fwd_kernel<<<cuda_blocks(n, CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>(q, k, v, qkv, N, H,
                                                                                                   hd, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_qkv_split_bwd(float *dqkv, const float *dq, const float *dk, const float *dv, int B, int N,
                                   int H, int hd) {
    size_t n = (size_t)B * H * N * hd;
    if (!n || (!dq && !dk && !dv)) return;
    qkv_split_bwd_kernel<<<cuda_blocks(n, CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>(dqkv, dq, dk, dv,
                                                                                                   N, H, hd, n);
    CUDA_CHECK_LAUNCH();
}
