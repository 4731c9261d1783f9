/* tests/sla2_ref.h — an independent, naive double-precision SLA2 (the dense
 * masked formulation of docs/sla2.md) for the C tests: every token pair
 * weighted by its block mask, soft top-k by its own bisection. */
#ifndef TESTS_SLA2_REF_H
#define TESTS_SLA2_REF_H

typedef struct RefSla2 {
    int B, H, N, d, bq, bk, k_sel, fm, soft;
    double tau;
} RefSla2;

/* q, k, v [B,H,N,d], Wq, Wk [d,d], al [H] -> out [B,N,H*d]; mask_out
 * [B,H,nq,nk] (optional) receives the block mask. */
void ref_sla2(const RefSla2 *r, const double *q, const double *k, const double *v, const double *Wq,
              const double *Wk, const double *al, double *out, double *mask_out);

#endif
