/* tests/test_eval.c — the sample-quality evaluation (train/eval/frechet.h,
 * train/eval/classifier.h, train/eval/evaluate.h, jit-eval):
 *   - the Fréchet distance: 0 for a set against itself, the closed form for
 *     diagonal covariances and for a shifted set, the matrix square root
 *     against S*S = A on random SPD matrices (5, 32, 100);
 *   - on real Fashion-MNIST test images (jit-prep'd once into the build
 *     folder) with the committed classifier models/fmnist-classifier.h5 (or,
 *     when that file is absent, a tiny classifier trained here): FD of two
 *     disjoint halves is small, FD grows monotonically over three levels of
 *     blur and of noise, the conditional accuracy of real images equals the
 *     classifier's test accuracy (also as jit-eval computes and writes it);
 *   - jit-eval's pipeline on a tiny random checkpoint: on all 10,000 real
 *     images the real accuracy is the classifier's, the samples do not depend
 *     on the real data; deterministic for a seed, the JSON keys jit-sweep reads;
 *   - four training steps run, and report the accuracy classifier_predict gives;
 *   - clear errors (exit 1): a checkpoint of another model size than its
 *     configuration, a missing classifier file, a classifier for another
 *     image size, missing real data, mistakes in the classifier's config. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "io/ckpt.h"
#include "io/shards.h"
#include "train/config/config.h"
#include "train/eval/classifier.h"
#include "train/eval/evaluate.h"
#include "train/eval/frechet.h"
#include "train/model/jit_checkpoint.h"

#ifndef JIT_SOURCE_DIR
#define JIT_SOURCE_DIR "."
#endif
#ifndef JIT_BINARY_DIR
#define JIT_BINARY_DIR "."
#endif
#ifndef JIT_PREP_BIN
#define JIT_PREP_BIN "jit-prep"
#endif
#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

/* ------------------------------------------------------------ helpers */

/* Random SPD matrix A = M M^T / d + 0.1 I (double), Philox stream k. */
static void random_spd(double *A, int d, uint64_t k) {
    double *M = malloc(sizeof(double) * (size_t)d * d);
    for (int i = 0; i < d * d; i++) M[i] = rng_normal(11, RNG_STREAM_TEST + k, (uint64_t)i);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double s = 0;
            for (int l = 0; l < d; l++) s += M[i * d + l] * M[j * d + l];
            A[i * d + j] = s / d + (i == j ? 0.1 : 0.0);
        }
    free(M);
}

/* n correlated features [n, d]: x = z L with a fixed random L, z ~ N(0, 1). */
static float *random_features(long n, int d, uint64_t k, float shift) {
    float *L = malloc(sizeof(float) * (size_t)d * d), *x = malloc(sizeof(float) * (size_t)n * d);
    rng_fill_normal(L, (size_t)d * d, 5, RNG_STREAM_TEST + 900, 0, 0.0f, 1.0f / sqrtf((float)d));
    float *z = malloc(sizeof(float) * (size_t)d);
    for (long i = 0; i < n; i++) {
        rng_fill_normal(z, (size_t)d, 5, RNG_STREAM_TEST + k, (uint64_t)i * d, 0.0f, 1.0f);
        for (int j = 0; j < d; j++) {
            float s = shift;
            for (int l = 0; l < d; l++) s += z[l] * L[l * d + j];
            x[i * d + j] = s;
        }
    }
    free(L), free(z);
    return x;
}

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* The Fashion-MNIST test split as shards, made once into the build folder. */
static const char *real_dir(void) {
    static char dir[200];
    snprintf(dir, sizeof dir, "%s/eval-fixtures/fmnist-test", JIT_BINARY_DIR);
    char shard[600];
    snprintf(shard, sizeof shard, "%s/fmnist-test-00000.h5", dir);
    if (!file_exists(shard)) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "'%s' --fmnist %s --out '%s' --split test --canvas 32 > /dev/null", JIT_PREP_BIN,
                 FMNIST_DIR, dir);
        cr_assert_eq(system(cmd), 0, "jit-prep of the Fashion-MNIST test split failed (is %s installed?)", FMNIST_DIR);
    }
    return dir;
}

