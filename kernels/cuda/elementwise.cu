/* kernels/cuda/elementwise.cu — the cheap ops, GPU twins of
 * kernels/cpu/elementwise.c: adaLN modulate, gated residual, SwiGLU, SiLU,
 * broadcast and plain adds, chunking, dropout, accumulate. One thread per
 * element (grid-stride, size_t indices). Sums over tokens (d shift, d scale,
 * d gate) are fixed-order column sums per sample; the sum over the batch of
 * add_rows runs in batch order in one thread per element, as on the CPU.
 * The gated residual and SwiGLU, which move the most bytes of these, go in
 * units of 4 floats (one float4 access each) when their widths are
 * multiples of 4 and their arrays 16-byte aligned, else one float a thread
 * (kernels/cuda/vec.cuh; same results either way). */
#include "kernels/cuda/cuda_rng.cuh"
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/vec.cuh"

#define LAUNCH(n) <<<cuda_blocks((size_t)(n), CUDA_THREADS), CUDA_THREADS, 0, cuda_compute_stream()>>>

/* ---- per-sample column sums over the N tokens: dst[b*C + c] += sum_n f ---- */
struct TokSum1 { /* dout */
    const float *d;
    int N, C;
    __device__ float operator()(int b, int n, int c) const { return d[((size_t)b * N + n) * C + c]; }
};
struct TokSum2 { /* dout * y */
    const float *d, *y;
    int N, C;
    __device__ float operator()(int b, int n, int c) const {
        size_t i = ((size_t)b * N + n) * C + c;
        return d[i] * y[i];
    }
};
struct AddTo {
    float *dst;
    int C;
    __device__ void operator()(int b, int c, float s) const { dst[(size_t)b * C + c] += s; }
};

/* ---- modulate: out = x (1 + scale[b]) + shift[b] ---- */
__global__ void modulate_fwd_kernel(float *out, const float *x, const float *shift, const float *scale, int N, int C,
                                    size_t n) {
    CUDA_FOR(i, n) {
        size_t bc = i / ((size_t)N * C) * C + i % C;
        out[i] = x[i] * (1.0f + scale[bc]) + shift[bc];
    }
}

__global__ void modulate_bwd_dx_kernel(float *dx, const float *dout, const float *scale, int N, int C, size_t n) {
    CUDA_FOR(i, n) dx[i] += dout[i] * (1.0f + scale[i / ((size_t)N * C) * C + i % C]);
}

