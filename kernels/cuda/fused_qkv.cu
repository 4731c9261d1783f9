/* kernels/cuda/fused_qkv.cu — qkv_norm_rope (core/op_list.h): the head
 * split, q/k RMSNorm and 2D RoPE of attention in one pass, the GPU twin of
 * kernels/cpu/fused.c.
 *
 * A group of G lanes (G = the power of two covering a head row's units, at
 * most a warp) owns one [B, H, N] row at a time: it reads the row's q, k and
 * v from qkv once, sums the squares of q and k with shuffles inside the
 * group, and writes q, k (normalised and rotated) and v once. A unit is one
 * rotation pair or two (V = 2 or 4 floats), so a lane rotates what it holds.
 * Backward: each group walks a fixed segment of rows, reads dq, dk, dv and
 * the row of qkv once, adds into dqkv, and keeps per-lane column partials of
 * the norm weights' gradients, stored once per segment and added in segment
 * order by a second kernel (fp32, reproducible).
 *
 * Alignment (kernels/cuda/vec.cuh): the float4 instance runs when qkv, q,
 * k, v (dqkv, dq, dk, dv), qw, kw, cos and sin are 16-byte aligned (hd % 4
 * == 0 always: 2D RoPE needs it), else the scalar one (same results). */
#include "kernels/cuda/vec.cuh"

#define QR_MAXU 4 /* units per lane: hd <= 256 with V = 2 */
#define QR_SEG 64 /* rows per backward segment */

struct QrRow { /* where row (b, h, n) of [B, H, N] lives */
    size_t out, src;       /* its offset in q/k/v and q's offset in qkv */
    const float *cs, *sn;  /* its angles, NULL before n_ctx */
};

__device__ __forceinline__ QrRow qr_row(size_t row, int N, int H, int hd, int n_ctx, const float *cos,
                                        const float *sin) {
    int n = (int)(row % N);
    size_t bh = row / N, b = bh / H, h = bh % H;
    QrRow q;
    q.out = row * hd;
    q.src = (b * N + n) * 3 * (size_t)H * hd + h * hd;
    q.cs = n < n_ctx ? NULL : cos + (size_t)(n - n_ctx) * (hd / 2);
    q.sn = n < n_ctx ? NULL : sin + (size_t)(n - n_ctx) * (hd / 2);
    return q;
}

/* Rotate the V/2 pairs of a unit at pair index j0 by sign * angle. */
template <int V, bool Wide>
__device__ __forceinline__ void qr_rotate(float (&x)[V], const float *cs, const float *sn, int j0, float sign) {
    if (!cs) return;
    float c[V / 2], s[V / 2];
    if constexpr (Wide && V == 4) {
        float2 tc = *reinterpret_cast<const float2 *>(cs + j0), ts = *reinterpret_cast<const float2 *>(sn + j0);
        c[0] = tc.x, c[1] = tc.y, s[0] = ts.x, s[1] = ts.y;
    } else {
#pragma unroll
        for (int p = 0; p < V / 2; p++) c[p] = cs[j0 + p], s[p] = sn[j0 + p];
    }
#pragma unroll
    for (int p = 0; p < V / 2; p++) {
        float sv = sign * s[p], x0 = x[2 * p], x1 = x[2 * p + 1];
        x[2 * p] = x0 * c[p] - x1 * sv;
        x[2 * p + 1] = x1 * c[p] + x0 * sv;
    }
}

