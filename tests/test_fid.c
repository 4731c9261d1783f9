/* tests/test_fid.c — the pieces of FID and IS as torch-fidelity computes them
 * (train/eval/fid.h, io/npz.h); the whole against a numpy reference is
 * tests/fid_test.sh:
 *   - the official 8-bit rounding (numpy's round-half-to-even: -0.4 -> 76,
 *     where round-half-up gives 77), clipping and NaN;
 *   - numpy's RandomState(2020).permutation (values printed by numpy 1.24);
 *   - the streamed statistics equal the two-pass ones (frechet_stats) for any
 *     cut into blocks, to 1e-12; the same cut gives the same bits;
 *   - IS: uniform logits score 1; one-hot logits of K equally frequent
 *     classes score K;
 *   - .npz: a round trip, numpy-style headers (float32 and Fortran order
 *     written by hand), and the errors naming the file and key. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "io/npz.h"
#include "train/eval/fid.h"
#include "train/eval/frechet.h"

Test(fid, u8_rounding_is_numpys) {
    const float x[] = {-0.4f, 0.4f, 0.0f, 1.0f, -1.0f, 1.5f, -3.0f, NAN, -0.99607843f};
    const uint8_t want[] = {76, 178, 128, 255, 0, 255, 0, 0, 0};
    uint8_t got[9];
    fid_to_u8(x, 9, got);
    for (int i = 0; i < 9; i++) cr_expect_eq(got[i], want[i], "x = %g: %d, numpy gives %d", x[i], got[i], want[i]);
}

Test(fid, permutation_is_numpys) {
    const long want10[] = {2, 4, 9, 1, 5, 7, 6, 3, 8, 0};
    long p[10];
    fid_np_permutation(2020, 10, p);
    for (int i = 0; i < 10; i++) cr_expect_eq(p[i], want10[i], "position %d: %ld, numpy %ld", i, p[i], want10[i]);
    long *q = core_malloc(sizeof(long) * 50000);
    fid_np_permutation(2020, 50000, q);
    const long want[] = {24397, 39273, 6546, 13504, 49765};
    for (int i = 0; i < 5; i++) cr_expect_eq(q[i], want[i], "50000: position %d: %ld, numpy %ld", i, q[i], want[i]);
    core_free(q);
}

static float *random_feats(long n, int d, uint64_t seed) {
    float *f = core_malloc(sizeof(float) * (size_t)n * d);
    rng_fill_normal(f, (size_t)n * d, seed, RNG_STREAM_TEST, 0, 0.0f, 1.0f);
    for (size_t i = 0; i < (size_t)n * d; i++) f[i] = fmaxf(f[i] * (1.0f + (float)(i % d) / d) + 5.0f, 0.0f);
    return f;
}

static void accum_blocks(FidAccum *a, const float *f, long n, int d, int block) {
    fid_accum_init(a, d, 0, n, 10, 1, 2020);
    for (long i = 0; i < n; i += block) fid_accum_add(a, (int)(n - i < block ? n - i : block), f + i * d, NULL);
}

Test(fid, streamed_statistics_equal_two_pass) {
    long n = 301;
    int d = 24;
    float *f = random_feats(n, d, 7);
    FeatureStats ref, s1, s2, s3;
    frechet_stats(&ref, f, n, d);
    FidAccum a;
    int blocks[3] = {1, 64, 301};
    FeatureStats *out[3] = {&s1, &s2, &s3};
    for (int b = 0; b < 3; b++) {
        accum_blocks(&a, f, n, d, blocks[b]);
        fid_accum_stats(&a, out[b]);
        fid_accum_free(&a);
        for (int j = 0; j < d; j++) cr_expect(fabs(out[b]->mu[j] - ref.mu[j]) < 1e-12 * fabs(ref.mu[j]), "mu[%d]", j);
        for (int j = 0; j < d * d; j++)
            cr_expect(fabs(out[b]->cov[j] - ref.cov[j]) < 1e-12 * (fabs(ref.cov[j]) + 1), "block %d: cov[%d] %.17g vs %.17g",
                      blocks[b], j, out[b]->cov[j], ref.cov[j]);
    }
    /* the same cut, the same bits */
    FeatureStats again;
    accum_blocks(&a, f, n, d, 64);
    fid_accum_stats(&a, &again);
    fid_accum_free(&a);
    cr_expect(!memcmp(again.cov, s2.cov, sizeof(double) * d * d) && !memcmp(again.mu, s2.mu, sizeof(double) * d));
    cr_expect(fabs(frechet_distance(&s1, &ref)) < 1e-10, "FID of the same statistics: %g", frechet_distance(&s1, &ref));
    frechet_stats_free(&ref), frechet_stats_free(&s1), frechet_stats_free(&s2), frechet_stats_free(&s3),
        frechet_stats_free(&again);
    core_free(f);
}

