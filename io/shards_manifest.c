/* io/shards_manifest.c — a shard set's manifest: written by jit-prep last,
 * checked whenever a set is opened (see shards_manifest.h).
 *
 * Why: a killed jit-prep left 2 of 6 shards, and the trainer trained on 400
 * of 1200 images, all of class 0, without a word. A set is complete when its
 * manifest exists and agrees with the shards:
 *   - a directory must hold exactly the shards the manifests in it list (a
 *     missing shard and a stray one are both errors naming the file), with
 *     the listed sample and byte counts, and the class counts must add up;
 *   - a file or glob names shards explicitly (one shard of a set is a valid
 *     small set), and so does a directory of links to shards elsewhere:
 *     each must be listed with its counts when its manifest is beside the
 *     file the link points at; without it, a notice;
 *   - shards that carry no "manifest" attribute, in a directory with no
 *     manifest, were made before manifests existed: accepted with a notice.
 * The CRC-32 of every file is checked by jit-prep --check (shardset_verify),
 * which reads every byte anyway; opening a set for training reads only the
 * labels and the sizes, so it stays as fast as before. */
#define _GNU_SOURCE
#include "io/shards_manifest.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/alloc.h"
#include "core/check.h"
#include "io/fsutil.h"
#include "io/json.h"

/* A manifest can list many shards and classes (ImageNet: 128 shards, 1000
 * class names and counts: ~40 KB); this bounds a damaged one. */
#define SHARDS_MANIFEST_MAX_BYTES ((size_t)256 << 20)

void shards_manifest_name(const char *prefix, char *out, size_t n) { snprintf(out, n, "%s.manifest.json", prefix); }

uint32_t shards_file_crc32(const char *path, int64_t *bytes) {
    char err[1400];
    int fd = io_open_regular(path, "a shard", err, sizeof err);
    CHECK(fd >= 0, "%s", err);
    uLong crc = crc32(0L, Z_NULL, 0);
    int64_t total = 0;
    static __thread unsigned char buf[1 << 16];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        CHECK(r >= 0, "%s: cannot read the shard: %s", path, strerror(errno));
        if (r == 0) break;
        crc = crc32(crc, buf, (uInt)r);
        total += r;
    }
    close(fd);
    if (bytes) *bytes = total;
    return (uint32_t)crc;
}

