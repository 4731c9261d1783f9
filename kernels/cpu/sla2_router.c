/* kernels/cpu/sla2_router.c — SLA2's learnable router for one (batch, head):
 * K smoothing, block mean pooling, projected block scores, hard top-k, and
 * the soft top-k (sigmoid(P/tau + lambda), lambda by bisection) with its
 * implicit-function gradient back to proj_q, proj_k, q and k. */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/sla2_internal.h"

/* Block means of x [N, d] over blocks of bs tokens (partial last block: real
 * count), accumulated in double row by row (independent across channels:
 * the loop vectorises). acc: d doubles of scratch. */
static void pool_blocks(float *out, const float *x, int N, int d, int bs, int nb, const float *sub, double *acc) {
    for (int i = 0; i < nb; i++) {
        int a0 = i * bs, n = sla2_block_len(i, bs, N);
        for (int c = 0; c < d; c++) acc[c] = 0.0;
        for (int a = a0; a < a0 + n; a++)
            for (int c = 0; c < d; c++) acc[c] += x[(size_t)a * d + c];
        for (int c = 0; c < d; c++) out[(size_t)i * d + c] = (float)(acc[c] / n) - (sub ? sub[c] : 0.0f);
    }
}

/* y = x W^T (PyTorch's Linear without bias) for rows of x, in fp32 as
 * PyTorch computes it. */
static void project_rows(float *y, const float *x, const float *W, int rows, int d) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, d, d, 1.0f, x, d, W, d, 0.0f, y, d);
}

static void hard_topk_row(float *mrow, const float *prow, int nk, int k) {
    for (int j = 0; j < nk; j++) mrow[j] = 0.0f;
    for (int t = 0; t < k; t++) {
        int best = -1;
        for (int j = 0; j < nk; j++) /* strict '>': ties go to the lower index */
            if (mrow[j] == 0.0f && (best < 0 || prow[j] > prow[best])) best = j;
        mrow[best] = 1.0f;
    }
}

static double sigmoid_d(double x) { return 1.0 / (1.0 + exp(-x)); }

static void soft_topk_row(float *mrow, const float *prow, int nk, int k, float tau) {
    if (k >= nk) {
        for (int j = 0; j < nk; j++) mrow[j] = 1.0f;
        return;
    }
    double xmin = INFINITY, xmax = -INFINITY;
    for (int j = 0; j < nk; j++) {
        double x = prow[j] / (double)tau;
        xmin = x < xmin ? x : xmin;
        xmax = x > xmax ? x : xmax;
    }
    /* At lo every sigmoid is below e^-40, at hi above 1 - e^-40: the root is inside. */
    double lo = -xmax - 40.0, hi = -xmin + 40.0;
    for (int it = 0; it < 100; it++) {
        double mid = 0.5 * (lo + hi), s = 0.0;
        for (int j = 0; j < nk; j++) s += sigmoid_d(prow[j] / (double)tau + mid);
        if (s < k) lo = mid;
        else hi = mid;
    }
    double lam = 0.5 * (lo + hi);
    for (int j = 0; j < nk; j++) mrow[j] = (float)sigmoid_d(prow[j] / (double)tau + lam);
}

/* Smoothing, pooling and projection: w->kmean, qbar, kbar, qt, kt. */
static void router_prepare(const Sla2Dims *dm, const float *q, const float *k, const float *Wq, const float *Wk,
                           Sla2Ws *w) {
    int N = dm->N, d = dm->d, nq = dm->nq, nk = dm->nk;
    double *acc = w->rowtmp; /* nk + d doubles: d of them here */
    pool_blocks(w->kmean, k, N, d, N, 1, NULL, acc); /* the mean over all tokens */
    pool_blocks(w->qbar, q, N, d, dm->block_q, nq, NULL, acc);
    pool_blocks(w->kbar, k, N, d, dm->block_k, nk, w->kmean, acc);
    project_rows(w->qt, w->qbar, Wq, nq, d);
    project_rows(w->kt, w->kbar, Wk, nk, d);
}

void sla2_router_fwd(const Sla2Dims *dm, const float *q, const float *k, const float *Wq, const float *Wk,
                     float *mask, float *pc, Sla2Ws *w) {
    int d = dm->d, nq = dm->nq, nk = dm->nk;
    router_prepare(dm, q, k, Wq, Wk, w);
    double scale = 1.0 / sqrt((double)d);
    for (int i = 0; i < nq; i++) {
        float *prow = pc + (size_t)i * nk;
        double mx = -INFINITY;
        for (int j = 0; j < nk; j++) {
            prow[j] = (float)(cpu_dot_f64(w->qt + (size_t)i * d, w->kt + (size_t)j * d, d) * scale);
            mx = prow[j] > mx ? prow[j] : mx;
        }
        double sum = 0.0;
        for (int j = 0; j < nk; j++) sum += exp(prow[j] - mx);
        for (int j = 0; j < nk; j++) prow[j] = (float)(exp(prow[j] - mx) / sum);
        if (dm->soft) soft_topk_row(mask + (size_t)i * nk, prow, nk, dm->k_sel, dm->tau);
        else hard_topk_row(mask + (size_t)i * nk, prow, nk, dm->k_sel);
    }
}

