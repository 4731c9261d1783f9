/* train/eval/frechet.h — the Fréchet distance between two Gaussians fitted to
 * feature sets (the formula of FID, on this project's own classifier
 * features; docs/eval.md):
 *
 *   FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2)
 *
 * Everything in double. Square roots of symmetric positive semi-definite
 * matrices come from LAPACK's symmetric eigendecomposition (dsyevd, in
 * OpenBLAS): A = V diag(l) V^T -> A^1/2 = V diag(sqrt(max(l, 0))) V^T. The
 * last term needs only the eigenvalues of the symmetric PSD matrix
 * S1^1/2 S2 S1^1/2 (its square root's trace is sum sqrt(l_i)), which avoids
 * the non-symmetric sqrtm(S1 S2) of the usual implementations and its
 * complex round-off. */
#ifndef TRAIN_EVAL_FRECHET_H
#define TRAIN_EVAL_FRECHET_H

typedef struct FeatureStats {
    int d;       /* feature dimension */
    long n;      /* samples */
    double *mu;  /* [d] */
    double *cov; /* [d, d], unbiased (n - 1) */
} FeatureStats;

/* Mean and covariance of n feature rows [n, d] (float), in double. n >= 2. */
void frechet_stats(FeatureStats *s, const float *feat, long n, int d);
void frechet_stats_free(FeatureStats *s);

/* Eigenvalues (ascending, into w [d]) and, when V is given, eigenvectors
 * (columns of V [d, d], row-major: V[i*d + j] = component i of vector j) of
 * the symmetric matrix A [d, d] (only its upper triangle is read). Stops
 * with LAPACK's info on failure. */
void frechet_eigh(const double *A, int d, double *w, double *V);

/* S = A^1/2 for a symmetric PSD A [d, d]; eigenvalues below 0 (round-off)
 * count as 0. Returns the number of eigenvalues that were clamped and were
 * below -1e-10 * max eigenvalue (a sign that A was not PSD). */
int frechet_sqrtm_psd(const double *A, int d, double *S);

/* The Fréchet distance of two fitted Gaussians (same d). Negative results
 * of round-off (identical sets) come out as they are, about -1e-12 * tr. */
double frechet_distance(const FeatureStats *a, const FeatureStats *b);

/* Shortcut: fit both sets and return their distance. */
double frechet_distance_features(const float *fa, long na, const float *fb, long nb, int d);

#endif
