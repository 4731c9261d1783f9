/* kernels/cuda/sla2_qat.cu — SLA2's quantised sparse branch on the GPU
 * (twin of kernels/cpu/sla2_qat.c; docs/sla2.md, "QAT"), forward only:
 * INT8 Q per query block and INT8 smoothed K per key block with exact
 * integer dot products, FP8 E4M3 P per (query block, key block) tile with the
 * tile's max mapped to 448, FP8 E4M3 V per channel, fp32 accumulation.
 *
 * Emulation, bit for bit where the CPU makes a discrete choice: the INT8 and
 * FP8 roundings are ports of kernels/quant.h's (not the hardware
 * conversions), products that feed a rounding are written with _rn
 * intrinsics so nvcc fuses nothing the CPU does not, and exp of the tile is
 * taken in double and rounded (correctly rounded, like glibc's expf nearly
 * always), so the FP8 codes match the CPU's. The online softmax must then
 * also follow the CPU's sequence exactly (the running max after each
 * selected key block decides P~), so a thread block owns whole query blocks
 * (G = 64 / block_q of them, or one of up to 128 rows) and walks the key
 * blocks in order, in chunks of TC keys with three passes per key block
 * (row max; P~ sums and tile max; quantise and accumulate). */
#include <math.h>

#include "kernels/cuda/flash_tile.cuh"
#include "kernels/cuda/sla2_internal.cuh"

#define QAT_FP8_MAX 448.0f

/* kernels/cpu/quant.c's fp8_e4m3_round: nearest E4M3 value, ties to even, saturating. */
__device__ __forceinline__ float qat_fp8_round(float x) {
    if (isnan(x)) return x;
    const float a = fabsf(x);
    if (a >= QAT_FP8_MAX) return copysignf(QAT_FP8_MAX, x);
    int e;
    frexpf(a, &e);
    const int ex = e - 1 < -6 ? -6 : e - 1;
    const float quantum = ldexpf(1.0f, ex - 3);
    float r = rintf(a / quantum) * quantum; /* exact: quantum is a power of two */
    if (r > QAT_FP8_MAX) r = QAT_FP8_MAX;
    return copysignf(r, x);
}

/* kernels/quant.h's int8_quantize, as a float. */
__device__ __forceinline__ float qat_int8(float x, float scale) {
    float r = __fdiv_rn(x, scale);
    r = r >= 0.0f ? (float)(int)__fadd_rn(r, 0.5f) : -(float)(int)__fadd_rn(-r, 0.5f);
    return r > 127.0f ? 127.0f : (r < -127.0f ? -127.0f : r);
}

__device__ __forceinline__ float qat_exp(float x) { return (float)exp((double)x); }

/* ------------------------------------------------------------ quantisation */

/* One block per (block i, pair): scale = absmax(x - sub) / 127 over the
 * block's rows, then xi8 = int8(x - sub). */
__global__ void qat_int8_kernel(float *xi8, float *scale_out, const float *x, const float *sub, int N, int d, int bs,
                                int nb) {
    __shared__ float red[256];
    const int i = blockIdx.x, bh = blockIdx.y, tid = threadIdx.x;
    const int a0 = i * bs, n = min(bs, N - a0);
    const size_t off = ((size_t)bh * N + a0) * d, cnt = (size_t)n * d;
    const float *s = sub ? sub + (size_t)bh * d : NULL;
    float amax = 0.0f;
    for (size_t e = tid; e < cnt; e += 256) amax = fmaxf(amax, fabsf(x[off + e] - (s ? s[e % d] : 0.0f)));
    red[tid] = amax;
    __syncthreads();
    for (int w = 128; w > 0; w >>= 1) {
        if (tid < w) red[tid] = fmaxf(red[tid], red[tid + w]);
        __syncthreads();
    }
    const float scale = red[0] > 0.0f ? __fdiv_rn(red[0], 127.0f) : 1.0f;
    if (tid == 0) scale_out[(size_t)bh * nb + i] = scale;
    for (size_t e = tid; e < cnt; e += 256) xi8[off + e] = qat_int8(x[off + e] - (s ? s[e % d] : 0.0f), scale);
}

