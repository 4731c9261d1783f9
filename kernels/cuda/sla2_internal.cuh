/* kernels/cuda/sla2_internal.cuh — what the CUDA SLA2 files share: the
 * workspace layout (one region per array, for all (b, h) pairs at once) and
 * the host launchers of each stage. sla2.cu runs the stages in the CPU's
 * order (kernels/cpu/sla2.c); the arithmetic of each stage follows its CPU
 * twin, in the same order where that decides a discrete choice (router
 * scores, top-k, INT8/FP8 rounding), so masks and quantised values agree. */
#ifndef KERNELS_CUDA_SLA2_INTERNAL_CUH
#define KERNELS_CUDA_SLA2_INTERNAL_CUH

#include <math.h>

#include "kernels/cuda/cuda_common.cuh"

#define SLA2_LINEAR_EPS 1e-6f

/* Every array is [B*H, ...] (one slice per pair, pairs in (b, h) order). */
typedef struct Sla2GpuWs {
    /* router */
    float *kmean;            /* [d] */
    float *qbar, *qt, *dqt;  /* [nq, d] */
    float *kbar, *kt, *dkt;  /* [nk, d] */
    double *dsc;             /* [nq, nk] score gradients */
    double *dbq, *dbk;       /* [nq, d], [nk, d] pooled-block gradients */
    float *pm;               /* [d] the smoothing mean's gradient share */
    float *dWq, *dWk;        /* [d, d] each pair's router gradients */
    /* linear branch */
    float *phi_q, *phi_k;    /* [N, d] */
    float *h, *z;            /* [nk, d, d], [nk, d] */
    float *tot;              /* [d*d + d]: sum_j (h_j, z_j), later sum_i (dH_i, dZ_i) */
    float *Hq, *Zq, *flag;   /* [nq, d, d], [nq, d], [nq]: 0 = no linear block */
    float *den, *dden;       /* [N] */
    float *dA, *dphi_q, *dphi_k; /* [N, d] */
    float *dH, *dZ;          /* [nq, d, d], [nq, d] */
    float *dh, *dz;          /* [nk, d, d], [nk, d] */
    /* sparse branch */
    float *D;                /* [N] */
    float *dmask;            /* [nq, nk] */
    /* QAT */
    float *qi8, *ki8, *vq;   /* [N, d]: INT8 Q and K' (integer-valued floats), dequantised FP8 V */
    float *sq, *sk, *vsc;    /* [nq], [nk], [d] scales */
    float *dalpha;           /* [1] */
} Sla2GpuWs;

size_t cuda_sla2_ws_floats(const Sla2Dims *dm);
void cuda_sla2_ws_map(Sla2GpuWs *w, float *base, const Sla2Dims *dm);

/* Largest head dim the SLA2 kernels take (the tiles are compiled up to 128). */
#define SLA2_MAX_D 128

/* sla2_router.cu: smoothing, pooling, projection, scores -> pc, mask. */
void cuda_sla2_router_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *Wq, const float *Wk,
                          float *mask, float *pc, Sla2GpuWs *w);
/* Soft top-k backward from w->dmask: dq, dk += router share; dWq, dWk += (NULL: skipped). */
void cuda_sla2_router_bwd(const Sla2Dims *dm, const float *q, const float *k, const float *Wq, const float *Wk,
                          const float *mask, const float *pc, float *dq, float *dk, float *dWq, float *dWk,
                          Sla2GpuWs *w);

/* sla2_sparse.cu: the sparse branch through attention.cu's flash kernels. */
void cuda_sla2_sparse_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                          float *o, float *lse, int bf16);
/* dq, dk, dv += the sparse branch's share; soft: w->dmask = its dL/dM. */
void cuda_sla2_sparse_bwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                          const float *o_ref, const float *lse, const float *dout, const float *alpha_logit,
                          float *dq, float *dk, float *dv, int bf16, Sla2GpuWs *w);

/* sla2_tc.cu: the sparse branch on tensor cores, block-sparse (BF16 mode,
 * hard top-k, blocks of 16/32/64, d <= 128: cuda_sla2_tc_ok). D: [B*H*N]. */
int cuda_sla2_tc_ok(const Sla2Dims *dm, int bf16);
/* out (may be NULL): also the op's output alpha O_s + (1 - alpha) O_l from o_l. */
void cuda_sla2_sparse_tc_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                             float *o, float *lse, float *out, const float *o_l, const float *alpha_logit);
void cuda_sla2_sparse_tc_bwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                             const float *o_ref, const float *lse, const float *dout, const float *alpha_logit,
                             float *dq, float *dk, float *dv, float *D);

/* sla2_qat.cu: the quantised sparse branch (forward only) into o. Needs w->kmean. */
void cuda_sla2_qat_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                       float *o, Sla2GpuWs *w);

/* sla2_linear.cu */
void cuda_sla2_linear_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                          float *o_l, Sla2GpuWs *w);
/* dq, dk, dv += the linear branch's share; soft: w->dmask -= its dL/dM share.
 * o_l NULL: recomputed in fp32 (the forward ran cuda_sla2_linear_tc_fwd). */
void cuda_sla2_linear_bwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                          const float *o_l, const float *dout, const float *alpha_logit, float *dq, float *dk,
                          float *dv, Sla2GpuWs *w);

/* sla2_linear_tc.cu: the linear branch as batched bf16 tensor-core products
 * (BF16 mode, hard top-k, the path cuda_sla2_tc_ok admits); O_l as
 * cuda_sla2_linear_fwd writes it. Uses cuda_scratch (the sparse branch's
 * launch after it takes that buffer again). */
void cuda_sla2_linear_tc_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                             float *o_l);

/* phi over one row of d channels, read by a whole warp: the row's statistics
 * (softmax: max and 1 / sum of exp, the sum in double over the lanes), then
 * at(x) = phi(x) for one channel, as kernels/cpu/sla2.c computes it. */
struct LinPhiRow {
    int fm;
    float mx, inv;
    __device__ __forceinline__ float at(float x) const {
        if (fm == SLA2_PHI_SOFTMAX) return expf(x - mx) * inv;
        if (fm == SLA2_PHI_ELU) return x > 0.0f ? x + 1.0f : expf(x);
        return x > 0.0f ? x : 0.0f;
    }
};
__device__ __forceinline__ LinPhiRow lin_phi_row(const float *xr, int d, int fm, int lane) {
    LinPhiRow p = {fm, 0.0f, 1.0f};
    if (fm != SLA2_PHI_SOFTMAX) return p;
    float mx = -INFINITY;
    for (int c = lane; c < d; c += 32) mx = fmaxf(mx, xr[c]);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    double s = 0.0;
    for (int c = lane; c < d; c += 32) s += expf(xr[c] - mx);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    p.mx = mx, p.inv = (float)(1.0 / s);
    return p;
}

/* Launch size of a flat grid over n threads of 256. */
static inline unsigned sla2_grid(size_t n) { return (unsigned)((n + 255) / 256); }

#endif
