/* train/programs/eval_fid_main.c — jit-eval's FID subcommands (train/eval/fid_jobs.h,
 * docs/eval.md "FID and IS"), on any number of MPI ranks:
 *
 *   jit-eval fid --checkpoint CKPT --features classifier:FILE|inception:FILE (--ref STATS.npz | --real DIR)
 *                [--n 50000] [--cfg W[,W...]] [--interval LO,HI[:LO,HI...]] [--ema K[,K...]] [--steps S]
 *                [--seed S] [--batch B] [--chunk C] [--state FILE] [--png-dir DIR] [--json OUT] [--md OUT]
 *                [--save-ref STATS.npz] [--no-is] [--device cpu|cuda] [--precision auto|fp32|bf16] [--quiet]
 *   jit-eval fid-ref --real DIR --features SPEC --out STATS.npz [--n N] [--chunk C] [--state FILE]
 *   jit-eval fid-stats A.npz B.npz     (the FID between two statistics files)
 *   jit-eval fid-features --feats FEATS.npz --ref STATS.npz [--out OUT.json]
 *       (FEATS.npz: "pool" [n, d] and optionally "logits" [n, L]: FID and IS of features made elsewhere)
 *
 * --max-chunks N stops after about N chunks (the state keeps the progress). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "dist/comm.h"
#include "io/fsutil.h"
#include "io/npz.h"
#include "train/eval/fid.h"
#include "train/eval/fid_jobs.h"

int eval_fid_main(int argc, char **argv);

static _Noreturn void fid_usage(const char *why) {
    if (why) fprintf(stderr, "jit-eval: %s\n", why);
    fprintf(stderr,
            "usage: jit-eval fid --checkpoint CKPT --features classifier:FILE|inception:FILE (--ref STATS.npz | --real DIR)\n"
            "                [--n 50000] [--cfg W[,W...]] [--interval LO,HI[:LO,HI...]] [--ema K[,K...]] [--steps S]\n"
            "                [--seed S] [--batch B] [--chunk C] [--state FILE] [--png-dir DIR] [--json OUT] [--md OUT]\n"
            "                [--save-ref STATS.npz] [--no-is] [--device cpu|cuda] [--precision auto|fp32|bf16] [--quiet]\n"
            "       jit-eval fid-ref --real DIR --features SPEC --out STATS.npz [--n N] [--chunk C] [--state FILE]\n"
            "       jit-eval fid-stats A.npz B.npz\n"
            "       jit-eval fid-features --feats FEATS.npz --ref STATS.npz [--out OUT.json]\n");
    exit(2);
}

long eval_parse_long(const char *opt, const char *v, void (*bad)(const char *why)); /* eval_main.c */
static long fid_parse_long(const char *opt, const char *v) { return eval_parse_long(opt, v, fid_usage); }

/* FID and IS of features given in an .npz (the parity test's entry point). */
static int fid_features_cmd(const char *feats, const char *ref_path, const char *out) {
    if (!feats || !ref_path) fid_usage("fid-features needs --feats and --ref");
    char err[1400];
    double *pool, *logits = NULL;
    int nd, ndl = 0;
    long sh[NPZ_MAX_DIMS], shl[NPZ_MAX_DIMS];
    CHECK(npz_read_f64(feats, "pool", &pool, &nd, sh, err, sizeof err) == 0, "%s", err);
    CHECK(nd == 2 && sh[0] >= 2, "%s: key 'pool': expected [n >= 2, d], got %d dimensions", feats, nd);
    int have_logits = npz_read_f64(feats, "logits", &logits, &ndl, shl, err, sizeof err) == 0;
    CHECK(!have_logits || (ndl == 2 && shl[0] == sh[0] && shl[1] >= 2), "%s: key 'logits': expected [%ld, L]", feats,
          sh[0]);
    long n = sh[0];
    int d = (int)sh[1], L = have_logits ? (int)shl[1] : 0;
    float *pf = core_malloc(sizeof(float) * (size_t)n * d), *lf = L ? core_malloc(sizeof(float) * (size_t)n * L) : NULL;
    for (size_t i = 0; i < (size_t)n * d; i++) pf[i] = (float)pool[i];
    for (size_t i = 0; i < (size_t)n * L; i++) lf[i] = (float)logits[i];
    FidAccum a;
    fid_accum_init(&a, d, L, n, FID_IS_SPLITS, 1, FID_IS_SEED);
    fid_accum_add(&a, (int)n, pf, lf);
    FeatureStats s, ref;
    fid_accum_stats(&a, &s);
    fid_stats_read_npz(ref_path, &ref);
    CHECK(ref.d == d, "%s has %d features, %s has %d", ref_path, ref.d, feats, d);
    double fid = frechet_distance(&s, &ref), ism = NAN, iss = NAN;
    if (L) fid_accum_is(&a, &ism, &iss);
    printf("fid %.17g\nis_mean %.17g\nis_std %.17g\n", fid, ism, iss);
    if (out) {
        IoOut o;
        FILE *f = io_out_fopen(&o, out, err, sizeof err);
        CHECK(f != NULL, "%s", err);
        /* every bit (%.17g): the parity test compares to 1e-12 */
        fprintf(f, "{\"fid\": %.17g, \"is_mean\": ", fid);
        if (L) fprintf(f, "%.17g, \"is_std\": %.17g", ism, iss);
        else fputs("null, \"is_std\": null", f);
        fprintf(f, ", \"n\": %ld, \"d\": %d}\n", n, d);
        CHECK(io_out_fclose_commit(&o, f, err, sizeof err) == 0, "%s", err);
    }
    frechet_stats_free(&s), frechet_stats_free(&ref), fid_accum_free(&a);
    core_free(pool), core_free(logits), core_free(pf), core_free(lf);
    return 0;
}

