/* train/programs/prep_main.c — jit-prep: turn image data into "jit-shard-v1" HDF5
 * shards (io/shards.h) for the loader.
 *
 *   jit-prep --fmnist DIR --out OUT [--split train|test] [--canvas 32] [--per-shard 10000]
 *       Fashion-MNIST IDX files (train-* or t10k-*, .gz or plain) ->
 *       OUT/fmnist-<split>-00000.h5, ...; the 28x28 images are centred on a
 *       canvas x canvas black (0) background.
 *   jit-prep --image-dir DIR --out OUT --size S [--channels 1|3] [--resize center-crop|none]
 *            [--threads N] [--per-shard 10000] [--max-pixels 89478485]   (--png-dir is the old name)
 *       DIR/<class>/<name>.{jpg,jpeg,png} (any case; ImageNet: n01440764/n01440764_10026.JPEG),
 *       one sub-folder per class: the sorted folder names are the class ids
 *       and names -> OUT/images-00000.h5, ... Decoded and resized on N
 *       threads; under mpirun every rank makes its share of the shards.
 *       Unreadable files are skipped and reported (io/prep_folder.c), and so
 *       are dangling or looping links and images of more than --max-pixels
 *       pixels (width x height, default Pillow's 89,478,485; checked from
 *       the header before anything is allocated: io/image.h).
 *   jit-prep --synthetic N --out OUT --size S --channels C --classes K [--seed 0] [--per-shard 10000]
 *       N random images and labels (benchmarks, tests) -> OUT/synthetic-00000.h5, ...
 *   --prefix P overrides the file prefix in every mode.
 *   jit-prep --check SPEC
 *       open a shard set (a file, a directory or a glob) as the trainer does
 *       and read every image: exit 0 with a summary, or 1 naming the file
 *       and what is wrong (e.g. after copying shards to shared storage).
 *
 * --resize center-crop (the default) is ADM's center_crop_arr, what JiT
 * trains on, equal to PIL's to within one grey level (io/resize.h).
 * --resize none centres without resampling: padded with 0 where smaller
 * than S, cropped where larger (an odd difference puts the extra row/column
 * at the bottom/right), so a pixel is never interpolated (small images that
 * already have the size, e.g. from another prep).
 * Colour images become gray by the Rec. 601 luma (299 R + 587 G + 114 B) / 1000
 * with --channels 1; gray ones are replicated with --channels 3.
 * The Fashion-MNIST and synthetic modes are not split: under mpirun, rank 0
 * writes them and the other ranks wait. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/rng.h"
#include "dist/comm.h"
#include "io/idx.h"
#include "io/prep_folder.h"
#include "io/resize.h"
#include "io/shards.h"

static const char *const prep_fmnist_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                  "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

static _Noreturn void prep_usage(const char *why) {
    if (why) fprintf(stderr, "jit-prep: %s\n", why);
    fprintf(stderr,
            "usage:\n"
            "  jit-prep --fmnist DIR --out OUT [--split train|test] [--canvas 32] [--per-shard 10000]\n"
            "  jit-prep --image-dir DIR --out OUT --size S [--channels 1|3] [--resize center-crop|none]\n"
            "           [--threads N] [--per-shard 10000] [--max-pixels 89478485]   (--png-dir DIR is the same)\n"
            "  jit-prep --synthetic N --out OUT --size S --channels C --classes K [--seed 0] [--per-shard 10000]\n"
            "  (any mode: --prefix P names the files OUT/P-00000.h5, ...)\n"
            "  jit-prep --check SPEC                  (validate shards and read every image)\n");
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
        resize_center_pad(im.data + (size_t)i * h * w, 1, w, h, d->images + (size_t)i * canvas * canvas, canvas);
    }
    d->names = core_malloc(sizeof(char *) * 10);
    for (int k = 0; k < 10; k++) d->names[k] = strdup(prep_fmnist_names[k]);
    idx_free(&im);
    idx_free(&lb);
    core_free(ipath);
    core_free(lpath);
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

/* MPI only under a launcher (Open MPI's mpirun, PMIx as under srun, MPICH's
 * Hydra): a plain run then starts in milliseconds instead of ~0.3 s, and
 * under the sanitizer build leaves no MPI allocations behind to be reported
 * as leaks. A Comm of one rank needs no MPI: its collectives return at once. */
