/* kernels/cuda/sla2_linear.cu — SLA2's linear branch on the GPU (twin of
 * linear_fwd / linear_bwd in kernels/cpu/sla2.c): feature maps phi over each
 * token's d channels, per key block h_j = phi(K_j)^T V_j and z_j = colsum
 * phi(K_j), per query block H_i = sum of h_j over its linear blocks (the
 * linear blocks directly or the totals minus the selected ones, whichever
 * has fewer terms, as the CPU chooses), O_l = phi(q) H_i / (phi(q) . Z_i +
 * eps); and the hand-written backward through H, Z and phi.
 *
 * Everything here is O(N d^2) per pair, small beside the sparse branch, so
 * the kernels are simple: one thread per output element summing in the
 * CPU's order where the CPU sums in a loop, d x d matrices staged in shared
 * memory (odd row stride) where a block reads one many times. */
#include <math.h>

#include "kernels/cuda/sla2_internal.cuh"

#define LIN_THREADS 256

/* ------------------------------------------------------------ feature maps */

/* y = phi(x) per row of d channels; one warp per row (lin_phi_row). */
__global__ void lin_phi_kernel(float *y, const float *x, size_t rows, int d, int fm) {
    const size_t row = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    if (row >= rows) return; /* whole warps */
    const float *xr = x + row * d;
    const LinPhiRow p = lin_phi_row(xr, d, fm, lane);
    for (int c = lane; c < d; c += 32) y[row * d + c] = p.at(xr[c]);
}

/* dx += J_phi(x)^T dy (y = phi(x)); one warp per row. */
__global__ void lin_phi_bwd_kernel(float *dx, const float *dy, const float *x, const float *y, size_t rows, int d,
                                   int fm) {
    const size_t row = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const size_t off = row * d;
    if (fm == SLA2_PHI_SOFTMAX) {
        double dot = 0.0;
        for (int c = lane; c < d; c += 32) dot += (double)y[off + c] * dy[off + c];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
        for (int c = lane; c < d; c += 32) dx[off + c] += y[off + c] * (dy[off + c] - (float)dot);
    } else if (fm == SLA2_PHI_ELU) {
        for (int c = lane; c < d; c += 32) dx[off + c] += x[off + c] > 0.0f ? dy[off + c] : dy[off + c] * y[off + c];
    } else {
        for (int c = lane; c < d; c += 32) dx[off + c] += x[off + c] > 0.0f ? dy[off + c] : 0.0f;
    }
}

/* ------------------------------------------------------ block outer sums */

/* Per block b of bs tokens (grid (nb, B*H)): outM[b] = X_b^T Y_b (d x d) and
 * outv[b] = X_b^T yv_b (yv NULL: ones, the column sum), tokens in order.
 * flag[b] == 0 writes zeros (a query block without linear blocks). */
template <int HDP>
__global__ void __launch_bounds__(LIN_THREADS) lin_outer_kernel(float *outM, float *outv, const float *X,
                                                                const float *Y, const float *yv, const float *flag,
                                                                int N, int d, int bs, int nb) {
    constexpr int CH = 32, PER = HDP * HDP / LIN_THREADS;
    __shared__ float Xs[CH][HDP], Ys[CH][HDP], ys[CH];
    const int tid = threadIdx.x, bh = blockIdx.y;
    const size_t ob = (size_t)bh * nb + blockIdx.x;
    float *oM = outM + ob * d * d, *ov = outv + ob * d;
    if (flag && flag[ob] == 0.0f) {
        for (int e = tid; e < d * d; e += LIN_THREADS) oM[e] = 0.0f;
        for (int e = tid; e < d; e += LIN_THREADS) ov[e] = 0.0f;
        return;
    }
    const int a0 = blockIdx.x * bs, n = min(bs, N - a0);
    const size_t rbase = (size_t)bh * N + a0;
    float acc[PER], accv = 0.0f;
#pragma unroll
    for (int t = 0; t < PER; t++) acc[t] = 0.0f;
    for (int c0 = 0; c0 < n; c0 += CH) {
        const int cn = min(CH, n - c0);
        __syncthreads(); /* the previous chunk is consumed */
        for (int e = tid; e < CH * HDP; e += LIN_THREADS) {
            const int r = e / HDP, c = e % HDP;
            const bool ok = r < cn && c < d;
            Xs[r][c] = ok ? X[(rbase + c0 + r) * d + c] : 0.0f;
            Ys[r][c] = ok ? Y[(rbase + c0 + r) * d + c] : 0.0f;
        }
        if (tid < CH) ys[tid] = tid < cn ? (yv ? yv[rbase + c0 + tid] : 1.0f) : 0.0f;
        __syncthreads();
        for (int b = 0; b < cn; b++) {
#pragma unroll
            for (int t = 0; t < PER; t++) {
                const int e = tid + LIN_THREADS * t;
                acc[t] = fmaf(Xs[b][e / HDP], Ys[b][e % HDP], acc[t]);
            }
            if (tid < HDP) accv = fmaf(Xs[b][tid], ys[b], accv);
        }
    }
#pragma unroll
    for (int t = 0; t < PER; t++) {
        const int e = tid + LIN_THREADS * t, r = e / HDP, c = e % HDP;
        if (r < d && c < d) oM[r * d + c] = acc[t];
    }
    if (tid < d) ov[tid] = accv;
}

