/* io/prep_folder.c — jit-prep --image-dir (see prep_folder.h).
 *
 * The files: DIR/<class>/<name> with .jpg, .jpeg or .png in any case; the
 * sorted folder names are the class ids and names, the files of a class are
 * taken in sorted order, and the classes one after the other: the input
 * list. Shard k holds input files [k P, (k + 1) P), P = --per-shard, minus
 * the files that could not be read: so which file lands in which shard, and
 * in what order, depends on the list alone, never on the thread or rank
 * count, and a parallel run writes the very files a serial run writes.
 * (A shard of only bad files is not written; the loader reads whatever
 * *.h5 the directory holds, so a gap in the numbering is harmless.)
 *
 * Parallelism: rank r of R makes shards r, r + R, r + 2R, ...; inside a
 * shard, --threads OpenMP threads decode and resize one file each (dynamic
 * schedule: JPEG sizes vary) into the file's own slot. Skipped files are
 * reported after the shard, in list order, so the messages do not depend on
 * the schedule either. Only the main thread calls MPI (and HDF5).
 *
 * Memory: one shard of images per rank, P x C x S x S bytes (10000 images
 * of 3 x 256 x 256: 2 GB) plus one decoded source image per thread. */
#define _GNU_SOURCE
#include "io/prep_folder.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/profile.h"
#include "io/image.h"
#include "io/resize.h"
#include "io/shards.h"
#include "io/shards_manifest.h"
#include "io/fsutil.h"

#define PREP_ERR_LEN 320

static int prep_cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Files with an image name that are not read: a dangling or looping symbolic
 * link, a FIFO or directory named .jpg, ... Each is named with its reason
 * and counted among the skipped files, like a file that does not decode. */
typedef struct PrepSkips {
    int64_t n;
    char **what; /* "PATH: reason" */
} PrepSkips;

static void prep_skip_add(PrepSkips *s, const char *path, const char *why) {
    size_t len = strlen(path) + strlen(why) + 3;
    char *m = core_malloc(len);
    snprintf(m, len, "%s: %s", path, why);
    s->what = core_realloc(s->what, sizeof(char *) * (size_t)(s->n + 1));
    s->what[s->n++] = m;
}

/* Sorted names in dir: sub-directories (want_dirs) or image files; image
 * names that are no regular file go to skips. */
static char **prep_list(const char *dir, int want_dirs, int *count, PrepSkips *skips) {
    DIR *dp = opendir(dir);
    CHECK(dp != NULL, "%s: cannot list the folder (%s)", dir, strerror(errno));
    char **names = NULL;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        if (de->d_name[0] == '.') continue;
        if (!want_dirs && !image_name_ok(de->d_name)) continue;
        size_t len = strlen(dir) + strlen(de->d_name) + 2;
        char *full = core_malloc(len);
        snprintf(full, len, "%s/%s", dir, de->d_name);
        struct stat st;
        int found = stat(full, &st) == 0, e = errno;
        int keep = found && (want_dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
        if (!keep && !want_dirs) {
            char why[160];
            if (!found && e == ENOENT) snprintf(why, sizeof why, "a dangling symbolic link (its target is missing)");
            else if (!found && e == ELOOP) snprintf(why, sizeof why, "a symbolic link loop");
            else if (!found) snprintf(why, sizeof why, "cannot stat: %s", strerror(e));
            else snprintf(why, sizeof why, "not a regular file");
            prep_skip_add(skips, full, why);
        }
        core_free(full);
        if (!keep) continue;
        names = core_realloc(names, sizeof(char *) * (size_t)(n + 1));
        names[n++] = strdup(de->d_name);
    }
    closedir(dp);
    if (n) qsort(names, (size_t)n, sizeof(char *), prep_cmp_str);
    *count = n;
    return names;
}

typedef struct PrepInputs {
    int K;
    char **classes;
    int64_t n;
    char **paths;
    int *labels;
    PrepSkips skips; /* image names that are no file to read */
} PrepInputs;

