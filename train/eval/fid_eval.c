/* train/eval/fid_eval.c — the streamed, rank-count invariant, resumable
 * evaluation (see fid_eval.h). */
#include "train/eval/fid_eval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/profile.h"
#include "io/fsutil.h"
#include "io/png.h"
#include "train/eval/fid.h"

#define FID_STATE_MAGIC "jit-fid-state-v1"

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

/* ---- the state file: magic, identity, position, finished rows, running sums, checksum ---- */

typedef struct FidState {
    long row, next_chunk;  /* the row under way and its next chunk */
    FidRowResult *done;    /* [rows]: rows < row are finished */
    uint64_t hash;         /* the current row's image hash so far */
    double seconds;        /* the current row's time so far */
    FidAccum acc;
} FidState;

static void st_put(FILE *f, const void *p, size_t n, uint64_t *ck) {
    fwrite(p, 1, n, f);
    *ck = fnv1a(*ck, p, n);
}

static void state_write(const FidEvalSpec *s, const FidState *st) {
    IoOut o;
    char err[2400];
    FILE *f = io_out_fopen(&o, s->state_path, err, sizeof err);
    CHECK(f != NULL, "%s", err);
    uint64_t ck = FNV_INIT, idl = strlen(s->identity), rows = (uint64_t)s->rows;
    int64_t pos[2] = {st->row, st->next_chunk};
    st_put(f, FID_STATE_MAGIC, 16, &ck);
    st_put(f, &idl, 8, &ck);
    st_put(f, s->identity, idl, &ck);
    st_put(f, &rows, 8, &ck);
    st_put(f, pos, sizeof pos, &ck);
    st_put(f, st->done, sizeof(FidRowResult) * (size_t)s->rows, &ck);
    st_put(f, &st->hash, 8, &ck);
    st_put(f, &st->seconds, 8, &ck);
    uint64_t na = fid_accum_size(&st->acc);
    double *a = core_malloc(sizeof(double) * na);
    fid_accum_save(&st->acc, a);
    st_put(f, &na, 8, &ck);
    st_put(f, a, sizeof(double) * na, &ck);
    core_free(a);
    fwrite(&ck, 1, 8, f);
    CHECK(io_out_fclose_commit(&o, f, err, sizeof err) == 0, "%s (disk full?)", err);
}

static int st_get(FILE *f, void *p, size_t n, uint64_t *ck) {
    if (fread(p, 1, n, f) != n) return -1;
    *ck = fnv1a(*ck, p, n);
    return 0;
}

/* 1 when a state was read into st, 0 when there is none; stops on a state
 * that is damaged or belongs to another evaluation. */
static int state_read(const FidEvalSpec *s, FidState *st) {
    char err[1400];
    FILE *f = io_fopen_regular(s->state_path, "the evaluation state", err, sizeof err);
    if (!f) {
        CHECK(errno == ENOENT, "%s", err);
        return 0;
    }
    const char *p = s->state_path;
    uint64_t ck = FNV_INIT, idl = 0, rows = 0, na = 0, want;
    char magic[16];
    int64_t pos[2];
    int bad = st_get(f, magic, 16, &ck) || memcmp(magic, FID_STATE_MAGIC, 16) || st_get(f, &idl, 8, &ck) || idl > (1u << 20);
    CHECK(!bad, "%s: not an evaluation state file (or damaged): delete it to start afresh", p);
    char *id = core_malloc(idl + 1);
    bad = st_get(f, id, idl, &ck);
    id[idl] = 0;
    CHECK(!bad, "%s: damaged evaluation state (cut short?): delete it to start afresh", p);
    CHECK(!strcmp(id, s->identity),
          "%s: the state belongs to another evaluation:\n  state: %s\n  now:   %s\n(delete it, or give another --state)",
          p, id, s->identity);
    core_free(id);
    bad = st_get(f, &rows, 8, &ck) || rows != (uint64_t)s->rows || st_get(f, pos, sizeof pos, &ck) ||
          st_get(f, st->done, sizeof(FidRowResult) * (size_t)s->rows, &ck) || st_get(f, &st->hash, 8, &ck) ||
          st_get(f, &st->seconds, 8, &ck) || st_get(f, &na, 8, &ck) || na != fid_accum_size(&st->acc);
    CHECK(!bad, "%s: damaged evaluation state (cut short?): delete it to start afresh", p);
    double *a = core_malloc(sizeof(double) * na);
    bad = st_get(f, a, sizeof(double) * na, &ck);
    bad = bad || fread(&want, 1, 8, f) != 8 || want != ck;
    fclose(f);
    CHECK(!bad, "%s: damaged evaluation state (checksum): delete it to start afresh", p);
    st->row = pos[0], st->next_chunk = pos[1];
    fid_accum_restore(&st->acc, a);
    core_free(a);
    return 1;
}