Test(fid, inception_score_limits) {
    long n = 200;
    int L = 5;
    float *pool = random_feats(n, 2, 3), *lg = core_calloc(sizeof(float) * (size_t)n * L);
    FidAccum a;
    double m, s;
    fid_accum_init(&a, 2, L, n, 10, 1, 2020);
    fid_accum_add(&a, (int)n, pool, lg); /* uniform p: KL 0, score 1 */
    fid_accum_is(&a, &m, &s);
    cr_expect(fabs(m - 1) < 1e-15 && fabs(s) < 1e-15, "uniform logits: IS %.17g ± %g", m, s);
    fid_accum_free(&a);
    /* nearly one-hot logits, class i % 5: every split holds each class 4 times -> IS = 5 (to the softmax's leak) */
    for (long i = 0; i < n; i++) lg[i * L + i % L] = 60.0f;
    fid_accum_init(&a, 2, L, n, 10, 0, 2020); /* no shuffle: splits of 20 consecutive images */
    fid_accum_add(&a, (int)n, pool, lg);
    fid_accum_is(&a, &m, &s);
    cr_expect(fabs(m - 5) < 1e-9 && s < 1e-9, "one-hot logits of 5 balanced classes: IS %.17g ± %g", m, s);
    fid_accum_free(&a);
    core_free(pool), core_free(lg);
}