static void prep_inputs(const char *dir, PrepInputs *in) {
    memset(in, 0, sizeof *in);
    in->classes = prep_list(dir, 1, &in->K, &in->skips);
    CHECK(in->K > 0, "%s: no class sub-folders; expected DIR/<class>/*.jpg|*.jpeg|*.png", dir);
    int64_t cap = 0;
    for (int k = 0; k < in->K; k++) {
        size_t len = strlen(dir) + strlen(in->classes[k]) + 2;
        char *cdir = core_malloc(len);
        snprintf(cdir, len, "%s/%s", dir, in->classes[k]);
        int nf = 0;
        int64_t skipped_before = in->skips.n;
        char **files = prep_list(cdir, 0, &nf, &in->skips);
        CHECK(nf > 0 || in->skips.n > skipped_before, "%s: class folder without any image (*.jpg, *.jpeg, *.png in any case)", cdir);
        for (int j = 0; j < nf; j++) {
            if (in->n == cap) {
                cap = cap ? 2 * cap : 4096;
                in->paths = core_realloc(in->paths, sizeof(char *) * (size_t)cap);
                in->labels = core_realloc(in->labels, sizeof(int) * (size_t)cap);
            }
            size_t plen = strlen(cdir) + strlen(files[j]) + 2;
            char *path = malloc(plen);
            CHECK(path != NULL, "out of memory listing %s", cdir);
            snprintf(path, plen, "%s/%s", cdir, files[j]);
            in->paths[in->n] = path;
            in->labels[in->n++] = k;
            free(files[j]);
        }
        core_free(files);
        core_free(cdir);
    }
}

static void prep_inputs_free(PrepInputs *in) {
    for (int k = 0; k < in->K; k++) free(in->classes[k]);
    for (int64_t i = 0; i < in->n; i++) free(in->paths[i]);
    core_free(in->classes);
    core_free(in->paths);
    core_free(in->labels);
    for (int64_t i = 0; i < in->skips.n; i++) core_free(in->skips.what[i]);
    core_free(in->skips.what);
}

/* Decode and resize files [first, first + m) into slots 0..m-1 of images;
 * ok[i] says whether slot i holds an image, errs[i] why not. */
static void prep_convert(const PrepFolderOpts *o, const PrepInputs *in, int64_t first, int64_t m, uint8_t *images,
                         int *ok, char (*errs)[PREP_ERR_LEN]) {
    int S = o->size, C = o->channels;
    size_t img = (size_t)C * S * S;
#pragma omp parallel for schedule(dynamic, 1) num_threads(o->threads)
    for (int64_t i = 0; i < m; i++) {
        uint8_t *px = NULL;
        int w = 0, h = 0;
        ok[i] = image_read(in->paths[first + i], C, o->max_pixels, &px, &w, &h, errs[i], PREP_ERR_LEN) == 0;
        if (!ok[i]) continue;
        uint8_t *dst = images + img * (size_t)i;
        if (o->resize == PREP_RESIZE_CENTER_CROP) {
            resize_center_crop(px, C, w, h, dst, S);
        } else {
            memset(dst, 0, img);
            resize_center_pad(px, C, w, h, dst, S);
        }
        core_free(px);
    }
}

/* The manifest of the shards written (written[k] > 0), last: the set is
 * complete when it exists (io/shards_manifest.h). */
static void prep_write_manifest(const PrepFolderOpts *o, const PrepInputs *in, int nshards, const int *written,
                                const int *crc, const int *size_lo, const int *size_hi, const int *per_class) {
    char **names = core_calloc(sizeof(char *) * (size_t)(nshards + 1));
    int64_t *samples = core_malloc(sizeof(int64_t) * (size_t)(nshards + 1));
    int64_t *bytes = core_malloc(sizeof(int64_t) * (size_t)(nshards + 1));
    uint32_t *crcs = core_malloc(sizeof(uint32_t) * (size_t)(nshards + 1));
    int64_t *counts = core_malloc(sizeof(int64_t) * (size_t)in->K);
    for (int k = 0; k < nshards; k++) {
        if (!written[k]) continue;
        char name[300];
        snprintf(name, sizeof name, "%s-%05d.h5", o->prefix, k);
        names[k] = strdup(name);
        samples[k] = written[k];
        bytes[k] = (int64_t)((uint64_t)(uint32_t)size_hi[k] << 32 | (uint32_t)size_lo[k]);
        crcs[k] = (uint32_t)crc[k];
    }
    for (int c = 0; c < in->K; c++) counts[c] = per_class[c];
    shards_manifest_write(o->out, o->prefix, nshards, names, samples, bytes, crcs, o->channels, o->size, o->size, in->K,
                          (const char *const *)in->classes, counts);
    for (int k = 0; k < nshards; k++) free(names[k]);
    core_free(names), core_free(samples), core_free(bytes), core_free(crcs), core_free(counts);
}

