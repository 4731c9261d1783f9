/* tests/attn_bounds.h — bf16 error bounds for the tensor-core attention
 * tests (attn_bounds.c). */
#ifndef TESTS_ATTN_BOUNDS_H
#define TESTS_ATTN_BOUNDS_H
#include <stddef.h>

#include "core/op_table.h"
#include "cuda_check.h"

#define U_BF16 (1.0 / 256.0) /* 2^-8: bf16's unit roundoff */

/* The suites' .init / .fini: the device in BF16 mode, and back to FP32 with every array freed. */
void tc_setup(void);
void tc_teardown(void);
/* Round to bf16, nearest even (the inputs both sides share). */
float bf16_round(float x);
/* arr_rand with every value rounded to bf16 (both sides). */
Arr arr_rand_bf16(size_t n, float lo, float hi);
/* Expects |gpu - cpu| <= 1.25 bound + 1e-5 max|cpu| element by element;
 * bound == NULL: 1e-4 absolute (the LSE). */
void expect_within(const Arr *a, const double *bound, const char *what, int N, int hd);

/* The first-order bounds, from the CPU's P and dS ([BH, N, N]; for a
 * masked softmax, P = 0 and dS = 0 outside the mask) and the inputs
 * (q, k, v [BH, N, hd]; dO [B, N, H*hd], the gradient the attention
 * output receives). dO_rounded: the kernels round dO to bf16 themselves
 * (SLA2's alpha dout), which adds u |dO| to dV's, D's and dP's errors;
 * 0 when dO is exact in bf16. Free each array with free(). */
typedef struct Bounds {
    double *o, *dq, *dk, *dv; /* o like out [B, N, H*hd]; dq, dk, dv like q */
} Bounds;
Bounds attn_bounds(const float *P, const float *dS, const float *q, const float *k, const float *v, const float *dO,
                   int dO_rounded, int B, int H, int N, int hd);
/* SLA2's linear branch in BF16 mode (kernels/cuda/sla2_linear_tc.cu): O_l
 * [B, H, N, d] from phi(q), phi(k), h_j and H_i, each rounded to bf16 once
 * (v exact in bf16). The features are non-negative, so the numerator's
 * error is at most 4u sum_r phi_q[r] sum_(linear b) phi_k[b][r] |v[b][c]|
 * and the denominator's 4u den (first order; 4 roundings on each path):
 * |dO_l| <= 4u (that sum / den + |O_l|). 0 where the query block has no
 * linear block (O_l = 0 on both sides). From the CPU's mask and O_l. */
double *sla2_linear_bound(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                          const float *o_l);
#endif
