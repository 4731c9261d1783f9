/* kernels/cuda/sla2.cu — SLA2 sparse-linear attention on the GPU: the op
 * table's entries (cuda_sla2_fwd / _bwd / _workspace_floats), the workspace
 * layout, and the two small stages of their own (alpha combine, alpha's
 * gradient). The stages run in the CPU's order (kernels/cpu/sla2.c):
 * router -> sparse branch (-> QAT) -> linear branch -> combine; backward:
 * alpha -> sparse -> linear -> router (soft top-k). Each stage is one or a
 * few kernels over all (b, h) pairs at once (sla2_router.cu, sla2_sparse.cu,
 * sla2_qat.cu, sla2_linear.cu). Nothing is N x N: the sparse branch is
 * flash-style (attention.cu), the linear branch O(N d^2). Saved fields
 * (mask, pc, lse, o_s, o_s_fp, o_l) have the CPU's layout and meaning, so the
 * CPU's statistics can read them after a copy. */
#include <math.h>

#include "kernels/cuda/sla2_internal.cuh"

/* ---------------------------------------------------------------- workspace */

static size_t ws_r64(size_t n) { return (n + 63) / 64 * 64; } /* 256-byte aligned regions */

/* Region sizes in floats for all pairs, in the order of cuda_sla2_ws_map (doubles count twice). */
#define SLA2_GPU_WS(X)                                                                                           \
    X(kmean, d) X(qbar, nq * d) X(qt, nq * d) X(dqt, nq * d) X(kbar, nk * d) X(kt, nk * d) X(dkt, nk * d)         \
    X(pm, d) X(dWq, dd) X(dWk, dd) X(phi_q, N * d) X(phi_k, N * d) X(h, nk * dd) X(z, nk * d) X(tot, dd + d)     \
    X(Hq, nq * dd) X(Zq, nq * d) X(flag, nq) X(den, N) X(dden, N) X(dA, N * d) X(dphi_q, N * d)                  \
    X(dphi_k, N * d) X(dH, nq * dd) X(dZ, nq * d) X(dh, nk * dd) X(dz, nk * d) X(D, N) X(dmask, nq * nk)        \
    X(sq, nq) X(sk, nk) X(vsc, d) X(dalpha, 1)
#define SLA2_GPU_WS_D(X) X(dsc, nq * nk) X(dbq, nq * d) X(dbk, nk * d)
#define SLA2_GPU_WS_QAT(X) X(qi8, N * d) X(ki8, N * d) X(vq, N * d)

size_t cuda_sla2_ws_floats(const Sla2Dims *dm) {
    const size_t BH = (size_t)dm->B * dm->H, N = dm->N, d = dm->d, nq = dm->nq, nk = dm->nk, dd = d * d;
    size_t n = 0;
#define X(name, size) n += ws_r64(BH * (size));
    SLA2_GPU_WS(X)
    if (dm->qat) { SLA2_GPU_WS_QAT(X) }
#undef X
#define X(name, size) n += ws_r64(2 * BH * (size));
    SLA2_GPU_WS_D(X)
#undef X
    return n;
}

void cuda_sla2_ws_map(Sla2GpuWs *w, float *base, const Sla2Dims *dm) {
    const size_t BH = (size_t)dm->B * dm->H, N = dm->N, d = dm->d, nq = dm->nq, nk = dm->nk, dd = d * d;
    float *p = base;
    *w = Sla2GpuWs();
#define X(name, size) w->name = p, p += ws_r64(BH * (size));
    SLA2_GPU_WS(X)
    if (dm->qat) { SLA2_GPU_WS_QAT(X) }
#undef X
#define X(name, size) w->name = (double *)p, p += ws_r64(2 * BH * (size));
    SLA2_GPU_WS_D(X)
#undef X
}

extern "C" size_t cuda_sla2_workspace_floats(const Sla2Dims *dm) { return cuda_sla2_ws_floats(dm); }
/* The GPU recomputes what backward needs from the LSE: nothing else is kept. */
extern "C" size_t cuda_sla2_saved_floats(const Sla2Dims *dm) {
    (void)dm;
    return 0;
}

