/* tests/attn_bounds.c — the bf16 error bounds the tensor-core attention
 * tests share (test_cuda_attn_tc.c: full attention; test_cuda_sla2_tc.c:
 * SLA2's sparse branch): inputs rounded to bf16 on the host, and the
 * first-order bound of every output and gradient element from the CPU's P
 * and dS (derived in test_cuda_attn_tc.c's header comment), and the suites'
 * set-up (BF16 mode). */
#include "attn_bounds.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/ops_cuda.h"

void tc_setup(void) {
    cuda_init(0);
    cuda_set_precision(CUDA_PREC_BF16);
}

void tc_teardown(void) {
    cuda_set_precision(CUDA_PREC_FP32);
    arr_free_all();
}

/* Round to bf16, nearest even (the inputs both sides share). */
float bf16_round(float x) {
    uint32_t b;
    memcpy(&b, &x, 4);
    b = (b + 0x7fffu + ((b >> 16) & 1u)) & 0xffff0000u;
    memcpy(&x, &b, 4);
    return x;
}

Arr arr_rand_bf16(size_t n, float lo, float hi) {
    Arr a = arr_rand(n, lo, hi);
    for (size_t i = 0; i < n; i++) a.h[i] = bf16_round(a.h[i]);
    arr_upload(&a);
    return a;
}

/* Expects |gpu - cpu| <= 1.25 bound + 1e-5 max|cpu| element by element;
 * bound == NULL: 1e-4 absolute (the LSE). */
void expect_within(const Arr *a, const double *bound, const char *what, int N, int hd) {
    float *got = arr_download(a);
    double maxref = 0.0, worst = -1.0;
    size_t wi = 0;
    for (size_t i = 0; i < a->n; i++) maxref = fmax(maxref, fabs((double)a->h[i]));
    for (size_t i = 0; i < a->n; i++) {
        const double lim = bound ? 1.25 * bound[i] + 1e-5 * maxref : 1e-4;
        const double err = isfinite(got[i]) ? fabs((double)got[i] - a->h[i]) : INFINITY;
        if (err / lim > worst) worst = err / lim, wi = i;
    }
    cr_expect(worst <= 1.0, "N=%d hd=%d %s: element %zu off by %.3g of its bound (gpu %.9g cpu %.9g, rel err %.3g)",
              N, hd, what, wi, worst, got[wi], a->h[wi], rel_err(got, a->h, a->n));
    printf("  %-4s rel err %.2e, worst at %.2f of its bf16 bound\n", what, rel_err(got, a->h, a->n), worst);
    free(got);
}

Bounds attn_bounds(const float *P, const float *dS, const float *q, const float *k, const float *v,
                   const float *dO, int dO_rounded, int B, int H, int N, int hd) {
    const size_t nt = (size_t)B * H * N * hd;
    const double u = U_BF16, scale = 1.0 / sqrt((double)hd);
    Bounds e = {calloc(nt, 8), calloc(nt, 8), calloc(nt, 8), calloc(nt, 8)};
    double *eD = calloc((size_t)N, 8), *edS = calloc((size_t)N * N, 8), *av = malloc(8 * (size_t)N * hd);
    double *aq = malloc(8 * (size_t)N * hd), *ak = malloc(8 * (size_t)N * hd), *ag = malloc(8 * (size_t)N * hd);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const size_t bh = (size_t)b * H + h, t0 = bh * N * hd;
            const float *p = P + bh * N * N, *ds = dS + bh * N * N;
            for (size_t i = 0; i < (size_t)N * hd; i++) { /* absolute values, all [N, hd] */
                const size_t a = i / hd, c = i % hd;
                av[i] = fabs((double)v[t0 + i]), aq[i] = fabs((double)q[t0 + i]), ak[i] = fabs((double)k[t0 + i]);
                ag[i] = fabs((double)dO[((size_t)b * N + a) * H * hd + (size_t)h * hd + c]);
            }
            for (int a = 0; a < N; a++) { /* eO, eD */
                double *eo = e.o + ((size_t)b * N + a) * H * hd + (size_t)h * hd;
                for (int j = 0; j < N; j++)
                    for (int c = 0; c < hd; c++) eo[c] += u * p[(size_t)a * N + j] * av[(size_t)j * hd + c];
                eD[a] = 0; /* with dO rounded too: u |dO| |O| more per channel, and u |O| <= eO */
                for (int c = 0; c < hd; c++) eD[a] += (dO_rounded ? 2 : 1) * ag[(size_t)a * hd + c] * eo[c];
            }
            for (int a = 0; a < N; a++)
                for (int j = 0; j < N; j++) {
                    const double pj = p[(size_t)a * N + j];
                    double edp = 0; /* dP's error from dO's rounding: u sum_c |dO_ac| |v_jc| */
                    if (dO_rounded && pj != 0)
                        for (int c = 0; c < hd; c++) edp += u * ag[(size_t)a * hd + c] * av[(size_t)j * hd + c];
                    edS[(size_t)a * N + j] = pj * (eD[a] + edp) + u * fabs((double)ds[(size_t)a * N + j]);
                }
            for (int a = 0; a < N; a++) /* query a: dQ; key a: dK, dV */
                for (int j = 0; j < N; j++) {
                    const double wq = scale * edS[(size_t)a * N + j], wk = scale * edS[(size_t)j * N + a];
                    const double wv = (dO_rounded ? 2 : 1) * u * p[(size_t)j * N + a];
                    double *eq = e.dq + t0 + (size_t)a * hd, *ek = e.dk + t0 + (size_t)a * hd;
                    double *ev = e.dv + t0 + (size_t)a * hd;
                    for (int c = 0; c < hd; c++) {
                        eq[c] += wq * ak[(size_t)j * hd + c];
                        ek[c] += wk * aq[(size_t)j * hd + c];
                        ev[c] += wv * ag[(size_t)j * hd + c];
                    }
                }
        }
    free(eD), free(edS), free(av), free(aq), free(ak), free(ag);
    return e;
}