int eval_fid_main(int argc, char **argv) {
    const char *cmd = argv[1];
    if (!strcmp(cmd, "fid-stats")) {
        if (argc != 4) fid_usage("fid-stats takes two statistics files");
        FeatureStats a, b;
        fid_stats_read_npz(argv[2], &a);
        fid_stats_read_npz(argv[3], &b);
        CHECK(a.d == b.d, "%s has %d features, %s has %d", argv[2], a.d, argv[3], b.d);
        printf("fid %.17g\n", frechet_distance(&a, &b));
        frechet_stats_free(&a), frechet_stats_free(&b);
        return 0;
    }
    FidJobOptions o;
    fid_job_defaults(&o);
    const char *cfgs = NULL, *intervals = NULL, *emas = NULL, *feats = NULL, *out = NULL;
    int ref_mode = !strcmp(cmd, "fid-ref"), feat_mode = !strcmp(cmd, "fid-features");
    if (ref_mode) o.n_images = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--quiet")) { o.quiet = 1; continue; }
        if (!strcmp(a, "--no-is")) { o.no_is = 1; continue; }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) fid_usage("missing value");
        if (!strcmp(a, "--checkpoint")) o.checkpoint = v;
        else if (!strcmp(a, "--features")) o.features = v;
        else if (!strcmp(a, "--ref")) o.ref = v;
        else if (!strcmp(a, "--real")) o.real = v;
        else if (!strcmp(a, "--n")) o.n_images = fid_parse_long(a, v);
        else if (!strcmp(a, "--cfg")) cfgs = v;
        else if (!strcmp(a, "--interval")) intervals = v;
        else if (!strcmp(a, "--ema")) emas = v;
        else if (!strcmp(a, "--steps")) o.steps = (int)fid_parse_long(a, v);
        else if (!strcmp(a, "--seed")) o.seed = fid_parse_long(a, v);
        else if (!strcmp(a, "--batch")) o.batch = (int)fid_parse_long(a, v);
        else if (!strcmp(a, "--chunk")) o.chunk = (int)fid_parse_long(a, v);
        else if (!strcmp(a, "--state")) o.state = v;
        else if (!strcmp(a, "--png-dir")) o.png_dir = v;
        else if (!strcmp(a, "--json")) o.out_json = v;
        else if (!strcmp(a, "--md")) o.out_md = v;
        else if (!strcmp(a, "--save-ref")) o.save_ref = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--feats")) feats = v;
        else if (!strcmp(a, "--max-chunks")) o.max_chunks = fid_parse_long(a, v);
        else if (!strcmp(a, "--inception-side")) o.inception_side = (int)fid_parse_long(a, v);
        else if (!strcmp(a, "--device")) o.device = v;
        else if (!strcmp(a, "--precision")) {
            if (!strcmp(v, "auto")) o.precision = PRECISION_AUTO;
            else if (!strcmp(v, "fp32")) o.precision = PRECISION_FP32;
            else if (!strcmp(v, "bf16")) o.precision = PRECISION_BF16;
            else fid_usage("--precision takes auto, fp32 or bf16");
        } else {
            char msg[200];
            snprintf(msg, sizeof msg, "unknown option '%s' for %s", a, cmd);
            fid_usage(msg);
        }
        i++;
    }
    if (feat_mode) return fid_features_cmd(feats, o.ref, out);
    if (o.chunk < 1 || o.batch < 1) fid_usage("--chunk and --batch must be positive");
    Comm comm;
    comm_init(&comm, &argc, &argv);
    o.comm = &comm;
    int rc;
    if (ref_mode) {
        o.save_ref = out;
        rc = fid_job_ref(&o);
    } else {
        fid_job_rows(&o, cfgs, intervals, emas);
        rc = fid_job_run(&o);
    }
    comm_finalize(&comm);
    return rc == 1 ? 0 : rc;
}