/* ---- progress ---- */

static void fmt_duration(double s, char *out, size_t len) {
    if (!(s >= 0) || s > 1e8) snprintf(out, len, "?");
    else if (s >= 3600) snprintf(out, len, "%dh%02dm", (int)(s / 3600), (int)(fmod(s, 3600) / 60));
    else if (s >= 60) snprintf(out, len, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(out, len, "%.0fs", s);
}

/* ---- PNGs: one per image, DIR/<index>.png ---- */

void fid_write_pngs(const char *dir, long first, int n, int C, int H, int W, const uint8_t *img) {
    char path[1300];
    io_mkdirs_or_die(dir);
    uint8_t *hwc = core_malloc((size_t)C * H * W);
    for (int i = 0; i < n; i++) {
        const uint8_t *src = img + (size_t)i * C * H * W;
        for (int c = 0; c < C; c++)
            for (int p = 0; p < H * W; p++) hwc[(size_t)p * C + c] = src[(size_t)c * H * W + p];
        snprintf(path, sizeof path, "%s/%05ld.png", dir, first + i);
        png_write(path, hwc, W, H, C);
    }
    core_free(hwc);
}

static void write_pngs(const FidEvalSpec *s, int row, long first, int n, const uint8_t *img) {
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", s->png_dir, s->rows > 1 ? s->row_names[row] : "");
    fid_write_pngs(dir, first, n, s->channels, s->height, s->width, img);
}

int fid_eval_run(const FidEvalSpec *s, FidRowResult *res, FeatureStats *stats) {
    int rank = s->comm ? s->comm->rank : 0, world = s->comm ? s->comm->world : 1;
    const char *tag = s->tag ? s->tag : "fid";
    CHECK(s->n_images >= 2 && s->chunk >= 1 && s->rows >= 1, "%s: %ld images in chunks of %d, %d rows", tag,
          s->n_images, s->chunk, s->rows);
    int d = s->fx->pool_dim, L = s->inception_score ? s->fx->logit_dim : 0, C = s->chunk;
    CHECK(!s->inception_score || L >= 2, "%s: the feature extractor %s has no logits for an Inception Score", tag,
          s->fx->name);
    CHECK(!s->ref || s->ref->d == d, "%s: the reference statistics have %d features but %s gives %d", tag,
          s->ref ? s->ref->d : 0, s->fx->name, d);
    long total = (s->n_images + C - 1) / C;
    size_t per = (size_t)s->channels * s->height * s->width, rec = (size_t)d + L; /* floats per image */
    FidState st;
    memset(&st, 0, sizeof st);
    st.done = core_calloc(sizeof(FidRowResult) * (size_t)s->rows);
    st.hash = FNV_INIT;
    fid_accum_init(&st.acc, d, L, s->n_images, FID_IS_SPLITS, 1, FID_IS_SEED);
    int64_t pos[2] = {0, 0};
    if (rank == 0 && s->state_path && state_read(s, &st)) {
        pos[0] = st.row, pos[1] = st.next_chunk;
        if (!s->quiet && st.row < s->rows)
            printf("%s: resuming from %s: row %ld of %d, chunk %ld of %ld (%ld images done)\n", tag, s->state_path,
                   st.row + 1, s->rows, st.next_chunk, total, st.acc.n);
    }
    if (s->comm) comm_broadcast(s->comm, pos, sizeof pos, 0);
    st.row = pos[0], st.next_chunk = pos[1];

    /* this rank's chunk of a round, and what rank 0 gathers */
    uint8_t *img = core_malloc(per * (size_t)C);
    size_t msg = sizeof(uint64_t) * (size_t)C + sizeof(float) * rec * (size_t)C; /* hashes, then features */
    unsigned char *mine = core_malloc(msg), *all = rank == 0 ? core_malloc(msg * (size_t)world) : NULL;
    float *pool = core_malloc(sizeof(float) * (size_t)d * C), *logit = L ? core_malloc(sizeof(float) * (size_t)L * C) : NULL;
    long processed = 0;
    int stopped = 0;
    for (int row = (int)st.row; row < s->rows && !stopped; row++) {
        double t_row = core_now_s() - st.seconds, t_inv = core_now_s();
        long images_at_start = st.acc.n; /* a resumed row's rate counts this invocation's images only */
        for (long c0 = st.next_chunk; c0 < total; c0 += world) {
            long k = c0 + rank;
            memset(mine, 0, msg);
            if (k < total) {
                long first = k * C;
                int n = (int)(s->n_images - first < C ? s->n_images - first : C);
                s->produce(s->ctx, row, first, n, img);
                if (s->png_dir) write_pngs(s, row, first, n, img);
                s->fx->forward(s->fx, img, n, s->channels, s->height, s->width, pool, logit);
                uint64_t *h = (uint64_t *)mine;
                float *f = (float *)(mine + sizeof(uint64_t) * (size_t)C);
                for (int i = 0; i < n; i++) {
                    h[i] = fnv1a(FNV_INIT, img + (size_t)i * per, per);
                    memcpy(f + (size_t)i * rec, pool + (size_t)i * d, sizeof(float) * (size_t)d);
                    if (L) memcpy(f + (size_t)i * rec + d, logit + (size_t)i * L, sizeof(float) * (size_t)L);
                }
            }
            if (s->comm) comm_gather_bytes(s->comm, mine, msg, all, 0);
            else memcpy(all, mine, msg);
            long next = c0 + world < total ? c0 + world : total;
            if (rank == 0) {
                for (int r = 0; r < world && c0 + r < total; r++) {
                    long first = (c0 + r) * C;
                    int n = (int)(s->n_images - first < C ? s->n_images - first : C);
                    const unsigned char *m = all + (size_t)r * msg;
                    const uint64_t *h = (const uint64_t *)m;
                    const float *f = (const float *)(m + sizeof(uint64_t) * (size_t)C);
                    for (int i = 0; i < n; i++) {
                        st.hash = fnv1a(st.hash, &h[i], 8);
                        memcpy(pool + (size_t)i * d, f + (size_t)i * rec, sizeof(float) * (size_t)d);
                        if (L) memcpy(logit + (size_t)i * L, f + (size_t)i * rec + d, sizeof(float) * (size_t)L);
                    }
                    fid_accum_add(&st.acc, n, pool, logit);
                }
                st.next_chunk = next;
                st.seconds = core_now_s() - t_row;
                if (s->state_path) state_write(s, &st);
                if (!s->quiet) {
                    double el = core_now_s() - t_inv, rate = (double)(st.acc.n - images_at_start) / (el > 0 ? el : 1);
                    long left = s->n_images - st.acc.n;
                    char eta[32];
                    fmt_duration(left / (rate > 0 ? rate : 1e-9), eta, sizeof eta);
                    printf("%s: %s%s%simages %ld/%ld (%.1f%%), %.2f images/s, ETA %s\n", tag,
                           s->rows > 1 ? s->row_names[row] : "", s->rows > 1 ? ": " : "", "", st.acc.n, s->n_images,
                           100.0 * st.acc.n / s->n_images, rate, eta);
                    fflush(stdout);
                }
            }
            processed += world;
            if (s->max_chunks > 0 && processed >= s->max_chunks && next < total) {
                stopped = 1;
                break;
            }
        }
        if (stopped) break;
        if (rank == 0) {
            FidRowResult *r = &st.done[row];
            r->n = st.acc.n, r->image_hash = st.hash, r->seconds = core_now_s() - t_row;
            r->fid = r->is_mean = r->is_std = NAN;
            FeatureStats fs;
            fid_accum_stats(&st.acc, &fs);
            if (s->ref) r->fid = frechet_distance(&fs, s->ref);
            if (L) fid_accum_is(&st.acc, &r->is_mean, &r->is_std);
            if (stats && row == s->rows - 1) *stats = fs;
            else frechet_stats_free(&fs);
            /* the next row starts afresh */
            fid_accum_free(&st.acc);
            fid_accum_init(&st.acc, d, L, s->n_images, FID_IS_SPLITS, 1, FID_IS_SEED);
            st.row = row + 1, st.next_chunk = 0, st.hash = FNV_INIT, st.seconds = 0;
            if (s->state_path) state_write(s, &st);
        } else {
            st.row = row + 1, st.next_chunk = 0;
        }
    }
    if (rank == 0 && stats && st.row == s->rows && st.done[s->rows - 1].n > 0 && stats->mu == NULL)
        FAIL("%s: the state %s says the evaluation is complete but its statistics are not kept: delete it to "
             "compute them again", tag, s->state_path);
    if (s->comm) comm_broadcast(s->comm, st.done, sizeof(FidRowResult) * (size_t)s->rows, 0);
    memcpy(res, st.done, sizeof(FidRowResult) * (size_t)s->rows);
    fid_accum_free(&st.acc);
    core_free(st.done), core_free(img), core_free(mine), core_free(all), core_free(pool),
        core_free(logit);
    return stopped;
}