static void sla2_check(const char *who, const Sla2Dims *dm, const float *workspace) {
    CHECK(dm->d >= 1 && dm->d <= SLA2_MAX_D, "%s: head dim %d is not supported by the CUDA kernels (1 to %d)", who,
          dm->d, SLA2_MAX_D);
    CHECK(dm->block_q >= 1 && dm->block_k >= 1 && dm->N >= 1, "%s: blocks %d/%d and N %d must be >= 1", who,
          dm->block_q, dm->block_k, dm->N);
    CHECK(dm->nq == (dm->N + dm->block_q - 1) / dm->block_q && dm->nk == (dm->N + dm->block_k - 1) / dm->block_k,
          "%s: nq %d / nk %d do not match N %d and blocks %d/%d", who, dm->nq, dm->nk, dm->N, dm->block_q,
          dm->block_k);
    CHECK(dm->k_sel >= 1 && dm->k_sel <= dm->nk, "%s: k_sel %d outside [1, nk = %d]", who, dm->k_sel, dm->nk);
    CHECK((long long)dm->B * dm->H <= 65535, "%s: B*H = %lld exceeds the grid limit (65535)", who,
          (long long)dm->B * dm->H);
    CHECK(workspace != NULL, "%s: no workspace (cuda_sla2_workspace_floats = %zu floats)", who,
          cuda_sla2_ws_floats(dm));
}

/* ------------------------------------------------------------ alpha stages */

/* out[b, n, h*d + c] = alpha_h o_s + (1 - alpha_h) o_l (fp32 products, no fusion: as the CPU). */
__global__ void sla2_combine_kernel(float *out, const float *os, const float *ol, const float *alpha_logit, int B,
                                    int H, int N, int d) {
    const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (size_t)B * N * H * d) return;
    const int c = (int)(t % d), h = (int)(t / d % H), n = (int)(t / ((size_t)d * H) % N);
    const int b = (int)(t / ((size_t)d * H * N));
    const size_t s = (((size_t)b * H + h) * N + n) * d + c;
    const float alpha = 1.0f / (1.0f + expf(-alpha_logit[h]));
    out[t] = __fadd_rn(__fmul_rn(alpha, os[s]), __fmul_rn(1.0f - alpha, ol[s]));
}

/* Each pair's dL/d alpha_logit = sum dout (o_s - o_l) * alpha (1 - alpha), in double (fixed tree). */
__global__ void sla2_dalpha_kernel(float *dalpha, const float *dout, const float *os, const float *ol,
                                   const float *alpha_logit, int H, int N, int d) {
    __shared__ double red[256];
    const int bh = blockIdx.x, b = bh / H, h = bh % H, tid = threadIdx.x;
    double da = 0.0;
    for (size_t e = tid; e < (size_t)N * d; e += 256) {
        const size_t n = e / d, c = e % d, s = (size_t)bh * N * d + e;
        da += (double)dout[((size_t)b * N + n) * H * d + (size_t)h * d + c] * (os[s] - ol[s]);
    }
    red[tid] = da;
    __syncthreads();
    for (int w = 128; w > 0; w >>= 1) {
        if (tid < w) red[tid] += red[tid + w];
        __syncthreads();
    }
    if (tid == 0) {
        const float alpha = 1.0f / (1.0f + expf(-alpha_logit[h]));
        dalpha[bh] = (float)(red[0] * alpha * (1.0f - alpha));
    }
}

/* dalpha_logit[h] += the pairs' shares, added in batch order. */
__global__ void sla2_dalpha_reduce_kernel(float *dalpha_logit, const float *dalpha, int B, int H) {
    const int h = blockIdx.x * blockDim.x + threadIdx.x;
    if (h >= H) return;
    float x = dalpha_logit[h];
    for (int b = 0; b < B; b++) x += dalpha[(size_t)b * H + h];
    dalpha_logit[h] = x;
}

/* ----------------------------------------------------------------- entries */

