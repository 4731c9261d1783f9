/* kernels/cuda/fused_norm.cu — norm_modulate (core/op_list.h): the gated
 * residual, RMSNorm and adaLN modulation of a JiT block in one pass, the
 * GPU twin of kernels/cpu/fused.c.
 *
 * Forward: one block per row (grid-stride over rows); each thread keeps its
 * units of the row (residual sum r) in registers across the block-wide sum
 * of squares, so x, y, gate, shift, scale and w are read once and res, out
 * written once. Backward: a block walks a segment of one sample's tokens;
 * per row it reads dout, r (, dres, y, gate), forms the RMSNorm dot product
 * with a block-wide sum, writes dx (, dy), and adds the row into per-thread
 * column partials of dshift, dscale, dgate and dw, which it stores once
 * per segment; a second small kernel adds the segments in order. Sums are
 * fp32 in a fixed order: the result is reproducible run to run.
 *
 * Alignment (kernels/cuda/vec.cuh): the float4 instance runs when C % 4 == 0
 * and every row pointer (x, y, res, out, w, shift, scale, gate; dout, dres,
 * r, dx, dy) is 16-byte aligned, else the scalar one (same results). */
#include "kernels/cuda/vec.cuh"

/* Units (of V floats) one thread holds; the block is sized to cover a row. */
#define NM_MAXU 2
#define NM_SEG 32 /* tokens per backward segment */
/* At most 512 threads a block: the backward holds about 105 registers a
 * thread (sm_80), and a block of 1024 would ask more than an SM has. Rows
 * up to 512 * NM_MAXU units: C <= 4096 (float4), 1024 (scalar). */
#define NM_MAX_THREADS 512

/* Threads per block for a row of `units` units: whole warps. */
static unsigned nm_threads(int units) {
    int t = (units + NM_MAXU - 1) / NM_MAXU;
    t = (t + 31) / 32 * 32;
    return (unsigned)(t < 32 ? 32 : t);
}

struct NmFwdArgs {
    float *out, *res, *rstd;
    const float *x, *gate, *y, *w, *shift, *scale;
    int B, N, C;
    float eps;
};

template <int V, bool Wide>
__global__ void __launch_bounds__(NM_MAX_THREADS) nm_fwd_kernel(NmFwdArgs a) {
    __shared__ float sh[32];
    int units = a.C / V, T = blockDim.x, tid = threadIdx.x;
    size_t rows = (size_t)a.B * a.N;
    for (size_t row = blockIdx.x; row < rows; row += gridDim.x) {
        size_t off = row * a.C, bo = row / a.N * a.C;
        float r[NM_MAXU][V];
        float ss = 0.0f;
#pragma unroll
        for (int k = 0; k < NM_MAXU; k++) {
            int u = tid + k * T;
            if (u >= units) continue;
            vec_load<V, Wide>(r[k], a.x + off + u * V);
            if (a.gate) {
                float g[V], y[V];
                vec_load<V, Wide>(g, a.gate + bo + u * V);
                vec_load<V, Wide>(y, a.y + off + u * V);
#pragma unroll
                for (int e = 0; e < V; e++) r[k][e] = r[k][e] + g[e] * y[e];
                vec_store<V, Wide>(a.res + off + u * V, r[k]);
            }
#pragma unroll
            for (int e = 0; e < V; e++) ss += r[k][e] * r[k][e];
        }
        ss = vec_block_sum(ss, sh);
        float s = (float)(1.0 / sqrt((double)ss / a.C + a.eps));
        if (tid == 0) a.rstd[row] = s;
#pragma unroll
        for (int k = 0; k < NM_MAXU; k++) {
            int u = tid + k * T;
            if (u >= units) continue;
            float w[V], sf[V], sc[V], o[V];
            vec_load<V, Wide>(w, a.w + u * V);
            vec_load<V, Wide>(sf, a.shift + bo + u * V);
            vec_load<V, Wide>(sc, a.scale + bo + u * V);
#pragma unroll
            for (int e = 0; e < V; e++) o[e] = r[k][e] * s * w[e] * (1.0f + sc[e]) + sf[e];
            vec_store<V, Wide>(a.out + off + u * V, o);
        }
    }
}