/* An element of block t's (matrix, vector) pair, flattened as [d*d | d]. */
__device__ __forceinline__ float lin_src(const float *srcM, const float *srcv, size_t blk, size_t e, size_t dd,
                                         int d) {
    return e < dd ? srcM[blk * dd + e] : srcv[blk * d + (e - dd)];
}

/* tot[bh][e] = sum over the nb blocks of (srcM, srcv)[e], in block order. */
__global__ void lin_tot_kernel(float *tot, const float *srcM, const float *srcv, int BH, int nb, int d) {
    const size_t dd = (size_t)d * d, per = dd + d, t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (size_t)BH * per) return;
    const size_t bh = t / per, e = t % per;
    float acc = 0.0f;
    for (int j = 0; j < nb; j++) acc += lin_src(srcM, srcv, bh * nb + j, e, dd, d);
    tot[t] = acc;
}

/* Sums over the complement of the mask. by_key = 0 (forward): output o is a
 * query block, H_o = sum_j (1 - M[o][j]) h_j, with flag[o] = 0 when the
 * block has no linear block. by_key = 1 (backward): o is a key block,
 * dh_o = sum_i (1 - M[i][o]) dH_i. A hard mask sums whichever side has fewer
 * terms (tot = the sum over all blocks). Grid (elements / 256, n_out, B*H). */
__global__ void lin_hsum_kernel(float *outM, float *outv, float *flag_out, const float *srcM, const float *srcv,
                                const float *tot, const float *mask, int soft, int nq, int nk, int d, int by_key) {
    const size_t dd = (size_t)d * d, e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int o = blockIdx.y, bh = blockIdx.z, n_out = by_key ? nk : nq, n_in = by_key ? nq : nk;
    if (e >= dd + d) return;
    const float *mk = mask + (size_t)bh * nq * nk;
    const size_t mo = by_key ? (size_t)o : (size_t)o * nk, ms = by_key ? (size_t)nk : 1; /* M(t) = mk[mo + t*ms] */
    const size_t b0 = (size_t)bh * n_in;
    float acc = 0.0f;
    int has_linear = 1;
    if (soft) {
        for (int t = 0; t < n_in; t++) {
            const float u = 1.0f - mk[mo + t * ms];
            if (u != 0.0f) acc = fmaf(u, lin_src(srcM, srcv, b0 + t, e, dd, d), acc);
        }
    } else {
        int n_sel = 0;
        for (int t = 0; t < n_in; t++) n_sel += mk[mo + t * ms] != 0.0f;
        if (n_sel == n_in) {
            has_linear = 0;
        } else if (n_in - n_sel <= n_sel) { /* the linear blocks directly */
            for (int t = 0; t < n_in; t++)
                if (mk[mo + t * ms] == 0.0f) acc += lin_src(srcM, srcv, b0 + t, e, dd, d);
        } else { /* the totals minus the selected blocks */
            acc = tot[(size_t)bh * (dd + d) + e];
            for (int t = 0; t < n_in; t++)
                if (mk[mo + t * ms] != 0.0f) acc -= lin_src(srcM, srcv, b0 + t, e, dd, d);
        }
    }
    const size_t ob = (size_t)bh * n_out + o;
    if (e < dd) outM[ob * dd + e] = acc;
    else outv[ob * d + (e - dd)] = acc;
    if (flag_out && e == 0) flag_out[ob] = (float)has_linear;
}

