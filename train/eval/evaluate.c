/* train/eval/evaluate.c — jit-eval's pipeline (see evaluate.h). */
#include "train/eval/evaluate.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/profile.h"
#include "io/ckpt.h"
#include "io/fsutil.h"
#include "io/json.h"
#include "io/png.h"
#include "io/samples.h"
#include "io/shards.h"
#include "train/eval/fid.h"
#include "train/eval/frechet.h"
#include "train/model/jit_checkpoint.h"
#include "train/model/sampler.h"
#include "train/trainer_device.h"

void eval_options_defaults(EvalOptions *o) {
    memset(o, 0, sizeof *o);
    o->per_class = 100;
    o->steps = -1;
    o->cfg = o->cfg_lo = o->cfg_hi = -1.0f;
    o->ema = -2;
    o->seed = -1;
    o->batch = 64;
    o->device = "cpu";
    o->precision = PRECISION_AUTO;
}

void eval_check_classifier(const Classifier *c, const char *cls_path, int channels, int img_size, int num_classes,
                           const char *what) {
    const ClassifierConfig *k = &c->cfg;
    CHECK(k->channels == channels && k->img_size == img_size,
          "the classifier %s was trained on %dx%dx%d images (channels x size x size) but %s has %dx%dx%d: train a "
          "classifier for this image size (jit-classify train)",
          cls_path, k->channels, k->img_size, k->img_size, what, channels, img_size, img_size);
    CHECK(num_classes <= k->num_classes, "the classifier %s knows %d classes but %s has %d", cls_path, k->num_classes,
          what, num_classes);
}

void eval_quantize(float *x, size_t n) {
    /* the official evaluation's 8-bit rounding (fid_to_u8), back to [-1, 1] as the shards' images */
    uint8_t q[256];
    for (size_t i0 = 0; i0 < n; i0 += sizeof q) {
        size_t m = n - i0 < sizeof q ? n - i0 : sizeof q;
        fid_to_u8(x + i0, m, q);
        for (size_t i = 0; i < m; i++) x[i0 + i] = (float)q[i] / 127.5f - 1.0f;
    }
}

/* Rows idx[0..n) of feat [*, d] into out [n, d]. */
static void ev_gather(const float *feat, int d, const int *idx, int n, float *out) {
    for (int i = 0; i < n; i++) memcpy(out + (size_t)i * d, feat + (size_t)idx[i] * d, sizeof(float) * (size_t)d);
}

void eval_write_json(const char *path, const EvalResult *r, const EvalOptions *o, const char *const *class_names) {
    IoOut out;
    char err[2400];
    FILE *f = io_out_fopen(&out, path, err, sizeof err); /* renamed when complete */
    CHECK(f != NULL, "%s", err);
    fputs("{\n  \"frechet_distance\": ", f);
    json_write_number(f, r->frechet_distance);
    fputs(",\n  \"conditional_accuracy\": ", f);
    json_write_number(f, r->conditional_accuracy);
    fputs(",\n  \"per_class_accuracy\": ", f);
    json_write_numbers(f, r->per_class, r->num_classes);
    fputs(",\n  \"real_frechet_distance\": ", f);
    json_write_number(f, r->real_frechet_distance);
    fputs(",\n  \"real_frechet_distance_matched\": ", f);
    json_write_number(f, r->real_frechet_distance_matched);
    fputs(",\n  \"real_conditional_accuracy\": ", f);
    json_write_number(f, r->real_conditional_accuracy);
    fputs(",\n  \"real_per_class_accuracy\": ", f);
    json_write_numbers(f, r->real_per_class, r->num_classes);
    fputs(",\n  \"classifier_test_accuracy\": ", f);
    json_write_number(f, r->classifier_test_accuracy);
    fputs(",\n  \"class_names\": [", f);
    for (int k = 0; k < r->num_classes; k++) {
        if (k) fputs(", ", f);
        json_write_string(f, class_names ? class_names[k] : "");
    }
    fputs("],\n  \"checkpoint\": ", f);
    json_write_string(f, r->checkpoint);
    fprintf(f, ",\n  \"step\": %llu", (unsigned long long)r->step);
    fputs(",\n  \"classifier\": ", f);
    json_write_string(f, o->classifier);
    fputs(",\n  \"real\": ", f);
    json_write_string(f, o->real);
    fprintf(f, ",\n  \"n_samples\": %d,\n  \"n_real\": %d,\n  \"feature_dim\": %d", r->n_samples, r->n_real,
            r->feature_dim);
    fprintf(f, ",\n  \"settings\": {\"per_class\": %d, \"steps\": %d, \"cfg\": ", r->per_class_n, r->steps);
    json_write_number(f, r->cfg);
    fputs(", \"interval\": [", f);
    json_write_number(f, r->cfg_lo);
    fputs(", ", f);
    json_write_number(f, r->cfg_hi);
    fprintf(f, "], \"ema\": %d, \"seed\": %llu}", r->ema, r->seed);
    fputs(",\n  \"seconds\": {\"sampling\": ", f);
    json_write_number(f, r->sample_seconds);
    fputs(", \"total\": ", f);
    json_write_number(f, r->total_seconds);
    fputs("}\n}\n", f);
    CHECK(io_out_fclose_commit(&out, f, err, sizeof err) == 0, "%s (disk full?)", err);
}

