/* kernels/cuda/embed.cu — conditioning inputs, GPU twins of kernels/cpu/embed.c:
 * timestep sinusoids, the class-table lookup, and the in-context class tokens
 * prepended to (and stripped from) the sequence. The sums these backward
 * passes need run over short axes (the batch, the L context tokens, the
 * embedding dim), so each output element is summed by one thread in the
 * CPU's order: the results are deterministic and match the CPU closely
 * (bit for bit where the arithmetic is the same). */
#include "kernels/cuda/cuda_util.cuh"

#define LAUNCH(n) <<<cuda_blocks((size_t)(n), CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>

/* f_j = exp(-ln(1e4) j / half), in double as on the CPU. */
__device__ __forceinline__ double embed_freq(int j, int half) { return exp(-log(10000.0) * j / half); }

__global__ void timestep_fwd_kernel(float *out, const float *t, int dim, size_t n) {
    int half = dim / 2;
    CUDA_FOR(i, n) { /* i over [B, half] */
        size_t b = i / half;
        int j = (int)(i % half);
        double a = (double)t[b] * embed_freq(j, half);
        out[b * dim + j] = (float)cos(a);
        out[b * dim + half + j] = (float)sin(a);
    }
}

/* One thread per sample: the sum over frequencies in order, in double. */
__global__ void timestep_bwd_kernel(float *dt, const float *dout, const float *t, int B, int dim) {
    int half = dim / 2;
    CUDA_FOR(b, B) {
        double acc = 0.0;
        for (int j = 0; j < half; j++) {
            double f = embed_freq(j, half), a = (double)t[b] * f;
            acc += -f * sin(a) * dout[b * dim + j] + f * cos(a) * dout[b * dim + half + j];
        }
        dt[b] += (float)acc;
    }
}

extern "C" void cuda_timestep_embed_fwd(float *out, const float *t, int B, int dim) {
    size_t n = (size_t)B * (dim / 2);
    if (!n) return;
    timestep_fwd_kernel LAUNCH(n)(out, t, dim, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_timestep_embed_bwd(float *dt, const float *dout, const float *t, int B, int dim) {
    if (B <= 0 || dim / 2 <= 0) return;
    timestep_bwd_kernel LAUNCH(B)(dt, dout, t, B, dim);
    CUDA_CHECK_LAUNCH();
}

/* ---- class table ---- */
__global__ void embedding_fwd_kernel(float *out, const float *table, const int *idx, int C, size_t n) {
    CUDA_FOR(i, n) out[i] = table[(size_t)idx[i / C] * C + i % C];
}

/* Two samples may share a class row: one thread per column walks the batch
 * in order, so no two threads touch the same element. */
__global__ void embedding_bwd_kernel(float *dtable, const float *dout, const int *idx, int B, int C) {
    CUDA_FOR(c, C) {
        for (int b = 0; b < B; b++) dtable[(size_t)idx[b] * C + c] += dout[(size_t)b * C + c];
    }
}

extern "C" void cuda_embedding_fwd(float *out, const float *table, const int *idx, int B, int C) {
    size_t n = (size_t)B * C;
    if (!n) return;
    embedding_fwd_kernel LAUNCH(n)(out, table, idx, C, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_embedding_bwd(float *dtable, const float *dout, const int *idx, int B, int C) {
    if (B <= 0 || C <= 0) return;
    embedding_bwd_kernel LAUNCH(C)(dtable, dout, idx, B, C);
    CUDA_CHECK_LAUNCH();
}

/* ---- in-context tokens: out [B, L+N, C], rows l < L = yemb[b] + pos[l] ---- */
__global__ void prepend_fwd_kernel(float *out, const float *x, const float *yemb, const float *pos, int N, int L, int C,
                                   size_t n) {
    CUDA_FOR(i, n) {
        int c = (int)(i % C);
        size_t row = i / C;
        int l = (int)(row % (L + N));
        size_t b = row / (L + N);
        out[i] = l < L ? yemb[b * C + c] + pos[(size_t)l * C + c] : x[(b * N + (l - L)) * C + c];
    }
}

/* dx += the last N rows of each sample */
__global__ void prepend_bwd_dx_kernel(float *dx, const float *dout, int N, int L, int C, size_t n) {
    CUDA_FOR(i, n) { /* i over [B, N, C] */
        size_t b = i / ((size_t)N * C), r = i % ((size_t)N * C);
        dx[i] += dout[(b * (L + N) + L) * C + r];
    }
}

/* dyemb[b, c] += sum over l < L (in order) */
__global__ void prepend_bwd_dyemb_kernel(float *dyemb, const float *dout, int N, int L, int C, size_t n) {
    CUDA_FOR(i, n) { /* i over [B, C] */
        size_t b = i / C;
        int c = (int)(i % C);
        float acc = dyemb[i];
        for (int l = 0; l < L; l++) acc += dout[(b * (L + N) + l) * C + c];
        dyemb[i] = acc;
    }
}

/* dpos[l, c] += sum over b (in order) */
__global__ void prepend_bwd_dpos_kernel(float *dpos, const float *dout, int B, int N, int L, int C, size_t n) {
    CUDA_FOR(i, n) { /* i over [L, C] */
        float acc = dpos[i];
        for (int b = 0; b < B; b++) acc += dout[(size_t)b * (L + N) * C + i];
        dpos[i] = acc;
    }
}

extern "C" void cuda_incontext_prepend_fwd(float *out, const float *x, const float *yemb, const float *pos, int B,
                                           int N, int L, int C) {
    size_t n = (size_t)B * (L + N) * C;
    if (!n) return;
    prepend_fwd_kernel LAUNCH(n)(out, x, yemb, pos, N, L, C, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_incontext_prepend_bwd(float *dx, float *dyemb, float *dpos, const float *dout, int B, int N,
                                           int L, int C) {
    if (B <= 0 || C <= 0) return;
    if (dx && N > 0) {
        size_t n = (size_t)B * N * C;
        prepend_bwd_dx_kernel LAUNCH(n)(dx, dout, N, L, C, n);
        CUDA_CHECK_LAUNCH();
    }
    if (dyemb && L > 0) {
        size_t n = (size_t)B * C;
        prepend_bwd_dyemb_kernel LAUNCH(n)(dyemb, dout, N, L, C, n);
        CUDA_CHECK_LAUNCH();
    }
    if (dpos && L > 0) {
        size_t n = (size_t)L * C;
        prepend_bwd_dpos_kernel LAUNCH(n)(dpos, dout, B, N, L, C, n);
        CUDA_CHECK_LAUNCH();
    }
}

/* strip: out [B, N, C] = x [B, L+N, C] without its first L rows */
__global__ void strip_kernel(float *out, const float *x, int N, int L, int C, size_t n, int backward) {
    CUDA_FOR(i, n) { /* i over [B, N, C] */
        size_t b = i / ((size_t)N * C), j = (b * (L + N) + L) * C + i % ((size_t)N * C);
        if (backward)
            out[j] += x[i]; /* out = dx [B, L+N, C], x = dout */
        else
            out[i] = x[j];
    }
}

extern "C" void cuda_incontext_strip_fwd(float *out, const float *x, int B, int N, int L, int C) {
    size_t n = (size_t)B * N * C;
    if (!n) return;
    strip_kernel LAUNCH(n)(out, x, N, L, C, n, 0);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_incontext_strip_bwd(float *dx, const float *dout, int B, int N, int L, int C) {
    size_t n = (size_t)B * N * C;
    if (!n) return;
    strip_kernel LAUNCH(n)(dx, dout, N, L, C, n, 1);
    CUDA_CHECK_LAUNCH();
}
