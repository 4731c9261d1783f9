/* train/prep_main.c — jit-prep: turn image data into "jit-shard-v1" HDF5
 * shards (io/shards.h) for the loader.
 *
 *   jit-prep --fmnist DIR --out OUT [--split train|test] [--canvas 32] [--per-shard 10000]
 *       Fashion-MNIST IDX files (train-* or t10k-*, .gz or plain) ->
 *       OUT/fmnist-<split>-00000.h5, ...; the 28x28 images are centred on a
 *       canvas x canvas black (0) background.
 *   jit-prep --png-dir DIR --out OUT --size S [--channels 1|3] [--per-shard 10000]
 *       DIR/<class>/<name>.png (.png in any case), one sub-folder per class:
 *       the sorted folder names are the class ids and names
 *       -> OUT/images-00000.h5, ...
 *   jit-prep --synthetic N --out OUT --size S --channels C --classes K [--seed 0] [--per-shard 10000]
 *       N random images and labels (benchmarks, tests) -> OUT/synthetic-00000.h5, ...
 *   --prefix P overrides the file prefix in every mode.
 *
 * Images of another size are centred without resampling: padded with 0
 * where smaller than S, cropped where larger (an odd difference puts the
 * extra row/column at the bottom/right), so a pixel is never interpolated.
 * Colour PNGs become gray by the Rec. 601 luma (299 R + 587 G + 114 B) / 1000
 * with --channels 1; gray PNGs are replicated with --channels 3. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/rng.h"
#include "io/idx.h"
#include "io/png.h"
#include "io/shards.h"

static const char *const prep_fmnist_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                  "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

static _Noreturn void prep_usage(const char *why) {
    if (why) fprintf(stderr, "jit-prep: %s\n", why);
    fprintf(stderr,
            "usage:\n"
            "  jit-prep --fmnist DIR --out OUT [--split train|test] [--canvas 32] [--per-shard 10000]\n"
            "  jit-prep --png-dir DIR --out OUT --size S [--channels 1|3] [--per-shard 10000]\n"
            "  jit-prep --synthetic N --out OUT --size S --channels C --classes K [--seed 0] [--per-shard 10000]\n"
            "  (any mode: --prefix P names the files OUT/P-00000.h5, ...)\n");
    exit(2);
}

/* A whole-string positive integer, else usage. */
static long prep_int(const char *opt, const char *v, long lo, long hi) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s wants an integer in [%ld, %ld], got '%s'", opt, lo, hi, v);
        prep_usage(msg);
    }
    return x;
}

/* Centre a C x sh x sw image on a C x S x S canvas (already zeroed): pad or crop, no resampling. */
static void prep_place(const uint8_t *src, int C, int sh, int sw, uint8_t *dst, int S) {
    int oy = (S - sh) / 2, ox = (S - sw) / 2;
    if (S < sh) oy = -((sh - S) / 2);
    if (S < sw) ox = -((sw - S) / 2);
    for (int c = 0; c < C; c++)
        for (int y = 0; y < S; y++) {
            int sy = y - oy;
            if (sy < 0 || sy >= sh) continue;
            for (int x = 0; x < S; x++) {
                int sx = x - ox;
                if (sx >= 0 && sx < sw) dst[((size_t)c * S + y) * S + x] = src[((size_t)c * sh + sy) * sw + sx];
            }
        }
}

typedef struct PrepData {
    uint8_t *images; /* [n, C, S, S] */
    int *labels;
    int64_t n;
    int C, S, K;
    char **names;
} PrepData;

/* DIR/name.gz, or DIR/name when only the uncompressed file is there. */
static char *prep_idx_path(const char *dir, const char *name) {
    size_t len = strlen(dir) + strlen(name) + 8;
    char *p = core_malloc(len);
    snprintf(p, len, "%s/%s.gz", dir, name);
    struct stat st;
    if (stat(p, &st) != 0) {
        snprintf(p, len, "%s/%s", dir, name);
        if (stat(p, &st) != 0) snprintf(p, len, "%s/%s.gz", dir, name); /* report the usual name */
    }
    return p;
}