/* ------------------------------------------------------------ the output */

/* den[row] = phi(q_row) . Z_i + eps (1 where the block has no linear part); one warp per row. */
__global__ void lin_den_kernel(float *den, const float *phi_q, const float *Zq, const float *flag, size_t rows,
                               int N, int d, int bq, int nq) {
    const size_t row = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const size_t bh = row / N, qb = bh * nq + (row % N) / bq;
    if (flag[qb] == 0.0f) {
        if (lane == 0) den[row] = 1.0f;
        return;
    }
    float s = 0.0f;
    for (int c = lane; c < d; c += 32) s = fmaf(phi_q[row * d + c], Zq[qb * d + c], s);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (lane == 0) den[row] = s + SLA2_LINEAR_EPS;
}

/* O_l[a][c] = (phi_q[a] . H_i[:, c]) / den[a] over query block i; grid (nq, B*H), H_i in shared memory. */
__global__ void __launch_bounds__(LIN_THREADS) lin_out_kernel(float *o, const float *phi_q, const float *Hq,
                                                              const float *flag, const float *den, int N, int d,
                                                              int bq, int nq) {
    extern __shared__ float lin_smem[]; /* H_i [d][d + 1] */
    const int i = blockIdx.x, bh = blockIdx.y, tid = threadIdx.x, L = d + 1;
    const size_t qb = (size_t)bh * nq + i;
    const bool lin = flag[qb] != 0.0f;
    if (lin)
        for (int e = tid; e < d * d; e += LIN_THREADS) lin_smem[(e / d) * L + e % d] = Hq[qb * d * d + e];
    __syncthreads();
    const int a0 = i * bq, na = min(bq, N - a0);
    for (int e = tid; e < na * d; e += LIN_THREADS) {
        const size_t row = (size_t)bh * N + a0 + e / d;
        const int c = e % d;
        float val = 0.0f;
        if (lin) {
            const float *pq = phi_q + row * d;
            float num = 0.0f;
            for (int r = 0; r < d; r++) num = fmaf(pq[r], lin_smem[r * L + c], num);
            val = num / den[row];
        }
        o[row * d + c] = val;
    }
}

/* ----------------------------------------------------------------- backward */

