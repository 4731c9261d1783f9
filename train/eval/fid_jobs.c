/* train/eval/fid_jobs.c — jit-eval fid and fid-ref (see fid_jobs.h): the
 * producers (the JiT sampler from a checkpoint; real images from shards),
 * the identity a resume state is checked against, and the JSON and
 * Markdown tables. */
#include "train/eval/fid_jobs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "io/ckpt.h"
#include "io/fsutil.h"
#include "io/json.h"
#include "io/shards.h"
#include "train/eval/fid.h"
#include "train/eval/fid_eval.h"
#include "train/model/jit_checkpoint.h"
#include "train/model/sampler.h"
#include "train/trainer_device.h"

void fid_job_defaults(FidJobOptions *o) {
    memset(o, 0, sizeof *o);
    o->n_images = 50000;
    o->chunk = FID_CHUNK_DEFAULT;
    o->batch = 64;
    o->steps = -1;
    o->seed = -1;
    o->device = "cpu";
    o->precision = PRECISION_AUTO;
}

/* "a,b,c" -> floats; NULL -> one entry of `dflt`. */
static int parse_list(const char *spec, const char *opt, float *out, int max, float dflt) {
    if (!spec) return out[0] = dflt, 1;
    int n = 0;
    for (const char *p = spec;;) {
        char *e;
        float v = strtof(p, &e);
        CHECK(e != p && (*e == ',' || !*e) && n < max, "%s '%s': expected numbers separated by commas (at most %d)",
              opt, spec, max);
        out[n++] = v;
        if (!*e) break;
        p = e + 1;
    }
    return n;
}

void fid_job_rows(FidJobOptions *o, const char *cfgs, const char *intervals, const char *emas) {
    float cf[FID_MAX_ROWS], lo[FID_MAX_ROWS], hi[FID_MAX_ROWS], em[FID_MAX_ROWS];
    int ncf = parse_list(cfgs, "--cfg", cf, FID_MAX_ROWS, -1), nem = parse_list(emas, "--ema", em, FID_MAX_ROWS, -2),
        nin = 0;
    if (!intervals) lo[0] = hi[0] = -1, nin = 1;
    else
        for (const char *p = intervals;;) { /* LO,HI:LO,HI */
            int used = 0;
            CHECK(nin < FID_MAX_ROWS && sscanf(p, "%f,%f%n", &lo[nin], &hi[nin], &used) == 2 &&
                      (p[used] == ':' || !p[used]) && lo[nin] >= 0 && lo[nin] < hi[nin],
                  "--interval '%s': expected LO,HI pairs with 0 <= LO < HI, separated by ':'", intervals);
            nin++;
            if (!p[used]) break;
            p += used + 1;
        }
    for (int e = 0; e < nem; e++)
        CHECK(em[e] == (int)em[e] && (em[e] >= -1 || em[e] == -2), "--ema: %g is not an EMA index or -1", em[e]);
    CHECK((long)ncf * nin * nem <= FID_MAX_ROWS, "%d x %d x %d settings: at most %d rows", ncf, nin, nem, FID_MAX_ROWS);
    o->n_rows = 0;
    for (int a = 0; a < ncf; a++)
        for (int b = 0; b < nin; b++)
            for (int e = 0; e < nem; e++) {
                FidRowSetting *r = &o->rows[o->n_rows++];
                r->cfg = cf[a], r->cfg_lo = lo[b], r->cfg_hi = hi[b], r->ema = (int)em[e];
            }
}

/* ---- producers ---- */

typedef struct JitCtx {
    const FidJobOptions *o;
    const Backend *be;
    JitModel m;
    Config cfg;
    Graph g;
    int loaded_ema, have; /* the EMA copy loaded (-3: none) */
    SamplerConfig sc[FID_MAX_ROWS];
    int ema[FID_MAX_ROWS];
    long n_images;
} JitCtx;

static void jit_ctx_load(JitCtx *x, int ema, char *path, size_t pathlen, uint64_t *step) {
    if (x->have && x->loaded_ema == ema) return;
    if (x->have) graph_free(&x->g), jit_free(&x->m);
    int e = ema;
    uint64_t st;
    char p[1100];
    jit_load_checkpoint(x->o->checkpoint, &e, &x->m, &x->cfg, step ? step : &st, path ? path : p,
                        path ? pathlen : sizeof p);
    jit_to_device(&x->m, x->be);
    graph_init(&x->g, x->be, 64u << 20);
    x->loaded_ema = ema, x->have = 1;
}

