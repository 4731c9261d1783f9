/* kernels/cpu/sla2_internal.h — shared pieces of the CPU SLA2 kernels: the
 * per-(batch, head) workspace layout and the router and QAT helpers. One
 * (b, h) pair is processed by one thread with its own workspace slice. */
#ifndef KERNELS_CPU_SLA2_INTERNAL_H
#define KERNELS_CPU_SLA2_INTERNAL_H

#include <stddef.h>

#include "core/op_table.h"

typedef struct Sla2Ws {
    float *phi_q, *phi_k;         /* [N, d] feature maps */
    float *h, *z;                 /* [nk, d, d], [nk, d] per-key-block linear sums */
    float *Hi, *Zi;               /* [d, d], [d] one query block's linear sums */
    float *S, *P2;                /* [block_q, block_k] tiles */
    float *acc, *m, *l;           /* [block_q, d], [block_q], [block_q] online softmax */
    float *qbar, *kbar, *qt, *kt; /* [nq, d], [nk, d], [nq, d], [nk, d] router */
    float *kmean;                 /* [d] */
    float *dphi_q, *dphi_k;       /* [N, d] */
    float *dH, *dZ;               /* [nq, d, d], [nq, d] */
    float *dh, *dz;               /* [nk, d, d], [nk, d] */
    float *dmask;                 /* [nq, nk] */
    float *dWq, *dWk;             /* [d, d] this pair's share of the router gradients */
    float *gs, *gl;               /* [N, d] gradients reaching O_s and O_l */
    float *qi8, *ki8, *vq;        /* QAT: int8 Q and K' (stored as floats), dequantised FP8 V */
    float *sq, *sk;               /* QAT: [nq], [nk] INT8 scales */
    float *dqt, *dkt;             /* [nq, d], [nk, d] router backward */
    double *rowtmp;               /* [nk + d] doubles of row scratch */
} Sla2Ws;

size_t sla2_ws_per_pair(const Sla2Dims *dm);
void sla2_ws_map(Sla2Ws *w, float *base, const Sla2Dims *dm);

static inline int sla2_block_len(int i, int bs, int N) {
    int a0 = i * bs, a1 = a0 + bs < N ? a0 + bs : N;
    return a1 - a0;
}

/* Router of one (b, h): smoothing, pooling, scores, selection -> mask, pc. */
void sla2_router_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *Wq, const float *Wk,
                     float *mask, float *pc, Sla2Ws *w);
/* Soft top-k backward of one (b, h): dmask -> dq, dk (accumulated) and the
 * pair's router gradients w->dWq, w->dWk (overwritten). */
void sla2_router_bwd(const Sla2Dims *dm, const float *q, const float *k, const float *Wq, const float *Wk,
                     const float *mask, const float *pc, const float *dmask, float *dq, float *dk, Sla2Ws *w);

/* The feature map phi over rows of d channels (kernels/cpu/sla2.c), and
 * dx += J^T dy at x (y = phi(x)). */
void sla2_phi_fwd(float *y, const float *x, int rows, int d, int fm);
void sla2_phi_bwd(float *dx, const float *dy, const float *x, const float *y, int rows, int d, int fm);

/* Hard mask, query block by query block over the gathered selected keys
 * (kernels/cpu/sla2_gather.c). Forward writes o_s (full precision), lse and
 * `kept` (one (b, h)'s share of Sla2Saved.kept); with o_l non-NULL the linear
 * branch too, in the quadratic form. Backward accumulates dq, dk, dv from
 * the output's gradient g (rows ldg apart): alpha g reaches the sparse
 * branch, and with `linear` (1 - alpha) g the quadratic linear form. */
size_t sla2_gather_kept_per_pair(const Sla2Dims *dm);
size_t sla2_gather_scratch_floats(const Sla2Dims *dm);
void sla2_gather_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                     float *o_s, float *lse, float *o_l, float *kept, Sla2Ws *w, float *scratch);
void sla2_gather_bwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                     const float *kept, const float *g, int ldg, float alpha, float *dq, float *dk, float *dv,
                     int linear, Sla2Ws *w, float *scratch);

/* The sparse branch as one dense masked attention per (b, h)
 * (kernels/cpu/sla2_dense.c). */
/* Floats of scratch per thread (the N x N scores and their gradients). */
size_t sla2_dense_scratch_floats(const Sla2Dims *dm);
void sla2_sparse_fwd_dense(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                           float *o, float *lse, float *scratch);
/* gs: the gradient reaching O_s; o_ref the full-precision O_s. dq, dk, dv
 * accumulated; with soft selection dmask too (blocksum: nk doubles). */
void sla2_sparse_bwd_dense(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                           const float *o_ref, const float *lse, const float *gs, float *dq, float *dk, float *dv,
                           float *dmask, double *blocksum, float *scratch);

/* Quantised sparse branch of one (b, h) (forward only): o_s [N, d]. */
void sla2_qat_sparse_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                         float *o_s, Sla2Ws *w);

#endif