void sla2_router_bwd(const Sla2Dims *dm, const float *q, const float *k, const float *Wq, const float *Wk,
                     const float *mask, const float *pc, const float *dmask, float *dq, float *dk, Sla2Ws *w) {
    int N = dm->N, d = dm->d, nq = dm->nq, nk = dm->nk;
    memset(w->dWq, 0, sizeof(float) * (size_t)d * d);
    memset(w->dWk, 0, sizeof(float) * (size_t)d * d);
    if (dm->k_sel >= nk) return; /* M = 1 exactly: no gradient */
    /* Recompute the pooled and projected blocks (cheap) rather than keep them. */
    router_prepare(dm, q, k, Wq, Wk, w);
    double scale = 1.0 / sqrt((double)d);

    /* dqt_i = sum_j dSc_ij kt_j scale, dkt_j = sum_i dSc_ij qt_i scale */
    float *dqt = w->dqt, *dkt = w->dkt;
    memset(dqt, 0, sizeof(float) * (size_t)nq * d);
    memset(dkt, 0, sizeof(float) * (size_t)nk * d);
    for (int i = 0; i < nq; i++) {
        const float *mrow = mask + (size_t)i * nk, *prow = pc + (size_t)i * nk, *grow = dmask + (size_t)i * nk;
        /* soft top-k: dx_l = s_l g_l - s_l (sum s g) / (sum s), s = M (1 - M), x = Pc / tau */
        double ss = 0.0, sg = 0.0;
        for (int j = 0; j < nk; j++) {
            double s = (double)mrow[j] * (1.0 - mrow[j]);
            ss += s, sg += s * grow[j];
        }
        double *dpc = w->rowtmp, dot = 0.0;
        for (int j = 0; j < nk; j++) {
            double s = (double)mrow[j] * (1.0 - mrow[j]);
            double dx = ss > 0 ? s * grow[j] - s * sg / ss : 0.0;
            dpc[j] = dx / dm->tau;
            dot += dpc[j] * prow[j];
        }
        for (int j = 0; j < nk; j++) {
            double dsc = prow[j] * (dpc[j] - dot) * scale; /* through the row softmax and the 1/sqrt(d) */
            for (int c = 0; c < d; c++) {
                dqt[(size_t)i * d + c] += (float)(dsc * w->kt[(size_t)j * d + c]);
                dkt[(size_t)j * d + c] += (float)(dsc * w->qt[(size_t)i * d + c]);
            }
        }
    }
    /* qt = qbar Wq^T: dWq[r][c] += dqt[r] qbar[c]; dqbar[c] = sum_r dqt[r] Wq[r][c]. Likewise k. */
    for (int side = 0; side < 2; side++) {
        int nb = side ? nk : nq, bs = side ? dm->block_k : dm->block_q;
        const float *dt = side ? dkt : dqt, *bar = side ? w->kbar : w->qbar, *W = side ? Wk : Wq;
        float *dW = side ? w->dWk : w->dWq, *dx = side ? dk : dq;
        double *dmean = w->rowtmp;
        if (side) memset(dmean, 0, sizeof(double) * (size_t)d);
        for (int i = 0; i < nb; i++) {
            const float *g = dt + (size_t)i * d, *xb = bar + (size_t)i * d;
            for (int r = 0; r < d; r++)
                for (int c = 0; c < d; c++) dW[(size_t)r * d + c] += g[r] * xb[c];
            int a0 = i * bs, n = sla2_block_len(i, bs, N);
            for (int c = 0; c < d; c++) {
                double db = 0.0;
                for (int r = 0; r < d; r++) db += (double)g[r] * W[(size_t)r * d + c];
                float per = (float)(db / n); /* the block mean spreads its gradient evenly */
                for (int a = a0; a < a0 + n; a++) dx[(size_t)a * d + c] += per;
                if (side) dmean[c] += db; /* kbar = mean(K_j) - mean(K): minus the total over N */
            }
        }
        if (side)
            for (int c = 0; c < d; c++) {
                float per = (float)(dmean[c] / N);
                for (int a = 0; a < N; a++) dx[(size_t)a * d + c] -= per;
            }
    }
}
