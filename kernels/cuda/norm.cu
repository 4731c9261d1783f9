/* kernels/cuda/norm.cu — RMSNorm forward and backward (also the per-head
 * qk-norm: rows = B*H*N, C = head dim). One warp per row; the mean square and
 * the backward dot product accumulate in double like the CPU reference, and
 * the warp's butterfly sum gives every lane the same value in a fixed order.
 * The weight gradient is a fixed-order column sum over rows (cuda_util.cuh). */
#include "kernels/cuda/cuda_util.cuh"

#define NORM_ROWS_PER_BLOCK (CUDA_THREADS / 32)

__device__ __forceinline__ double warp_sum_double(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__global__ void rmsnorm_fwd_kernel(float *out, float *rstd, const float *inp, const float *w, int rows, int C,
                                   float eps) {
    int row = blockIdx.x * NORM_ROWS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return; /* whole warps leave together: the shuffles stay full */
    const float *x = inp + (size_t)row * C;
    float *o = out + (size_t)row * C;
    double ss = 0.0;
    for (int c = lane; c < C; c += 32) ss += (double)x[c] * x[c];
    ss = warp_sum_double(ss);
    float s = (float)(1.0 / sqrt(ss / C + eps));
    if (lane == 0) rstd[row] = s;
    for (int c = lane; c < C; c += 32) o[c] = x[c] * s * w[c];
}

extern "C" void cuda_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int rows, int C,
                                 float eps) {
    if (rows <= 0) return;
    unsigned blocks = (unsigned)((rows + NORM_ROWS_PER_BLOCK - 1) / NORM_ROWS_PER_BLOCK);
    rmsnorm_fwd_kernel<<<blocks, CUDA_THREADS, 0, cuda_compute_stream()>>>(out, rstd, inp, w, rows, C, eps);
    CUDA_CHECK_LAUNCH();
}

/* dx = r (w dy) - r^3/C x sum(w dy x) */
__global__ void rmsnorm_bwd_dx_kernel(float *dinp, const float *dout, const float *inp, const float *w,
                                      const float *rstd, int rows, int C) {
    int row = blockIdx.x * NORM_ROWS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    const float *x = inp + (size_t)row * C, *dy = dout + (size_t)row * C;
    float *dx = dinp + (size_t)row * C;
    float s = rstd[row];
    double dot = 0.0;
    for (int c = lane; c < C; c += 32) dot += (double)w[c] * dy[c] * x[c];
    dot = warp_sum_double(dot);
    float k = (float)(dot * s * s * s / C);
    for (int c = lane; c < C; c += 32) dx[c] += s * w[c] * dy[c] - k * x[c];
}

/* dw[c] += sum over rows of dy x r */
struct RmsDwVal {
    const float *dout, *inp, *rstd;
    int C;
    __device__ float operator()(int g, int r, int c) const {
        size_t i = (size_t)r * C + c;
        return dout[i] * inp[i] * rstd[r];
    }
};
struct RmsDwFin {
    float *dw;
    __device__ void operator()(int g, int c, float s) const { dw[c] += s; }
};

extern "C" void cuda_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                                 const float *rstd, int rows, int C) {
    if (rows <= 0) return;
    if (dinp) {
        unsigned blocks = (unsigned)((rows + NORM_ROWS_PER_BLOCK - 1) / NORM_ROWS_PER_BLOCK);
        rmsnorm_bwd_dx_kernel<<<blocks, CUDA_THREADS, 0, cuda_compute_stream()>>>(dinp, dout, inp, w, rstd, rows, C);
        CUDA_CHECK_LAUNCH();
    }
    if (dw) cuda_colsum(RmsDwVal{dout, inp, rstd, C}, RmsDwFin{dw}, 1, rows, C);
}

/* ---- LayerNorm (DINOv2), the CPU's arithmetic: one warp per row ---- */
__global__ void layernorm_fwd_kernel(float *out, float *mean, float *rstd, const float *inp, const float *w,
                                     const float *b, int rows, int C, float eps) {
    int row = blockIdx.x * NORM_ROWS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    const float *x = inp + (size_t)row * C;
    float *o = out + (size_t)row * C;
    double s = 0.0;
    for (int c = lane; c < C; c += 32) s += x[c];
    double mu = warp_sum_double(s) / C, ss = 0.0;
    for (int c = lane; c < C; c += 32) ss += (x[c] - mu) * (x[c] - mu);
    double rs = 1.0 / sqrt(warp_sum_double(ss) / C + eps);
    if (lane == 0) mean[row] = (float)mu, rstd[row] = (float)rs;
    for (int c = lane; c < C; c += 32) o[c] = (float)((x[c] - mu) * rs) * w[c] + b[c];
}

extern "C" void cuda_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w,
                                   const float *b, int rows, int C, float eps) {
    if (rows <= 0) return;
    unsigned blocks = (unsigned)((rows + NORM_ROWS_PER_BLOCK - 1) / NORM_ROWS_PER_BLOCK);
    layernorm_fwd_kernel<<<blocks, CUDA_THREADS, 0, cuda_compute_stream()>>>(out, mean, rstd, inp, w, b, rows, C, eps);
    CUDA_CHECK_LAUNCH();
}

__global__ void layernorm_bwd_dx_kernel(float *dinp, const float *dout, const float *inp, const float *w,
                                        const float *mean, const float *rstd, int rows, int C) {
    int row = blockIdx.x * NORM_ROWS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    const float *x = inp + (size_t)row * C, *dy = dout + (size_t)row * C;
    float *dx = dinp + (size_t)row * C;
    double mu = mean[row], rs = rstd[row], sg = 0.0, sgx = 0.0;
    for (int c = lane; c < C; c += 32) {
        double g = (double)w[c] * dy[c];
        sg += g, sgx += g * (x[c] - mu) * rs;
    }
    sg = warp_sum_double(sg) / C, sgx = warp_sum_double(sgx) / C;
    for (int c = lane; c < C; c += 32) dx[c] += (float)(rs * ((double)w[c] * dy[c] - sg - (x[c] - mu) * rs * sgx));
}

struct LnDwVal {
    const float *dout, *inp, *mean, *rstd;
    int C;
    __device__ float operator()(int g, int r, int c) const {
        size_t i = (size_t)r * C + c;
        return dout[i] * (float)(((double)inp[i] - mean[r]) * rstd[r]);
    }
};
struct LnDbVal {
    const float *dout;
    int C;
    __device__ float operator()(int g, int r, int c) const { return dout[(size_t)r * C + c]; }
};

extern "C" void cuda_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                                   const float *w, const float *mean, const float *rstd, int rows, int C) {
    if (rows <= 0) return;
    if (dinp) {
        unsigned blocks = (unsigned)((rows + NORM_ROWS_PER_BLOCK - 1) / NORM_ROWS_PER_BLOCK);
        layernorm_bwd_dx_kernel<<<blocks, CUDA_THREADS, 0, cuda_compute_stream()>>>(dinp, dout, inp, w, mean, rstd,
                                                                                   rows, C);
        CUDA_CHECK_LAUNCH();
    }
    if (dw) cuda_colsum(LnDwVal{dout, inp, mean, rstd, C}, RmsDwFin{dw}, 1, rows, C);
    if (db) cuda_colsum(LnDbVal{dout, C}, RmsDwFin{db}, 1, rows, C);
}
