/* kernels/cuda/sla2_router.cu — SLA2's router on the GPU (twin of
 * kernels/cpu/sla2_router.c): K smoothing, block mean pooling, projection,
 * block scores and their row softmax, hard top-k (ties to the lower index)
 * or soft top-k (bisection), and the soft top-k backward to proj_q, proj_k,
 * q and k.
 *
 * The router is tiny (nq x nk per pair) but decides the mask, so it follows
 * the CPU's arithmetic step by step: sums in double in the same order, and
 * products with __dmul_rn / __dadd_rn so that nvcc cannot fuse them into an
 * FMA the CPU build (-ffp-contract=off) does not make. The scores then agree
 * to the last bit (only exp differs, by an ulp of a double), and the hard
 * selection agrees except at a tie within that. */
#include <math.h>

#include "kernels/cuda/sla2_internal.cuh"

#define RT_THREADS 128

/* Fixed-tree block reductions of 128 threads; every thread gets the result. */
__device__ double rt_blk_sum(double v, double *red) {
    red[threadIdx.x] = v;
    __syncthreads();
    for (int w = RT_THREADS / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) red[threadIdx.x] += red[threadIdx.x + w];
        __syncthreads();
    }
    const double r = red[0];
    __syncthreads();
    return r;
}
__device__ double rt_blk_max(double v, double *red) {
    red[threadIdx.x] = v;
    __syncthreads();
    for (int w = RT_THREADS / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) red[threadIdx.x] = fmax(red[threadIdx.x], red[threadIdx.x + w]);
        __syncthreads();
    }
    const double r = red[0];
    __syncthreads();
    return r;
}

__device__ __forceinline__ double rt_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* ------------------------------------------------------------------ forward */

/* kmean[bh][c] = mean over the N tokens of k (double, token order). */
__global__ void rt_kmean_kernel(float *kmean, const float *k, int BH, int N, int d) {
    const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (size_t)BH * d) return;
    const int bh = (int)(t / d), c = (int)(t % d);
    const float *kb = k + (size_t)bh * N * d + c;
    double s = 0.0;
    for (int n = 0; n < N; n++) s += kb[(size_t)n * d];
    kmean[t] = (float)(s / N);
}

/* out[bh][i][c] = mean of x over block i (real token count) - sub[bh][c]. */
__global__ void rt_pool_kernel(float *out, const float *x, const float *sub, int BH, int N, int d, int bs, int nb) {
    const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (size_t)BH * nb * d) return;
    const int c = (int)(t % d), i = (int)(t / d % nb), bh = (int)(t / ((size_t)d * nb));
    const int a0 = i * bs, n = min(bs, N - a0);
    const float *xb = x + ((size_t)bh * N + a0) * d + c;
    double s = 0.0;
    for (int a = 0; a < n; a++) s += xb[(size_t)a * d];
    out[t] = (float)(s / n) - (sub ? sub[(size_t)bh * d + c] : 0.0f);
}

/* y[row][r] = sum_c W[r][c] x[row][c] (nn.Linear without bias), in double. */
__global__ void rt_project_kernel(float *y, const float *x, const float *W, size_t rows, int d) {
    const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= rows * d) return;
    const size_t row = t / d;
    const int r = (int)(t % d);
    double s = 0.0;
    for (int c = 0; c < d; c++) s = __dadd_rn(s, __dmul_rn((double)W[(size_t)r * d + c], (double)x[row * d + c]));
    y[t] = (float)s;
}

/* pc[bh][i][j] = (qt_i . kt_j) / sqrt(d): the logits, made probabilities by rt_select_kernel. */
__global__ void rt_scores_kernel(float *pc, const float *qt, const float *kt, int BH, int nq, int nk, int d) {
    const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (size_t)BH * nq * nk) return;
    const int j = (int)(t % nk), i = (int)(t / nk % nq), bh = (int)(t / ((size_t)nk * nq));
    const float *qi = qt + ((size_t)bh * nq + i) * d, *kj = kt + ((size_t)bh * nk + j) * d;
    double s = 0.0;
    for (int c = 0; c < d; c++) s = __dadd_rn(s, __dmul_rn((double)qi[c], (double)kj[c]));
    pc[t] = (float)__dmul_rn(s, 1.0 / sqrt((double)d));
}

/* One block per router row: softmax of the logits into pc, then the mask.
 * Hard: j is selected when fewer than k_sel entries beat it (greater, or
 * equal at a lower index): the same set as the CPU's repeated argmax. */