static void prep_fmnist(const char *dir, const char *split, int canvas, PrepData *d) {
    const char *stem = !strcmp(split, "train") ? "train" : "t10k";
    char name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", stem);
    char *ipath = prep_idx_path(dir, name);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", stem);
    char *lpath = prep_idx_path(dir, name);
    IdxArray im, lb;
    idx_read(ipath, &im);
    idx_read(lpath, &lb);
    CHECK(im.ndim == 3, "%s: expected 3-D images [n, 28, 28], found %d-D", ipath, im.ndim);
    CHECK(lb.ndim == 1 && lb.dims[0] == im.dims[0], "%s: expected %d labels, found a %d-D array of %d", lpath,
          im.dims[0], lb.ndim, lb.dims[0]);
    d->n = im.dims[0], d->C = 1, d->S = canvas, d->K = 10;
    int h = im.dims[1], w = im.dims[2];
    d->images = core_calloc((size_t)d->n * canvas * canvas);
    d->labels = core_malloc(sizeof(int) * (size_t)d->n);
    for (int64_t i = 0; i < d->n; i++) {
        CHECK(lb.data[i] < 10, "%s: label %d of sample %lld is not a Fashion-MNIST class (0..9)", lpath, lb.data[i],
              (long long)i);
        d->labels[i] = lb.data[i];
        prep_place(im.data + (size_t)i * h * w, 1, h, w, d->images + (size_t)i * canvas * canvas, canvas);
    }
    d->names = core_malloc(sizeof(char *) * 10);
    for (int k = 0; k < 10; k++) d->names[k] = strdup(prep_fmnist_names[k]);
    idx_free(&im);
    idx_free(&lb);
    core_free(ipath);
    core_free(lpath);
}

static int prep_cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted names in dir: sub-directories (want_dirs) or *.png files. */
static char **prep_list(const char *dir, int want_dirs, int *count) {
    DIR *dp = opendir(dir);
    CHECK(dp != NULL, "%s: cannot list the folder (%s)", dir, strerror(errno));
    char **names = NULL;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        if (de->d_name[0] == '.') continue;
        size_t len = strlen(dir) + strlen(de->d_name) + 2;
        char *full = core_malloc(len);
        snprintf(full, len, "%s/%s", dir, de->d_name);
        struct stat st;
        int keep = stat(full, &st) == 0 &&
                   (want_dirs ? S_ISDIR(st.st_mode)
                              : S_ISREG(st.st_mode) && strlen(de->d_name) > 4 &&
                                    !strcasecmp(de->d_name + strlen(de->d_name) - 4, ".png"));
        core_free(full);
        if (!keep) continue;
        names = core_realloc(names, sizeof(char *) * (size_t)(n + 1));
        names[n++] = strdup(de->d_name);
    }
    closedir(dp);
    qsort(names, (size_t)n, sizeof(char *), prep_cmp_str);
    *count = n;
    return names;
}

static void prep_png_dir(const char *dir, int S, int C, PrepData *d) {
    int K = 0;
    char **classes = prep_list(dir, 1, &K);
    CHECK(K > 0, "%s: no class sub-folders; expected DIR/<class>/*.png", dir);
    d->C = C, d->S = S, d->K = K, d->names = classes, d->n = 0;
    size_t img = (size_t)C * S * S;
    int64_t cap = 0;
    for (int k = 0; k < K; k++) {
        size_t len = strlen(dir) + strlen(classes[k]) + 2;
        char *cdir = core_malloc(len);
        snprintf(cdir, len, "%s/%s", dir, classes[k]);
        int nf = 0;
        char **files = prep_list(cdir, 0, &nf);
        CHECK(nf > 0, "%s: class folder without any *.png", cdir);
        for (int j = 0; j < nf; j++) {
            size_t plen = strlen(cdir) + strlen(files[j]) + 2;
            char *path = core_malloc(plen);
            snprintf(path, plen, "%s/%s", cdir, files[j]);
            uint8_t *px;
            int w, h, c;
            png_read(path, &px, &w, &h, &c);
            /* interleaved h x w x c -> planar C x h x w, converting the channel count */
            uint8_t *planar = core_malloc((size_t)C * h * w);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    const uint8_t *p = px + ((size_t)y * w + x) * c;
                    for (int ch = 0; ch < C; ch++) {
                        uint8_t v;
                        if (c == C) v = p[ch];
                        else if (c == 1) v = p[0];
                        else v = (uint8_t)((299 * p[0] + 587 * p[1] + 114 * p[2] + 500) / 1000);
                        planar[((size_t)ch * h + y) * w + x] = v;
                    }
                }
            if (d->n == cap) {
                cap = cap ? 2 * cap : 1024;
                d->images = core_realloc(d->images, img * (size_t)cap);
                d->labels = core_realloc(d->labels, sizeof(int) * (size_t)cap);
            }
            uint8_t *dst = d->images + img * (size_t)d->n;
            memset(dst, 0, img);
            prep_place(planar, C, h, w, dst, S);
            d->labels[d->n++] = k;
            core_free(planar);
            free(px);
            core_free(path);
            core_free(files[j]);
        }
        core_free(files);
        core_free(cdir);
    }
}