extern "C" void cuda_norm_modulate_fwd(float *out, float *res, float *rstd, const float *x, const float *gate,
                                       const float *y, const float *w, const float *shift, const float *scale, int B,
                                       int N, int C, float eps) {
    size_t rows = (size_t)B * N;
    if (!rows || C <= 0) return;
    NmFwdArgs a = {out, res, rstd, x, gate, y, w, shift, scale, B, N, C, eps};
    bool wide = C % 4 == 0 && vec_aligned({out, res, x, gate, y, w, shift, scale});
    int units = wide ? C / 4 : C;
    CHECK(units <= NM_MAX_THREADS * NM_MAXU, "norm_modulate: a row of %d floats is longer than the kernel's %d",
          C, NM_MAX_THREADS * NM_MAXU * (wide ? 4 : 1));
    unsigned T = nm_threads(units), blocks = (unsigned)(rows < 65535u * 16u ? rows : 65535u * 16u);
    if (wide)
        nm_fwd_kernel<4, true><<<blocks, T, 0, cuda_compute_stream()>>>(a);
    else
        nm_fwd_kernel<1, false><<<blocks, T, 0, cuda_compute_stream()>>>(a);
    CUDA_CHECK_LAUNCH();
}

struct NmBwdArgs {
    float *dx, *dy, *part; /* part: [4][B][S][C] partials of dshift, dscale, dgate, dw */
    const float *dout, *dres, *r, *gate, *y, *w, *scale, *rstd;
    int B, N, C, S;
    bool want_sh, want_sc, want_g, want_w, want_row; /* which sums; whether dx/dy/dgate need the row pass */
};

template <int V, bool Wide>
__global__ void __launch_bounds__(NM_MAX_THREADS) nm_bwd_kernel(NmBwdArgs a) {
    __shared__ float sh[32];
    int units = a.C / V, T = blockDim.x, tid = threadIdx.x;
    int s_id = blockIdx.x, b = blockIdx.y;
    int n0 = s_id * NM_SEG, n1 = n0 + NM_SEG < a.N ? n0 + NM_SEG : a.N;
    size_t bo = (size_t)b * a.C;
    float acc_sh[NM_MAXU][V], acc_sc[NM_MAXU][V], acc_g[NM_MAXU][V], acc_w[NM_MAXU][V];
#pragma unroll
    for (int k = 0; k < NM_MAXU; k++)
#pragma unroll
        for (int e = 0; e < V; e++) acc_sh[k][e] = acc_sc[k][e] = acc_g[k][e] = acc_w[k][e] = 0.0f;
    for (int n = n0; n < n1; n++) {
        size_t row = (size_t)b * a.N + n, off = row * a.C;
        float s = a.rstd[row];
        float d[NM_MAXU][V], r[NM_MAXU][V], g[NM_MAXU][V], w[NM_MAXU][V];
        float dot = 0.0f;
#pragma unroll
        for (int k = 0; k < NM_MAXU; k++) {
            int u = tid + k * T;
            if (u >= units) continue;
            float sc[V];
            vec_load<V, Wide>(d[k], a.dout + off + u * V);
            vec_load<V, Wide>(r[k], a.r + off + u * V);
            vec_load<V, Wide>(w[k], a.w + u * V);
            vec_load<V, Wide>(sc, a.scale + bo + u * V);
#pragma unroll
            for (int e = 0; e < V; e++) {
                g[k][e] = d[k][e] * (1.0f + sc[e]); /* modulate's backward */
                dot += w[k][e] * g[k][e] * r[k][e];
                acc_sh[k][e] += d[k][e];
                acc_sc[k][e] += d[k][e] * (r[k][e] * s * w[k][e]);
                acc_w[k][e] += g[k][e] * r[k][e] * s;
            }
        }
        if (!a.want_row) continue;
        dot = vec_block_sum(dot, sh);
        float kk = dot * s * s * s / a.C;
#pragma unroll
        for (int k = 0; k < NM_MAXU; k++) {
            int u = tid + k * T;
            if (u >= units) continue;
            float t[V];
#pragma unroll
            for (int e = 0; e < V; e++) t[e] = s * w[k][e] * g[k][e] - kk * r[k][e];
            if (a.dres) {
                float dr[V];
                vec_load<V, Wide>(dr, a.dres + off + u * V);
#pragma unroll
                for (int e = 0; e < V; e++) t[e] = dr[e] + t[e];
            }
            if (a.dx) {
                float o[V];
                vec_load<V, Wide>(o, a.dx + off + u * V);
#pragma unroll
                for (int e = 0; e < V; e++) o[e] += t[e];
                vec_store<V, Wide>(a.dx + off + u * V, o);
            }
            if (a.gate && (a.dy || a.want_g)) {
                float gt[V], y[V];
                vec_load<V, Wide>(gt, a.gate + bo + u * V);
                if (a.want_g) vec_load<V, Wide>(y, a.y + off + u * V);
                if (a.dy) {
                    float o[V];
                    vec_load<V, Wide>(o, a.dy + off + u * V);
#pragma unroll
                    for (int e = 0; e < V; e++) o[e] += t[e] * gt[e];
                    vec_store<V, Wide>(a.dy + off + u * V, o);
                }
                if (a.want_g)
#pragma unroll
                    for (int e = 0; e < V; e++) acc_g[k][e] += t[e] * y[e];
            }
        }
    }
    /* This segment's column partials, once. */
    size_t plane = (size_t)a.B * a.S * a.C, po = ((size_t)b * a.S + s_id) * a.C;
#pragma unroll
    for (int k = 0; k < NM_MAXU; k++) {
        int u = tid + k * T;
        if (u >= units) continue;
#pragma unroll
        for (int e = 0; e < V; e++) {
            size_t c = po + (size_t)u * V + e;
            if (a.want_sh) a.part[c] = acc_sh[k][e];
            if (a.want_sc) a.part[plane + c] = acc_sc[k][e];
            if (a.want_g) a.part[2 * plane + c] = acc_g[k][e];
            if (a.want_w) a.part[3 * plane + c] = acc_w[k][e];
        }
    }
}

