/* train/eval/frechet.c — feature statistics and the Fréchet distance (see
 * frechet.h), with LAPACK's dsyevd and BLAS's dgemm from OpenBLAS. */
#include "train/eval/frechet.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"

/* LAPACK (Fortran ABI, in OpenBLAS): symmetric eigendecomposition by divide
 * and conquer. The trailing lengths are the hidden Fortran string lengths of
 * jobz and uplo. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                    double *work, const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len,
                    size_t uplo_len);

void frechet_stats(FeatureStats *s, const float *feat, long n, int d) {
    CHECK(n >= 2 && d >= 1, "feature statistics need at least 2 samples and 1 feature (got %ld x %d)", n, d);
    s->d = d, s->n = n;
    s->mu = core_calloc(sizeof(double) * (size_t)d);
    s->cov = core_calloc(sizeof(double) * (size_t)d * d);
    for (long i = 0; i < n; i++)
        for (int j = 0; j < d; j++) s->mu[j] += feat[(size_t)i * d + j];
    for (int j = 0; j < d; j++) s->mu[j] /= (double)n;
    /* Centred products, rows in order: exact for the mean's precision and reproducible. */
    double *x = core_malloc(sizeof(double) * (size_t)d);
    for (long i = 0; i < n; i++) {
        for (int j = 0; j < d; j++) x[j] = feat[(size_t)i * d + j] - s->mu[j];
        for (int a = 0; a < d; a++) {
            double xa = x[a], *row = s->cov + (size_t)a * d;
            for (int b = a; b < d; b++) row[b] += xa * x[b];
        }
    }
    core_free(x);
    for (int a = 0; a < d; a++)
        for (int b = a; b < d; b++) {
            double v = s->cov[(size_t)a * d + b] / (double)(n - 1);
            s->cov[(size_t)a * d + b] = s->cov[(size_t)b * d + a] = v;
        }
}

void frechet_stats_free(FeatureStats *s) {
    core_free(s->mu);
    core_free(s->cov);
    memset(s, 0, sizeof *s);
}

void frechet_eigh(const double *A, int d, double *w, double *V) {
    CHECK(d >= 1, "eigendecomposition of a %dx%d matrix", d, d);
    /* Row-major A is column-major A^T = A (symmetric): hand it over as is.
     * LAPACK's "U" (upper triangle, column-major) is our lower triangle; we
     * symmetrise first so that either reading is the same matrix. */
    double *a = core_malloc(sizeof(double) * (size_t)d * d);
    for (int i = 0; i < d; i++)
        for (int j = i; j < d; j++) a[(size_t)i * d + j] = a[(size_t)j * d + i] = A[(size_t)i * d + j];
    const char jobz = V ? 'V' : 'N', uplo = 'U';
    int n = d, lda = d, info = 0, lwork = -1, liwork = -1, iwq = 0;
    double wq = 0;
    dsyevd_(&jobz, &uplo, &n, a, &lda, w, &wq, &lwork, &iwq, &liwork, &info, 1, 1);
    CHECK(info == 0, "LAPACK dsyevd workspace query failed (info %d)", info);
    lwork = (int)wq + 1, liwork = iwq > 1 ? iwq : 1;
    double *work = core_malloc(sizeof(double) * (size_t)lwork);
    int *iwork = core_malloc(sizeof(int) * (size_t)liwork);
    dsyevd_(&jobz, &uplo, &n, a, &lda, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    CHECK(info == 0, "LAPACK dsyevd failed on a %dx%d matrix (info %d: %s)", d, d, info,
          info < 0 ? "an illegal argument" : "no convergence");
    /* Column-major result: eigenvector j is a[j*d .. j*d + d) -> V[i*d + j]. */
    if (V)
        for (int j = 0; j < d; j++)
            for (int i = 0; i < d; i++) V[(size_t)i * d + j] = a[(size_t)j * d + i];
    core_free(work), core_free(iwork), core_free(a);
}

int frechet_sqrtm_psd(const double *A, int d, double *S) {
    double *w = core_malloc(sizeof(double) * (size_t)d), *V = core_malloc(sizeof(double) * (size_t)d * d);
    frechet_eigh(A, d, w, V);
    double wmax = 0;
    for (int j = 0; j < d; j++) wmax = fmax(wmax, fabs(w[j]));
    int bad = 0;
    for (int j = 0; j < d; j++) {
        if (w[j] < -1e-10 * wmax) bad++;
        w[j] = w[j] > 0 ? sqrt(w[j]) : 0.0;
    }
    /* S = (V diag(sqrt w)) V^T; symmetrised, since dgemm's round-off need not be. */
    double *Vw = core_malloc(sizeof(double) * (size_t)d * d);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) Vw[(size_t)i * d + j] = V[(size_t)i * d + j] * w[j];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d, d, d, 1.0, Vw, d, V, d, 0.0, S, d);
    for (int i = 0; i < d; i++)
        for (int k = i + 1; k < d; k++) {
            double m = 0.5 * (S[(size_t)i * d + k] + S[(size_t)k * d + i]);
            S[(size_t)i * d + k] = S[(size_t)k * d + i] = m;
        }
    core_free(Vw);
    core_free(w), core_free(V);
    return bad;
}

/* C = A B for d x d row-major matrices (OpenBLAS, which the CPU backend links). */
static void matmul(const double *A, const double *B, double *C, int d) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, A, d, B, d, 0.0, C, d);
}

double frechet_distance(const FeatureStats *a, const FeatureStats *b) {
    CHECK(a->d == b->d, "Fréchet distance between %d- and %d-dimensional features", a->d, b->d);
    int d = a->d;
    double dmu = 0, tr = 0;
    for (int j = 0; j < d; j++) {
        double e = a->mu[j] - b->mu[j];
        dmu += e * e;
        tr += a->cov[(size_t)j * d + j] + b->cov[(size_t)j * d + j];
    }
    double *s1h = core_malloc(sizeof(double) * (size_t)d * d), *t = core_malloc(sizeof(double) * (size_t)d * d),
           *m = core_malloc(sizeof(double) * (size_t)d * d), *w = core_malloc(sizeof(double) * (size_t)d);
    frechet_sqrtm_psd(a->cov, d, s1h);
    matmul(s1h, b->cov, t, d); /* S1^1/2 S2 */
    matmul(t, s1h, m, d);      /* S1^1/2 S2 S1^1/2: symmetric PSD (up to round-off) */
    frechet_eigh(m, d, w, NULL);
    double trs = 0;
    for (int j = 0; j < d; j++) trs += w[j] > 0 ? sqrt(w[j]) : 0.0;
    core_free(s1h), core_free(t), core_free(m), core_free(w);
    return dmu + tr - 2.0 * trs;
}

double frechet_distance_features(const float *fa, long na, const float *fb, long nb, int d) {
    FeatureStats a, b;
    frechet_stats(&a, fa, na, d);
    frechet_stats(&b, fb, nb, d);
    double fd = frechet_distance(&a, &b);
    frechet_stats_free(&a);
    frechet_stats_free(&b);
    return fd;
}