/* vsc[bh][c] = colmax|v| / 448 over the N tokens. */
__global__ void qat_vscale_kernel(float *vsc, const float *v, int BH, int N, int d) {
    const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (size_t)BH * d) return;
    const int bh = (int)(t / d), c = (int)(t % d);
    const float *vb = v + (size_t)bh * N * d + c;
    float amax = 0.0f;
    for (int n = 0; n < N; n++) amax = fmaxf(amax, fabsf(vb[(size_t)n * d]));
    vsc[t] = amax > 0.0f ? __fdiv_rn(amax, QAT_FP8_MAX) : 1.0f;
}

/* vq = fp8(v / sv) * sv: V as the quantised branch sees it. */
__global__ void qat_vq_kernel(float *vq, const float *v, const float *vsc, int BH, int N, int d) {
    const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (size_t)BH * N * d) return;
    const float sv = vsc[t / ((size_t)N * d) * d + t % d];
    vq[t] = __fmul_rn(qat_fp8_round(__fdiv_rn(v[t], sv)), sv);
}

/* ------------------------------------------------------- the sparse branch */

typedef struct QatArgs {
    const float *qi8, *ki8, *vq, *sq, *sk, *mask;
    float *o;
    int N, d, bq, bk, nq, nk, G;
    float scale;
} QatArgs;

