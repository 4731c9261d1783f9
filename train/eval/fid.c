/* train/eval/fid.c — streamed FID statistics and Inception Score (see fid.h). */
#include "train/eval/fid.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "io/npz.h"

void fid_to_u8(const float *x, size_t n, uint8_t *out) {
    for (size_t i = 0; i < n; i++) {
        float t = (x[i] + 1.0f) / 2.0f; /* engine_jit.py: (x + 1) / 2, then * 255, clip, np.round */
        t = t * 255.0f;
        t = isnan(t) ? 0.0f : t < 0.0f ? 0.0f : t > 255.0f ? 255.0f : t;
        out[i] = (uint8_t)rintf(t); /* round half to even (the default rounding mode), as np.round */
    }
}

/* ---- numpy's legacy MT19937 ---- */

typedef struct Mt {
    uint32_t key[624];
    int pos;
} Mt;

static void mt_seed(Mt *m, uint32_t s) {
    for (int i = 0; i < 624; i++) {
        m->key[i] = s;
        s = 1812433253u * (s ^ (s >> 30)) + (uint32_t)i + 1u;
    }
    m->pos = 624;
}

static uint32_t mt_next(Mt *m) {
    if (m->pos == 624) {
        for (int i = 0; i < 624; i++) {
            uint32_t y = (m->key[i] & 0x80000000u) | (m->key[(i + 1) % 624] & 0x7fffffffu);
            m->key[i] = m->key[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        m->pos = 0;
    }
    uint32_t y = m->key[m->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* A uniform integer in [0, max] by masked rejection (numpy's random_interval, max < 2^32). */
static uint32_t mt_interval(Mt *m, uint32_t max) {
    if (max == 0) return 0;
    uint32_t mask = max, v;
    mask |= mask >> 1, mask |= mask >> 2, mask |= mask >> 4, mask |= mask >> 8, mask |= mask >> 16;
    while ((v = mt_next(m) & mask) > max) {}
    return v;
}

void fid_np_permutation(uint32_t seed, long n, long *perm) {
    CHECK(n >= 0 && n <= 0xffffffffL, "permutation of %ld elements", n);
    Mt m;
    mt_seed(&m, seed);
    for (long i = 0; i < n; i++) perm[i] = i;
    for (long i = n - 1; i >= 1; i--) {
        long j = (long)mt_interval(&m, (uint32_t)i), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
}

/* ---- the accumulator ---- */

void fid_accum_init(FidAccum *a, int d, int L, long n_total, int splits, int shuffle, uint32_t rng_seed) {
    CHECK(d >= 1 && L >= 0 && n_total >= 2, "FID statistics of %ld images of %d features", n_total, d);
    memset(a, 0, sizeof *a);
    a->d = d, a->L = L, a->n_total = n_total, a->splits = L > 0 ? splits : 0;
    a->shift = core_calloc(sizeof(double) * (size_t)d);
    a->sum = core_calloc(sizeof(double) * (size_t)d);
    a->cross = core_calloc(sizeof(double) * (size_t)d * d);
    if (L > 0) {
        CHECK(splits >= 1 && splits <= n_total, "Inception Score: %d splits of %ld images", splits, n_total);
        long *perm = core_malloc(sizeof(long) * (size_t)n_total);
        if (shuffle) fid_np_permutation(rng_seed, n_total, perm);
        else
            for (long i = 0; i < n_total; i++) perm[i] = i;
        /* position k holds image perm[k]; split s covers positions [s*N//S, (s+1)*N//S) */
        a->split_of = core_malloc(sizeof(int) * (size_t)n_total);
        for (int s = 0; s < splits; s++)
            for (long k = s * n_total / splits; k < (s + 1) * n_total / splits; k++) a->split_of[perm[k]] = s;
        core_free(perm);
        a->psum = core_calloc(sizeof(double) * (size_t)splits * L);
        a->plogp = core_calloc(sizeof(double) * (size_t)splits);
        a->count = core_calloc(sizeof(long) * (size_t)splits);
    }
}

void fid_accum_free(FidAccum *a) {
    core_free(a->shift), core_free(a->sum), core_free(a->cross), core_free(a->split_of);
    core_free(a->psum), core_free(a->plogp), core_free(a->count);
    memset(a, 0, sizeof *a);
}

void fid_accum_add(FidAccum *a, int n, const float *pool, const float *logits) {
    CHECK(n >= 0 && a->n + n <= a->n_total, "FID statistics: %ld + %d images added, %ld expected", a->n, n, a->n_total);
    if (n == 0) return;
    int d = a->d, L = a->L;
    if (a->n == 0)
        for (int j = 0; j < d; j++) a->shift[j] = pool[j];
    double *x = core_malloc(sizeof(double) * (size_t)n * d);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) {
            double v = (double)pool[(size_t)i * d + j] - a->shift[j];
            x[(size_t)i * d + j] = v;
            a->sum[j] += v;
        }
    /* cross += x^T x, upper triangle (row-major) */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, n, 1.0, x, d, 1.0, a->cross, d);
    core_free(x);
    if (L > 0) {
        double *p = core_malloc(sizeof(double) * (size_t)L);
        for (int i = 0; i < n; i++) {
            const float *l = logits + (size_t)i * L;
            double mx = -INFINITY, z = 0;
            for (int c = 0; c < L; c++) mx = fmax(mx, (double)l[c]);
            for (int c = 0; c < L; c++) z += exp((double)l[c] - mx);
            double lz = log(z), e = 0;
            int s = a->split_of[a->n + i];
            double *ps = a->psum + (size_t)s * L;
            for (int c = 0; c < L; c++) {
                double lp = (double)l[c] - mx - lz; /* log_softmax */
                double pc = exp(lp) ;
                p[c] = pc;
                e += pc * lp;
                ps[c] += pc;
            }
            a->plogp[s] += e;
            a->count[s]++;
        }
        core_free(p);
    }
    a->n += n;
}

void fid_accum_stats(const FidAccum *a, FeatureStats *s) {
    CHECK(a->n >= 2, "FID statistics need at least 2 images, %ld were added", a->n);
    int d = a->d;
    double n = (double)a->n;
    s->d = d, s->n = a->n;
    s->mu = core_malloc(sizeof(double) * (size_t)d);
    s->cov = core_malloc(sizeof(double) * (size_t)d * d);
    double *m = core_malloc(sizeof(double) * (size_t)d); /* mean of the shifted features */
    for (int j = 0; j < d; j++) m[j] = a->sum[j] / n, s->mu[j] = a->shift[j] + m[j];
    for (int i = 0; i < d; i++)
        for (int j = i; j < d; j++) {
            double v = (a->cross[(size_t)i * d + j] - n * m[i] * m[j]) / (n - 1.0);
            s->cov[(size_t)i * d + j] = s->cov[(size_t)j * d + i] = v;
        }
    core_free(m);
}

void fid_accum_is(const FidAccum *a, double *mean, double *std) {
    CHECK(a->L > 0, "Inception Score without logits");
    CHECK(a->n == a->n_total, "Inception Score of %ld of %ld images: its splits need all of them", a->n, a->n_total);
    int S = a->splits, L = a->L;
    double *score = core_malloc(sizeof(double) * (size_t)S), tot = 0;
    for (int s = 0; s < S; s++) {
        double cnt = (double)a->count[s], cross = 0;
        const double *ps = a->psum + (size_t)s * L;
        /* sum_rows sum_c p log q = sum_c (sum_rows p_c) log(sum_rows p_c / cnt) */
        for (int c = 0; c < L; c++) cross += ps[c] > 0 ? ps[c] * log(ps[c] / cnt) : 0.0;
        score[s] = exp((a->plogp[s] - cross) / cnt);
        tot += score[s];
    }
    double mu = tot / S, var = 0;
    for (int s = 0; s < S; s++) var += (score[s] - mu) * (score[s] - mu);
    *mean = mu, *std = sqrt(var / S); /* np.std: the population std */
    core_free(score);
}

size_t fid_accum_size(const FidAccum *a) {
    return 1 + 2 * (size_t)a->d + (size_t)a->d * a->d + (size_t)a->splits * (a->L + 2);
}

void fid_accum_save(const FidAccum *a, double *o) {
    int d = a->d, S = a->splits, L = a->L;
    *o++ = (double)a->n;
    memcpy(o, a->shift, sizeof(double) * (size_t)d), o += d;
    memcpy(o, a->sum, sizeof(double) * (size_t)d), o += d;
    memcpy(o, a->cross, sizeof(double) * (size_t)d * d), o += (size_t)d * d;
    if (S) {
        memcpy(o, a->psum, sizeof(double) * (size_t)S * L), o += (size_t)S * L;
        memcpy(o, a->plogp, sizeof(double) * (size_t)S), o += S;
        for (int s = 0; s < S; s++) *o++ = (double)a->count[s];
    }
}

void fid_accum_restore(FidAccum *a, const double *o) {
    int d = a->d, S = a->splits, L = a->L;
    a->n = (long)*o++;
    memcpy(a->shift, o, sizeof(double) * (size_t)d), o += d;
    memcpy(a->sum, o, sizeof(double) * (size_t)d), o += d;
    memcpy(a->cross, o, sizeof(double) * (size_t)d * d), o += (size_t)d * d;
    if (S) {
        memcpy(a->psum, o, sizeof(double) * (size_t)S * L), o += (size_t)S * L;
        memcpy(a->plogp, o, sizeof(double) * (size_t)S), o += S;
        for (int s = 0; s < S; s++) a->count[s] = (long)*o++;
    }
}

/* ---- reference statistics files ---- */

void fid_stats_read_npz(const char *path, FeatureStats *s) {
    char err[1400];
    double *mu, *sigma;
    int nd1, nd2;
    long sh1[NPZ_MAX_DIMS], sh2[NPZ_MAX_DIMS];
    CHECK(npz_read_f64(path, "mu", &mu, &nd1, sh1, err, sizeof err) == 0, "%s", err);
    CHECK(npz_read_f64(path, "sigma", &sigma, &nd2, sh2, err, sizeof err) == 0, "%s", err);
    CHECK(nd1 == 1 && sh1[0] >= 1, "%s: key 'mu': expected a vector, got %d dimensions", path, nd1);
    CHECK(nd2 == 2 && sh2[0] == sh1[0] && sh2[1] == sh1[0],
          "%s: key 'sigma': expected a %ldx%ld matrix (the size of mu), got %d dimensions [%ld, %ld]", path, sh1[0],
          sh1[0], nd2, sh2[0], nd2 >= 2 ? sh2[1] : 0);
    int d = (int)sh1[0];
    for (long i = 0; i < (long)d * d; i++)
        CHECK(isfinite(sigma[i]), "%s: key 'sigma': element [%ld, %ld] is %g", path, i / d, i % d, sigma[i]);
    for (int i = 0; i < d; i++) CHECK(isfinite(mu[i]), "%s: key 'mu': element %d is %g", path, i, mu[i]);
    for (int i = 0; i < d; i++)
        for (int j = i + 1; j < d; j++) {
            double u = sigma[(size_t)i * d + j], l = sigma[(size_t)j * d + i];
            CHECK(fabs(u - l) <= 1e-9 * (fabs(u) + fabs(l)) + 1e-300,
                  "%s: key 'sigma': not symmetric ([%d, %d] = %.17g but [%d, %d] = %.17g)", path, i, j, u, j, i, l);
        }
    s->d = d, s->n = -1, s->mu = mu, s->cov = sigma;
}

void fid_stats_write_npz(const char *path, const FeatureStats *s) {
    NpzArray arr[2] = {{.key = "mu", .data = s->mu, .ndim = 1, .shape = {s->d}},
                       {.key = "sigma", .data = s->cov, .ndim = 2, .shape = {s->d, s->d}}};
    char err[1400];
    CHECK(npz_write_f64(path, arr, 2, err, sizeof err) == 0, "%s", err);
}