/* The first 2000 test images as their own shard set (quick pipeline runs), made once. */
static const char *real_subset_dir(void) {
    static char dir[200];
    snprintf(dir, sizeof dir, "%s/eval-fixtures/fmnist-test-2000", JIT_BINARY_DIR);
    char shard[600];
    snprintf(shard, sizeof shard, "%s/sub-00000.h5", dir);
    if (file_exists(shard)) return dir;
    float *img;
    int *lab, n, C, H, W, K;
    shardset_read_all(real_dir(), &img, &lab, &n, &C, &H, &W, &K);
    uint8_t *u = malloc((size_t)2000 * C * H * W);
    for (size_t i = 0; i < (size_t)2000 * C * H * W; i++) u[i] = (uint8_t)lrintf((img[i] + 1.0f) * 127.5f);
    ShardSet s;
    shardset_open(&s, real_dir());
    shards_write(dir, "sub", u, lab, 2000, C, H, W, 2000, K, (const char *const *)s.class_names);
    shardset_close(&s);
    free(u), core_free(img), core_free(lab);
    return dir;
}

/* The committed classifier, or else a tiny one trained here (and kept in the build folder). */
static const char *classifier_path(void) {
    static char path[512];
    snprintf(path, sizeof path, "%s/models/fmnist-classifier.h5", JIT_SOURCE_DIR);
    if (file_exists(path)) return path;
    snprintf(path, sizeof path, "%s/eval-fixtures/tiny-classifier.h5", JIT_BINARY_DIR);
    if (file_exists(path)) return path;
    fprintf(stderr, "test_eval: models/fmnist-classifier.h5 is absent: training a tiny classifier for the tests\n");
    ClassifierTrainConfig c;
    classifier_train_defaults(&c);
    snprintf(c.data_train, sizeof c.data_train, "%s", real_dir());
    snprintf(c.data_test, sizeof c.data_test, "%s", real_dir());
    c.model.depth = 1, c.model.hidden = 32, c.model.heads = 2, c.model.mlp_hidden = 64, c.model.window = 8;
    c.steps = 300, c.batch_size = 32, c.lr = 2e-3f, c.warmup_steps = 20;
    Classifier m;
    classifier_train(&c, &m, NULL);
    classifier_save(path, &m, c.seed, NULL);
    classifier_free(&m);
    return path;
}

typedef struct Real {
    float *img;
    int *lab;
    int n, C, H, W, K;
} Real;

static void load_real(Real *r) {
    shardset_read_all(real_dir(), &r->img, &r->lab, &r->n, &r->C, &r->H, &r->W, &r->K);
    cr_assert(r->n == 10000 && r->C == 1 && r->H == 32 && r->K == 10);
}

static void free_real(Real *r) { core_free(r->img), core_free(r->lab); }

/* Features [n, D] of images [n, 1, 32, 32] (batch EVAL_BATCH, like jit-eval). */
static float *features(Classifier *m, const float *img, int n, int *pred) {
    Graph g;
    graph_init(&g, backend_cpu(), 16u << 20);
    float *f = malloc(sizeof(float) * (size_t)n * m->cfg.hidden);
    classifier_predict(m, &g, img, n, EVAL_BATCH, f, pred);
    graph_free(&g);
    return f;
}

/* Rows of src [*, per] at positions start, start + step, ... (count of them). */
static float *take(const float *src, size_t per, int start, int step, int count) {
    float *o = malloc(sizeof(float) * per * (size_t)count);
    for (int i = 0; i < count; i++) memcpy(o + per * i, src + per * (size_t)(start + i * step), sizeof(float) * per);
    return o;
}

/* ------------------------------------------------------ Fréchet distance */

Test(frechet, self_is_zero) {
    const int d = 24;
    const long n = 600;
    float *x = random_features(n, d, 1, 0.3f);
    FeatureStats a;
    frechet_stats(&a, x, n, d);
    double tr = 0;
    for (int j = 0; j < d; j++) tr += a.cov[j * d + j];
    double fd = frechet_distance(&a, &a);
    cr_expect(fabs(fd) <= 1e-6 * 2 * tr, "FD of a set with itself = %g (2 tr S = %g)", fd, 2 * tr);
    double fd2 = frechet_distance_features(x, n, x, n, d);
    cr_expect(fabs(fd2) <= 1e-6 * 2 * tr, "FD of a set with itself (from features) = %g", fd2);
    frechet_stats_free(&a);
    free(x);
}