static void jit_produce(void *ctx, int row, long first, int n, uint8_t *out) {
    JitCtx *x = ctx;
    jit_ctx_load(x, x->ema[row], NULL, 0, NULL);
    const JitConfig *mc = &x->cfg.model;
    size_t per = (size_t)mc->in_channels * mc->img_size * mc->img_size;
    int *labels = core_malloc(sizeof(int) * (size_t)n);
    float *img = core_malloc(sizeof(float) * per * (size_t)n);
    for (int i = 0; i < n; i++) labels[i] = fid_label_of(first + i, x->n_images, mc->num_classes);
    SamplerConfig sc = x->sc[row];
    sc.first_index = (uint64_t)first;
    sampler_run(&x->m, &x->g, &sc, labels, n, x->o->batch < n ? x->o->batch : n, img);
    fid_to_u8(img, per * (size_t)n, out);
    core_free(labels), core_free(img);
}

typedef struct RealCtx {
    ShardSet s;
} RealCtx;

static void real_produce(void *ctx, int row, long first, int n, uint8_t *out) {
    shardset_read_range_u8(&((RealCtx *)ctx)->s, first, n, out);
}

/* Reference statistics of a shard set through the streamed pipeline (rank-count invariant too). */
static void real_stats(const FidJobOptions *o, FeatureExtractor *fx, long n, const char *state, FeatureStats *out) {
    RealCtx rc;
    shardset_open(&rc.s, o->real);
    features_check_input(fx, rc.s.channels, rc.s.height, rc.s.width, o->real);
    long total = (long)rc.s.total;
    if (n <= 0 || n > total) n = total;
    char *identity = core_malloc(4096);
    snprintf(identity, 4096, "jit-eval fid-ref v1 | real=%s (%lld images) | features=%s side=%d | n=%ld chunk=%d",
             o->real, (long long)total, fx->name, o->inception_side, n, o->chunk);
    const char *name = "real";
    FidEvalSpec sp = {.n_images = n, .chunk = o->chunk, .channels = rc.s.channels, .height = rc.s.height,
                      .width = rc.s.width, .rows = 1, .row_names = &name, .identity = identity,
                      .produce = real_produce, .ctx = &rc, .fx = fx, .state_path = state, .max_chunks = o->max_chunks,
                      .quiet = o->quiet, .tag = "jit-eval fid-ref", .comm = o->comm};
    FidRowResult r;
    memset(out, 0, sizeof *out);
    int stopped = fid_eval_run(&sp, &r, out);
    core_free(identity);
    shardset_close(&rc.s);
    if (stopped) {
        if (!o->quiet && (!o->comm || o->comm->rank == 0))
            printf("jit-eval fid-ref: stopped after --max-chunks; run again to continue from %s\n", state);
        exit(0);
    }
}

int fid_job_ref(const FidJobOptions *o) {
    CHECK(o->real && o->features && o->save_ref, "fid-ref needs --real DIR, --features SPEC and --out FILE.npz");
    const Backend *be = backend_open(o->device, trainer_backend_precision(o->precision), o->comm ? o->comm->local_rank : 0,
                                     "jit-eval --device");
    FeatureExtractor *fx = features_open(o->features, be, o->inception_side);
    FeatureStats st;
    real_stats(o, fx, o->n_images, o->state, &st);
    if (!o->comm || o->comm->rank == 0) {
        fid_stats_write_npz(o->save_ref, &st);
        if (!o->quiet) printf("jit-eval fid-ref: %ld images, %d features -> %s\n", st.n, st.d, o->save_ref);
        frechet_stats_free(&st);
    }
    features_close(fx);
    return 0;
}

/* ---- outputs ---- */

/* Scores with every bit (%.17g round-trips a double): the rank-count test compares them exactly. */
static void json_exact(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.17g", v);
    else fputs("null", f);
}

static void row_desc(const FidRowSetting *r, char *out, size_t len) {
    snprintf(out, len, "cfg %.4g, interval (%.4g, %.4g), %s", r->cfg, r->cfg_lo, r->cfg_hi,
             r->ema >= 0 ? "EMA" : "raw weights");
    if (r->ema >= 0) snprintf(out + strlen(out), len - strlen(out), " %d", r->ema);
}

