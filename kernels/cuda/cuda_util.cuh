/* kernels/cuda/cuda_util.cuh — helpers the CUDA op kernels share beyond
 * cuda_common.cuh: a grow-only scratch buffer, and the two deterministic
 * reductions every backward pass needs.
 *
 * Why fixed-order reductions instead of atomics: the CPU backend is
 * bit-reproducible run to run, and the GPU should be too (a training run
 * that diverges must be replayable). Every sum below is cut into segments
 * whose size depends only on the shapes, summed in a fixed order inside a
 * block, and the segment results added in order by a second kernel. */
#ifndef KERNELS_CUDA_CUDA_UTIL_CUH
#define KERNELS_CUDA_CUDA_UTIL_CUH

#include "kernels/cuda/cuda_common.cuh"

/* A device buffer of at least `bytes`, valid until the next cuda_scratch call
 * (device.cu). It only grows, so after the first training step no call
 * allocates; growing waits for the stream before freeing the old buffer.
 * Callers take one scratch per phase and never hold it across a helper
 * (cuda_colsum, cuda_dsum) that takes scratch itself. */
void *cuda_scratch(size_t bytes);

/* Grid-stride loop over [0, n) with a size_t index (tensors may exceed 2^31). */
#define CUDA_FOR(i, n)                                                                                     \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)(n);                        \
         i += (size_t)gridDim.x * blockDim.x)

#define CUDA_THREADS 256

/* ---- column sums: out(g, c) = sum over rows r < R of val(g, r, c) ----
 * A block is 32 columns x 8 row lanes; lane y sums rows y, y+8, ... of its
 * segment in order, the 8 lanes are added in order, then the S segment
 * partials in order by cuda_colsum_finish. fin(g, c, sum) stores the result
 * (e.g. dst[g*C + c] += sum). */
template <class Val>
__global__ void cuda_colsum_partial(Val val, float *partial, int R, int C, int seg, int S) {
    __shared__ float sh[8][33];
    int tx = threadIdx.x, ty = threadIdx.y;
    int c = blockIdx.x * 32 + tx, s = blockIdx.y, g = blockIdx.z;
    long r0 = (long)s * seg, r1 = r0 + seg < R ? r0 + seg : R;
    float acc = 0.0f;
    if (c < C)
        for (long r = r0 + ty; r < r1; r += 8) acc += val(g, (int)r, c);
    sh[ty][tx] = acc;
    __syncthreads();
    if (ty == 0 && c < C) {
        float t = sh[0][tx];
        for (int i = 1; i < 8; i++) t += sh[i][tx];
        partial[((size_t)g * S + s) * C + c] = t;
    }
}

template <class Fin>
__global__ void cuda_colsum_finish(Fin fin, const float *partial, int G, int C, int S) {
    CUDA_FOR(i, (size_t)G * C) {
        int g = (int)(i / C), c = (int)(i % C);
        const float *p = partial + (size_t)g * S * C + c;
        float t = 0.0f;
        for (int s = 0; s < S; s++) t += p[(size_t)s * C];
        fin(g, c, t);
    }
}

/* Segments: enough blocks to fill the GPU (about 256), but at least 64 rows
 * each; a pure function of the shape, so the summation order is fixed. */
static inline int cuda_colsum_segments(int G, int R, int C) {
    long tiles = (long)(C + 31) / 32 * G;
    long want = (256 + tiles - 1) / tiles, most = ((long)R + 63) / 64;
    long S = want < most ? want : most;
    return (int)(S < 1 ? 1 : S > 1024 ? 1024 : S);
}

template <class Val, class Fin>
void cuda_colsum(Val val, Fin fin, int G, int R, int C) {
    if (G <= 0 || C <= 0) return;
    CHECK(G <= 65535, "cuda_colsum: %d groups exceed the grid's z limit (65535)", G);
    int S = cuda_colsum_segments(G, R, C);
    int seg = R > 0 ? (R + S - 1) / S : 0;
    float *partial = (float *)cuda_scratch((size_t)G * S * C * sizeof(float));
    cudaStream_t st = cuda_compute_stream();
    dim3 grid((unsigned)((C + 31) / 32), (unsigned)S, (unsigned)G), block(32, 8);
    cuda_colsum_partial<<<grid, block, 0, st>>>(val, partial, R, C, seg, S);
    CUDA_CHECK_LAUNCH();
    cuda_colsum_finish<<<cuda_blocks((size_t)G * C, CUDA_THREADS), CUDA_THREADS, 0, st>>>(fin, partial, G, C, S);
    CUDA_CHECK_LAUNCH();
}

/* ---- long sums in double: partial[g*S + s] = sum of val(g, i) over the
 * s-th segment of [0, L) (256 threads, fixed tree); fin(partial, G, S) then
 * runs on one thread and adds the partials in order (losses). ---- */
template <class Val>
__global__ void cuda_dsum_partial(Val val, double *partial, size_t L, size_t seg, int S) {
    __shared__ double sh[CUDA_THREADS];
    int t = threadIdx.x, s = blockIdx.x, g = blockIdx.y;
    size_t i0 = (size_t)s * seg, i1 = i0 + seg < L ? i0 + seg : L;
    double acc = 0.0;
    for (size_t i = i0 + t; i < i1; i += CUDA_THREADS) acc += val(g, i);
    sh[t] = acc;
    __syncthreads();
    for (int w = CUDA_THREADS / 2; w > 0; w >>= 1) {
        if (t < w) sh[t] += sh[t + w];
        __syncthreads();
    }
    if (t == 0) partial[(size_t)g * S + s] = sh[0];
}

template <class Fin>
__global__ void cuda_dsum_finish(Fin fin, const double *partial, int G, int S) {
    if (blockIdx.x == 0 && threadIdx.x == 0) fin(partial, G, S);
}

template <class Val, class Fin>
void cuda_dsum(Val val, Fin fin, int G, size_t L) {
    if (G <= 0) return;
    CHECK(G <= 65535, "cuda_dsum: %d groups exceed the grid's y limit (65535)", G);
    /* Segments of at least 4096 elements, about 256 blocks in all. */
    size_t want = (256 + (size_t)G - 1) / (size_t)G, most = (L + 4095) / 4096;
    size_t S = want < most ? want : most;
    S = S < 1 ? 1 : S > 4096 ? 4096 : S;
    size_t seg = (L + S - 1) / S;
    double *partial = (double *)cuda_scratch((size_t)G * S * sizeof(double));
    cudaStream_t st = cuda_compute_stream();
    cuda_dsum_partial<<<dim3((unsigned)S, (unsigned)G), CUDA_THREADS, 0, st>>>(val, partial, L, seg, (int)S);
    CUDA_CHECK_LAUNCH();
    cuda_dsum_finish<<<1, 1, 0, st>>>(fin, partial, G, (int)S);
    CUDA_CHECK_LAUNCH();
}

#endif