/* Diagonal covariances: FD = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2. */
Test(frechet, diagonal_closed_form) {
    const int d = 7;
    FeatureStats a = {.d = d, .n = 100}, b = {.d = d, .n = 100};
    a.mu = calloc(d, sizeof(double)), b.mu = calloc(d, sizeof(double));
    a.cov = calloc((size_t)d * d, sizeof(double)), b.cov = calloc((size_t)d * d, sizeof(double));
    double want = 0;
    for (int i = 0; i < d; i++) {
        a.mu[i] = 0.5 * i, b.mu[i] = -0.25 * i + 1;
        a.cov[i * d + i] = 0.5 + i, b.cov[i * d + i] = 3.0 / (i + 1);
        want += (a.mu[i] - b.mu[i]) * (a.mu[i] - b.mu[i]);
        want += pow(sqrt(a.cov[i * d + i]) - sqrt(b.cov[i * d + i]), 2);
    }
    double fd = frechet_distance(&a, &b), fd_ba = frechet_distance(&b, &a);
    cr_expect(fabs(fd - want) < 1e-10 * want, "FD %.15g, closed form %.15g", fd, want);
    cr_expect(fabs(fd_ba - want) < 1e-10 * want, "FD(b, a) %.15g, closed form %.15g", fd_ba, want);
    free(a.mu), free(b.mu), free(a.cov), free(b.cov);
}

/* A shifted copy: same covariance, so FD = |shift|^2 exactly (here d * 0.5^2). */
Test(frechet, shift_is_squared_distance) {
    const int d = 16;
    const long n = 400;
    float *x = random_features(n, d, 2, 0.0f), *y = malloc(sizeof(float) * (size_t)n * d);
    for (long i = 0; i < n * d; i++) y[i] = x[i] + 0.5f;
    double fd = frechet_distance_features(x, n, y, n, d);
    cr_expect(fabs(fd - d * 0.25) < 1e-4, "FD %.9g, expected %.9g", fd, d * 0.25);
    free(x), free(y);
}

static void check_sqrtm(int d, uint64_t k) {
    double *A = malloc(sizeof(double) * (size_t)d * d), *S = malloc(sizeof(double) * (size_t)d * d);
    random_spd(A, d, k);
    int bad = frechet_sqrtm_psd(A, d, S);
    cr_expect_eq(bad, 0, "%d negative eigenvalues in an SPD matrix", bad);
    double err = 0, amax = 0, asym = 0;
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double s = 0;
            for (int l = 0; l < d; l++) s += S[i * d + l] * S[l * d + j];
            err = fmax(err, fabs(s - A[i * d + j]));
            amax = fmax(amax, fabs(A[i * d + j]));
            asym = fmax(asym, fabs(S[i * d + j] - S[j * d + i]));
        }
    cr_expect(err / amax < 1e-10, "d = %d: max|S S - A| / max|A| = %.3g", d, err / amax);
    cr_expect(asym == 0.0, "d = %d: the square root is not symmetric (%.3g)", d, asym);
    /* the principal root is positive definite: its eigenvalues are the roots of A's */
    double *w = malloc(sizeof(double) * (size_t)d);
    frechet_eigh(S, d, w, NULL);
    cr_expect(w[0] > 0, "d = %d: smallest eigenvalue of the root %.3g", d, w[0]);
    free(w), free(A), free(S);
}

Test(frechet, sqrtm_spd_5) { check_sqrtm(5, 3); }
Test(frechet, sqrtm_spd_32) { check_sqrtm(32, 4); }
Test(frechet, sqrtm_spd_100) { check_sqrtm(100, 5); }

/* ------------------------------------------- real images and the classifier */