static void prep_synthetic(int64_t n, int S, int C, int K, uint64_t seed, PrepData *d) {
    d->n = n, d->C = C, d->S = S, d->K = K;
    size_t img = (size_t)C * S * S;
    d->images = core_malloc(img * (size_t)n);
    d->labels = core_malloc(sizeof(int) * (size_t)n);
    /* RNG_STREAM_TEST + 1: synthetic data is a test input, apart from the training streams. */
    uint32_t w[4];
    for (size_t i = 0; i < img * (size_t)n; i++) {
        if (i % 16 == 0) rng_block(seed, RNG_STREAM_TEST + 1, i / 16, w);
        d->images[i] = (uint8_t)(w[(i % 16) / 4] >> (8 * (i % 4)));
    }
    for (int64_t i = 0; i < n; i++) d->labels[i] = (int)(rng_uniform(seed, RNG_STREAM_TEST + 2, (uint64_t)i) * K) % K;
    d->names = core_malloc(sizeof(char *) * (size_t)K);
    for (int k = 0; k < K; k++) {
        char buf[32];
        snprintf(buf, sizeof buf, "class%d", k);
        d->names[k] = strdup(buf);
    }
}

int main(int argc, char **argv) {
    const char *fmnist = NULL, *png_dir = NULL, *out = NULL, *split = "train", *prefix = NULL;
    long synthetic = 0, canvas = 32, per_shard = 10000, size = 0, channels = 0, classes = 0;
    uint64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) prep_usage(NULL);
        if (i + 1 >= argc) {
            char msg[128];
            snprintf(msg, sizeof msg, "%s needs a value", a);
            prep_usage(msg);
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--fmnist")) fmnist = v;
        else if (!strcmp(a, "--png-dir")) png_dir = v;
        else if (!strcmp(a, "--synthetic")) synthetic = prep_int(a, v, 1, 1L << 32);
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--split")) split = v;
        else if (!strcmp(a, "--prefix")) prefix = v;
        else if (!strcmp(a, "--canvas")) canvas = prep_int(a, v, 1, 16384);
        else if (!strcmp(a, "--per-shard")) per_shard = prep_int(a, v, 1, 1L << 32);
        else if (!strcmp(a, "--size")) size = prep_int(a, v, 1, 16384);
        else if (!strcmp(a, "--channels")) channels = prep_int(a, v, 1, 64);
        else if (!strcmp(a, "--classes")) classes = prep_int(a, v, 1, 1 << 20);
        else if (!strcmp(a, "--seed")) seed = (uint64_t)prep_int(a, v, 0, __LONG_MAX__);
        else {
            char msg[128];
            snprintf(msg, sizeof msg, "unknown option %s", a);
            prep_usage(msg);
        }
    }
    if ((fmnist != NULL) + (png_dir != NULL) + (synthetic != 0) != 1)
        prep_usage("give exactly one of --fmnist, --png-dir, --synthetic");
    if (!out) prep_usage("--out is required");
    if (strcmp(split, "train") && strcmp(split, "test")) prep_usage("--split is train or test");

    PrepData d = {0};
    char pre[64];
    if (fmnist) {
        prep_fmnist(fmnist, split, (int)canvas, &d);
        snprintf(pre, sizeof pre, "fmnist-%s", split);
    } else if (png_dir) {
        if (!size) prep_usage("--png-dir needs --size");
        if (!channels) channels = 3;
        if (channels != 1 && channels != 3) prep_usage("--png-dir takes --channels 1 or 3");
        prep_png_dir(png_dir, (int)size, (int)channels, &d);
        snprintf(pre, sizeof pre, "images");
    } else {
        if (!size || !channels || !classes) prep_usage("--synthetic needs --size, --channels and --classes");
        prep_synthetic(synthetic, (int)size, (int)channels, (int)classes, seed, &d);
        snprintf(pre, sizeof pre, "synthetic");
    }
    if (!prefix) prefix = pre;

    int files = shards_write(out, prefix, d.images, d.labels, d.n, d.C, d.S, d.S, per_shard, d.K,
                             (const char *const *)d.names);
    for (int f = 0; f < files; f++) {
        int64_t m = d.n - (int64_t)f * per_shard < per_shard ? d.n - (int64_t)f * per_shard : per_shard;
        printf("  %s/%s-%05d.h5: %lld samples\n", out, prefix, f, (long long)m);
    }
    printf("jit-prep: wrote %d shard%s to %s: %lld samples, %d classes, images %d x %d x %d (C x H x W)\n", files,
           files == 1 ? "" : "s", out, (long long)d.n, d.K, d.C, d.S, d.S);
    /* A directory spec reads every *.h5: a shard left over from an earlier, bigger run would join the set. */
    for (int f = files;; f++) {
        char stale[4096];
        snprintf(stale, sizeof stale, "%s/%s-%05d.h5", out, prefix, f);
        struct stat st;
        if (stat(stale, &st) != 0) break;
        fprintf(stderr, "jit-prep: warning: %s is left from an earlier run and is not part of this set; remove it "
                        "before reading %s as a directory\n", stale, out);
    }
    for (int k = 0; k < d.K; k++) free(d.names[k]);
    core_free(d.names);
    core_free(d.images);
    core_free(d.labels);
    return 0;
}