static char dir[64];
static void mk(void) {
    snprintf(dir, sizeof dir, "/tmp/test_fid_XXXXXX");
    cr_assert(mkdtemp(dir) != NULL);
}
static void rm(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(npz, round_trip, .init = mk, .fini = rm) {
    double mu[3] = {1, -2.5, 1e-300}, sig[6] = {1, 2, 3, 4, 5, 6};
    NpzArray arr[2] = {{.key = "mu", .data = mu, .ndim = 1, .shape = {3}},
                       {.key = "sigma", .data = sig, .ndim = 2, .shape = {2, 3}}};
    char path[128], err[1400];
    snprintf(path, sizeof path, "%s/s.npz", dir);
    cr_assert_eq(npz_write_f64(path, arr, 2, err, sizeof err), 0, "%s", err);
    double *d;
    int nd;
    long sh[NPZ_MAX_DIMS];
    cr_assert_eq(npz_read_f64(path, "sigma", &d, &nd, sh, err, sizeof err), 0, "%s", err);
    cr_expect(nd == 2 && sh[0] == 2 && sh[1] == 3 && !memcmp(d, sig, sizeof sig));
    core_free(d);
    cr_assert_eq(npz_read_f64(path, "mu", &d, &nd, sh, err, sizeof err), 0, "%s", err);
    cr_expect(nd == 1 && sh[0] == 3 && !memcmp(d, mu, sizeof mu));
    core_free(d);
    cr_expect_eq(npz_read_f64(path, "sigmaa", &d, &nd, sh, err, sizeof err), -1);
    cr_expect(strstr(err, path) && strstr(err, "no key 'sigmaa'") && strstr(err, "'sigma.npy'"), "%s", err);
    /* cut short: the central directory is gone */
    cr_assert_eq(truncate(path, 100), 0);
    cr_expect_eq(npz_read_f64(path, "mu", &d, &nd, sh, err, sizeof err), -1);
    cr_expect(strstr(err, path) != NULL, "%s", err);
}

/* A one-member zip (stored) around a hand-written .npy. */
static void write_npy_zip(const char *path, const char *member, const char *dict, const void *data, size_t n) {
    char hdr[256];
    int hl = snprintf(hdr, sizeof hdr, "%s", dict);
    while ((10 + hl + 1) % 64) hdr[hl++] = ' ';
    hdr[hl++] = '\n';
    size_t msz = 10 + (size_t)hl + n;
    unsigned char *m = core_malloc(msz);
    memcpy(m, "\x93NUMPY\x01\x00", 8);
    m[8] = (unsigned char)hl, m[9] = 0;
    memcpy(m + 10, hdr, (size_t)hl), memcpy(m + 10 + hl, data, n);
    FILE *f = fopen(path, "wb");
    unsigned nl = (unsigned)strlen(member);
    unsigned long crc = 0;
    { /* CRC-32 (reflected 0xEDB88320) */
        crc = 0xffffffffu;
        for (size_t i = 0; i < msz; i++) {
            crc ^= m[i];
            for (int k = 0; k < 8; k++) crc = crc & 1 ? (crc >> 1) ^ 0xedb88320u : crc >> 1;
        }
        crc ^= 0xffffffffu;
    }
    unsigned char lh[30] = {0x50, 0x4b, 3, 4, 20}, cd[46] = {0x50, 0x4b, 1, 2, 20, 0, 20}, e[22] = {0x50, 0x4b, 5, 6};
#define W32(p, v) ((p)[0] = (unsigned char)(v), (p)[1] = (unsigned char)((v) >> 8), (p)[2] = (unsigned char)((v) >> 16), (p)[3] = (unsigned char)((v) >> 24))
    W32(lh + 14, crc), W32(lh + 18, msz), W32(lh + 22, msz), lh[26] = (unsigned char)nl;
    W32(cd + 16, crc), W32(cd + 20, msz), W32(cd + 24, msz), cd[28] = (unsigned char)nl;
    e[8] = e[10] = 1, W32(e + 12, 46 + nl), W32(e + 16, 30 + nl + msz);
    fwrite(lh, 1, 30, f), fwrite(member, 1, nl, f), fwrite(m, 1, msz, f);
    fwrite(cd, 1, 46, f), fwrite(member, 1, nl, f), fwrite(e, 1, 22, f);
    fclose(f);
    core_free(m);
}

Test(npz, numpy_headers_and_errors, .init = mk, .fini = rm) {
    char path[128], err[1400];
    snprintf(path, sizeof path, "%s/h.npz", dir);
    double *d;
    int nd;
    long sh[NPZ_MAX_DIMS];
    float f4[6] = {1, 2, 3, 4, 5, 6}; /* Fortran order [2, 3]: columns (1,2) (3,4) (5,6) */
    write_npy_zip(path, "sigma.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f4, sizeof f4);
    cr_assert_eq(npz_read_f64(path, "sigma", &d, &nd, sh, err, sizeof err), 0, "%s", err);
    const double want[6] = {1, 3, 5, 2, 4, 6};
    for (int i = 0; i < 6; i++) cr_expect_eq(d[i], want[i], "[%d] %g", i, d[i]);
    core_free(d);
    int i8[2] = {1, 2};
    write_npy_zip(path, "mu.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", i8, 8);
    cr_expect_eq(npz_read_f64(path, "mu", &d, &nd, sh, err, sizeof err), -1);
    cr_expect(strstr(err, path) && strstr(err, "key 'mu'") && strstr(err, "'<i8'"), "%s", err);
    write_npy_zip(path, "mu.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", i8, 8);
    cr_expect_eq(npz_read_f64(path, "mu", &d, &nd, sh, err, sizeof err), -1);
    cr_expect(strstr(err, "key 'mu'") && strstr(err, "truncated"), "%s", err);
}

Test(npz, stats_checks, .init = mk, .fini = rm, .exit_code = 1) {
    char path[128];
    snprintf(path, sizeof path, "%s/bad.npz", dir);
    double mu[2] = {0, 0}, sig[4] = {1, 0.5, 0.4, 1}; /* not symmetric */
    NpzArray arr[2] = {{.key = "mu", .data = mu, .ndim = 1, .shape = {2}},
                       {.key = "sigma", .data = sig, .ndim = 2, .shape = {2, 2}}};
    char err[1400];
    cr_assert_eq(npz_write_f64(path, arr, 2, err, sizeof err), 0);
    FeatureStats s;
    fid_stats_read_npz(path, &s); /* stops: "...: key 'sigma': not symmetric" */
}