extern "C" void cuda_modulate_fwd(float *out, const float *x, const float *shift, const float *scale, int B, int N,
                                  int C) {
    size_t n = (size_t)B * N * C;
    if (!n) return;
    modulate_fwd_kernel LAUNCH(n)(out, x, shift, scale, N, C, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_modulate_bwd(float *dx, float *dshift, float *dscale, const float *dout, const float *x,
                                  const float *scale, int B, int N, int C) {
    size_t n = (size_t)B * N * C;
    if (!n) return;
    if (dx) {
        modulate_bwd_dx_kernel LAUNCH(n)(dx, dout, scale, N, C, n);
        CUDA_CHECK_LAUNCH();
    }
    if (dshift) cuda_colsum(TokSum1{dout, N, C}, AddTo{dshift, C}, B, N, C);
    if (dscale) cuda_colsum(TokSum2{dout, x, N, C}, AddTo{dscale, C}, B, N, C);
}

/* ---- gated residual: out = x + gate[b] y; unit i = floats [i V, i V + V) ---- */
template <int V, bool Wide>
__global__ void gated_add_fwd_kernel(float *out, const float *x, const float *gate, const float *y, int N, int C,
                                     size_t nu) {
    CUDA_FOR(i, nu) {
        size_t e0 = i * V, bc = e0 / ((size_t)N * C) * C + e0 % C;
        float xv[V], g[V], yv[V];
        vec_load<V, Wide>(xv, x + e0);
        vec_load<V, Wide>(g, gate + bc);
        vec_load<V, Wide>(yv, y + e0);
#pragma unroll
        for (int e = 0; e < V; e++) xv[e] = xv[e] + g[e] * yv[e];
        vec_store<V, Wide>(out + e0, xv);
    }
}

template <int V, bool Wide>
__global__ void gated_add_bwd_kernel(float *dx, float *dy, const float *dout, const float *gate, int N, int C,
                                     size_t nu) {
    CUDA_FOR(i, nu) {
        size_t e0 = i * V;
        float d[V], o[V];
        vec_load<V, Wide>(d, dout + e0);
        if (dx) {
            vec_load<V, Wide>(o, dx + e0);
#pragma unroll
            for (int e = 0; e < V; e++) o[e] += d[e];
            vec_store<V, Wide>(dx + e0, o);
        }
        if (dy) {
            float g[V];
            vec_load<V, Wide>(g, gate + e0 / ((size_t)N * C) * C + e0 % C);
            vec_load<V, Wide>(o, dy + e0);
#pragma unroll
            for (int e = 0; e < V; e++) o[e] += d[e] * g[e];
            vec_store<V, Wide>(dy + e0, o);
        }
    }
}

extern "C" void cuda_gated_add_fwd(float *out, const float *x, const float *gate, const float *y, int B, int N,
                                   int C) {
    size_t n = (size_t)B * N * C;
    if (!n) return;
    if (C % 4 == 0 && vec_aligned({out, x, gate, y}))
        gated_add_fwd_kernel<4, true> LAUNCH(n / 4)(out, x, gate, y, N, C, n / 4);
    else
        gated_add_fwd_kernel<1, false> LAUNCH(n)(out, x, gate, y, N, C, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_gated_add_bwd(float *dx, float *dgate, float *dy, const float *dout, const float *gate,
                                   const float *y, int B, int N, int C) {
    size_t n = (size_t)B * N * C;
    if (!n) return;
    if (dx || dy) {
        if (C % 4 == 0 && vec_aligned({dx, dy, dout, gate}))
            gated_add_bwd_kernel<4, true> LAUNCH(n / 4)(dx, dy, dout, gate, N, C, n / 4);
        else
            gated_add_bwd_kernel<1, false> LAUNCH(n)(dx, dy, dout, gate, N, C, n);
        CUDA_CHECK_LAUNCH();
    }
    if (dgate) cuda_colsum(TokSum2{dout, y, N, C}, AddTo{dgate, C}, B, N, C);
}

/* ---- SwiGLU and SiLU; d silu(a)/da = s (1 + a (1 - s)), s = sigmoid(a) ---- */
__device__ __forceinline__ float sigmoid_(float x) { return 1.0f / (1.0f + expf(-x)); }

/* unit i: out floats [m h + j, + V) from a = inp[m 2h + j ...] and b = a + h */
template <int V, bool Wide>
__global__ void swiglu_fwd_kernel(float *out, const float *inp, int h, size_t nu) {
    int hu = h / V;
    CUDA_FOR(i, nu) {
        size_t m = i / hu, j = (i % hu) * V;
        float a[V], b[V];
        vec_load<V, Wide>(a, inp + m * 2 * h + j);
        vec_load<V, Wide>(b, inp + m * 2 * h + h + j);
#pragma unroll
        for (int e = 0; e < V; e++) a[e] = a[e] * sigmoid_(a[e]) * b[e];
        vec_store<V, Wide>(out + m * h + j, a);
    }
}

template <int V, bool Wide>
__global__ void swiglu_bwd_kernel(float *dinp, const float *dout, const float *inp, int h, size_t nu) {
    int hu = h / V;
    CUDA_FOR(i, nu) {
        size_t m = i / hu, j = (i % hu) * V, ia = m * 2 * h + j;
        float a[V], b[V], d[V], da[V], db[V];
        vec_load<V, Wide>(a, inp + ia);
        vec_load<V, Wide>(b, inp + ia + h);
        vec_load<V, Wide>(d, dout + m * h + j);
        vec_load<V, Wide>(da, dinp + ia);
        vec_load<V, Wide>(db, dinp + ia + h);
#pragma unroll
        for (int e = 0; e < V; e++) {
            float s = sigmoid_(a[e]);
            da[e] += d[e] * b[e] * s * (1.0f + a[e] * (1.0f - s));
            db[e] += d[e] * a[e] * s;
        }
        vec_store<V, Wide>(dinp + ia, da);
        vec_store<V, Wide>(dinp + ia + h, db);
    }
}

extern "C" void cuda_swiglu_fwd(float *out, const float *inp, int M, int h) {
    size_t n = (size_t)M * h;
    if (!n) return;
    if (h % 4 == 0 && vec_aligned({out, inp}))
        swiglu_fwd_kernel<4, true> LAUNCH(n / 4)(out, inp, h, n / 4);
    else
        swiglu_fwd_kernel<1, false> LAUNCH(n)(out, inp, h, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_swiglu_bwd(float *dinp, const float *dout, const float *inp, int M, int h) {
    size_t n = (size_t)M * h;
    if (!n) return;
    if (h % 4 == 0 && vec_aligned({dinp, dout, inp}))
        swiglu_bwd_kernel<4, true> LAUNCH(n / 4)(dinp, dout, inp, h, n / 4);
    else
        swiglu_bwd_kernel<1, false> LAUNCH(n)(dinp, dout, inp, h, n);
    CUDA_CHECK_LAUNCH();
}

__global__ void silu_fwd_kernel(float *out, const float *inp, size_t n) {
    CUDA_FOR(i, n) out[i] = inp[i] * sigmoid_(inp[i]);
}

__global__ void silu_bwd_kernel(float *dinp, const float *dout, const float *inp, size_t n) {
    CUDA_FOR(i, n) {
        float s = sigmoid_(inp[i]);
        dinp[i] += dout[i] * s * (1.0f + inp[i] * (1.0f - s));
    }
}

extern "C" void cuda_silu_fwd(float *out, const float *inp, size_t n) {
    if (!n) return;
    silu_fwd_kernel LAUNCH(n)(out, inp, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_silu_bwd(float *dinp, const float *dout, const float *inp, size_t n) {
    if (!n) return;
    silu_bwd_kernel LAUNCH(n)(dinp, dout, inp, n);
    CUDA_CHECK_LAUNCH();
}

/* ---- adds ---- */
__global__ void add_kernel(float *out, const float *a, const float *b, size_t n) {
    CUDA_FOR(i, n) out[i] = a[i] + b[i];
}

__global__ void accumulate_kernel(float *dst, const float *src, size_t n) {
    CUDA_FOR(i, n) dst[i] += src[i];
}

__global__ void add_rows_fwd_kernel(float *out, const float *x, const float *y, size_t NC, size_t n) {
    CUDA_FOR(i, n) out[i] = x[i] + y[i % NC];
}

/* dy[n, c] += sum over b, in batch order (as the CPU). */
__global__ void add_rows_bwd_dy_kernel(float *dy, const float *dout, int B, size_t NC) {
    CUDA_FOR(i, NC) {
        float acc = dy[i];
        for (int b = 0; b < B; b++) acc += dout[(size_t)b * NC + i];
        dy[i] = acc;
    }
}

extern "C" void cuda_add_fwd(float *out, const float *a, const float *b, size_t n) {
    if (!n) return;
    add_kernel LAUNCH(n)(out, a, b, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_accumulate(float *dst, const float *src, size_t n) {
    if (!n) return;
    accumulate_kernel LAUNCH(n)(dst, src, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_add_rows_fwd(float *out, const float *x, const float *y, int B, int N, int C) {
    size_t NC = (size_t)N * C, n = (size_t)B * NC;
    if (!n) return;
    add_rows_fwd_kernel LAUNCH(n)(out, x, y, NC, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_add_rows_bwd(float *dx, float *dy, const float *dout, int B, int N, int C) {
    size_t NC = (size_t)N * C;
    if (!NC || B <= 0) return;
    if (dx) cuda_accumulate(dx, dout, (size_t)B * NC);
    if (dy) {
        add_rows_bwd_dy_kernel LAUNCH(NC)(dy, dout, B, NC);
        CUDA_CHECK_LAUNCH();
    }
}

/* ---- chunk: columns [j*C, (j+1)*C) of x [B, k*C] ---- */
__global__ void chunk_kernel(float *out, const float *x, int k, int C, int j, size_t n, int backward) {
    CUDA_FOR(i, n) {
        size_t b = i / C, src = (b * k + j) * C + i % C;
        if (backward)
            out[src] += x[i]; /* out = dx [B, k*C], x = dout [B, C] */
        else
            out[i] = x[src];
    }
}

extern "C" void cuda_chunk_fwd(float *out, const float *x, int B, int k, int C, int j) {
    size_t n = (size_t)B * C;
    if (!n) return;
    chunk_kernel LAUNCH(n)(out, x, k, C, j, n, 0);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_chunk_bwd(float *dx, const float *dout, int B, int k, int C, int j) {
    size_t n = (size_t)B * C;
    if (!n) return;
    chunk_kernel LAUNCH(n)(dx, dout, k, C, j, n, 1);
    CUDA_CHECK_LAUNCH();
}

/* ---- dropout: element i kept when uniform(seed, stream, i) >= p. One thread
 * per Philox block of 4 elements (one 10-round evaluation for 4 draws). ---- */
__global__ void dropout_kernel(float *out, const float *x, size_t n, float p, float keep, uint64_t seed,
                               uint64_t stream, int backward) {
    CUDA_FOR(blk, (n + 3) / 4) {
        uint32_t w[4];
        cuda_rng_block(seed, stream, blk, w);
        for (int l = 0; l < 4; l++) {
            size_t i = blk * 4 + l;
            if (i >= n) break;
            int kept = cuda_rng_open01(w[l]) >= p;
            if (backward) {
                if (kept) out[i] += x[i] * keep; /* out = dx, x = dout */
            } else {
                out[i] = kept ? x[i] * keep : 0.0f;
            }
        }
    }
}

extern "C" void cuda_dropout_fwd(float *out, const float *x, size_t n, float p, uint64_t seed, uint64_t stream) {
    if (!n) return;
    float keep = 1.0f / (1.0f - p); /* on the host, as the CPU computes it */
    dropout_kernel LAUNCH((n + 3) / 4)(out, x, n, p, keep, seed, stream, 0);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_dropout_bwd(float *dx, const float *dout, size_t n, float p, uint64_t seed, uint64_t stream) {
    if (!n) return;
    float keep = 1.0f / (1.0f - p);
    dropout_kernel LAUNCH((n + 3) / 4)(dx, dout, n, p, keep, seed, stream, 1);
    CUDA_CHECK_LAUNCH();
}

/* ---- exact GELU (DINOv2), in double like the CPU ---- */
__global__ void gelu_fwd_kernel(float *out, const float *inp, size_t n) {
    CUDA_FOR(i, n) out[i] = (float)(0.5 * inp[i] * (1.0 + erf(inp[i] * 0.70710678118654752440)));
}

__global__ void gelu_bwd_kernel(float *dinp, const float *dout, const float *inp, size_t n) {
    CUDA_FOR(i, n) {
        double x = inp[i];
        double d = 0.5 * (1.0 + erf(x * 0.70710678118654752440)) + x * exp(-0.5 * x * x) * 0.39894228040143267794;
        dinp[i] += (float)(dout[i] * d);
    }
}

extern "C" void cuda_gelu_fwd(float *out, const float *inp, size_t n) {
    if (!n) return;
    gelu_fwd_kernel LAUNCH(n)(out, inp, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_gelu_bwd(float *dinp, const float *dout, const float *inp, size_t n) {
    if (!n) return;
    gelu_bwd_kernel LAUNCH(n)(dinp, dout, inp, n);
    CUDA_CHECK_LAUNCH();
}