/* Grid (ceil(nq / G), B*H): block g0 = blockIdx.x * G .. + G of pair blockIdx.y. */
template <int HDP, int RM, int CM>
__global__ void __launch_bounds__(FL_THREADS) qat_sparse_kernel(QatArgs a) {
    constexpr int TR = 16 * RM, TC = 16 * CM, LD = HDP + 1, LP = TC + 1, OC = HDP / 16;
    extern __shared__ float fl_smem[];
    __shared__ int sel_s[TR], pmax_s[TR]; /* per query block slot: selects key block j; tile max (float bits) */
    __shared__ float deq_s[TR];
    float *Qs = fl_smem, *Ks = Qs + TR * LD, *Vs = Ks + TC * LD, *Ps = Vs + TC * LD;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int bh = blockIdx.y, N = a.N, d = a.d, G = a.G, g0 = blockIdx.x * G;
    const int row0 = g0 * a.bq, nrows = min(G * a.bq, N - row0);
    const size_t base = (size_t)bh * N * d;

    fl_load_rows<TR, HDP>(Qs, a.qi8 + base + (size_t)row0 * d, d, nrows, d, 1.0f, 0);
    int slot[RM];
    bool valid[RM];
    float m[RM], l[RM], acc[RM][OC];
#pragma unroll
    for (int i = 0; i < RM; i++) {
        const int rl = ty + 16 * i;
        valid[i] = rl < nrows;
        slot[i] = valid[i] ? rl / a.bq : 0;
        m[i] = -INFINITY, l[i] = 0.0f;
#pragma unroll
        for (int c = 0; c < OC; c++) acc[i][c] = 0.0f;
    }

    for (int j = 0; j < a.nk; j++) {
        int mine = 0;
        if (tid < G) {
            const int qi = g0 + tid;
            mine = qi < a.nq && a.mask[((size_t)bh * a.nq + qi) * a.nk + j] != 0.0f; /* any weight: selected */
            sel_s[tid] = mine;
            pmax_s[tid] = 0; /* +0.0f */
            if (mine)
                deq_s[tid] = __fmul_rn(__fmul_rn(a.sq[(size_t)bh * a.nq + qi], a.sk[(size_t)bh * a.nk + j]), a.scale);
        }
        if (!__syncthreads_or(mine)) continue; /* also the barrier before Ks/Vs/Ps are reused */
        bool sel[RM];
        float deq[RM], mx[RM];
#pragma unroll
        for (int i = 0; i < RM; i++) {
            sel[i] = valid[i] && sel_s[slot[i]];
            deq[i] = sel[i] ? deq_s[slot[i]] : 0.0f;
            mx[i] = m[i];
        }
        const int kb0 = j * a.bk, nb = min(a.bk, N - kb0), nch = (nb + TC - 1) / TC;
        float s[RM][CM];

        /* pass 1: the running row max after this key block */
        for (int ch = 0; ch < nch; ch++) {
            const int c0 = kb0 + ch * TC, cn = min(TC, nb - ch * TC);
            if (ch > 0) __syncthreads();
            fl_load_rows<TC, HDP>(Ks, a.ki8 + base + (size_t)c0 * d, d, cn, d, 1.0f, 0);
            __syncthreads();
#pragma unroll
            for (int i = 0; i < RM; i++)
#pragma unroll
                for (int jj = 0; jj < CM; jj++) s[i][jj] = 0.0f;
            fl_mm_nt<RM, CM, HDP, LD, LD>(s, Qs, Ks, ty, tx); /* integer-valued and exact: |sum| < 2^24 */
#pragma unroll
            for (int i = 0; i < RM; i++)
#pragma unroll
                for (int jj = 0; jj < CM; jj++)
                    if (sel[i] && tx + 16 * jj < cn) mx[i] = fmaxf(mx[i], __fmul_rn(s[i][jj], deq[i]));
        }
#pragma unroll
        for (int i = 0; i < RM; i++) mx[i] = fl_half_max(mx[i]);

        /* pass 2: P~ = exp(S - mx): row sums (before quantisation) and the tile max */
        float rs[RM], pm[RM];
#pragma unroll
        for (int i = 0; i < RM; i++) rs[i] = pm[i] = 0.0f;
        for (int ch = 0; ch < nch; ch++) {
            const int c0 = kb0 + ch * TC, cn = min(TC, nb - ch * TC);
            if (nch > 1) {
                __syncthreads();
                fl_load_rows<TC, HDP>(Ks, a.ki8 + base + (size_t)c0 * d, d, cn, d, 1.0f, 0);
                __syncthreads();
#pragma unroll
                for (int i = 0; i < RM; i++)
#pragma unroll
                    for (int jj = 0; jj < CM; jj++) s[i][jj] = 0.0f;
                fl_mm_nt<RM, CM, HDP, LD, LD>(s, Qs, Ks, ty, tx);
            }
#pragma unroll
            for (int i = 0; i < RM; i++)
#pragma unroll
                for (int jj = 0; jj < CM; jj++)
                    if (sel[i] && tx + 16 * jj < cn) {
                        const float pt = qat_exp(__fsub_rn(__fmul_rn(s[i][jj], deq[i]), mx[i]));
                        rs[i] += pt;
                        pm[i] = fmaxf(pm[i], pt);
                    }
        }
#pragma unroll
        for (int i = 0; i < RM; i++) {
            rs[i] = fl_half_sum(rs[i]);
            pm[i] = fl_half_max(pm[i]);
            /* P~ >= 0, so the int order of the bits is the float order */
            if (tx == 0 && sel[i]) atomicMax(&pmax_s[slot[i]], __float_as_int(pm[i]));
        }
        __syncthreads();
        float ps[RM];
#pragma unroll
        for (int i = 0; i < RM; i++) {
            const float pmax = __int_as_float(pmax_s[slot[i]]);
            ps[i] = pmax > 0.0f ? __fdiv_rn(QAT_FP8_MAX, pmax) : 1.0f;
            if (!sel[i]) continue;
            const float corr = qat_exp(m[i] - mx[i]);
            l[i] = l[i] * corr + rs[i];
            m[i] = mx[i];
#pragma unroll
            for (int c = 0; c < OC; c++) acc[i][c] *= corr;
        }

        /* pass 3: P^ = fp8(P~ ps) / ps; acc += P^ V^ */
        for (int ch = 0; ch < nch; ch++) {
            const int c0 = kb0 + ch * TC, cn = min(TC, nb - ch * TC);
            __syncthreads(); /* Ks (pass 2), Vs and Ps (previous chunk) are free */
            if (nch > 1) fl_load_rows<TC, HDP>(Ks, a.ki8 + base + (size_t)c0 * d, d, cn, d, 1.0f, 0);
            fl_load_rows<TC, HDP>(Vs, a.vq + base + (size_t)c0 * d, d, cn, d, 1.0f, 0);
            __syncthreads();
            if (nch > 1) {
#pragma unroll
                for (int i = 0; i < RM; i++)
#pragma unroll
                    for (int jj = 0; jj < CM; jj++) s[i][jj] = 0.0f;
                fl_mm_nt<RM, CM, HDP, LD, LD>(s, Qs, Ks, ty, tx);
            }
#pragma unroll
            for (int i = 0; i < RM; i++)
#pragma unroll
                for (int jj = 0; jj < CM; jj++) {
                    float p = 0.0f;
                    if (sel[i] && tx + 16 * jj < cn) {
                        const float pt = qat_exp(__fsub_rn(__fmul_rn(s[i][jj], deq[i]), mx[i]));
                        p = __fdiv_rn(qat_fp8_round(__fmul_rn(pt, ps[i])), ps[i]);
                    }
                    Ps[(ty + 16 * i) * LP + tx + 16 * jj] = p;
                }
            __syncthreads();
            fl_mm_nn<RM, OC, TC, LP, LD>(acc, Ps, Vs, ty, tx);
        }
    }

    float *o = a.o + base;
#pragma unroll
    for (int i = 0; i < RM; i++) {
        if (!valid[i]) continue;
        const int row = row0 + ty + 16 * i;
#pragma unroll
        for (int c = 0; c < OC; c++) {
            const int col = tx + 16 * c;
            if (col < d) o[(size_t)row * d + col] = __fdiv_rn(acc[i][c], l[i]);
        }
    }
}