/* Two disjoint halves (even / odd positions) of the real test set. */
Test(eval, real_halves_small) {
    Real r;
    load_real(&r);
    Classifier m;
    classifier_load(classifier_path(), &m);
    int D = m.cfg.hidden, per = 32 * 32;
    float *f = features(&m, r.img, r.n, NULL);
    float *fa = take(f, (size_t)D, 0, 2, r.n / 2), *fb = take(f, (size_t)D, 1, 2, r.n / 2);
    FeatureStats a, b;
    frechet_stats(&a, fa, r.n / 2, D);
    frechet_stats(&b, fb, r.n / 2, D);
    double fd = frechet_distance(&a, &b), tr = 0;
    for (int j = 0; j < D; j++) tr += a.cov[j * D + j];
    /* Against a bad generator: the even half with its pixels shuffled within each image. */
    float *shuf = take(r.img, (size_t)per, 0, 2, r.n / 2);
    for (int i = 0; i < r.n / 2; i++)
        for (int p = per - 1; p > 0; p--) {
            int q = (int)(rng_uniform(1, RNG_STREAM_TEST + 77, (uint64_t)i * per + p) * (p + 1)) % (p + 1);
            float t = shuf[(size_t)i * per + p];
            shuf[(size_t)i * per + p] = shuf[(size_t)i * per + q], shuf[(size_t)i * per + q] = t;
        }
    float *fs = features(&m, shuf, r.n / 2, NULL);
    double fd_bad = frechet_distance_features(fs, r.n / 2, fb, r.n / 2, D);
    fprintf(stderr, "test_eval: %s: FD(half, half) = %.4f (tr S = %.2f), FD(shuffled pixels, half) = %.2f\n",
            classifier_path(), fd, tr, fd_bad);
    cr_expect(fd < 0.01 * tr, "FD of two halves %.4g is not small against tr S = %.4g", fd, tr);
    cr_expect(fd < 0.01 * fd_bad, "FD of two halves %.4g, of shuffled images %.4g", fd, fd_bad);
    frechet_stats_free(&a), frechet_stats_free(&b);
    free(f), free(fa), free(fb), free(shuf), free(fs);
    classifier_free(&m);
    free_real(&r);
}

/* Box blur of radius rad (separable, edge pixels repeated), images [n, 32, 32]. */
static void blur(float *img, int n, int rad) {
    float tmp[32 * 32];
    for (int i = 0; i < n; i++) {
        float *x = img + (size_t)i * 1024;
        for (int pass = 0; pass < 2; pass++) {
            for (int y = 0; y < 32; y++)
                for (int c = 0; c < 32; c++) {
                    float s = 0;
                    for (int k = -rad; k <= rad; k++) {
                        int yy = pass ? y + k : y, cc = pass ? c : c + k;
                        yy = yy < 0 ? 0 : yy > 31 ? 31 : yy, cc = cc < 0 ? 0 : cc > 31 ? 31 : cc;
                        s += x[yy * 32 + cc];
                    }
                    tmp[y * 32 + c] = s / (2 * rad + 1);
                }
            memcpy(x, tmp, sizeof tmp);
        }
    }
}

static void noise(float *img, int n, float sigma, uint64_t k) {
    for (size_t i = 0; i < (size_t)n * 1024; i++) {
        float v = img[i] + sigma * rng_normal(2, RNG_STREAM_TEST + k, i);
        img[i] = v < -1 ? -1 : v > 1 ? 1 : v;
    }
}

/* FD(corrupted images of the even half, odd half) for levels 0 (clean), 1, 2, 3 of box blur
 * (radius 1, 2, 3) and of Gaussian noise (sigma 0.15, 0.4, 0.8): each level is further away. */
Test(eval, fd_grows_with_blur_and_noise) {
    Real r;
    load_real(&r);
    Classifier m;
    classifier_load(classifier_path(), &m);
    int D = m.cfg.hidden, half = r.n / 2, nq = 1000;
    float *ref_img = take(r.img, 1024, 1, 2, half);
    float *fref = features(&m, ref_img, half, NULL);
    FeatureStats ref;
    frechet_stats(&ref, fref, half, D);
    const int radius[4] = {0, 1, 2, 3};
    const float sigma[4] = {0.0f, 0.15f, 0.4f, 0.8f};
    for (int use_blur = 1; use_blur >= 0; use_blur--) {
        double fd[4];
        for (int lv = 0; lv < 4; lv++) {
            float *q = take(r.img, 1024, 0, 2, nq);
            if (use_blur && radius[lv]) blur(q, nq, radius[lv]);
            if (!use_blur && sigma[lv] > 0) noise(q, nq, sigma[lv], 300 + (uint64_t)lv);
            eval_quantize(q, (size_t)nq * 1024);
            float *fq = features(&m, q, nq, NULL);
            FeatureStats st;
            frechet_stats(&st, fq, nq, D);
            fd[lv] = frechet_distance(&st, &ref);
            frechet_stats_free(&st);
            free(q), free(fq);
        }
        fprintf(stderr, "test_eval: FD with %s levels 0..3: %.3f %.3f %.3f %.3f\n", use_blur ? "blur" : "noise",
                fd[0], fd[1], fd[2], fd[3]);
        for (int lv = 1; lv < 4; lv++)
            cr_expect(fd[lv] > fd[lv - 1], "%s level %d: FD %.4g is not above level %d's %.4g",
                      use_blur ? "blur" : "noise", lv, fd[lv], lv - 1, fd[lv - 1]);
    }
    frechet_stats_free(&ref);
    free(ref_img), free(fref);
    classifier_free(&m);
    free_real(&r);
}