void shards_manifest_remove(const char *dir, const char *prefix) {
    char name[300], path[1400];
    shards_manifest_name(prefix, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK(unlink(path) == 0 || errno == ENOENT, "%s: cannot remove the old manifest: %s", path, strerror(errno));
}

void shards_manifest_write(const char *dir, const char *prefix, int n, char *const *files, const int64_t *samples,
                           const int64_t *bytes, const uint32_t *crc, int C, int H, int W, int K,
                           const char *const *class_names, const int64_t *class_counts) {
    char name[300], path[1400], err[1400];
    shards_manifest_name(prefix, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    IoOut o;
    FILE *f = io_out_fopen(&o, path, err, sizeof err);
    CHECK(f != NULL, "%s", err);
    int64_t total = 0;
    for (int k = 0; k < K; k++) total += class_counts[k];
    fprintf(f, "{\"format\": \"%s\", \"prefix\": ", SHARD_MANIFEST_FORMAT);
    json_write_string(f, prefix);
    fprintf(f, ",\n \"channels\": %d, \"height\": %d, \"width\": %d, \"num_classes\": %d, \"total\": %lld,\n"
               " \"class_names\": [", C, H, W, K, (long long)total);
    for (int k = 0; k < K; k++) {
        if (k) fputs(", ", f);
        json_write_string(f, class_names[k]);
    }
    fputs("],\n \"class_counts\": [", f);
    for (int k = 0; k < K; k++) fprintf(f, k ? ", %lld" : "%lld", (long long)class_counts[k]);
    fputs("],\n \"shards\": [", f);
    int first = 1;
    for (int i = 0; i < n; i++) {
        if (!files[i]) continue;
        fputs(first ? "\n  {\"file\": " : ",\n  {\"file\": ", f);
        first = 0;
        json_write_string(f, files[i]);
        fprintf(f, ", \"samples\": %lld, \"bytes\": %lld, \"crc32\": %lu}", (long long)samples[i],
                (long long)bytes[i], (unsigned long)crc[i]);
    }
    fputs("\n ]}\n", f);
    CHECK(io_out_fclose_commit(&o, f, err, sizeof err) == 0, "%s (the shard set stays without a manifest)", err);
}

/* ---- checking ---- */

typedef struct Manifest {
    char *path;       /* dir/name */
    int own;          /* in the spec's own directory: its set must be complete there */
    JsonValue *root;
    const JsonValue *shards;
    int *seen;        /* per listed shard: found in the set */
} Manifest;

/* The directory of the file path points at (links followed: a directory of
 * links to some shards of a set is a selection of that set). */
static char *mf_real_dir_of(const char *path) {
    char *rp = realpath(path, NULL);
    char *copy = strdup(rp ? rp : path);
    char *d = strdup(dirname(copy));
    free(copy);
    free(rp);
    return d;
}

static const char *mf_base(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Load (once) the manifest at path; NULL when there is none. */
static Manifest *mf_get(Manifest **list, int *n, const char *path, const char *spec, int own) {
    for (int i = 0; i < *n; i++)
        if (!strcmp((*list)[i].path, path)) return &(*list)[i];
    char *text, err[1400];
    size_t len;
    if (io_read_bounded(path, "the shard set's manifest", SHARDS_MANIFEST_MAX_BYTES, &text, &len, err, sizeof err)) {
        if (errno == ENOENT) return NULL;
        FAIL("%s: %s", spec, err);
    }
    char why[200];
    JsonValue *root = json_parse(text, len, why, sizeof why);
    core_free(text);
    CHECK(root && root->kind == JSON_OBJECT, "%s: the manifest %s is not valid JSON (%s): run jit-prep again", spec, path,
          root ? "not an object" : why);
    const char *fmt = json_get_string(root, "format");
    CHECK(fmt && !strcmp(fmt, SHARD_MANIFEST_FORMAT), "%s: %s has format '%s', expected '%s'", spec, path,
          fmt ? fmt : "(none)", SHARD_MANIFEST_FORMAT);
    const JsonValue *sh = json_get(root, "shards");
    CHECK(sh && sh->kind == JSON_ARRAY, "%s: %s has no 'shards' list", spec, path);
    *list = core_realloc(*list, sizeof(Manifest) * (size_t)(*n + 1));
    Manifest *m = &(*list)[(*n)++];
    m->path = strdup(path);
    m->own = own;
    m->root = root;
    m->shards = sh;
    m->seen = core_calloc(sizeof(int) * (size_t)(sh->n + 1));
    return m;
}

static double mf_num(const JsonValue *o, const char *key, const char *spec, const char *mpath) {
    double v;
    CHECK(json_get_number(o, key, &v), "%s: %s: a shard entry has no number '%s'", spec, mpath, key);
    return v;
}

/* Index of the entry for file base name in m, or -1. */
static int mf_find(const Manifest *m, const char *base) {
    for (int j = 0; j < m->shards->n; j++) {
        const char *f = json_get_string(m->shards->items[j], "file");
        if (f && !strcmp(f, base)) return j;
    }
    return -1;
}

/* Every *.manifest.json in dir, loaded into the list. */
static void mf_scan_dir(const char *dir, Manifest **list, int *n, const char *spec) {
    DIR *dp = opendir(dir);
    if (!dp) return;
    struct dirent *de;
    const char *suf = ".manifest.json";
    size_t sl = strlen(suf);
    while ((de = readdir(dp)) != NULL) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l <= sl || strcmp(de->d_name + l - sl, suf)) continue;
        char p[1400];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        mf_get(list, n, p, spec, 1);
    }
    closedir(dp);
}

void shards_manifest_check(ShardSet *s, const char *spec, int spec_is_dir, char *const *manifest_attr,
                           const int64_t *class_counts) {
    Manifest *list = NULL;
    int nm = 0, with_attr = 0, unchecked = 0, all_own = spec_is_dir;
    s->crc32 = core_malloc(sizeof(int64_t) * (size_t)s->n_files);
    char *spec_dir = spec_is_dir ? realpath(spec, NULL) : NULL;
    if (spec_is_dir) mf_scan_dir(spec, &list, &nm, spec);
    int n_own = nm; /* the manifests in the spec's directory */
    for (int i = 0; i < s->n_files; i++) {
        const char *path = s->paths[i];
        s->crc32[i] = -1;
        with_attr += manifest_attr[i] != NULL;
        char *dir = mf_real_dir_of(path);
        /* A shard of the directory's own set (not a link into another one). */
        int own = spec_dir && !strcmp(dir, spec_dir);
        all_own &= own;
        Manifest *m = NULL;
        if (manifest_attr[i]) {
            CHECK(!strchr(manifest_attr[i], '/'), "%s: attribute manifest = '%s' is not a file name", path,
                  manifest_attr[i]);
            char mp[1400];
            snprintf(mp, sizeof mp, "%s/%s", own ? spec : dir, manifest_attr[i]);
            m = mf_get(&list, &nm, mp, spec, own);
            if (!m && own)
                FAIL("%s: %s names the manifest %s, which is missing: the set was not finished (jit-prep killed or "
                     "still running?) or not copied whole; run jit-prep again",
                     spec, path, mp);
            if (!m) unchecked++;
        }
        /* In its own directory, a shard without the attribute must still be
         * listed when a manifest is there (a stray file from another run). */
        int j = -1;
        if (m) j = mf_find(m, mf_base(path));
        else if (own)
            for (int k = 0; k < n_own && j < 0; k++)
                if ((j = mf_find(&list[k], mf_base(path))) >= 0) m = &list[k];
        free(dir);
        if (!m) {
            CHECK(!own || n_own == 0, "%s: %s is not listed in the set's manifest %s: a file left from another run "
                  "or another set; remove it, or give the shards by name", spec, path, list[0].path);
            continue;
        }
        CHECK(j >= 0, "%s: %s is not listed in its manifest %s: a file left from another run; remove it or run "
              "jit-prep again", spec, path, m->path);
        const JsonValue *e = m->shards->items[j];
        int64_t want_n = (int64_t)mf_num(e, "samples", spec, m->path), want_b = (int64_t)mf_num(e, "bytes", spec, m->path);
        CHECK(want_n == s->counts[i], "%s: %s holds %lld samples, its manifest %s says %lld", spec, path,
              (long long)s->counts[i], m->path, (long long)want_n);
        struct stat st;
        CHECK(stat(path, &st) == 0 && (int64_t)st.st_size == want_b,
              "%s: %s is %lld bytes, its manifest %s says %lld (changed or cut short since jit-prep wrote it)", spec,
              path, (long long)st.st_size, m->path, (long long)want_b);
        s->crc32[i] = (int64_t)mf_num(e, "crc32", spec, m->path);
        m->seen[j] = 1;
    }
    /* Completeness of the sets whose manifest is in the spec's directory:
     * every listed shard is here, and (when the directory holds nothing
     * else) the classes add up. */
    int64_t *want = core_calloc(sizeof(int64_t) * (size_t)(s->num_classes + 1));
    int n_checked = 0;
    for (int k = 0; k < nm; k++) {
        Manifest *m = &list[k];
        if (!m->own) continue;
        n_checked++;
        for (int j = 0; j < m->shards->n; j++) {
            const char *f = json_get_string(m->shards->items[j], "file");
            CHECK(m->seen[j], "%s: shard %s, listed in the manifest %s, is missing: the set is incomplete (%d of "
                  "%d shards here); copy it again or run jit-prep again",
                  spec, f ? f : "(unnamed)", m->path, s->n_files, m->shards->n);
        }
        const JsonValue *cc = json_get(m->root, "class_counts");
        CHECK(cc && cc->kind == JSON_ARRAY && cc->n == s->num_classes,
              "%s: the manifest %s has no class_counts for %d classes", spec, m->path, s->num_classes);
        for (int c = 0; c < s->num_classes; c++) want[c] += (int64_t)cc->items[c]->num;
    }
    for (int c = 0; c < s->num_classes && n_checked > 0 && all_own; c++)
        CHECK(want[c] == class_counts[c], "%s: class %d ('%s') has %lld samples, the manifest%s say%s %lld", spec, c,
              s->class_names[c], (long long)class_counts[c], n_checked > 1 ? "s" : "", n_checked > 1 ? "" : "s",
              (long long)want[c]);
    core_free(want);
    if (with_attr < s->n_files && nm == 0)
        fprintf(stderr, "note: %s: %s made before jit-prep wrote manifests: accepted without a completeness check "
                        "(run jit-prep again to add one)\n", spec, with_attr ? "some shards were" : "the shards were");
    else if (unchecked)
        fprintf(stderr, "note: %s: %d shard%s without %s manifest beside %s: checked alone (a directory of a "
                        "whole set is checked for completeness)\n", spec, unchecked, unchecked == 1 ? "" : "s",
                unchecked == 1 ? "its" : "their", unchecked == 1 ? "it" : "them");
    for (int k = 0; k < nm; k++) {
        free(list[k].path);
        json_free(list[k].root);
        core_free(list[k].seen);
    }
    core_free(list);
    free(spec_dir);
}