__global__ void __launch_bounds__(RT_THREADS) rt_select_kernel(float *mask, float *pc, int nk, int k_sel, int soft,
                                                                float tau) {
    extern __shared__ float rt_row[]; /* [nk] */
    __shared__ double red[RT_THREADS];
    const int t = threadIdx.x;
    float *prow = pc + (size_t)blockIdx.x * nk, *mrow = mask + (size_t)blockIdx.x * nk;
    double mx = -INFINITY;
    for (int j = t; j < nk; j += RT_THREADS) {
        rt_row[j] = prow[j];
        mx = fmax(mx, (double)rt_row[j]);
    }
    mx = rt_blk_max(mx, red);
    double s = 0.0;
    for (int j = t; j < nk; j += RT_THREADS) s += exp((double)rt_row[j] - mx);
    s = rt_blk_sum(s, red);
    for (int j = t; j < nk; j += RT_THREADS) {
        const float p = (float)(exp((double)rt_row[j] - mx) / s);
        rt_row[j] = p;
        prow[j] = p;
    }
    __syncthreads();
    if (!soft) {
        for (int j = t; j < nk; j += RT_THREADS) {
            const float pj = rt_row[j];
            int beat = 0;
            for (int l = 0; l < nk; l++) beat += rt_row[l] > pj || (rt_row[l] == pj && l < j);
            mrow[j] = beat < k_sel ? 1.0f : 0.0f;
        }
        return;
    }
    if (k_sel >= nk) { /* the soft top-k of all blocks is exactly 1 */
        for (int j = t; j < nk; j += RT_THREADS) mrow[j] = 1.0f;
        return;
    }
    double xmin = INFINITY, xmax = -INFINITY;
    for (int j = t; j < nk; j += RT_THREADS) {
        const double x = rt_row[j] / (double)tau;
        xmin = fmin(xmin, x), xmax = fmax(xmax, x);
    }
    xmax = rt_blk_max(xmax, red);
    xmin = -rt_blk_max(-xmin, red);
    double lo = -xmax - 40.0, hi = -xmin + 40.0;
    for (int it = 0; it < 100; it++) {
        const double mid = 0.5 * (lo + hi);
        double ssum = 0.0;
        for (int j = t; j < nk; j += RT_THREADS) ssum += rt_sigmoid(rt_row[j] / (double)tau + mid);
        ssum = rt_blk_sum(ssum, red); /* the same in every thread: the branch is uniform */
        if (ssum < k_sel) lo = mid;
        else hi = mid;
    }
    const double lam = 0.5 * (lo + hi);
    for (int j = t; j < nk; j += RT_THREADS) mrow[j] = (float)rt_sigmoid(rt_row[j] / (double)tau + lam);
}

/* Smoothing, pooling and projection into w (kmean, qbar, kbar, qt, kt). */
static void rt_prepare(const Sla2Dims *dm, const float *q, const float *k, const float *Wq, const float *Wk,
                       Sla2GpuWs *w) {
    const int BH = dm->B * dm->H, N = dm->N, d = dm->d, nq = dm->nq, nk = dm->nk;
    cudaStream_t st = cuda_compute_stream();
    rt_kmean_kernel<<<sla2_grid((size_t)BH * d), 256, 0, st>>>(w->kmean, k, BH, N, d);
    CUDA_CHECK_LAUNCH();
    rt_pool_kernel<<<sla2_grid((size_t)BH * nq * d), 256, 0, st>>>(w->qbar, q, NULL, BH, N, d, dm->block_q, nq);
    CUDA_CHECK_LAUNCH();
    rt_pool_kernel<<<sla2_grid((size_t)BH * nk * d), 256, 0, st>>>(w->kbar, k, w->kmean, BH, N, d, dm->block_k, nk);
    CUDA_CHECK_LAUNCH();
    rt_project_kernel<<<sla2_grid((size_t)BH * nq * d), 256, 0, st>>>(w->qt, w->qbar, Wq, (size_t)BH * nq, d);
    CUDA_CHECK_LAUNCH();
    rt_project_kernel<<<sla2_grid((size_t)BH * nk * d), 256, 0, st>>>(w->kt, w->kbar, Wk, (size_t)BH * nk, d);
    CUDA_CHECK_LAUNCH();
}

void cuda_sla2_router_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *Wq, const float *Wk,
                          float *mask, float *pc, Sla2GpuWs *w) {
    const int BH = dm->B * dm->H, nq = dm->nq, nk = dm->nk;
    cudaStream_t st = cuda_compute_stream();
    rt_prepare(dm, q, k, Wq, Wk, w);
    rt_scores_kernel<<<sla2_grid((size_t)BH * nq * nk), 256, 0, st>>>(pc, w->qt, w->kt, BH, nq, nk, dm->d);
    CUDA_CHECK_LAUNCH();
    const size_t smem = sizeof(float) * (size_t)nk;
    CHECK(smem <= 40 * 1024, "SLA2 router: %d key blocks per row exceed the GPU router's limit (10240); use larger "
          "blocks", nk);
    rt_select_kernel<<<(unsigned)((size_t)BH * nq), RT_THREADS, smem, st>>>(mask, pc, nk, dm->k_sel, dm->soft,
                                                                           dm->tau);
    CUDA_CHECK_LAUNCH();
}