/* The conditional accuracy of real test images is the classifier's test accuracy. */
Test(eval, real_accuracy_is_test_accuracy) {
    Real r;
    load_real(&r);
    Classifier m;
    classifier_load(classifier_path(), &m);
    int *pred = malloc(sizeof(int) * (size_t)r.n);
    float *f = features(&m, r.img, r.n, pred);
    double pc[10];
    double acc = classifier_accuracy(pred, r.lab, r.n, 10, pc);
    fprintf(stderr, "test_eval: real conditional accuracy %.4f, classifier test accuracy (file) %.4f\n", acc,
            m.test_accuracy);
    cr_expect(fabs(acc - m.test_accuracy) < 0.5 / r.n, "accuracy %.6f, the file says %.6f", acc, m.test_accuracy);
    /* overall = mean of per-class when classes are balanced (1000 each) */
    double mean = 0;
    for (int k = 0; k < 10; k++) mean += pc[k] / 10;
    cr_expect(fabs(mean - acc) < 1e-12);
    free(pred), free(f);
    classifier_free(&m);
    free_real(&r);
}

/* ------------------------------------------------ jit-eval's pipeline */

static char work[256];

static void make_work(void) {
    snprintf(work, sizeof work, "/tmp/jit-eval-test-XXXXXX");
    cr_assert(mkdtemp(work) != NULL);
}

static void rm_work(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", work);
}

/* A tiny random JiT checkpoint (32x32, 1 channel, 10 classes) in dir; the
 * saved configuration says hidden `cfg_hidden`, the weights have `hidden`. */
static void make_checkpoint(const char *dir, int hidden, int cfg_hidden) {
    char yaml[1024];
    const char *fmt = "run: {name: tiny, out_dir: %s, seed: 3}\n"
                      "model: {name: jit-tiny, depth: 1, hidden: %d, heads: 2, bottleneck: 8, in_context_len: 4,\n"
                      "        in_context_start: 0}\n"
                      "optim: {ema: [0.99]}\n"
                      "sampling: {steps: 2, cfg: 1.5, per_class: 2}\n";
    Config c, saved;
    snprintf(yaml, sizeof yaml, fmt, dir, hidden);
    config_load_string(&c, "tiny", yaml, 0, NULL);
    snprintf(yaml, sizeof yaml, fmt, dir, cfg_hidden);
    config_load_string(&saved, "tiny", yaml, 0, NULL);
    JitModel jm;
    jit_build(&jm, &c.model, 9);
    /* adaLN-Zero and the zero final layer would make every sample the noise: perturb all weights */
    for (size_t i = 0; i < jm.params.padded; i++) jm.params.data[i] += 0.05f * rng_normal(4, RNG_STREAM_TEST + 50, i);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    config_write(&saved, f);
    fclose(f);
    float *ema[1] = {jm.params.data};
    const float decay[1] = {0.99f};
    CkptData d = {.params = &jm.params, .ema = ema, .ema_decay = decay, .n_ema = 1, .config_yaml = text};
    CkptState st = {.step = 5, .seed = 3, .world_size = 1};
    ckpt_save(NULL, dir, &d, &st, 1, 0);
    free(text);
    jit_free(&jm);
}

static EvalOptions tiny_options(const char *ckdir, const char *out) {
    EvalOptions o;
    eval_options_defaults(&o);
    o.checkpoint = ckdir, o.classifier = classifier_path(), o.real = real_dir();
    o.per_class = 3, o.steps = 2, o.batch = 16, o.out = out, o.quiet = 1;
    return o;
}

