/* kernels/cuda/attention_tc_fwd.cu — full attention's forward on tensor
 * cores (BF16 mode), FlashAttention-2 style, and the fp32 -> bf16 operand
 * conversion the tensor-core kernels read.
 *
 * A block of 4 warps owns 64 query rows of one (b, h), 16 per warp; it walks
 * the key tiles of 64 with an online softmax in fp32. K and V tiles are
 * double-buffered: the cp.async copy of tile j + 1 runs while tile j is
 * multiplied. S = Q K^T and O += P V are mma.m16n8k16 (bf16 in, fp32
 * accumulate); P stays in registers between them (at_frag_a), rounded to
 * bf16, while the row sum l adds the unrounded values. The softmax runs in
 * base 2 (s * scale * log2 e, exp2f); the saved LSE is natural. Keys past N
 * (the last tile's padding) get s = -inf; query rows past N are computed on
 * zero operands and not stored. Every key tile holds at least one real key,
 * so the running max is finite after the first tile.
 *
 * SLA2's sparse branch (hard top-k) is the same kernel, block-sparse: a
 * block owns one query block (16 rows per warp) and walks only its selected
 * key blocks, one tile each (AtArgs.list; sla2_tc.cu builds the lists),
 * and may write SLA2's output alpha O_s + (1 - alpha) O_l beside O_s in its
 * epilogue (AtArgs.comb), the linear branch having run first. */
#include <math.h>

#include "kernels/cuda/attention_tc.cuh"
#include "kernels/cuda/cuda_util.cuh"
#include "kernels/cuda/flash_tile.cuh"

/* dst [BH, N, HDP] bf16 = src [BH, N, hd] fp32, columns hd..HDP zero. */
__global__ void at_convert_kernel(uint32_t *dst, const float *__restrict__ src, size_t rows, int hd, int HDP) {
    const int half = HDP / 2;
    CUDA_FOR(i, rows * half) {
        const size_t r = i / half;
        const int c = 2 * (int)(i % half);
        const float *s = src + r * hd;
        dst[i] = tc_pack_bf16x2(c < hd ? s[c] : 0.0f, c + 1 < hd ? s[c + 1] : 0.0f);
    }
}

void at_convert(uint16_t *dst, const float *src, int BH, int N, int hd, int HDP) {
    const size_t n = (size_t)BH * N * (HDP / 2);
    if (n == 0) return;
    const unsigned grid = (unsigned)((n + CUDA_THREADS - 1) / CUDA_THREADS < 4096 ? (n + CUDA_THREADS - 1) / CUDA_THREADS
                                                                                   : 4096);
    at_convert_kernel<<<grid, CUDA_THREADS, 0, cuda_compute_stream()>>>((uint32_t *)dst, src, (size_t)BH * N, hd,
                                                                         HDP);
    CUDA_CHECK_LAUNCH();
}

/* NW warps own 16 NW query rows; key tiles of BC. Dense: NW = 4, BC = 64,
 * every key tile; block-sparse (a.list): NW = bq / 16, BC = bk, the query
 * block's selected key blocks. */