int prep_folder_run(const PrepFolderOpts *o, Comm *comm) {
    double t0 = core_now_s();
    PrepInputs in;
    prep_inputs(o->dir, &in); /* every rank lists: the same sorted list everywhere */
    if (comm->rank == 0) /* the same on every rank: named once */
        for (int64_t i = 0; i < in.skips.n; i++) fprintf(stderr, "jit-prep: skipped %s\n", in.skips.what[i]);
    int S = o->size, C = o->channels;
    size_t img = (size_t)C * S * S;
    int64_t P = o->per_shard;
    int64_t nshards64 = (in.n + P - 1) / P;
    CHECK(nshards64 <= 99999, "%s: %lld images in shards of %lld make %lld shards, more than the 5-digit numbering "
                              "holds; raise --per-shard", o->dir, (long long)in.n, (long long)P, (long long)nshards64);
    int nshards = (int)nshards64;
    int64_t slots = in.n < P ? (in.n > 0 ? in.n : 1) : P; /* 0 files: every name was a bad link */
    uint8_t *images = core_malloc(img * (size_t)slots);
    int *labels = core_malloc(sizeof(int) * (size_t)slots);
    int *ok = core_malloc(sizeof(int) * (size_t)slots);
    char(*errs)[PREP_ERR_LEN] = core_malloc(sizeof *errs * (size_t)slots);
    /* Per shard, summed over ranks at the end: images written, files skipped. */
    int *written = core_calloc(sizeof(int) * (size_t)(nshards + 1));
    int *skipped = core_calloc(sizeof(int) * (size_t)(nshards + 1));
    /* For the manifest, summed over ranks like the counts (each shard is
     * made by one rank, the others hold 0): CRC-32 and size (as two 32-bit
     * halves: the reduction is over int) per shard, samples per class. */
    int *crc = core_calloc(sizeof(int) * (size_t)(nshards + 1));
    int *size_lo = core_calloc(sizeof(int) * (size_t)(nshards + 1));
    int *size_hi = core_calloc(sizeof(int) * (size_t)(nshards + 1));
    int *per_class = core_calloc(sizeof(int) * (size_t)in.K);
    if (comm->rank == 0) { /* a killed run must not look complete under an old manifest */
        io_mkdirs_or_die(o->out);
        shards_manifest_remove(o->out, o->prefix);
    }
    comm_barrier(comm);
    for (int k = comm->rank; k < nshards; k += comm->world) {
        int64_t first = (int64_t)k * P, m = in.n - first < P ? in.n - first : P;
        prep_convert(o, &in, first, m, images, ok, errs);
        int64_t good = 0;
        for (int64_t i = 0; i < m; i++) {
            if (!ok[i]) {
                fprintf(stderr, "jit-prep: skipped %s: %s\n", in.paths[first + i], errs[i]);
                skipped[k]++;
                continue;
            }
            if (good != i) memcpy(images + img * (size_t)good, images + img * (size_t)i, img);
            labels[good++] = in.labels[first + i];
        }
        if (good > 0) {
            shards_write_from(o->out, o->prefix, k, images, labels, good, C, S, S, good, in.K,
                              (const char *const *)in.classes);
            written[k] = (int)good;
            char path[1400];
            snprintf(path, sizeof path, "%s/%s-%05d.h5", o->out, o->prefix, k);
            int64_t bytes;
            crc[k] = (int)shards_file_crc32(path, &bytes);
            size_lo[k] = (int)(uint32_t)(bytes & 0xffffffff);
            size_hi[k] = (int)(uint32_t)(bytes >> 32);
            for (int64_t i = 0; i < good; i++) per_class[labels[i]]++;
            printf("  %s/%s-%05d.h5: %lld samples", o->out, o->prefix, k, (long long)good);
            if (skipped[k]) printf(" (%d skipped)", skipped[k]);
            printf("\n");
        }
        fflush(stdout);
        fflush(stderr);
    }
    comm_allreduce_i32(comm, written, (size_t)nshards, COMM_SUM);
    comm_allreduce_i32(comm, skipped, (size_t)nshards, COMM_SUM);
    comm_allreduce_i32(comm, crc, (size_t)nshards, COMM_SUM);
    comm_allreduce_i32(comm, size_lo, (size_t)nshards, COMM_SUM);
    comm_allreduce_i32(comm, size_hi, (size_t)nshards, COMM_SUM);
    comm_allreduce_i32(comm, per_class, (size_t)in.K, COMM_SUM);
    int64_t total = 0, bad = in.skips.n;
    int files = 0;
    for (int k = 0; k < nshards; k++) {
        total += written[k];
        bad += skipped[k];
        files += written[k] > 0;
    }
    double secs = core_now_s() - t0;
    int rc = 0;
    if (comm->rank == 0) {
        if (total == 0) {
            fprintf(stderr, "jit-prep: error: none of the %lld image files in %s could be read (all skipped, reasons "
                            "above); nothing written\n", (long long)(in.n + in.skips.n), o->dir);
        } else {
            printf("jit-prep: wrote %d shard%s to %s: %lld samples, %d classes, images %d x %d x %d (C x H x W); "
                   "%.1f s, %.1f images/s on %d rank%s x %d thread%s\n",
                   files, files == 1 ? "" : "s", o->out, (long long)total, in.K, C, S, S, secs,
                   (double)(total + bad) / (secs > 0 ? secs : 1e-9), comm->world, comm->world == 1 ? "" : "s",
                   o->threads, o->threads == 1 ? "" : "s");
            prep_warn_stale(o->out, o->prefix, written, nshards);
            prep_write_manifest(o, &in, nshards, written, crc, size_lo, size_hi, per_class);
        }
        printf("jit-prep: %lld image file%s skipped%s\n", (long long)bad, bad == 1 ? "" : "s",
               bad ? " (each named above with its reason: \"jit-prep: skipped PATH: ...\")" : "");
    }
    if (total == 0) rc = 1;
    core_free(images);
    core_free(labels);
    core_free(ok);
    core_free(errs);
    core_free(written);
    core_free(skipped);
    core_free(crc), core_free(size_lo), core_free(size_hi), core_free(per_class);
    prep_inputs_free(&in);
    return rc;
}