/* gl = (1 - alpha) dout; dden = -(gl . O_l) / den; dA = gl / den (0 without a linear part). One warp per row. */
__global__ void lin_dA_kernel(float *dA, float *dden, const float *dout, const float *o_l, const float *den,
                              const float *flag, const float *alpha_logit, int B, int H, int N, int d, int bq,
                              int nq) {
    const size_t row = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    if (row >= (size_t)B * H * N) return;
    const int n = (int)(row % N), h = (int)(row / N % H), b = (int)(row / ((size_t)N * H));
    const size_t bh = row / N;
    float *da = dA + row * d;
    if (flag[bh * nq + n / bq] == 0.0f) {
        for (int c = lane; c < d; c += 32) da[c] = 0.0f;
        if (lane == 0) dden[row] = 0.0f;
        return;
    }
    const float alpha = 1.0f / (1.0f + expf(-alpha_logit[h])), ga = 1.0f - alpha, dn = den[row];
    const float *g = dout + ((size_t)b * N + n) * H * d + (size_t)h * d, *ol = o_l + row * d;
    float s = 0.0f;
    for (int c = lane; c < d; c += 32) {
        const float gl = ga * g[c];
        s = fmaf(gl, ol[c], s);
        da[c] = gl / dn;
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (lane == 0) dden[row] = -s / dn;
}

/* dphi_q[a][r] = dA[a] . H_i[r, :] + dden[a] Z_i[r]; grid (nq, B*H). */
__global__ void __launch_bounds__(LIN_THREADS) lin_dphiq_kernel(float *dphi_q, const float *dA, const float *dden,
                                                                const float *Hq, const float *Zq, const float *flag,
                                                                int N, int d, int bq, int nq) {
    extern __shared__ float lin_smem[]; /* H_i [d][d + 1], Z_i [d] */
    const int i = blockIdx.x, bh = blockIdx.y, tid = threadIdx.x, L = d + 1;
    float *Zs = lin_smem + d * L;
    const size_t qb = (size_t)bh * nq + i;
    const bool lin = flag[qb] != 0.0f;
    if (lin) {
        for (int e = tid; e < d * d; e += LIN_THREADS) lin_smem[(e / d) * L + e % d] = Hq[qb * d * d + e];
        for (int e = tid; e < d; e += LIN_THREADS) Zs[e] = Zq[qb * d + e];
    }
    __syncthreads();
    const int a0 = i * bq, na = min(bq, N - a0);
    for (int e = tid; e < na * d; e += LIN_THREADS) {
        const size_t row = (size_t)bh * N + a0 + e / d;
        const int r = e % d;
        float val = 0.0f;
        if (lin) {
            const float *g = dA + row * d;
            for (int c = 0; c < d; c++) val = fmaf(g[c], lin_smem[r * L + c], val);
            val += dden[row] * Zs[r];
        }
        dphi_q[row * d + r] = val;
    }
}

/* Soft top-k: dmask[i][j] -= dH_i . h_j + dZ_i . z_j; one warp per (pair, i, j). */
__global__ void lin_dmask_kernel(float *dmask, const float *dH, const float *dZ, const float *h, const float *z,
                                 int BH, int nq, int nk, int d) {
    const size_t w = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    if (w >= (size_t)BH * nq * nk) return;
    const int j = (int)(w % nk), i = (int)(w / nk % nq);
    const size_t bh = w / ((size_t)nk * nq), dd = (size_t)d * d;
    const float *a = dH + (bh * nq + i) * dd, *b = h + (bh * nk + j) * dd;
    double s1 = 0.0, s2 = 0.0;
    for (size_t e = lane; e < dd; e += 32) s1 += (double)a[e] * b[e];
    for (int e = lane; e < d; e += 32) s2 += (double)dZ[(bh * nq + i) * d + e] * z[(bh * nk + j) * d + e];
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        s1 += __shfl_xor_sync(0xffffffffu, s1, off);
        s2 += __shfl_xor_sync(0xffffffffu, s2, off);
    }
    if (lane == 0) dmask[w] -= (float)s1 + (float)s2;
}

/* Per key block j (grid (nk, B*H)), dh_j in shared memory:
 * dphi_k[b][r] = V_b . dh_j[r, :] + dz_j[r];  dv[b][c] += phi_k[b] . dh_j[:, c]. */
__global__ void __launch_bounds__(LIN_THREADS) lin_dphik_kernel(float *dphi_k, float *dv, const float *v,
                                                                const float *phi_k, const float *dh, const float *dz,
                                                                int N, int d, int bk, int nk) {
    extern __shared__ float lin_smem[]; /* dh_j [d][d + 1], dz_j [d] */
    const int j = blockIdx.x, bh = blockIdx.y, tid = threadIdx.x, L = d + 1;
    float *dzs = lin_smem + d * L;
    const size_t kb = (size_t)bh * nk + j;
    for (int e = tid; e < d * d; e += LIN_THREADS) lin_smem[(e / d) * L + e % d] = dh[kb * d * d + e];
    for (int e = tid; e < d; e += LIN_THREADS) dzs[e] = dz[kb * d + e];
    __syncthreads();
    const int b0 = j * bk, nb = min(bk, N - b0);
    for (int e = tid; e < nb * d; e += LIN_THREADS) {
        const size_t row = (size_t)bh * N + b0 + e / d;
        const int x = e % d;
        const float *vb = v + row * d, *pk = phi_k + row * d;
        float s = 0.0f;
        for (int c = 0; c < d; c++) s = fmaf(vb[c], lin_smem[x * L + c], s);
        dphi_k[row * d + x] = s + dzs[x];
        if (dv) {
            float t = 0.0f;
            for (int r = 0; r < d; r++) t = fmaf(pk[r], lin_smem[r * L + x], t);
            dv[row * d + x] += t;
        }
    }
}