__device__ __forceinline__ float qr_group_sum(float v, int G) {
    for (int o = G / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

struct QrArgs {
    float *q, *k, *v, *rstd, *dqkv, *part; /* part: [2][groups][hd] partials of dqw, dkw */
    const float *qkv, *qw, *kw, *cos, *sin, *dq, *dk, *dv, *rstd_in;
    int B, N, H, hd, n_ctx, G;
    size_t rows, groups;
    float eps;
};

/* Every lane of a warp runs the same number of iterations (the shuffles need
 * the whole warp): rows past the end are computed on row 0 and not stored. */
template <int V, bool Wide>
__global__ void qr_fwd_kernel(QrArgs a) {
    int G = a.G, lane = threadIdx.x % 32, sub = lane % G, units = a.hd / V;
    size_t gid = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / G;
    size_t ngroups = (size_t)gridDim.x * blockDim.x / G;
    size_t D = (size_t)a.H * a.hd;
    for (size_t base = gid - gid % (32 / G); base < a.rows; base += ngroups) {
        size_t row = base + gid % (32 / G);
        bool valid = row < a.rows;
        QrRow p = qr_row(valid ? row : 0, a.N, a.H, a.hd, a.n_ctx, a.cos, a.sin);
        float xq[QR_MAXU][V], xk[QR_MAXU][V];
        float sq = 0.0f, sk = 0.0f;
#pragma unroll
        for (int k = 0; k < QR_MAXU; k++) {
            int u = sub + k * G;
            if (u >= units) continue;
            vec_load<V, Wide>(xq[k], a.qkv + p.src + u * V);
            vec_load<V, Wide>(xk[k], a.qkv + p.src + D + u * V);
#pragma unroll
            for (int e = 0; e < V; e++) sq += xq[k][e] * xq[k][e], sk += xk[k][e] * xk[k][e];
        }
        sq = qr_group_sum(sq, G), sk = qr_group_sum(sk, G);
        float rq = (float)(1.0 / sqrt((double)sq / a.hd + a.eps)), rk = (float)(1.0 / sqrt((double)sk / a.hd + a.eps));
        if (!valid) continue;
        if (sub == 0) a.rstd[row] = rq, a.rstd[a.rows + row] = rk;
#pragma unroll
        for (int k = 0; k < QR_MAXU; k++) {
            int u = sub + k * G;
            if (u >= units) continue;
            float wq[V], wk[V], vv[V];
            vec_load<V, Wide>(wq, a.qw + u * V);
            vec_load<V, Wide>(wk, a.kw + u * V);
#pragma unroll
            for (int e = 0; e < V; e++) xq[k][e] = xq[k][e] * rq * wq[e], xk[k][e] = xk[k][e] * rk * wk[e];
            qr_rotate<V, Wide>(xq[k], p.cs, p.sn, u * V / 2, 1.0f);
            qr_rotate<V, Wide>(xk[k], p.cs, p.sn, u * V / 2, 1.0f);
            vec_store<V, Wide>(a.q + p.out + u * V, xq[k]);
            vec_store<V, Wide>(a.k + p.out + u * V, xk[k]);
            vec_load<V, Wide>(vv, a.qkv + p.src + 2 * D + u * V);
            vec_store<V, Wide>(a.v + p.out + u * V, vv);
        }
    }
}

/* Lanes per row: the power of two covering the units, 4 to 32. */
static int qr_group(int units) {
    int G = 4;
    while (G < 32 && G < units) G *= 2;
    return G;
}

static bool qr_wide(std::initializer_list<const void *> ptrs) { return vec_aligned(ptrs); }

extern "C" void cuda_qkv_norm_rope_fwd(float *q, float *k, float *v, float *rstd, const float *qkv, const float *qw,
                                       const float *kw, const float *cos, const float *sin, int B, int N, int H,
                                       int hd, int n_ctx, float eps) {
    size_t rows = (size_t)B * H * N;
    if (!rows) return;
    CHECK(hd % 4 == 0 && hd <= QKV_NORM_ROPE_MAX_HD, "qkv_norm_rope: head dimension %d", hd);
    bool wide = qr_wide({q, k, v, qkv, qw, kw, cos, sin});
    int V = wide ? 4 : 2, G = qr_group(hd / V);
    QrArgs a = {q, k, v, rstd, NULL, NULL, qkv, qw, kw, cos, sin, NULL, NULL, NULL, NULL, B, N, H, hd, n_ctx, G,
                rows, 0, eps};
    size_t threads = rows * G;
    unsigned blocks = cuda_blocks(threads, CUDA_THREADS);
    if (wide)
        qr_fwd_kernel<4, true><<<blocks, CUDA_THREADS, 0, cuda_compute_stream()>>>(a);
    else
        qr_fwd_kernel<2, false><<<blocks, CUDA_THREADS, 0, cuda_compute_stream()>>>(a);
    CUDA_CHECK_LAUNCH();
}

/* One head row's q (part 0) or k (part 1) backward: unrotate the incoming
 * gradient, RMSNorm's backward into dqkv, the weight's column partials into
 * acc. Every lane of the group calls it (the dot product is a group sum). */
template <int V, bool Wide>
__device__ __forceinline__ void qr_bwd_part(const QrArgs &a, const QrRow &p, size_t row, bool valid, int part,
                                            float (&acc)[QR_MAXU][V]) {
    const float *dd = part ? a.dk : a.dq, *wt = part ? a.kw : a.qw;
    int G = a.G, sub = (threadIdx.x % 32) % G, units = a.hd / V;
    size_t D = (size_t)a.H * a.hd;
    float g[QR_MAXU][V], x[QR_MAXU][V], w[QR_MAXU][V];
    float s = a.rstd_in[(size_t)part * a.rows + row], dot = 0.0f;
#pragma unroll
    for (int k = 0; k < QR_MAXU; k++) {
        int u = sub + k * G;
        if (u >= units) continue;
        vec_load<V, Wide>(g[k], dd + p.out + u * V);
        vec_load<V, Wide>(x[k], a.qkv + p.src + part * D + u * V);
        vec_load<V, Wide>(w[k], wt + u * V);
        qr_rotate<V, Wide>(g[k], p.cs, p.sn, u * V / 2, -1.0f); /* rope's backward */
#pragma unroll
        for (int e = 0; e < V; e++) dot += w[k][e] * g[k][e] * x[k][e];
    }
    dot = qr_group_sum(dot, G);
    float kk = dot * s * s * s / a.hd;
    if (!valid) return;
#pragma unroll
    for (int k = 0; k < QR_MAXU; k++) {
        int u = sub + k * G;
        if (u >= units) continue;
#pragma unroll
        for (int e = 0; e < V; e++) acc[k][e] += g[k][e] * x[k][e] * s;
        if (a.dqkv) {
            float o[V];
            float *dst = a.dqkv + p.src + part * D + u * V;
            vec_load<V, Wide>(o, dst);
#pragma unroll
            for (int e = 0; e < V; e++) o[e] += s * w[k][e] * g[k][e] - kk * x[k][e];
            vec_store<V, Wide>(dst, o);
        }
    }
}

/* Group gid (of a.groups) takes rows [gid * QR_SEG, (gid + 1) * QR_SEG). */
template <int V, bool Wide>
__global__ void qr_bwd_kernel(QrArgs a) {
    int G = a.G, sub = (threadIdx.x % 32) % G, units = a.hd / V;
    size_t gid = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / G;
    bool live = gid < a.groups; /* dead groups still run: their warp's shuffles need every lane */
    size_t D = (size_t)a.H * a.hd;
    float accq[QR_MAXU][V], acck[QR_MAXU][V];
#pragma unroll
    for (int k = 0; k < QR_MAXU; k++)
#pragma unroll
        for (int e = 0; e < V; e++) accq[k][e] = acck[k][e] = 0.0f;
    for (int i = 0; i < QR_SEG; i++) {
        size_t row = gid * QR_SEG + i;
        bool valid = live && row < a.rows;
        if (!valid) row = 0;
        QrRow p = qr_row(row, a.N, a.H, a.hd, a.n_ctx, a.cos, a.sin);
        if (a.dq) qr_bwd_part<V, Wide>(a, p, row, valid, 0, accq);
        if (a.dk) qr_bwd_part<V, Wide>(a, p, row, valid, 1, acck);
        if (valid && a.dv && a.dqkv)
#pragma unroll
            for (int k = 0; k < QR_MAXU; k++) {
                int u = sub + k * G;
                if (u >= units) continue;
                float o[V], d[V];
                float *dst = a.dqkv + p.src + 2 * D + u * V;
                vec_load<V, Wide>(d, a.dv + p.out + u * V);
                vec_load<V, Wide>(o, dst);
#pragma unroll
                for (int e = 0; e < V; e++) o[e] += d[e];
                vec_store<V, Wide>(dst, o);
            }
    }
    if (!live || !a.part) return;
#pragma unroll
    for (int k = 0; k < QR_MAXU; k++) {
        int u = sub + k * G;
        if (u >= units) continue;
#pragma unroll
        for (int e = 0; e < V; e++) {
            size_t c = gid * a.hd + (size_t)u * V + e;
            a.part[c] = accq[k][e];
            a.part[a.groups * a.hd + c] = acck[k][e];
        }
    }
}

extern "C" void cuda_qkv_norm_rope_bwd(float *dqkv, float *dqw, float *dkw, const float *dq, const float *dk,
                                       const float *dv, const float *qkv, const float *qw, const float *kw,
                                       const float *rstd, const float *cos, const float *sin, int B, int N, int H,
                                       int hd, int n_ctx) {
    size_t rows = (size_t)B * H * N;
    if (!rows || (!dq && !dk && !dv)) return;
    if (!dqkv && !dqw && !dkw) return;
    CHECK(hd % 4 == 0 && hd <= QKV_NORM_ROPE_MAX_HD, "qkv_norm_rope: head dimension %d", hd);
    bool wide = qr_wide({dqkv, dq, dk, dv, qkv, qw, kw, cos, sin});
    int V = wide ? 4 : 2, G = qr_group(hd / V);
    size_t groups = (rows + QR_SEG - 1) / QR_SEG;
    float *part = (dqw && dq) || (dkw && dk) ? (float *)cuda_scratch(2 * groups * hd * sizeof(float)) : NULL;
    QrArgs a = {NULL, NULL, NULL, NULL, dqkv, part, qkv, qw, kw, cos, sin, dq, dk, dv, rstd, B, N, H, hd, n_ctx, G,
                rows, groups, 0.0f};
    CHECK(groups * G <= (size_t)65535 * 32 * CUDA_THREADS, "qkv_norm_rope: %zu rows are too many for one launch",
          rows);
    unsigned blocks = cuda_blocks(groups * G, CUDA_THREADS);
    cudaStream_t st = cuda_compute_stream();
    if (wide)
        qr_bwd_kernel<4, true><<<blocks, CUDA_THREADS, 0, st>>>(a);
    else
        qr_bwd_kernel<2, false><<<blocks, CUDA_THREADS, 0, st>>>(a);
    CUDA_CHECK_LAUNCH();
    if (dq) vec_sum_partials(dqw, part, 1, groups, hd);
    if (dk) vec_sum_partials(dkw, part + groups * hd, 1, groups, hd);
}