extern "C" void cuda_sla2_fwd(float *out, const Sla2Saved *sv, float *workspace, const float *q, const float *k,
                              const float *v, const float *proj_q, const float *proj_k, const float *alpha_logit,
                              const Sla2Dims *dm) {
    sla2_check("sla2 forward", dm, workspace);
    CHECK(!dm->qat || sv->o_s_fp, "sla2 forward: QAT needs Sla2Saved.o_s_fp (the full-precision sparse branch)");
    const int B = dm->B, H = dm->H, N = dm->N, d = dm->d, bf16 = cuda_get_precision() == CUDA_PREC_BF16;
    if (B * H == 0) return;
    Sla2GpuWs w;
    cuda_sla2_ws_map(&w, workspace, dm);
    cuda_sla2_router_fwd(dm, q, k, proj_q, proj_k, sv->mask, sv->pc, &w);
    if (!dm->qat && cuda_sla2_tc_ok(dm, bf16)) { /* tensor cores: the sparse kernel's epilogue combines */
        cuda_sla2_linear_tc_fwd(dm, q, k, v, sv->mask, sv->o_l);
        cuda_sla2_sparse_tc_fwd(dm, q, k, v, sv->mask, sv->o_s, sv->lse, out, sv->o_l, alpha_logit);
        return;
    }
    if (dm->qat) {
        cuda_sla2_sparse_fwd(dm, q, k, v, sv->mask, sv->o_s_fp, sv->lse, bf16);
        cuda_sla2_qat_fwd(dm, q, k, v, sv->mask, sv->o_s, &w); /* exact emulation: fp32 in both modes */
    } else {
        cuda_sla2_sparse_fwd(dm, q, k, v, sv->mask, sv->o_s, sv->lse, bf16);
    }
    cuda_sla2_linear_fwd(dm, q, k, v, sv->mask, sv->o_l, &w);
    sla2_combine_kernel<<<sla2_grid((size_t)B * N * H * d), 256, 0, cuda_compute_stream()>>>(
        out, sv->o_s, sv->o_l, alpha_logit, B, H, N, d);
    CUDA_CHECK_LAUNCH();
}

extern "C" void cuda_sla2_bwd(float *dq, float *dk, float *dv, float *dproj_q, float *dproj_k, float *dalpha_logit,
                              float *workspace, const float *dout, const Sla2Saved *sv, const float *q,
                              const float *k, const float *v, const float *proj_q, const float *proj_k,
                              const float *alpha_logit, const Sla2Dims *dm) {
    sla2_check("sla2 backward", dm, workspace);
    const int B = dm->B, H = dm->H, N = dm->N, d = dm->d, bf16 = cuda_get_precision() == CUDA_PREC_BF16;
    if (B * H == 0) return;
    Sla2GpuWs w;
    cuda_sla2_ws_map(&w, workspace, dm);
    cudaStream_t st = cuda_compute_stream();
    if (dalpha_logit) { /* alpha's gradient uses o_s as the forward used it (quantised under QAT) */
        sla2_dalpha_kernel<<<(unsigned)(B * H), 256, 0, st>>>(w.dalpha, dout, sv->o_s, sv->o_l, alpha_logit, H, N, d);
        CUDA_CHECK_LAUNCH();
        sla2_dalpha_reduce_kernel<<<(unsigned)((H + 127) / 128), 128, 0, st>>>(dalpha_logit, w.dalpha, B, H);
        CUDA_CHECK_LAUNCH();
    }
    /* Straight-through QAT: the sparse gradient is the full-precision branch's. */
    const float *o_ref = dm->qat ? sv->o_s_fp : sv->o_s;
    cuda_sla2_sparse_bwd(dm, q, k, v, sv->mask, o_ref, sv->lse, dout, alpha_logit, dq, dk, dv, bf16, &w);
    const int lin_tc = !dm->qat && cuda_sla2_tc_ok(dm, bf16); /* the forward's O_l is bf16 products' */
    cuda_sla2_linear_bwd(dm, q, k, v, sv->mask, lin_tc ? NULL : sv->o_l, dout, alpha_logit, dq, dk, dv, &w);
    if (dm->soft) cuda_sla2_router_bwd(dm, q, k, proj_q, proj_k, sv->mask, sv->pc, dq, dk, dproj_q, dproj_k, &w);
}