extern "C" void cuda_norm_modulate_bwd(float *dx, float *dgate, float *dy, float *dw, float *dshift, float *dscale,
                                       const float *dout, const float *dres, const float *r, const float *gate,
                                       const float *y, const float *w, const float *scale, const float *rstd, int B,
                                       int N, int C) {
    if (B <= 0 || N <= 0 || C <= 0) return;
    if (!gate) dgate = dy = NULL, dres = NULL;
    if (!dx && !dgate && !dy && !dw && !dshift && !dscale) return;
    int S = (N + NM_SEG - 1) / NM_SEG;
    CHECK(B <= 65535, "norm_modulate: batch %d exceeds the grid's y limit (65535)", B);
    size_t plane = (size_t)B * S * C;
    float *part = (float *)cuda_scratch(4 * plane * sizeof(float));
    NmBwdArgs a = {dx, dy, part, dout, dres, r, gate, y, w, scale, rstd, B, N, C, S,
                   dshift != NULL, dscale != NULL, dgate != NULL, dw != NULL, dx || dy || dgate};
    bool wide = C % 4 == 0 && vec_aligned({dx, dy, dout, dres, r, gate, y, w, scale});
    int units = wide ? C / 4 : C;
    CHECK(units <= NM_MAX_THREADS * NM_MAXU, "norm_modulate: a row of %d floats is longer than the kernel's %d",
          C, NM_MAX_THREADS * NM_MAXU * (wide ? 4 : 1));
    cudaStream_t st = cuda_compute_stream();
    dim3 grid((unsigned)S, (unsigned)B);
    if (wide)
        nm_bwd_kernel<4, true><<<grid, nm_threads(units), 0, st>>>(a);
    else
        nm_bwd_kernel<1, false><<<grid, nm_threads(units), 0, st>>>(a);
    CUDA_CHECK_LAUNCH();
    float *dst[3] = {dshift, dscale, dgate};
    for (int i = 0; i < 3; i++) vec_sum_partials(dst[i], part + i * plane, B, (size_t)S, C);
    vec_sum_partials(dw, part + 3 * plane, 1, (size_t)B * S, C); /* over samples and segments */
}