/* ----------------------------------------------------------------- backward */

/* One block per router row: the score gradients dsc[i][j] (double) through
 * the soft top-k's implicit function and the row softmax (CPU order). */
__global__ void __launch_bounds__(RT_THREADS) rt_dsc_kernel(double *dsc, const float *mask, const float *pc,
                                                             const float *dmask, int nk, float tau, int d) {
    __shared__ double red[RT_THREADS];
    const int t = threadIdx.x;
    const size_t off = (size_t)blockIdx.x * nk;
    const float *mrow = mask + off, *prow = pc + off, *grow = dmask + off;
    double ss = 0.0, sg = 0.0;
    for (int j = t; j < nk; j += RT_THREADS) {
        const double s = (double)mrow[j] * (1.0 - mrow[j]);
        ss += s, sg += s * grow[j];
    }
    ss = rt_blk_sum(ss, red);
    sg = rt_blk_sum(sg, red);
    double dot = 0.0;
    for (int j = t; j < nk; j += RT_THREADS) {
        const double s = (double)mrow[j] * (1.0 - mrow[j]);
        const double dpc = (ss > 0 ? s * grow[j] - s * sg / ss : 0.0) / tau;
        dot += dpc * prow[j];
    }
    dot = rt_blk_sum(dot, red);
    const double scale = 1.0 / sqrt((double)d);
    for (int j = t; j < nk; j += RT_THREADS) {
        const double s = (double)mrow[j] * (1.0 - mrow[j]);
        const double dpc = (ss > 0 ? s * grow[j] - s * sg / ss : 0.0) / tau;
        dsc[off + j] = prow[j] * (dpc - dot) * scale;
    }
}

/* dqt[i][c] = sum_j (float)(dsc[i][j] kt[j][c]), j in order (as the CPU). */
__global__ void rt_dqt_kernel(float *dqt, const double *dsc, const float *kt, int BH, int nq, int nk, int d) {
    const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (size_t)BH * nq * d) return;
    const int c = (int)(t % d), i = (int)(t / d % nq), bh = (int)(t / ((size_t)d * nq));
    const double *g = dsc + ((size_t)bh * nq + i) * nk;
    const float *kb = kt + (size_t)bh * nk * d + c;
    float acc = 0.0f;
    for (int j = 0; j < nk; j++) acc = __fadd_rn(acc, (float)(g[j] * kb[(size_t)j * d]));
    dqt[t] = acc;
}

/* dkt[j][c] = sum_i (float)(dsc[i][j] qt[i][c]), i in order. */
__global__ void rt_dkt_kernel(float *dkt, const double *dsc, const float *qt, int BH, int nq, int nk, int d) {
    const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (size_t)BH * nk * d) return;
    const int c = (int)(t % d), j = (int)(t / d % nk), bh = (int)(t / ((size_t)d * nk));
    const double *g = dsc + (size_t)bh * nq * nk + j;
    const float *qb = qt + (size_t)bh * nq * d + c;
    float acc = 0.0f;
    for (int i = 0; i < nq; i++) acc = __fadd_rn(acc, (float)(g[(size_t)i * nk] * qb[(size_t)i * d]));
    dkt[t] = acc;
}

/* Each pair's dW[r][c] = sum_i dt[i][r] bar[i][c] (fp32, block order). */
__global__ void rt_dw_kernel(float *dWp, const float *dt, const float *bar, int BH, int nb, int d) {
    const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (size_t)BH * d * d) return;
    const int c = (int)(t % d), r = (int)(t / d % d), bh = (int)(t / ((size_t)d * d));
    const float *g = dt + (size_t)bh * nb * d, *x = bar + (size_t)bh * nb * d;
    float acc = 0.0f;
    for (int i = 0; i < nb; i++) acc = __fadd_rn(acc, __fmul_rn(g[(size_t)i * d + r], x[(size_t)i * d + c]));
    dWp[t] = acc;
}

/* dW += the pairs' shares, added in pair order (reproducible, as the CPU). */
__global__ void rt_dw_reduce_kernel(float *dW, const float *dWp, int BH, int dd) {
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= dd) return;
    float x = dW[t];
    for (int bh = 0; bh < BH; bh++) x = __fadd_rn(x, dWp[(size_t)bh * dd + t]);
    dW[t] = x;
}

/* db[i][c] = sum_r dt[i][r] W[r][c] (double): the gradient of a pooled block mean. */
__global__ void rt_dbar_kernel(double *db, const float *dt, const float *W, size_t rows, int d) {
    const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= rows * d) return;
    const size_t row = t / d;
    const int c = (int)(t % d);
    double s = 0.0;
    for (int r = 0; r < d; r++) s = __dadd_rn(s, __dmul_rn((double)dt[row * d + r], (double)W[(size_t)r * d + c]));
    db[t] = s;
}