static void write_json(const FidJobOptions *o, const FidRowSetting *rows, const FidRowResult *res, const char *ckpt,
                       uint64_t step, long long seed, int steps) {
    IoOut out;
    char err[2400];
    FILE *f = io_out_fopen(&out, o->out_json, err, sizeof err);
    CHECK(f != NULL, "%s", err);
    fputs("{\n  \"checkpoint\": ", f);
    json_write_string(f, ckpt);
    fprintf(f, ",\n  \"step\": %llu,\n  \"features\": ", (unsigned long long)step);
    json_write_string(f, o->features);
    fputs(",\n  \"reference\": ", f);
    json_write_string(f, o->ref ? o->ref : o->real);
    fprintf(f, ",\n  \"n_images\": %ld,\n  \"seed\": %lld,\n  \"steps\": %d,\n  \"rows\": [", o->n_images, seed, steps);
    for (int i = 0; i < o->n_rows; i++) {
        const FidRowSetting *r = &rows[i];
        fprintf(f, "%s\n    {\"name\": ", i ? "," : "");
        json_write_string(f, r->name);
        fputs(", \"cfg\": ", f);
        json_write_number(f, r->cfg);
        fputs(", \"interval\": [", f);
        json_write_number(f, r->cfg_lo);
        fputs(", ", f);
        json_write_number(f, r->cfg_hi);
        fprintf(f, "], \"ema\": %d, \"fid\": ", r->ema);
        json_exact(f, res[i].fid);
        fputs(", \"is_mean\": ", f);
        json_exact(f, res[i].is_mean);
        fputs(", \"is_std\": ", f);
        json_exact(f, res[i].is_std);
        fputs(", \"seconds\": ", f);
        json_write_number(f, res[i].seconds);
        fprintf(f, ", \"images\": %ld, \"image_hash\": \"%016llx\"}", res[i].n, (unsigned long long)res[i].image_hash);
    }
    fputs("\n  ]\n}\n", f);
    CHECK(io_out_fclose_commit(&out, f, err, sizeof err) == 0, "%s (disk full?)", err);
}

static void write_md(const FidJobOptions *o, const FidRowSetting *rows, const FidRowResult *res, const char *ckpt,
                     uint64_t step) {
    IoOut out;
    char err[2400], d[160];
    FILE *f = io_out_fopen(&out, o->out_md, err, sizeof err);
    CHECK(f != NULL, "%s", err);
    fprintf(f, "# FID and IS: %s (step %llu)\n\n%ld images per row, features %s, reference %s\n\n", ckpt,
            (unsigned long long)step, o->n_images, o->features, o->ref ? o->ref : o->real);
    fputs("| setting | FID | IS | time (s) |\n|---|---|---|---|\n", f);
    for (int i = 0; i < o->n_rows; i++) {
        row_desc(&rows[i], d, sizeof d);
        fprintf(f, "| %s | %.4f | %.3f ± %.3f | %.1f |\n", d, res[i].fid, res[i].is_mean, res[i].is_std, res[i].seconds);
    }
    CHECK(io_out_fclose_commit(&out, f, err, sizeof err) == 0, "%s (disk full?)", err);
}

