/* tests/sla2_ref.c — naive double-precision SLA2 reference (see sla2_ref.h). */
#include "sla2_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double sig(double x) { return 1.0 / (1.0 + exp(-x)); }

static void phi(double *y, const double *x, int d, int fm) {
    if (fm == 0) {
        double mx = x[0], s = 0;
        for (int c = 1; c < d; c++) mx = x[c] > mx ? x[c] : mx;
        for (int c = 0; c < d; c++) s += y[c] = exp(x[c] - mx);
        for (int c = 0; c < d; c++) y[c] /= s;
    } else if (fm == 1) {
        for (int c = 0; c < d; c++) y[c] = x[c] > 0 ? x[c] + 1 : exp(x[c]);
    } else {
        for (int c = 0; c < d; c++) y[c] = x[c] > 0 ? x[c] : 0;
    }
}

void ref_sla2(const RefSla2 *r, const double *q, const double *k, const double *v, const double *Wq,
              const double *Wk, const double *al, double *out, double *mask_out) {
    int B = r->B, H = r->H, N = r->N, d = r->d, bq = r->bq, bk = r->bk;
    int nq = (N + bq - 1) / bq, nk = (N + bk - 1) / bk;
    double *qbar = calloc((size_t)nq * d, sizeof(double)), *kbar = calloc((size_t)nk * d, sizeof(double));
    double *qt = calloc((size_t)nq * d, sizeof(double)), *kt = calloc((size_t)nk * d, sizeof(double));
    double *M = calloc((size_t)nq * nk, sizeof(double)), *pc = calloc((size_t)nk, sizeof(double));
    double *pq = malloc(sizeof(double) * d), *pk = malloc(sizeof(double) * (size_t)N * d);
    double *s = malloc(sizeof(double) * N), *kmean = malloc(sizeof(double) * d);
    double scale = 1.0 / sqrt((double)d);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t off = ((size_t)b * H + h) * N * d;
            const double *Q = q + off, *K = k + off, *V = v + off;
            for (int c = 0; c < d; c++) {
                kmean[c] = 0;
                for (int n = 0; n < N; n++) kmean[c] += K[(size_t)n * d + c] / N;
            }
            memset(qbar, 0, sizeof(double) * nq * d);
            memset(kbar, 0, sizeof(double) * nk * d);
            for (int n = 0; n < N; n++)
                for (int c = 0; c < d; c++) {
                    int i = n / bq, j = n / bk;
                    int ci = (i + 1) * bq < N ? bq : N - i * bq, cj = (j + 1) * bk < N ? bk : N - j * bk;
                    qbar[i * d + c] += Q[(size_t)n * d + c] / ci;
                    kbar[j * d + c] += (K[(size_t)n * d + c] - kmean[c]) / cj;
                }
            for (int i = 0; i < nq; i++)
                for (int o = 0; o < d; o++) {
                    qt[i * d + o] = 0;
                    for (int c = 0; c < d; c++) qt[i * d + o] += Wq[o * d + c] * qbar[i * d + c];
                }
            for (int j = 0; j < nk; j++)
                for (int o = 0; o < d; o++) {
                    kt[j * d + o] = 0;
                    for (int c = 0; c < d; c++) kt[j * d + o] += Wk[o * d + c] * kbar[j * d + c];
                }
            for (int i = 0; i < nq; i++) {
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < nk; j++) {
                    pc[j] = 0;
                    for (int c = 0; c < d; c++) pc[j] += qt[i * d + c] * kt[j * d + c] * scale;
                    mx = pc[j] > mx ? pc[j] : mx;
                }
                for (int j = 0; j < nk; j++) sum += pc[j] = exp(pc[j] - mx);
                for (int j = 0; j < nk; j++) pc[j] /= sum;
                double *mrow = M + (size_t)i * nk;
                if (r->k_sel >= nk) {
                    for (int j = 0; j < nk; j++) mrow[j] = 1;
                } else if (r->soft) {
                    double lo = -1e3, hi = 1e3; /* pc/tau is within [0, 10/tau] */
                    for (int it = 0; it < 200; it++) {
                        double mid = 0.5 * (lo + hi), t = 0;
                        for (int j = 0; j < nk; j++) t += sig(pc[j] / r->tau + mid);
                        if (t < r->k_sel) lo = mid;
                        else hi = mid;
                    }
                    for (int j = 0; j < nk; j++) mrow[j] = sig(pc[j] / r->tau + 0.5 * (lo + hi));
                } else {
                    for (int j = 0; j < nk; j++) { /* rank: blocks strictly larger, or equal with lower index */
                        int rank = 0;
                        for (int l = 0; l < nk; l++) rank += pc[l] > pc[j] || (pc[l] == pc[j] && l < j);
                        mrow[j] = rank < r->k_sel;
                    }
                }
            }
            if (mask_out) memcpy(mask_out + ((size_t)b * H + h) * nq * nk, M, sizeof(double) * nq * nk);
            for (int n = 0; n < N; n++) phi(pk + (size_t)n * d, K + (size_t)n * d, d, r->fm);
            double alpha = sig(al[h]);
            for (int a = 0; a < N; a++) {
                const double *qa = Q + (size_t)a * d;
                double mx = -INFINITY;
                for (int t = 0; t < N; t++) {
                    s[t] = 0;
                    for (int c = 0; c < d; c++) s[t] += qa[c] * K[(size_t)t * d + c] * scale;
                    mx = s[t] > mx ? s[t] : mx;
                }
                phi(pq, qa, d, r->fm);
                double den_s = 0, den_l = 1e-6;
                double *o = out + ((size_t)b * N + a) * H * d + (size_t)h * d;
                double *os = calloc(d, sizeof(double)), *ol = calloc(d, sizeof(double));
                for (int t = 0; t < N; t++) {
                    double w = M[(size_t)(a / bq) * nk + t / bk], e = w * exp(s[t] - mx), f = 0;
                    for (int c = 0; c < d; c++) f += pq[c] * pk[(size_t)t * d + c];
                    f *= 1 - w;
                    den_s += e, den_l += f;
                    for (int c = 0; c < d; c++) os[c] += e * V[(size_t)t * d + c], ol[c] += f * V[(size_t)t * d + c];
                }
                for (int c = 0; c < d; c++) o[c] = alpha * os[c] / den_s + (1 - alpha) * ol[c] / den_l;
                free(os);
                free(ol);
            }
        }
    free(qbar), free(kbar), free(qt), free(kt), free(M), free(pc), free(pq), free(pk), free(s), free(kmean);
}