/* On the whole test set: the real images' conditional accuracy is the
 * classifier's test accuracy, and the samples do not depend on the real data. */
Test(eval, real_pipeline_full_test_set, .init = make_work, .fini = rm_work) {
    char ck[320];
    snprintf(ck, sizeof ck, "%s/ckpt", work);
    make_checkpoint(ck, 32, 32);
    EvalOptions o = tiny_options(ck, NULL);
    EvalResult full = eval_run(&o);
    Classifier m;
    classifier_load(classifier_path(), &m);
    cr_expect(fabs(full.real_conditional_accuracy - m.test_accuracy) < 0.5 / 10000,
              "jit-eval's real conditional accuracy %.6f, classifier test accuracy %.6f",
              full.real_conditional_accuracy, m.test_accuracy);
    classifier_free(&m);
    cr_expect(full.n_samples == 30 && full.n_real == 10000 && full.step == 5 && full.steps == 2 && full.ema == 0);
    cr_expect(full.cfg == 1.5f, "cfg from the checkpoint's config: %g", full.cfg);
    cr_expect(isfinite(full.frechet_distance) && full.frechet_distance > full.real_frechet_distance);
    o.real = real_subset_dir();
    EvalResult a = eval_run(&o);
    cr_expect(a.conditional_accuracy == full.conditional_accuracy, "the samples do not depend on the real data");
}

/* Deterministic for a seed, another seed another result, and the JSON (on 2000
 * real images to keep it quick: the case the sanitizer build runs). */
Test(eval, pipeline_deterministic_and_json, .init = make_work, .fini = rm_work) {
    char ck[320], out1[320], out2[320];
    snprintf(ck, sizeof ck, "%s/ckpt", work);
    snprintf(out1, sizeof out1, "%s/eval1.json", work);
    snprintf(out2, sizeof out2, "%s/eval2.json", work);
    make_checkpoint(ck, 32, 32);
    EvalOptions o = tiny_options(ck, NULL);
    o.real = real_subset_dir(), o.out = out1;
    EvalResult a = eval_run(&o);
    cr_expect(a.n_samples == 30 && a.n_real == 2000 && a.step == 5 && a.steps == 2 && a.ema == 0);
    cr_expect(isfinite(a.frechet_distance) && a.frechet_distance > a.real_frechet_distance);
    o.out = out2;
    EvalResult b = eval_run(&o);
    o.out = NULL, o.seed = 12345;
    EvalResult c = eval_run(&o);
    cr_expect(a.frechet_distance == b.frechet_distance && a.conditional_accuracy == b.conditional_accuracy,
              "same seed: FD %.9g vs %.9g, accuracy %.4f vs %.4f", a.frechet_distance, b.frechet_distance,
              a.conditional_accuracy, b.conditional_accuracy);
    cr_expect(c.frechet_distance != a.frechet_distance, "another seed gave the same FD %.9g", c.frechet_distance);
    /* the JSON: identical files, and the keys jit-sweep's summary reads */
    FILE *f1 = fopen(out1, "r"), *f2 = fopen(out2, "r");
    cr_assert(f1 && f2);
    char j1[8192] = {0}, j2[8192] = {0};
    size_t n1 = fread(j1, 1, sizeof j1 - 1, f1), n2 = fread(j2, 1, sizeof j2 - 1, f2);
    fclose(f1), fclose(f2);
    /* all but the timings agree */
    char *t1 = strstr(j1, "\"seconds\""), *t2 = strstr(j2, "\"seconds\"");
    cr_assert(t1 && t2 && n1 > 0 && n2 > 0);
    cr_expect(t1 - j1 == t2 - j2 && memcmp(j1, j2, (size_t)(t1 - j1)) == 0, "eval.json differs between runs");
    double fd, acc;
    const char *p = strstr(j1, "\"frechet_distance\": "), *q = strstr(j1, "\"conditional_accuracy\": ");
    cr_assert(p && q, "%s", j1);
    cr_expect(sscanf(p + 20, "%lf", &fd) == 1 && fabs(fd - a.frechet_distance) <= 1e-8 * fd);
    cr_expect(sscanf(q + 24, "%lf", &acc) == 1 && fabs(acc - a.conditional_accuracy) < 1e-9);
    const char *keys[] = {"\"real_frechet_distance\"", "\"real_conditional_accuracy\"", "\"per_class_accuracy\"",
                          "\"real_per_class_accuracy\"", "\"settings\"", "\"class_names\"", "\"Ankle boot\""};
    for (int i = 0; i < 7; i++) cr_expect(strstr(j1, keys[i]) != NULL, "eval.json lacks %s", keys[i]);
}