int fid_job_run(const FidJobOptions *o) {
    int rank = o->comm ? o->comm->rank : 0;
    CHECK(o->checkpoint && o->features, "fid needs --checkpoint and --features");
    CHECK(!!o->ref + !!o->real == 1, "fid needs the reference statistics: --ref FILE.npz or --real DIR (not both)");
    CHECK(o->n_images >= 2 && o->n_rows >= 1, "fid: --n must be at least 2");
    const Backend *be = backend_open(o->device, trainer_backend_precision(o->precision), o->comm ? o->comm->local_rank : 0,
                                     "jit-eval --device");
    FeatureExtractor *fx = features_open(o->features, be, o->inception_side);
    if (rank == 0 && !strncmp(o->features, "inception:", 10) && strcmp(o->device, "cpu") && o->precision != PRECISION_FP32)
        fprintf(stderr, "jit-eval fid: note: the Inception runs with the sampler's %s matrix products on %s; FID as "
                        "torch-fidelity computes it needs --precision fp32 (train/eval/inception.h)\n",
                o->precision == PRECISION_BF16 ? "bf16" : "default (bf16)", o->device);

    /* the reference first: cheap checks before any sampling */
    FeatureStats ref;
    memset(&ref, 0, sizeof ref);
    if (o->ref) fid_stats_read_npz(o->ref, &ref); /* every rank reads it: the check is everyone's */
    else {
        /* Computed here, across the ranks; with --state, kept in STATE.ref.npz so a resumed run
         * does not compute them again (and STATE.ref holds their own progress). */
        char st[1200], cache[1200];
        snprintf(st, sizeof st, "%s.ref", o->state ? o->state : "");
        snprintf(cache, sizeof cache, "%s.ref.npz", o->state ? o->state : "");
        int cached = 0;
        if (o->state && rank == 0) {
            char err[1400];
            cached = io_check_regular(cache, "the reference statistics", err, sizeof err) == 0;
        }
        if (o->comm) comm_broadcast(o->comm, &cached, sizeof cached, 0);
        if (cached) {
            if (rank == 0) fid_stats_read_npz(cache, &ref);
        } else {
            real_stats(o, fx, 0, o->state ? st : NULL, &ref);
            if (rank == 0 && o->state) fid_stats_write_npz(cache, &ref);
        }
        if (rank == 0 && o->save_ref) fid_stats_write_npz(o->save_ref, &ref);
    }
    CHECK(rank != 0 || ref.d == fx->pool_dim, "%s: %d features, but %s gives %d", o->ref ? o->ref : o->real, ref.d,
          fx->name, fx->pool_dim);

    JitCtx *x = core_calloc(sizeof *x);
    x->o = o, x->be = be, x->n_images = o->n_images;
    char ckpt[1100];
    uint64_t step = 0;
    FidRowSetting rows[FID_MAX_ROWS];
    memcpy(rows, o->rows, sizeof(FidRowSetting) * (size_t)o->n_rows);
    /* resolve every row's settings against the checkpoint (loading each EMA copy checks it exists) */
    for (int i = 0; i < o->n_rows; i++) {
        FidRowSetting *r = &rows[i];
        int e = r->ema;
        jit_ctx_load(x, e, ckpt, sizeof ckpt, &step);
        if (e == -2) e = x->cfg.n_ema > 0 ? 0 : -1;
        r->ema = e;
        x->ema[i] = r->ema;
        x->sc[i] = sampler_config(&x->cfg, o->steps, r->cfg, r->cfg_lo, r->cfg_hi, o->seed);
        r->cfg = x->sc[i].cfg, r->cfg_lo = x->sc[i].cfg_lo, r->cfg_hi = x->sc[i].cfg_hi;
        snprintf(r->name, sizeof r->name, "cfg%.4g-int%.4g-%.4g-ema%d", r->cfg, r->cfg_lo, r->cfg_hi, r->ema);
    }
    const JitConfig *mc = &x->cfg.model;
    features_check_input(fx, mc->in_channels, mc->img_size, mc->img_size, ckpt);
    int steps = x->sc[0].steps;
    long long seed = (long long)x->sc[0].seed;

    /* the identity: everything the images and sums depend on */
    size_t il = 8192;
    char *identity = core_malloc(il);
    snprintf(identity, il,
             "jit-eval fid v1 | checkpoint=%s step=%llu | features=%s side=%d | reference=%s | n=%ld chunk=%d batch=%d "
             "seed=%lld steps=%d device=%s precision=%d is=%d | rows:",
             ckpt, (unsigned long long)step, fx->name, o->inception_side, o->ref ? o->ref : o->real, o->n_images,
             o->chunk, o->batch, seed, steps, o->device, (int)o->precision, !o->no_is);
    const char *names[FID_MAX_ROWS];
    for (int i = 0; i < o->n_rows; i++) {
        snprintf(identity + strlen(identity), il - strlen(identity), " %s", rows[i].name);
        names[i] = rows[i].name;
    }
    if (rank == 0 && !o->quiet) {
        printf("jit-eval fid: %s (step %llu), %ld images per row, %d row%s, %d steps, seed %lld, features %s, "
               "reference %s\n", ckpt, (unsigned long long)step, o->n_images, o->n_rows, o->n_rows > 1 ? "s" : "",
               steps, seed, fx->name, o->ref ? o->ref : o->real);
        fflush(stdout);
    }
    FidEvalSpec sp = {.n_images = o->n_images, .chunk = o->chunk, .channels = mc->in_channels,
                      .height = mc->img_size, .width = mc->img_size, .rows = o->n_rows, .row_names = names,
                      .identity = identity, .produce = jit_produce, .ctx = x, .fx = fx,
                      .ref = rank == 0 ? &ref : NULL, .inception_score = !o->no_is, .state_path = o->state,
                      .png_dir = o->png_dir, .max_chunks = o->max_chunks, .quiet = o->quiet, .tag = "jit-eval fid",
                      .comm = o->comm};
    FidRowResult res[FID_MAX_ROWS];
    int stopped = fid_eval_run(&sp, res, NULL);
    if (rank == 0 && !stopped) {
        if (!o->quiet) {
            char d[160];
            printf("\n%-52s %12s %18s %10s  %s\n", "setting", "FID", "IS", "time (s)", "image hash");
            for (int i = 0; i < o->n_rows; i++) {
                row_desc(&rows[i], d, sizeof d);
                printf("%-52s %12.6f %10.4f ± %.4f %10.1f  %016llx\n", d, res[i].fid, res[i].is_mean, res[i].is_std,
                       res[i].seconds, (unsigned long long)res[i].image_hash);
            }
        }
        if (o->out_json) write_json(o, rows, res, ckpt, step, seed, steps);
        if (o->out_md) write_md(o, rows, res, ckpt, step);
    } else if (rank == 0 && stopped && !o->quiet) {
        printf("jit-eval fid: stopped after --max-chunks; run again to continue from %s\n", o->state);
    }
    core_free(identity);
    if (x->have) graph_free(&x->g), jit_free(&x->m);
    core_free(x);
    if (ref.mu) frechet_stats_free(&ref);
    features_close(fx);
    return stopped;
}