/* pm[bh][c] = (sum over key blocks of dbk) / N: kbar subtracts mean(K). */
__global__ void rt_dmean_kernel(float *pm, const double *dbk, int BH, int nk, int d, int N) {
    const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (size_t)BH * d) return;
    const int c = (int)(t % d), bh = (int)(t / d);
    double s = 0.0;
    for (int j = 0; j < nk; j++) s += dbk[((size_t)bh * nk + j) * d + c];
    pm[t] = (float)(s / N);
}

/* dx[a][c] += db[block(a)][c] / |block| (- pm[c] for k): a block mean
 * spreads its gradient evenly over its tokens. */
__global__ void rt_dx_kernel(float *dx, const double *db, const float *pm, int BH, int N, int d, int bs, int nb) {
    const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (size_t)BH * N * d) return;
    const int c = (int)(t % d), a = (int)(t / d % N), bh = (int)(t / ((size_t)d * N));
    const int i = a / bs, n = min(bs, N - i * bs);
    float x = __fadd_rn(dx[t], (float)(db[((size_t)bh * nb + i) * d + c] / n));
    if (pm) x = __fsub_rn(x, pm[(size_t)bh * d + c]);
    dx[t] = x;
}

void cuda_sla2_router_bwd(const Sla2Dims *dm, const float *q, const float *k, const float *Wq, const float *Wk,
                          const float *mask, const float *pc, float *dq, float *dk, float *dWq, float *dWk,
                          Sla2GpuWs *w) {
    const int BH = dm->B * dm->H, N = dm->N, d = dm->d, nq = dm->nq, nk = dm->nk;
    if (dm->k_sel >= nk) return; /* M = 1 exactly: no gradient */
    cudaStream_t st = cuda_compute_stream();
    rt_prepare(dm, q, k, Wq, Wk, w); /* recomputed, as on the CPU: cheap, and the workspace holds no state */
    rt_dsc_kernel<<<(unsigned)((size_t)BH * nq), RT_THREADS, 0, st>>>(w->dsc, mask, pc, w->dmask, nk, dm->tau, d);
    CUDA_CHECK_LAUNCH();
    rt_dqt_kernel<<<sla2_grid((size_t)BH * nq * d), 256, 0, st>>>(w->dqt, w->dsc, w->kt, BH, nq, nk, d);
    CUDA_CHECK_LAUNCH();
    rt_dkt_kernel<<<sla2_grid((size_t)BH * nk * d), 256, 0, st>>>(w->dkt, w->dsc, w->qt, BH, nq, nk, d);
    CUDA_CHECK_LAUNCH();
    const size_t dd = (size_t)d * d;
    if (dWq) {
        rt_dw_kernel<<<sla2_grid((size_t)BH * dd), 256, 0, st>>>(w->dWq, w->dqt, w->qbar, BH, nq, d);
        CUDA_CHECK_LAUNCH();
        rt_dw_reduce_kernel<<<sla2_grid(dd), 256, 0, st>>>(dWq, w->dWq, BH, (int)dd);
        CUDA_CHECK_LAUNCH();
    }
    if (dWk) {
        rt_dw_kernel<<<sla2_grid((size_t)BH * dd), 256, 0, st>>>(w->dWk, w->dkt, w->kbar, BH, nk, d);
        CUDA_CHECK_LAUNCH();
        rt_dw_reduce_kernel<<<sla2_grid(dd), 256, 0, st>>>(dWk, w->dWk, BH, (int)dd);
        CUDA_CHECK_LAUNCH();
    }
    if (dq) {
        rt_dbar_kernel<<<sla2_grid((size_t)BH * nq * d), 256, 0, st>>>(w->dbq, w->dqt, Wq, (size_t)BH * nq, d);
        CUDA_CHECK_LAUNCH();
        rt_dx_kernel<<<sla2_grid((size_t)BH * N * d), 256, 0, st>>>(dq, w->dbq, NULL, BH, N, d, dm->block_q, nq);
        CUDA_CHECK_LAUNCH();
    }
    if (dk) {
        rt_dbar_kernel<<<sla2_grid((size_t)BH * nk * d), 256, 0, st>>>(w->dbk, w->dkt, Wk, (size_t)BH * nk, d);
        CUDA_CHECK_LAUNCH();
        rt_dmean_kernel<<<sla2_grid((size_t)BH * d), 256, 0, st>>>(w->pm, w->dbk, BH, nk, d, N);
        CUDA_CHECK_LAUNCH();
        rt_dx_kernel<<<sla2_grid((size_t)BH * N * d), 256, 0, st>>>(dk, w->dbk, w->pm, BH, N, d, dm->block_k, nk);
        CUDA_CHECK_LAUNCH();
    }
}