/* phi over one row of d channels in double (kernels/cpu/sla2.c's feature maps). */
static void phi_row(double *y, const float *x, int d, int fm) {
    if (fm == SLA2_PHI_SOFTMAX) {
        double mx = -INFINITY, s = 0.0;
        for (int c = 0; c < d; c++) mx = fmax(mx, x[c]);
        for (int c = 0; c < d; c++) s += y[c] = exp(x[c] - mx);
        for (int c = 0; c < d; c++) y[c] /= s;
    } else if (fm == SLA2_PHI_ELU) {
        for (int c = 0; c < d; c++) y[c] = x[c] > 0 ? x[c] + 1.0 : exp(x[c]);
    } else {
        for (int c = 0; c < d; c++) y[c] = x[c] > 0 ? x[c] : 0.0;
    }
}

double *sla2_linear_bound(const Sla2Dims *dm, const float *q, const float *k, const float *v, const float *mask,
                          const float *o_l) {
    const int N = dm->N, d = dm->d, nq = dm->nq, nk = dm->nk;
    const size_t BH = (size_t)dm->B * dm->H, dd = (size_t)d * d;
    double *e = calloc(BH * N * d, 8), *pq = malloc(8 * (size_t)d), *pk = malloc(8 * (size_t)d);
    double *Aj = malloc(8 * nk * dd), *Zj = malloc(8 * (size_t)nk * d), *A = malloc(8 * dd), *Z = malloc(8 * (size_t)d);
    for (size_t bh = 0; bh < BH; bh++) {
        const size_t t0 = bh * N * d;
        memset(Aj, 0, 8 * nk * dd), memset(Zj, 0, 8 * (size_t)nk * d);
        for (int b = 0; b < N; b++) { /* per key block: sum phi_k[b][r] |v[b][c]| and sum phi_k[b][r] */
            const int j = b / dm->block_k;
            phi_row(pk, k + t0 + (size_t)b * d, d, dm->feature_map);
            for (int r = 0; r < d; r++) {
                Zj[(size_t)j * d + r] += pk[r];
                for (int c = 0; c < d; c++) Aj[j * dd + (size_t)r * d + c] += pk[r] * fabs((double)v[t0 + (size_t)b * d + c]);
            }
        }
        for (int i = 0; i < nq; i++) {
            memset(A, 0, 8 * dd), memset(Z, 0, 8 * (size_t)d);
            int lin = 0;
            for (int j = 0; j < nk; j++) {
                if (mask[(bh * nq + i) * nk + j] != 0.0f) continue;
                lin = 1;
                for (size_t x = 0; x < dd; x++) A[x] += Aj[j * dd + x];
                for (int r = 0; r < d; r++) Z[r] += Zj[(size_t)j * d + r];
            }
            if (!lin) continue; /* O_l is 0 on both sides: bound 0 */
            for (int a = i * dm->block_q; a < N && a < (i + 1) * dm->block_q; a++) {
                phi_row(pq, q + t0 + (size_t)a * d, d, dm->feature_map);
                double den = 1e-6;
                for (int r = 0; r < d; r++) den += pq[r] * Z[r];
                for (int c = 0; c < d; c++) {
                    double num = 0.0;
                    for (int r = 0; r < d; r++) num += pq[r] * A[(size_t)r * d + c];
                    const size_t x = t0 + (size_t)a * d + c;
                    e[x] = 4.0 * U_BF16 * (num / den + fabs((double)o_l[x]));
                }
            }
        }
    }
    free(pq), free(pk), free(Aj), free(Zj), free(A), free(Z);
    return e;
}