EvalResult eval_run(const EvalOptions *o) {
    double t_start = core_now_s();
    EvalResult r;
    memset(&r, 0, sizeof r);
    CHECK(o->per_class >= 2, "--per-class must be at least 2 (a covariance needs 2 samples), got %d", o->per_class);
    CHECK(o->batch >= 1, "--batch must be positive");
    CHECK(o->real != NULL, "no real images given (--real DIR: jit-prep --split test shards)");
    const Backend *be = backend_open(o->device ? o->device : "cpu", trainer_backend_precision(o->precision), 0,
                                     "jit-eval --device");

    /* Cheap checks first: the checkpoint's path, the classifier and the real
     * data, before any sampling. */
    CHECK(o->checkpoint != NULL, "no checkpoint given (--checkpoint FILE|DIR)");
    ckpt_resolve(o->checkpoint, r.checkpoint, sizeof r.checkpoint);
    Classifier cls;
    classifier_load(o->classifier, &cls);
    const ClassifierConfig *kc = &cls.cfg;
    ShardSet rs;
    shardset_open(&rs, o->real);
    eval_check_classifier(&cls, o->classifier, rs.channels, rs.height, rs.num_classes, o->real);
    CHECK(rs.height == rs.width, "%s: images are %dx%d, the classifier needs square images", o->real, rs.height,
          rs.width);

    JitModel m;
    Config cfg;
    int ema = o->ema;
    CHECK(o->checkpoint != NULL, "no checkpoint given (--checkpoint FILE|DIR)");
    jit_load_checkpoint(o->checkpoint, &ema, &m, &cfg, &r.step, r.checkpoint, sizeof r.checkpoint);
    const JitConfig *mc = &cfg.model;
    eval_check_classifier(&cls, o->classifier, mc->in_channels, mc->img_size, mc->num_classes, r.checkpoint);
    CHECK(mc->num_classes == rs.num_classes, "the checkpoint's model has %d classes but the real data %s has %d",
          mc->num_classes, o->real, rs.num_classes);
    int K = mc->num_classes, D = kc->hidden;
    CHECK(K <= 64, "at most 64 classes are reported, the model has %d", K);
    r.num_classes = K, r.feature_dim = D, r.ema = ema;
    SamplerConfig sc = sampler_config(&cfg, o->steps, o->cfg, o->cfg_lo, o->cfg_hi, o->seed);
    r.steps = sc.steps, r.cfg = sc.cfg, r.cfg_lo = sc.cfg_lo, r.cfg_hi = sc.cfg_hi, r.seed = sc.seed;
    r.per_class_n = o->per_class;
    r.classifier_test_accuracy = cls.test_accuracy;

    /* The classifier runs on the CPU; the sampler's network where asked. */
    Graph g, gs;
    graph_init(&g, backend_cpu(), 64u << 20);
    jit_to_device(&m, be);
    if (be != backend_cpu()) graph_init(&gs, be, 64u << 20);
    Graph *gm = be != backend_cpu() ? &gs : &g;

    /* (c) the real floor */
    float *rimg;
    int *rlab, nr, C, H, W, rk;
    shardset_read_all(o->real, &rimg, &rlab, &nr, &C, &H, &W, &rk);
    CHECK(nr >= 4, "%s has %d images: too few for two halves", o->real, nr);
    r.n_real = nr;
    float *rfeat = core_malloc(sizeof(float) * (size_t)nr * D);
    int *rpred = core_malloc(sizeof(int) * (size_t)nr);
    classifier_predict(&cls, &g, rimg, nr, EVAL_BATCH, rfeat, rpred);
    r.real_conditional_accuracy = classifier_accuracy(rpred, rlab, nr, K, r.real_per_class);
    int n_even = (nr + 1) / 2, n_odd = nr / 2;
    int *idx = core_malloc(sizeof(int) * (size_t)nr);
    float *fa = core_malloc(sizeof(float) * (size_t)n_even * D), *fb = core_malloc(sizeof(float) * (size_t)n_odd * D);
    for (int i = 0; i < n_even; i++) idx[i] = 2 * i;
    ev_gather(rfeat, D, idx, n_even, fa);
    for (int i = 0; i < n_odd; i++) idx[i] = 2 * i + 1;
    ev_gather(rfeat, D, idx, n_odd, fb);
    r.real_frechet_distance = frechet_distance_features(fa, n_even, fb, n_odd, D);
    /* the floor at the samples' n: the first per_class images of each class among the even positions */
    int nm = 0;
    for (int k = 0; k < K; k++) {
        int got = 0;
        for (int i = 0; i < nr && got < o->per_class; i += 2)
            if (rlab[i] == k) idx[nm++] = i, got++;
    }
    float *fm = core_malloc(sizeof(float) * (size_t)(nm > 0 ? nm : 1) * D);
    ev_gather(rfeat, D, idx, nm, fm);
    r.real_frechet_distance_matched = nm >= 2 ? frechet_distance_features(fm, nm, fb, n_odd, D) : NAN;
    core_free(fa), core_free(fb), core_free(fm), core_free(idx), core_free(rimg), core_free(rpred);

    /* (a), (b): samples */
    int n = K * o->per_class, per = mc->in_channels * mc->img_size * mc->img_size;
    r.n_samples = n;
    int *labels = core_malloc(sizeof(int) * (size_t)n), *pred = core_malloc(sizeof(int) * (size_t)n);
    float *img = core_malloc(sizeof(float) * (size_t)n * per), *feat = core_malloc(sizeof(float) * (size_t)n * D);
    for (int i = 0; i < n; i++) labels[i] = i / o->per_class;
    if (!o->quiet) {
        printf("jit-eval: %s (step %llu, %s), %d classes x %d samples, %d steps, cfg %.2f in (%.2f, %.2f), seed %llu\n",
               r.checkpoint, (unsigned long long)r.step, ema >= 0 ? "EMA weights" : "raw weights", K, o->per_class,
               r.steps, r.cfg, r.cfg_lo, r.cfg_hi, r.seed);
        fflush(stdout);
    }
    double t0 = core_now_s();
    sampler_run(&m, gm, &sc, labels, n, o->batch, img);
    r.sample_seconds = core_now_s() - t0;
    eval_quantize(img, (size_t)n * per);
    if (o->samples_h5) samples_write_h5(o->samples_h5, img, labels, n, mc->in_channels, mc->img_size, mc->img_size);
    if (o->png) png_write_grid(o->png, img, n, mc->in_channels, mc->img_size, mc->img_size, o->per_class, 2);
    classifier_predict(&cls, &g, img, n, EVAL_BATCH, feat, pred);
    r.conditional_accuracy = classifier_accuracy(pred, labels, n, K, r.per_class);
    r.frechet_distance = frechet_distance_features(feat, n, rfeat, nr, D);
    r.total_seconds = core_now_s() - t_start;

    if (!o->quiet) {
        printf("\n%-44s %18s %22s\n", "", "Fréchet distance", "conditional accuracy");
        char lab[96];
        snprintf(lab, sizeof lab, "samples (%d) vs real test (%d)", n, nr);
        printf("%-44s %17.4f %22.4f\n", lab, r.frechet_distance, r.conditional_accuracy);
        snprintf(lab, sizeof lab, "real floor: half vs half (%d vs %d)", n_even, n_odd);
        printf("%-44s %17.4f %22.4f\n", lab, r.real_frechet_distance, r.real_conditional_accuracy);
        snprintf(lab, sizeof lab, "real floor at the samples' n (%d vs %d)", nm, n_odd);
        printf("%-44s %17.4f\n", lab, r.real_frechet_distance_matched);
        printf("\nper class (conditional accuracy: samples / real):\n");
        for (int k = 0; k < K; k++)
            printf("  %2d %-14s %.3f / %.3f\n", k, rs.class_names ? rs.class_names[k] : "", r.per_class[k],
                   r.real_per_class[k]);
        printf("classifier: %s (test accuracy %.4f); sampling %.1f s, total %.1f s\n", o->classifier,
               cls.test_accuracy, r.sample_seconds, r.total_seconds);
    }
    if (o->out) {
        eval_write_json(o->out, &r, o, (const char *const *)rs.class_names);
        if (!o->quiet) printf("jit-eval: wrote %s\n", o->out);
    }
    core_free(labels), core_free(pred), core_free(img), core_free(feat), core_free(rfeat), core_free(rlab);
    if (gm != &g) graph_free(gm);
    graph_free(&g);
    jit_free(&m);
    classifier_free(&cls);
    shardset_close(&rs);
    return r;
}