template <int HDP, int RM>
static void qat_launch(const QatArgs &a, int BH) {
    constexpr int CM = HDP > 64 ? 2 : 4, TR = 16 * RM, TC = 16 * CM, LD = HDP + 1;
    const size_t smem = sizeof(float) * (size_t)(TR * LD + 2 * TC * LD + TR * (TC + 1));
    QatArgs b = a;
    b.G = b.bq <= TR ? TR / b.bq : 1;
    fl_smem_optin(qat_sparse_kernel<HDP, RM, CM>, smem);
    dim3 grid((unsigned)((a.nq + b.G - 1) / b.G), (unsigned)BH);
    qat_sparse_kernel<HDP, RM, CM><<<grid, FL_THREADS, smem, cuda_compute_stream()>>>(b);
    CUDA_CHECK_LAUNCH();
}

template <int HDP>
static void qat_launch_hd(const QatArgs &a, int BH) {
    if (a.bq <= 64) qat_launch<HDP, 4>(a, BH);
    else qat_launch<HDP, 8>(a, BH);
}

void cuda_sla2_qat_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                       float *o, Sla2GpuWs *w) {
    const int BH = dm->B * dm->H, N = dm->N, d = dm->d;
    CHECK(dm->block_q <= 128, "SLA2 QAT on the GPU: block_q %d > 128 (a thread block must hold a whole query "
          "block to find each tile's FP8 scale); use blocks of at most 128 tokens", dm->block_q);
    cudaStream_t st = cuda_compute_stream();
    qat_int8_kernel<<<dim3((unsigned)dm->nq, (unsigned)BH), 256, 0, st>>>(w->qi8, w->sq, q, NULL, N, d,
                                                                          dm->block_q, dm->nq);
    CUDA_CHECK_LAUNCH();
    qat_int8_kernel<<<dim3((unsigned)dm->nk, (unsigned)BH), 256, 0, st>>>(w->ki8, w->sk, k, w->kmean, N, d,
                                                                          dm->block_k, dm->nk);
    CUDA_CHECK_LAUNCH();
    qat_vscale_kernel<<<sla2_grid((size_t)BH * d), 256, 0, st>>>(w->vsc, v, BH, N, d);
    CUDA_CHECK_LAUNCH();
    qat_vq_kernel<<<sla2_grid((size_t)BH * N * d), 256, 0, st>>>(w->vq, v, w->vsc, BH, N, d);
    CUDA_CHECK_LAUNCH();
    QatArgs a = {w->qi8, w->ki8, w->vq, w->sq, w->sk, mask, o, N, d, dm->block_q, dm->block_k, dm->nq, dm->nk, 1,
                 1.0f / sqrtf((float)d)};
    switch (fl_pad_hd(d)) {
    case 32: qat_launch_hd<32>(a, BH); break;
    case 64: qat_launch_hd<64>(a, BH); break;
    default: qat_launch_hd<128>(a, BH); break;
    }
}