static int prep_launched_by_mpirun(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

/* The Fashion-MNIST and synthetic modes: made in memory, written at once. */
static void prep_single(const char *fmnist, const char *split, int canvas, long synthetic, int size, int channels,
                        int classes, uint64_t seed, const char *out, const char *prefix, long per_shard) {
    PrepData d = {0};
    char pre[64];
    if (fmnist) {
        prep_fmnist(fmnist, split, canvas, &d);
        snprintf(pre, sizeof pre, "fmnist-%s", split);
    } else {
        prep_synthetic(synthetic, size, channels, classes, seed, &d);
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
    int *written = core_malloc(sizeof(int) * (size_t)files);
    for (int f = 0; f < files; f++) written[f] = 1;
    prep_warn_stale(out, prefix, written, files);
    core_free(written);
    for (int k = 0; k < d.K; k++) free(d.names[k]);
    core_free(d.names);
    core_free(d.images);
    core_free(d.labels);
}

/* --check: open and validate a shard set as the trainer would, then read
 * every image; exit 0 and a summary, or 1 naming the file. */
static int prep_check(const char *spec) {
    ShardSet s;
    shardset_open(&s, spec);
    int64_t n = shardset_verify(&s);
    printf("jit-prep --check %s: %d shard%s, %lld images of %d x %d x %d, %d classes: every image readable\n", spec,
           s.n_files, s.n_files == 1 ? "" : "s", (long long)n, s.channels, s.height, s.width, s.num_classes);
    shardset_close(&s);
    return 0;
}

int main(int argc, char **argv) {
    const char *check = NULL, *fmnist = NULL, *image_dir = NULL, *out = NULL, *split = "train", *prefix = NULL, *resize = NULL;
    long synthetic = 0, canvas = 32, per_shard = 10000, size = 0, channels = 0, classes = 0, threads = 0,
         max_pixels = 0;
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
        if (!strcmp(a, "--check")) check = v;
        else if (!strcmp(a, "--fmnist")) fmnist = v;
        else if (!strcmp(a, "--image-dir") || !strcmp(a, "--png-dir")) image_dir = v;
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
        else if (!strcmp(a, "--resize")) resize = v;
        else if (!strcmp(a, "--threads")) threads = prep_int(a, v, 1, 4096);
        else if (!strcmp(a, "--max-pixels")) max_pixels = prep_int(a, v, 1, 1L << 30); /* 32768^2: the side limit */
        else {
            char msg[128];
            snprintf(msg, sizeof msg, "unknown option %s", a);
            prep_usage(msg);
        }
    }
    if (check) return prep_check(check);
    if ((fmnist != NULL) + (image_dir != NULL) + (synthetic != 0) != 1)
        prep_usage("give exactly one of --fmnist, --image-dir (or --png-dir), --synthetic");
    if (!out) prep_usage("--out is required");
    if (strcmp(split, "train") && strcmp(split, "test")) prep_usage("--split is train or test");
    if ((resize || threads || max_pixels) && !image_dir)
        prep_usage("--resize, --threads and --max-pixels are for --image-dir");
    if (resize && strcmp(resize, "center-crop") && strcmp(resize, "none"))
        prep_usage("--resize is center-crop (ADM's center_crop_arr, the default) or none (centre without resampling)");
    if (image_dir) {
        if (!size) prep_usage("--image-dir needs --size");
        if (!channels) channels = 3;
        if (channels != 1 && channels != 3) prep_usage("--image-dir takes --channels 1 or 3");
    } else if (synthetic && (!size || !channels || !classes)) {
        prep_usage("--synthetic needs --size, --channels and --classes");
    }

    Comm comm = {.rank = 0, .world = 1, .local_rank = 0, .local_size = 1};
    int mpi = prep_launched_by_mpirun();
    if (mpi) comm_init(&comm, &argc, &argv);
    int rc = 0;
    if (image_dir) {
        PrepFolderOpts o = {.dir = image_dir, .out = out, .prefix = prefix ? prefix : "images", .size = (int)size,
                            .channels = (int)channels, .per_shard = per_shard,
                            .resize = resize && !strcmp(resize, "none") ? PREP_RESIZE_NONE : PREP_RESIZE_CENTER_CROP,
                            .threads = threads ? (int)threads : prep_default_threads(&comm),
                            .max_pixels = (size_t)max_pixels};
        rc = prep_folder_run(&o, &comm);
    } else if (comm.rank == 0) {
        prep_single(fmnist, split, (int)canvas, synthetic, (int)size, (int)channels, (int)classes, seed, out, prefix,
                    per_shard);
    }
    if (mpi) {
        comm_barrier(&comm);
        comm_finalize(&comm);
    }
    return rc;
}