/* ------------------------------------------------------------- errors */

Test(errors, checkpoint_of_another_model_size, .init = make_work, .fini = rm_work, .exit_code = 1) {
    char ck[320];
    snprintf(ck, sizeof ck, "%s/ckpt", work);
    make_checkpoint(ck, 64, 32); /* weights of width 64, configuration says 32 */
    JitModel m;
    Config c;
    uint64_t step;
    int ema = -2;
    char path[1100];
    jit_load_checkpoint(ck, &ema, &m, &c, &step, path, sizeof path);
}

Test(errors, missing_classifier_file, .exit_code = 1) {
    Classifier m;
    classifier_load("/nonexistent/fmnist-classifier.h5", &m);
}

Test(errors, classifier_file_not_a_classifier, .init = make_work, .fini = rm_work, .exit_code = 1) {
    char p[320];
    snprintf(p, sizeof p, "%s/x.h5", work);
    FILE *f = fopen(p, "w");
    fputs("not hdf5", f);
    fclose(f);
    Classifier m;
    classifier_load(p, &m);
}

Test(errors, classifier_for_another_image_size, .init = make_work, .fini = rm_work, .exit_code = 1) {
    ClassifierConfig c = {.img_size = 16, .channels = 1, .patch = 4, .depth = 1, .hidden = 16, .heads = 2,
                          .mlp_hidden = 16, .num_classes = 10};
    Classifier m;
    classifier_build(&m, &c, 1);
    char p[320];
    snprintf(p, sizeof p, "%s/c16.h5", work);
    classifier_save(p, &m, 1, NULL);
    classifier_free(&m);
    Classifier k;
    classifier_load(p, &k);
    cr_assert(k.cfg.img_size == 16 && k.cfg.window == 4);
    eval_check_classifier(&k, p, 1, 32, 10, "the checkpoint");
}

Test(errors, missing_real_data, .init = make_work, .fini = rm_work, .exit_code = 1) {
    char ck[320];
    snprintf(ck, sizeof ck, "%s/ckpt", work);
    make_checkpoint(ck, 32, 32);
    EvalOptions o = tiny_options(ck, NULL);
    o.real = "/nonexistent/fmnist-test";
    eval_run(&o);
}

/* ------------------------------------------------ classifier and its config */

Test(classifier, save_load_same_predictions, .init = make_work, .fini = rm_work) {
    ClassifierConfig c = {.img_size = 32, .channels = 1, .patch = 4, .window = 8, .depth = 2, .hidden = 32,
                          .heads = 2, .mlp_hidden = 48, .rope = 1, .num_classes = 10};
    Classifier a, b;
    classifier_build(&a, &c, 7);
    a.test_accuracy = 0.25;
    char p[320];
    snprintf(p, sizeof p, "%s/c.h5", work);
    classifier_save(p, &a, 7, "run: {seed: 7}\n");
    classifier_load(p, &b);
    cr_expect(b.test_accuracy == 0.25 && b.cfg.depth == 2 && b.cfg.rope == 1 && b.cfg.window == 8);
    cr_assert_eq(a.params.count, b.params.count);
    float img[4 * 1024];
    rng_fill_uniform(img, 4 * 1024, 3, RNG_STREAM_TEST + 60, 0, -1, 1);
    int pa[4], pb[4];
    float *fa = features(&a, img, 4, pa), *fb = features(&b, img, 4, pb);
    cr_expect(memcmp(fa, fb, sizeof(float) * 4 * 32) == 0 && memcmp(pa, pb, sizeof pa) == 0);
    free(fa), free(fb);
    classifier_free(&a), classifier_free(&b);
}