template <int HDP, int NW, int BC>
__global__ void __launch_bounds__(32 * NW) at_fwd_kernel(AtArgs a) {
    constexpr int LD = HDP + 8, BR = 16 * NW, NTH = 32 * NW, NT = BC / 8, OT = HDP / 8, TILE = BC * LD;
    extern __shared__ float at_smem_f[];
    uint16_t *Qs = (uint16_t *)at_smem_f, *Ks = Qs + BR * LD, *Vs = Ks + 2 * TILE;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, tq = lane & 3;
    const int bh = blockIdx.y, N = a.N, r0 = blockIdx.x * BR;
    const size_t base = (size_t)bh * N * HDP;
    const float sl2 = a.scale * AT_LOG2E;
    const AtWalk walk(a.list, a.cnt, (size_t)bh * gridDim.x + blockIdx.x, a.nk, N, BC);
    const int ntiles = walk.n;

    at_load_tile<BR, HDP, NTH>(Qs, a.q + base, r0, N);
    if (ntiles > 0) {
        at_load_tile<BC, HDP, NTH>(Ks, a.k + base, walk.tile(0) * BC, N);
        at_load_tile<BC, HDP, NTH>(Vs, a.v + base, walk.tile(0) * BC, N);
    }
    tc_cp_async_commit();

    float o[OT][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    at_zero(o);
    for (int j = 0; j < ntiles; j++) {
        const int buf = j & 1, c0 = walk.tile(j) * BC;
        if (j + 1 < ntiles) { /* the other buffer was released by the barrier ending tile j - 1 */
            const int c1 = walk.tile(j + 1) * BC;
            at_load_tile<BC, HDP, NTH>(Ks + (buf ^ 1) * TILE, a.k + base, c1, N);
            at_load_tile<BC, HDP, NTH>(Vs + (buf ^ 1) * TILE, a.v + base, c1, N);
        }
        tc_cp_async_commit(); /* possibly empty: the wait below then always means "tile j is in" */
        tc_cp_async_wait<1>();
        __syncthreads();

        float s[NT][4];
        at_zero(s);
        at_mm_bt<NT, HDP>(s, Qs + warp * 16 * LD, Ks + buf * TILE, LD);
        float mt[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int n = 0; n < NT; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int key = c0 + 8 * n + 2 * tq + (e & 1);
                s[n][e] = key < N ? s[n][e] * sl2 : -INFINITY;
                mt[e >> 1] = fmaxf(mt[e >> 1], s[n][e]);
            }
        float corr[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            const float mnew = fmaxf(m[r], at_quad_max(mt[r]));
            corr[r] = exp2f(m[r] - mnew); /* 0 on the first tile (m = -inf, mnew finite) */
            m[r] = mnew;
            l[r] *= corr[r];
        }
#pragma unroll
        for (int n = 0; n < NT; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                s[n][e] = exp2f(s[n][e] - m[e >> 1]);
                l[e >> 1] += s[n][e]; /* this lane's columns; the 4 lanes are added at the end */
            }
#pragma unroll
        for (int n = 0; n < OT; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) o[n][e] *= corr[e >> 1];
        uint32_t p[NT / 2][4];
        at_frag_a(p, s);
        at_mm_rn(o, p, Vs + buf * TILE, LD);
        __syncthreads(); /* every warp is done with buffer buf before tile j + 2 lands there */
    }

    const int b = bh / a.H, h = bh % a.H, hd = a.hd, g = lane >> 2;
    float *out = a.o + (size_t)b * a.o_sb + (size_t)h * a.o_sh;
    const float alpha = a.comb ? 1.0f / (1.0f + expf(-a.alpha_logit[h])) : 0.0f;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int row = r0 + warp * 16 + g + 8 * r;
        const float lr = at_quad_sum(l[r]);
        if (row >= N) continue;
        const float inv = 1.0f / lr;
#pragma unroll
        for (int n = 0; n < OT; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int c = 8 * n + 2 * tq + e;
                if (c >= hd) continue;
                const float val = o[n][2 * r + e] * inv;
                out[(size_t)row * a.o_rs + c] = val;
                if (a.comb) /* fp32 products, no fusion: as the combine kernel and the CPU */
                    a.comb[((size_t)b * N + row) * a.H * hd + (size_t)h * hd + c] = __fadd_rn(
                        __fmul_rn(alpha, val), __fmul_rn(1.0f - alpha, a.o_l[((size_t)bh * N + row) * hd + c]));
            }
        if (tq == 0) a.lse[(size_t)bh * N + row] = (m[r] + log2f(lr)) * AT_LN2;
    }
}

template <int HDP, int NW, int BC>
static void at_launch_fwd(const AtArgs &a) {
    constexpr int BR = 16 * NW;
    const size_t smem = sizeof(uint16_t) * (size_t)(BR + 4 * BC) * (HDP + 8);
    fl_smem_optin(at_fwd_kernel<HDP, NW, BC>, smem);
    dim3 grid((unsigned)((a.N + BR - 1) / BR), (unsigned)(a.B * a.H));
    at_fwd_kernel<HDP, NW, BC><<<grid, 32 * NW, smem, cuda_compute_stream()>>>(a);
    CUDA_CHECK_LAUNCH();
}

/* Block-sparse: the tiles are the router's blocks (at_sparse_block_ok):
 * 16 NW query rows, key tiles of bk. */
template <int HDP, int NW>
static void at_launch_fwd_sparse(const AtArgs &a) {
    switch (a.bk) {
    case 16: return at_launch_fwd<HDP, NW, 16>(a);
    case 32: return at_launch_fwd<HDP, NW, 32>(a);
    default: return at_launch_fwd<HDP, NW, 64>(a);
    }
}

template <int HDP>
static void at_launch_fwd_hd(const AtArgs &a) {
    if (!a.list) return at_launch_fwd<HDP, 4, 64>(a);
    switch (a.bq) {
    case 16: return at_launch_fwd_sparse<HDP, 1>(a);
    case 32: return at_launch_fwd_sparse<HDP, 2>(a);
    default: return at_launch_fwd_sparse<HDP, 4>(a);
    }
}

void at_fwd(const AtArgs *a) {
    if ((long long)a->B * a->H * a->N == 0) return;
    CHECK(!a->list || (at_sparse_block_ok(a->bq) && at_sparse_block_ok(a->bk)),
          "attention (tensor cores): block-sparse blocks %d/%d are not 16, 32 or 64", a->bq, a->bk);
    switch (at_pad_hd(a->hd)) {
    case 32: at_launch_fwd_hd<32>(*a); break;
    case 64: at_launch_fwd_hd<64>(*a); break;
    case 80: at_launch_fwd_hd<80>(*a); break;
    default: at_launch_fwd_hd<128>(*a); break;
    }
}