/* ------------------------------------------------------------------ drivers */

static size_t lin_smem_dd(int d) { return sizeof(float) * ((size_t)d * (d + 1) + d); }

template <class Kernel>
static void lin_optin(Kernel kern, size_t bytes) {
    if (bytes > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

static void lin_outer(float *outM, float *outv, const float *X, const float *Y, const float *yv, const float *flag,
                      const Sla2Dims *dm, int bs, int nb) {
    dim3 grid((unsigned)nb, (unsigned)(dm->B * dm->H));
    cudaStream_t st = cuda_compute_stream();
    if (dm->d <= 32)
        lin_outer_kernel<32><<<grid, LIN_THREADS, 0, st>>>(outM, outv, X, Y, yv, flag, dm->N, dm->d, bs, nb);
    else if (dm->d <= 64)
        lin_outer_kernel<64><<<grid, LIN_THREADS, 0, st>>>(outM, outv, X, Y, yv, flag, dm->N, dm->d, bs, nb);
    else lin_outer_kernel<128><<<grid, LIN_THREADS, 0, st>>>(outM, outv, X, Y, yv, flag, dm->N, dm->d, bs, nb);
    CUDA_CHECK_LAUNCH();
}

static void lin_hsum(float *outM, float *outv, float *flag_out, const float *srcM, const float *srcv,
                     const float *mask, const Sla2Dims *dm, int by_key, Sla2GpuWs *w) {
    const int BH = dm->B * dm->H, n_in = by_key ? dm->nq : dm->nk, n_out = by_key ? dm->nk : dm->nq, d = dm->d;
    const size_t per = (size_t)d * d + d;
    cudaStream_t st = cuda_compute_stream();
    CHECK(n_out <= 65535, "SLA2 on the GPU: %d blocks exceed the grid's y limit (65535); use larger blocks", n_out);
    if (!dm->soft) {
        lin_tot_kernel<<<sla2_grid((size_t)BH * per), 256, 0, st>>>(w->tot, srcM, srcv, BH, n_in, d);
        CUDA_CHECK_LAUNCH();
    }
    dim3 grid(sla2_grid(per), (unsigned)n_out, (unsigned)BH);
    lin_hsum_kernel<<<grid, 256, 0, st>>>(outM, outv, flag_out, srcM, srcv, w->tot, mask, dm->soft, dm->nq, dm->nk,
                                          d, by_key);
    CUDA_CHECK_LAUNCH();
}

/* phi, block sums, H_i / Z_i / flags and den: shared by forward and backward. */
static void lin_prepare(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                        Sla2GpuWs *w) {
    const size_t rows = (size_t)dm->B * dm->H * dm->N;
    cudaStream_t st = cuda_compute_stream();
    lin_phi_kernel<<<sla2_grid(rows * 32), 256, 0, st>>>(w->phi_q, q, rows, dm->d, dm->feature_map);
    CUDA_CHECK_LAUNCH();
    lin_phi_kernel<<<sla2_grid(rows * 32), 256, 0, st>>>(w->phi_k, k, rows, dm->d, dm->feature_map);
    CUDA_CHECK_LAUNCH();
    lin_outer(w->h, w->z, w->phi_k, v, NULL, NULL, dm, dm->block_k, dm->nk);
    lin_hsum(w->Hq, w->Zq, w->flag, w->h, w->z, mask, dm, 0, w);
    lin_den_kernel<<<sla2_grid(rows * 32), 256, 0, st>>>(w->den, w->phi_q, w->Zq, w->flag, rows, dm->N, dm->d,
                                                         dm->block_q, dm->nq);
    CUDA_CHECK_LAUNCH();
}

void cuda_sla2_linear_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                          float *o_l, Sla2GpuWs *w) {
    lin_prepare(dm, q, k, v, mask, w);
    const size_t smem = lin_smem_dd(dm->d);
    lin_optin(lin_out_kernel, smem);
    lin_out_kernel<<<dim3((unsigned)dm->nq, (unsigned)(dm->B * dm->H)), LIN_THREADS, smem, cuda_compute_stream()>>>(
        o_l, w->phi_q, w->Hq, w->flag, w->den, dm->N, dm->d, dm->block_q, dm->nq);
    CUDA_CHECK_LAUNCH();
}

void cuda_sla2_linear_bwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                          const float *o_l, const float *dout, const float *alpha_logit, float *dq, float *dk,
                          float *dv, Sla2GpuWs *w) {
    if (!dq && !dk && !dv && !dm->soft) return;
    const int BH = dm->B * dm->H;
    const size_t rows = (size_t)BH * dm->N, smem = lin_smem_dd(dm->d);
    dim3 qgrid((unsigned)dm->nq, (unsigned)BH), kgrid((unsigned)dm->nk, (unsigned)BH);
    cudaStream_t st = cuda_compute_stream();
    lin_prepare(dm, q, k, v, mask, w); /* recomputed, as on the CPU */
    if (!o_l) { /* the forward's O_l came from the bf16 products: dden uses this fp32 one (w->dphi_q is free until
                 * lin_dphiq_kernel), so the gradient is the fp32 branch's, as the CPU's */
        lin_optin(lin_out_kernel, smem);
        lin_out_kernel<<<qgrid, LIN_THREADS, smem, st>>>(w->dphi_q, w->phi_q, w->Hq, w->flag, w->den, dm->N, dm->d,
                                                         dm->block_q, dm->nq);
        CUDA_CHECK_LAUNCH();
        o_l = w->dphi_q;
    }
    lin_dA_kernel<<<sla2_grid(rows * 32), 256, 0, st>>>(w->dA, w->dden, dout, o_l, w->den, w->flag, alpha_logit,
                                                        dm->B, dm->H, dm->N, dm->d, dm->block_q, dm->nq);
    CUDA_CHECK_LAUNCH();
    /* dH_i = phi_q^T dA, dZ_i = phi_q^T dden over query block i */
    lin_outer(w->dH, w->dZ, w->phi_q, w->dA, w->dden, w->flag, dm, dm->block_q, dm->nq);
    if (dm->soft) {
        lin_dmask_kernel<<<sla2_grid((size_t)BH * dm->nq * dm->nk * 32), 256, 0, st>>>(w->dmask, w->dH, w->dZ, w->h,
                                                                                    w->z, BH, dm->nq, dm->nk, dm->d);
        CUDA_CHECK_LAUNCH();
    }
    if (dq) {
        lin_optin(lin_dphiq_kernel, smem);
        lin_dphiq_kernel<<<qgrid, LIN_THREADS, smem, st>>>(w->dphi_q, w->dA, w->dden, w->Hq, w->Zq, w->flag, dm->N,
                                                           dm->d, dm->block_q, dm->nq);
        CUDA_CHECK_LAUNCH();
        lin_phi_bwd_kernel<<<sla2_grid(rows * 32), 256, 0, st>>>(dq, w->dphi_q, q, w->phi_q, rows, dm->d,
                                                                 dm->feature_map);
        CUDA_CHECK_LAUNCH();
    }
    if (dk || dv) {
        /* dh_j = sum_i (1 - M_ij) dH_i, then back through h_j = phi(K_j)^T V_j and z_j */
        lin_hsum(w->dh, w->dz, NULL, w->dH, w->dZ, mask, dm, 1, w);
        lin_optin(lin_dphik_kernel, smem);
        lin_dphik_kernel<<<kgrid, LIN_THREADS, smem, st>>>(w->dphi_k, dv, v, w->phi_k, w->dh, w->dz, dm->N, dm->d,
                                                           dm->block_k, dm->nk);
        CUDA_CHECK_LAUNCH();
        if (dk) {
            lin_phi_bwd_kernel<<<sla2_grid(rows * 32), 256, 0, st>>>(dk, w->dphi_k, k, w->phi_k, rows, dm->d,
                                                                     dm->feature_map);
            CUDA_CHECK_LAUNCH();
        }
    }
}