/* A one-block classifier trained (and tested) on the shards in dir. */
static ClassifierTrainResult train_small(const char *dir, int steps, int batch, int warmup, Classifier *m,
                                         ClassifierTrainConfig *c) {
    classifier_train_defaults(c);
    snprintf(c->data_train, sizeof c->data_train, "%s", dir);
    snprintf(c->data_test, sizeof c->data_test, "%s", dir);
    c->model.depth = 1, c->model.hidden = 32, c->model.heads = 2, c->model.mlp_hidden = 64;
    c->steps = steps, c->batch_size = batch, c->lr = 2e-3f, c->warmup_steps = warmup;
    return classifier_train(c, m, NULL);
}

/* A few hundred steps on real images already classify far above chance. */
Test(classifier, learns) {
    ClassifierTrainConfig c;
    Classifier m;
    ClassifierTrainResult r = train_small(real_dir(), 200, 32, 20, &m, &c);
    cr_expect(r.test_accuracy > 0.6, "accuracy after 200 steps %.3f", r.test_accuracy);
    cr_expect(isfinite(r.final_loss) && r.final_loss < 1.5, "loss %.3f", r.final_loss);
    classifier_free(&m);
}

/* Four steps on the 2000-image subset: the training code runs through (the
 * sanitizer build's case, with `learns` left to the normal build), its loss is
 * finite, and its test accuracy is the one classifier_predict gives the trained
 * model on the same images. */
Test(classifier, four_steps_and_its_accuracy) {
    ClassifierTrainConfig c;
    Classifier m;
    ClassifierTrainResult r = train_small(real_subset_dir(), 4, 16, 2, &m, &c);
    cr_expect(isfinite(r.final_loss) && r.final_loss > 0, "loss %.3f", r.final_loss);
    float *img;
    int *lab, n, C, H, W, K;
    shardset_read_all(real_subset_dir(), &img, &lab, &n, &C, &H, &W, &K);
    cr_assert(n == 2000 && r.n_test == n);
    int *pred = malloc(sizeof(int) * (size_t)n);
    Graph g;
    graph_init(&g, backend_cpu(), 16u << 20);
    classifier_predict(&m, &g, img, n, c.eval_batch, NULL, pred);
    graph_free(&g);
    double acc = classifier_accuracy(pred, lab, n, 10, NULL);
    cr_expect(acc == r.test_accuracy && m.test_accuracy == r.test_accuracy, "accuracy %.4f, training said %.4f", acc,
              r.test_accuracy);
    free(pred), core_free(img), core_free(lab);
    classifier_free(&m);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
}

Test(classifier, config_errors_name_the_place, .init = make_work, .fini = rm_work) {
    char p[320], err[1024];
    snprintf(p, sizeof p, "%s/c.yaml", work);
    ClassifierTrainConfig c;
    write_file(p, "model:\n  hidden: 64\n  hiden: 3\n");
    cr_expect(classifier_train_config_load(&c, p, 0, NULL, err, sizeof err) == -1);
    cr_expect(strstr(err, ":3:3:") && strstr(err, "model.hiden"), "%s", err);
    write_file(p, "train:\n  steps: many\n");
    cr_expect(classifier_train_config_load(&c, p, 0, NULL, err, sizeof err) == -1);
    cr_expect(strstr(err, ":2:10:") && strstr(err, "train.steps"), "%s", err);
    write_file(p, "model: {patch: 5}\n");
    cr_expect(classifier_train_config_load(&c, p, 0, NULL, err, sizeof err) == -1);
    cr_expect(strstr(err, "multiple of model.patch"), "%s", err);
    write_file(p, "model: {hidden: 48}\n");
    char *over[] = {"train.steps=7", "data.hflip=true"};
    cr_assert(classifier_train_config_load(&c, p, 2, over, err, sizeof err) == 0, "%s", err);
    cr_expect(c.steps == 7 && c.hflip == 1 && c.model.hidden == 48);
    char *bad[] = {"train.stepz=7"};
    cr_expect(classifier_train_config_load(&c, p, 1, bad, err, sizeof err) == -1);
    cr_expect(strstr(err, "override 'train.stepz=7'"), "%s", err);
    /* the shipped configuration loads */
    char shipped[512];
    snprintf(shipped, sizeof shipped, "%s/configs/eval/fmnist-classifier.yaml", JIT_SOURCE_DIR);
    cr_expect(classifier_train_config_load(&c, shipped, 0, NULL, err, sizeof err) == 0, "%s", err);
}