void prep_warn_stale(const char *out, const char *prefix, const int *written, int n) {
    DIR *dp = opendir(out);
    if (!dp) return;
    size_t plen = strlen(prefix);
    char **stale = NULL;
    int ns = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        const char *s = de->d_name;
        if (strncmp(s, prefix, plen) || s[plen] != '-') continue;
        char *end;
        errno = 0;
        long k = strtol(s + plen + 1, &end, 10);
        if (end == s + plen + 1 || errno || strcmp(end, ".h5")) continue;
        if (k >= 0 && k < n && written[k]) continue;
        stale = core_realloc(stale, sizeof(char *) * (size_t)(ns + 1));
        stale[ns++] = strdup(s);
    }
    closedir(dp);
    if (ns) qsort(stale, (size_t)ns, sizeof(char *), prep_cmp_str);
    for (int i = 0; i < ns; i++) {
        fprintf(stderr, "jit-prep: warning: %s/%s is left from an earlier run and is not part of this set; remove it "
                        "before reading %s as a directory\n", out, stale[i], out);
        free(stale[i]);
    }
    core_free(stale);
}

int prep_default_threads(const Comm *comm) {
    const char *env = getenv("OMP_NUM_THREADS");
    if (env && *env) {
        int t = atoi(env); /* "4" or a nested list "4,2": the first level */
        if (t > 0) return t;
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online < 1) online = 1;
    int mine = (int)online;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) mine = CPU_COUNT(&set);
    /* Bound (fewer CPUs than the node has): these are this rank's own. Not
     * bound: the node's ranks share them. */
    if (mine >= online && comm->local_size > 1) mine = (int)(online / comm->local_size);
    return mine > 0 ? mine : 1;
}
