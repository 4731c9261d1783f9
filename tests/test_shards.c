/* tests/test_shards.c — HDF5 shards, the streaming loader, PNG files and the
 * jit-prep tool. Every file a test needs is made here, in a mkdtemp folder
 * under /tmp that is removed when the test process exits.
 *
 * Error tests expect exit code 1 and also check, in an atexit hook run after
 * check_fail, that the message on stderr names the offending file (the hook
 * turns a message without the name into exit code 3, failing the test). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <hdf5.h>
#include <png.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/rng.h"
#include "io/fsutil.h"
#include "io/png.h"
#include "io/shards.h"

#ifndef JIT_PREP_BIN
#define JIT_PREP_BIN "jit-prep"
#endif

/* ---- temporary folder, removed at exit ---- */

static char test_dir[64];

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static void rm_test_dir(void) {
    if (test_dir[0]) nftw(test_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *tmp_dir(void) {
    if (!test_dir[0]) {
        strcpy(test_dir, "/tmp/test_shards_XXXXXX");
        cr_assert(mkdtemp(test_dir) != NULL);
        atexit(rm_test_dir);
    }
    return test_dir;
}

/* tmp_path("a/b.h5") -> "<tmp>/a/b.h5" in a rotating static buffer. */
static const char *tmp_path(const char *rel) {
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, 512, "%s/%s", tmp_dir(), rel);
    return b;
}

static void make_dir(const char *rel) { mkdir(tmp_path(rel), 0777); }

/* ---- error messages must name the file ---- */

static char err_needle[512], err_file[600];
static int err_saved_fd = -1;

static void err_check_at_exit(void) {
    fflush(stderr);
    char buf[8192] = {0};
    int fd = open(err_file, O_RDONLY);
    ssize_t got = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) close(fd);
    if (got > 0 && write(err_saved_fd, buf, (size_t)got) < 0) _exit(4);
    if (!strstr(buf, err_needle)) {
        dprintf(err_saved_fd, "test: the error message does not mention '%s'\n", err_needle);
        rm_test_dir(); /* _exit skips the other atexit hooks */
        _exit(3);
    }
}

/* From here on stderr goes to a file; at exit it must contain needle. */
static void expect_error_mentions(const char *needle) {
    snprintf(err_needle, sizeof err_needle, "%s", needle);
    snprintf(err_file, sizeof err_file, "%s/stderr.txt", tmp_dir());
    fflush(stderr);
    err_saved_fd = dup(2);
    int fd = open(err_file, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    cr_assert(fd >= 0);
    dup2(fd, 2);
    close(fd);
    atexit(err_check_at_exit);
}

/* ---- source data ---- */

static const char *const class_names8[8] = {"zero", "one", "two", "three", "four", "five", "six", "seven"};

typedef struct Src {
    int64_t n;
    int C, H, W, K;
    uint8_t *img;
    int *lab;
} Src;

/* Random images (all distinct and not mirror-symmetric, with overwhelming probability) and labels. */
static Src src_make(int64_t n, int C, int H, int W, int K, uint64_t seed) {
    Src s = {n, C, H, W, K, NULL, NULL};
    size_t m = (size_t)n * C * H * W;
    s.img = core_malloc(m);
    s.lab = core_malloc(sizeof(int) * (size_t)n);
    for (size_t i = 0; i < m; i++) s.img[i] = (uint8_t)(rng_uniform(seed, RNG_STREAM_TEST, i) * 256.0f);
    for (int64_t i = 0; i < n; i++) s.lab[i] = (int)(rng_uniform(seed, RNG_STREAM_TEST + 1, (uint64_t)i) * K) % K;
    return s;
}

static void src_free(Src *s) {
    core_free(s->img);
    core_free(s->lab);
}

static int src_write(const Src *s, const char *dir_rel, const char *prefix, int64_t per_shard) {
    return shards_write(tmp_path(dir_rel), prefix, s->img, s->lab, s->n, s->C, s->H, s->W, per_shard, s->K,
                        class_names8);
}

static float to_float(uint8_t v) { return (float)v / 127.5f - 1.0f; }

/* Which source sample is x (exactly x/127.5-1 of its bytes, maybe mirrored)? -1 if none. */
static int64_t ident(const Src *s, const float *x, int *flipped) {
    size_t m = (size_t)s->C * s->H * s->W;
    for (int64_t j = 0; j < s->n; j++) {
        const uint8_t *p = s->img + (size_t)j * m;
        int same = 1, mirror = 1;
        for (int r = 0; r < s->C * s->H && (same || mirror); r++)
            for (int w = 0; w < s->W; w++) {
                float v = x[(size_t)r * s->W + w];
                if (v != to_float(p[(size_t)r * s->W + w])) same = 0;
                if (v != to_float(p[(size_t)r * s->W + s->W - 1 - w])) mirror = 0;
            }
        if (same || mirror) {
            if (flipped) *flipped = !same;
            return j;
        }
    }
    return -1;
}

/* steps batches of loader L into imgs / labs (contiguous). */
static void take(Loader *L, int steps, int batch, size_t m, float *imgs, int *labs) {
    for (int t = 0; t < steps; t++) loader_next(L, imgs + (size_t)t * batch * m, labs + (size_t)t * batch);
}

/* ---- shards and the loader ---- */

Test(shards, write_open_and_one_epoch_is_the_source) {
    Src s = src_make(96, 1, 5, 7, 5, 1);
    cr_assert_eq(src_write(&s, "set", "part", 40), 3);

    ShardSet set;
    shardset_open(&set, tmp_path("set"));
    cr_assert_eq(set.n_files, 3);
    cr_assert_eq(set.total, 96);
    cr_assert_eq(set.counts[0], 40);
    cr_assert_eq(set.counts[2], 16);
    cr_assert(strstr(set.paths[0], "part-00000.h5") && strstr(set.paths[2], "part-00002.h5"));
    cr_assert_eq(set.channels, 1);
    cr_assert_eq(set.height, 5);
    cr_assert_eq(set.width, 7);
    cr_assert_eq(set.num_classes, 5);
    for (int k = 0; k < 5; k++) cr_assert_str_eq(set.class_names[k], class_names8[k]);

    int B = 8;
    Loader *L = loader_create(&set, B, 0, 1, 42, 0, 3);
    cr_assert_eq(loader_steps_per_epoch(L), 12);
    size_t m = 35;
    float *x = core_malloc(sizeof(float) * 96 * m);
    int *y = core_malloc(sizeof(int) * 96);
    take(L, 12, B, m, x, y);
    int seen[96] = {0};
    for (int i = 0; i < 96; i++) {
        int flipped = -1;
        int64_t j = ident(&s, x + i * m, &flipped);
        cr_assert(j >= 0, "sample %d of the epoch is no source image", i);
        cr_assert_eq(flipped, 0, "hflip is off but sample %d is mirrored", i);
        cr_assert_eq(y[i], s.lab[j], "label of source %lld", (long long)j);
        seen[j]++;
    }
    for (int j = 0; j < 96; j++) cr_assert_eq(seen[j], 1, "source %d seen %d times in one epoch", j, seen[j]);
    LoaderPos p = loader_position(L);
    cr_assert(p.epoch == 1 && p.offset == 0);
    loader_free(L);
    shardset_close(&set);

    /* A single file and a glob name the same data. */
    shardset_open(&set, tmp_path("set/part-00001.h5"));
    cr_assert(set.n_files == 1 && set.total == 40);
    shardset_close(&set);
    shardset_open(&set, tmp_path("set/part-0000[02].h5"));
    cr_assert(set.n_files == 2 && set.total == 56 && strstr(set.paths[1], "part-00002.h5"));
    shardset_close(&set);
    core_free(x);
    core_free(y);
    src_free(&s);
}

/* Ranks of `world` with batch B together give what 1 rank with world*B gives, batch by batch. */
static void check_world(const ShardSet *set, const Src *s, int B, int world, int steps, uint64_t seed, int hflip) {
    size_t m = (size_t)s->C * s->H * s->W;
    int G = B * world;
    float *ref = core_malloc(sizeof(float) * (size_t)steps * G * m), *part = core_malloc(sizeof(float) * B * m);
    int *rlab = core_malloc(sizeof(int) * (size_t)steps * G), *plab = core_malloc(sizeof(int) * B);
    Loader *one = loader_create(set, G, 0, 1, seed, hflip, 2);
    take(one, steps, G, m, ref, rlab);
    loader_free(one);
    for (int r = 0; r < world; r++) {
        Loader *L = loader_create(set, B, r, world, seed, hflip, 2);
        cr_assert_eq(loader_steps_per_epoch(L), (uint64_t)(s->n / G));
        for (int t = 0; t < steps; t++) {
            loader_next(L, part, plab);
            size_t at = (size_t)t * G + (size_t)r * B;
            cr_assert(!memcmp(part, ref + at * m, sizeof(float) * B * m), "world %d rank %d step %d: images differ",
                      world, r, t);
            cr_assert(!memcmp(plab, rlab + at, sizeof(int) * B), "world %d rank %d step %d: labels differ", world,
                      r, t);
        }
        loader_free(L);
    }
    /* Within each epoch, the steps cover distinct samples: only the remainder is dropped. */
    int64_t per_epoch = (s->n / G) * G;
    for (int64_t e0 = 0; e0 + per_epoch <= (int64_t)steps * G; e0 += per_epoch) {
        int *seen = calloc((size_t)s->n, sizeof(int));
        for (int64_t i = 0; i < per_epoch; i++) {
            int64_t j = ident(s, ref + (size_t)(e0 + i) * m, NULL);
            cr_assert(j >= 0);
            cr_assert_eq(seen[j]++, 0, "world %d: source %lld twice in an epoch", world, (long long)j);
        }
        free(seen);
    }
    core_free(ref);
    core_free(part);
    core_free(rlab);
    core_free(plab);
}

Test(shards, ranks_are_disjoint_and_add_up_to_one_rank) {
    Src s = src_make(100, 2, 4, 3, 3, 2);
    src_write(&s, "set", "s", 30);
    ShardSet set;
    shardset_open(&set, tmp_path("set"));
    check_world(&set, &s, 6, 2, 8 * 2 + 3, 7, 0); /* 8 steps/epoch: 96 of 100, into epoch 2 */
    check_world(&set, &s, 6, 3, 5 * 2 + 2, 7, 0); /* 5 steps/epoch: 90 of 100 */
    check_world(&set, &s, 5, 2, 10 + 4, 9, 1);    /* exact division, with flips */
    shardset_close(&set);
    src_free(&s);
}

Test(shards, position_save_seek_and_resume) {
    Src s = src_make(50, 1, 3, 4, 2, 3);
    src_write(&s, "set", "s", 17);
    ShardSet set;
    shardset_open(&set, tmp_path("set"));
    const int B = 4, N = 20;
    const size_t m = 12;
    float *a = core_malloc(sizeof(float) * N * B * m), *b = core_malloc(sizeof(float) * N * B * m);
    int *la = core_malloc(sizeof(int) * N * B), *lb = core_malloc(sizeof(int) * N * B);

    Loader *A = loader_create(&set, B, 0, 1, 5, 1, 4);
    take(A, 5, B, m, a, la);
    LoaderPos p5 = loader_position(A);
    cr_assert(p5.epoch == 0 && p5.offset == 20);
    take(A, N, B, m, a, la); /* 12 steps per epoch: crosses two epoch boundaries */
    cr_assert(loader_position(A).epoch == 2);

    Loader *Bl = loader_create(&set, B, 0, 1, 5, 1, 2);
    loader_seek(Bl, p5);
    take(Bl, N, B, m, b, lb);
    cr_assert(!memcmp(a, b, sizeof(float) * N * B * m) && !memcmp(la, lb, sizeof(int) * N * B),
              "a fresh loader seeked to (0, 20) differs");

    /* Seek on the same loader, after its ring has filled: the prefetched batches go. */
    usleep(20000);
    loader_seek(A, p5);
    cr_assert(loader_position(A).epoch == p5.epoch && loader_position(A).offset == p5.offset);
    take(A, N, B, m, b, lb);
    cr_assert(!memcmp(a, b, sizeof(float) * N * B * m), "seek on the same loader did not drop prefetched batches");

    /* The epoch boundary: after 12 steps the position is (1, 0), and an offset
     * in the dropped remainder (48 + 4 > 50) means the next epoch. */
    loader_seek(A, (LoaderPos){0, 11 * B});
    take(A, 1, B, m, b, lb);
    LoaderPos pe = loader_position(A);
    cr_assert(pe.epoch == 1 && pe.offset == 0, "position after the last step is (%llu, %llu)",
              (unsigned long long)pe.epoch, (unsigned long long)pe.offset);
    take(A, 1, B, m, b, lb);
    loader_seek(Bl, (LoaderPos){0, 48});
    pe = loader_position(Bl);
    cr_assert(pe.epoch == 1 && pe.offset == 0);
    take(Bl, 1, B, m, b + B * m, lb + B);
    cr_assert(!memcmp(b, b + B * m, sizeof(float) * B * m), "(0, 48) is not the start of epoch 1");
    /* p5 + 7 steps (from the run above) is exactly (1, 0): same batch. */
    cr_assert(!memcmp(a + 7 * B * m, b, sizeof(float) * B * m));

    /* A position from 2 ranks x 2 resumes on 1 rank x 4 (and from an offset that is not a multiple of 4). */
    Loader *r0 = loader_create(&set, 2, 0, 2, 5, 1, 1), *r1 = loader_create(&set, 2, 1, 2, 5, 1, 1);
    float *x0 = core_malloc(sizeof(float) * 2 * m), *x1 = core_malloc(sizeof(float) * 2 * m);
    int y0[2], y1[2];
    loader_seek(r0, (LoaderPos){0, 6});
    loader_seek(r1, (LoaderPos){0, 6});
    loader_next(r0, x0, y0);
    loader_next(r1, x1, y1);
    loader_seek(Bl, (LoaderPos){0, 6});
    take(Bl, 1, B, m, b, lb);
    cr_assert(!memcmp(b, x0, sizeof(float) * 2 * m) && !memcmp(b + 2 * m, x1, sizeof(float) * 2 * m));
    cr_assert(lb[0] == y0[0] && lb[1] == y0[1] && lb[2] == y1[0] && lb[3] == y1[1]);
    LoaderPos q0 = loader_position(r0), q1 = loader_position(Bl);
    cr_assert(q0.epoch == q1.epoch && q0.offset == q1.offset && q0.offset == 10);

    loader_free(r0);
    loader_free(r1);
    loader_free(A);
    loader_free(Bl);
    core_free(x0);
    core_free(x1);
    core_free(a);
    core_free(b);
    core_free(la);
    core_free(lb);
    shardset_close(&set);
    src_free(&s);
}

/* Source indices of the first `epochs` epochs (batch 1, world 1). */
static void order(const ShardSet *set, const Src *s, uint64_t seed, int epochs, int64_t *out) {
    size_t m = (size_t)s->C * s->H * s->W;
    float *x = core_malloc(sizeof(float) * m);
    int y;
    Loader *L = loader_create(set, 1, 0, 1, seed, 0, 8);
    for (int64_t i = 0; i < epochs * s->n; i++) {
        loader_next(L, x, &y);
        out[i] = ident(s, x, NULL);
    }
    loader_free(L);
    core_free(x);
}

Test(shards, seeds_pick_the_permutation) {
    Src s = src_make(64, 1, 4, 4, 4, 4);
    src_write(&s, "set", "s", 64);
    ShardSet set;
    shardset_open(&set, tmp_path("set"));
    int64_t a[128], b[128], c[128];
    order(&set, &s, 11, 2, a);
    order(&set, &s, 11, 2, b);
    order(&set, &s, 12, 2, c);
    cr_assert(!memcmp(a, b, sizeof a), "same seed, different order");
    cr_assert(memcmp(a, c, sizeof a), "seeds 11 and 12 gave the same order");
    cr_assert(memcmp(a, a + 64, sizeof(int64_t) * 64), "epochs 0 and 1 have the same order");
    int64_t fixed = 0;
    for (int i = 0; i < 64; i++) fixed += a[i] == i;
    cr_assert_lt(fixed, 10, "the permutation looks like the identity (%lld fixed points)", (long long)fixed);
    shardset_close(&set);
    src_free(&s);
}

Test(shards, hflip_mirrors_about_half_the_same_way_on_any_rank_count) {
    Src s = src_make(200, 3, 4, 5, 4, 5);
    src_write(&s, "set", "s", 64);
    ShardSet set;
    shardset_open(&set, tmp_path("set"));
    const int B = 10, steps = 40; /* two epochs */
    const size_t m = 60;
    float *x = core_malloc(sizeof(float) * steps * B * m);
    int *y = core_malloc(sizeof(int) * steps * B);
    Loader *L = loader_create(&set, B, 0, 1, 3, 1, 4);
    take(L, steps, B, m, x, y);
    loader_free(L);
    int flips = 0;
    for (int i = 0; i < steps * B; i++) {
        int f = -1;
        int64_t j = ident(&s, x + (size_t)i * m, &f);
        cr_assert(j >= 0, "sample %d is neither a source image nor its mirror", i);
        cr_assert_eq(y[i], s.lab[j]);
        flips += f;
    }
    cr_assert(flips > 140 && flips < 260, "%d of 400 samples flipped", flips);
    check_world(&set, &s, 5, 2, steps, 3, 1);
    check_world(&set, &s, 2, 5, steps, 3, 1);
    core_free(x);
    core_free(y);
    shardset_close(&set);
    src_free(&s);
}

Test(shards, loader_free_while_prefetching_and_tiny_rings) {
    Src s = src_make(40, 1, 2, 2, 2, 6);
    src_write(&s, "set", "s", 40);
    ShardSet set;
    shardset_open(&set, tmp_path("set"));
    for (int P = 1; P <= 3; P++) {
        Loader *L = loader_create(&set, 40, 0, 1, 1, 1, P); /* one batch is the whole set */
        float x[160];
        int y[40];
        for (int i = 0; i < 5; i++) loader_next(L, x, y);
        cr_assert_eq(loader_position(L).epoch, 5);
        loader_seek(L, (LoaderPos){2, 0});
        loader_free(L); /* right after a seek, with the producer busy */
    }
    Loader *L = loader_create(&set, 3, 0, 1, 1, 0, 2);
    loader_free(L); /* never used */
    shardset_close(&set);
    src_free(&s);
}

/* ---- the prefetch thread on exits that end the process ---- */

static int threads_at_start = -1;
static pthread_t main_thread;

static int thread_count(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    if (f) fclose(f);
    return n;
}

/* At exit (after the loaders' own exit handler, registered later): the
 * process ends on the test's thread with no prefetch thread left; else
 * exit code 5, failing the test. */
static void threads_check_at_exit(void) {
    int now = thread_count();
    if (now != threads_at_start || !pthread_equal(pthread_self(), main_thread)) {
        fprintf(stderr, "test: at exit %d threads (%d at the start), %s the test's thread\n", now, threads_at_start,
                pthread_equal(pthread_self(), main_thread) ? "on" : "not on");
        _exit(5);
    }
}

/* A loader of batch 4 over one 64-image shard (tmp "set/s-00000.h5"),
 * prefetching, with the thread check armed before it starts. */
static Loader *loader_checked_at_exit(uint64_t seed, int prefetch) {
    static Src s;
    static ShardSet set;
    s = src_make(64, 1, 8, 8, 3, seed);
    src_write(&s, "set", "s", 64);
    shardset_open(&set, tmp_path("set"));
    threads_at_start = thread_count();
    main_thread = pthread_self();
    cr_assert(threads_at_start > 0);
    atexit(threads_check_at_exit);
    return loader_create(&set, 4, 0, 1, 7, 0, prefetch);
}

/* A shard cut short under a running loader: the batches made before are
 * handed out, then loader_next stops on the caller's thread (the one that
 * may abort an MPI job) naming the file, the producer joined. */
Test(shards_errors, shard_damaged_while_loading, .exit_code = 1, .timeout = 30) {
    Loader *L = loader_checked_at_exit(2, 2);
    float x[4 * 64];
    int y[4];
    loader_next(L, x, y);
    const char *p = tmp_path("set/s-00000.h5");
    struct stat st;
    cr_assert(stat(p, &st) == 0);
    cr_assert(truncate(p, st.st_size / 2) == 0); /* half of the images' chunks are gone */
    expect_error_mentions(p);
    for (int i = 0; i < 16; i++) loader_next(L, x, y); /* one epoch: every image */
    cr_assert_fail("a whole epoch was read from a shard cut in half");
}

/* Any other failed check while a loader prefetches (here one that holds
 * the HDF5 lock the producer waits for): the exit handler stops and joins
 * the producer, no hang. */
Test(shards_errors, failed_check_while_prefetching, .exit_code = 1, .timeout = 30) {
    Loader *L = loader_checked_at_exit(3, 4);
    io_hdf5_lock(); /* the producer's next read waits for it */
    usleep(50 * 1000);
    expect_error_mentions("a check failed while the loader prefetched");
    CHECK(L == NULL, "a check failed while the loader prefetched");
}

/* ---- errors: exit 1 with a message naming the file ---- */

typedef struct RawShard {
    hid_t img_type;
    int rank; /* of /images: 4 normally */
    int n, C, H, W, K;
    hid_t lab_type;
    int n_labels;
    const int *labels; /* NULL: 0, 1, ... mod K */
    const char *format; /* NULL: no attribute */
} RawShard;

static RawShard raw_default(void) {
    return (RawShard){H5T_STD_U8LE, 4, 6, 1, 3, 3, 3, H5T_STD_I32LE, 6, NULL, SHARD_FORMAT};
}

/* A shard written with the HDF5 API directly, with the flaws asked for. */
static void raw_write(const char *path, RawShard r) {
    io_hdf5_lock();
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert(f >= 0);
    hsize_t d4[4] = {(hsize_t)r.n, (hsize_t)r.C, (hsize_t)r.H, (hsize_t)r.W}, d3[3] = {(hsize_t)r.n, (hsize_t)r.H,
                                                                                      (hsize_t)r.W};
    hid_t sp = r.rank == 4 ? H5Screate_simple(4, d4, NULL) : H5Screate_simple(3, d3, NULL);
    hid_t d = H5Dcreate2(f, "images", r.img_type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    float *zeros = calloc((size_t)r.n * r.C * r.H * r.W, sizeof(float));
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros);
    free(zeros);
    H5Dclose(d);
    H5Sclose(sp);
    hsize_t nl = (hsize_t)r.n_labels;
    int *lab = malloc(sizeof(int) * (size_t)(r.n_labels + 1));
    for (int i = 0; i < r.n_labels; i++) lab[i] = r.labels ? r.labels[i] : i % r.K;
    sp = H5Screate_simple(1, &nl, NULL);
    d = H5Dcreate2(f, "labels", r.lab_type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, lab);
    free(lab);
    H5Dclose(d);
    H5Sclose(sp);
    sp = H5Screate(H5S_SCALAR);
    if (r.format) { /* a fixed-length string, as another writer might make it */
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, strlen(r.format));
        hid_t a = H5Acreate2(f, "format", t, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, t, r.format);
        H5Aclose(a);
        H5Tclose(t);
    }
    const char *ints[4] = {"num_classes", "channels", "height", "width"};
    int vals[4] = {r.K, r.C, r.H, r.W};
    for (int i = 0; i < 4; i++) {
        hid_t a = H5Acreate2(f, ints[i], H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT, &vals[i]);
        H5Aclose(a);
    }
    H5Sclose(sp);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 8);
    hsize_t nk = (hsize_t)r.K;
    sp = H5Screate_simple(1, &nk, NULL);
    char *names = calloc((size_t)r.K, 8);
    for (int k = 0; k < r.K; k++) snprintf(names + 8 * k, 8, "k%d", k % 100);
    hid_t a = H5Acreate2(f, "class_names", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, names);
    free(names);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    H5Fclose(f);
    io_hdf5_unlock();
}

Test(shards, raw_shard_with_fixed_strings_and_i64_attributes_is_fine) {
    raw_write(tmp_path("ok.h5"), raw_default());
    ShardSet set;
    shardset_open(&set, tmp_path("ok.h5"));
    cr_assert(set.total == 6 && set.num_classes == 3 && !strcmp(set.class_names[2], "k2"));
    shardset_close(&set);
}

static void open_expecting_error(const char *spec, const char *needle) {
    expect_error_mentions(needle);
    ShardSet set;
    shardset_open(&set, spec);
}

Test(shards_errors, missing_file, .exit_code = 1) {
    open_expecting_error(tmp_path("nope.h5"), tmp_path("nope.h5"));
}

Test(shards_errors, glob_without_match, .exit_code = 1) {
    open_expecting_error(tmp_path("nope-*.h5"), tmp_path("nope-*.h5"));
}

Test(shards_errors, empty_directory, .exit_code = 1) {
    make_dir("empty");
    open_expecting_error(tmp_path("empty"), tmp_path("empty"));
}

Test(shards_errors, truncated_shard, .exit_code = 1) {
    Src s = src_make(50, 1, 8, 8, 3, 1);
    src_write(&s, "set", "s", 50);
    const char *p = tmp_path("set/s-00000.h5");
    struct stat st;
    cr_assert(stat(p, &st) == 0);
    cr_assert(truncate(p, st.st_size / 2) == 0);
    open_expecting_error(tmp_path("set"), p);
}

Test(shards_errors, not_an_hdf5_file, .exit_code = 1) {
    const char *p = tmp_path("text.h5");
    FILE *f = fopen(p, "w");
    fputs("this is not HDF5\n", f);
    fclose(f);
    open_expecting_error(p, p);
}

Test(shards_errors, wrong_format_attribute, .exit_code = 1) {
    RawShard r = raw_default();
    r.format = "jit-shard-v0";
    raw_write(tmp_path("f.h5"), r);
    open_expecting_error(tmp_path("f.h5"), tmp_path("f.h5"));
}

Test(shards_errors, missing_format_attribute, .exit_code = 1) {
    RawShard r = raw_default();
    r.format = NULL;
    raw_write(tmp_path("f.h5"), r);
    open_expecting_error(tmp_path("f.h5"), tmp_path("f.h5"));
}

Test(shards_errors, float_images, .exit_code = 1) {
    RawShard r = raw_default();
    r.img_type = H5T_IEEE_F32LE;
    raw_write(tmp_path("f.h5"), r);
    open_expecting_error(tmp_path("f.h5"), tmp_path("f.h5"));
}

Test(shards_errors, images_3d, .exit_code = 1) {
    RawShard r = raw_default();
    r.rank = 3;
    raw_write(tmp_path("f.h5"), r);
    open_expecting_error(tmp_path("f.h5"), tmp_path("f.h5"));
}

Test(shards_errors, labels_out_of_range, .exit_code = 1) {
    RawShard r = raw_default();
    int lab[6] = {0, 1, 2, 3, 0, 1}; /* 3 is not in [0, 3) */
    r.labels = lab;
    raw_write(tmp_path("f.h5"), r);
    open_expecting_error(tmp_path("f.h5"), tmp_path("f.h5"));
}

Test(shards_errors, negative_label, .exit_code = 1) {
    RawShard r = raw_default();
    int lab[6] = {0, 1, 2, -1, 0, 1};
    r.labels = lab;
    raw_write(tmp_path("f.h5"), r);
    open_expecting_error(tmp_path("f.h5"), tmp_path("f.h5"));
}

Test(shards_errors, labels_wrong_length, .exit_code = 1) {
    RawShard r = raw_default();
    r.n_labels = 5;
    raw_write(tmp_path("f.h5"), r);
    open_expecting_error(tmp_path("f.h5"), tmp_path("f.h5"));
}

Test(shards_errors, float_labels, .exit_code = 1) {
    RawShard r = raw_default();
    r.lab_type = H5T_IEEE_F64LE;
    raw_write(tmp_path("f.h5"), r);
    open_expecting_error(tmp_path("f.h5"), tmp_path("f.h5"));
}

Test(shards_errors, shards_with_different_image_sizes, .exit_code = 1) {
    make_dir("mix");
    raw_write(tmp_path("mix/a.h5"), raw_default());
    RawShard r = raw_default();
    r.H = 4;
    raw_write(tmp_path("mix/b.h5"), r);
    open_expecting_error(tmp_path("mix"), tmp_path("mix/b.h5"));
}

Test(shards_errors, shards_with_different_class_counts, .exit_code = 1) {
    make_dir("mix");
    raw_write(tmp_path("mix/a.h5"), raw_default());
    RawShard r = raw_default();
    r.K = 4;
    raw_write(tmp_path("mix/b.h5"), r);
    open_expecting_error(tmp_path("mix/*.h5"), tmp_path("mix/b.h5"));
}

Test(shards_errors, batch_larger_than_the_set, .exit_code = 1) {
    raw_write(tmp_path("f.h5"), raw_default());
    ShardSet set;
    shardset_open(&set, tmp_path("f.h5"));
    expect_error_mentions(tmp_path("f.h5"));
    loader_create(&set, 4, 0, 2, 0, 0, 2); /* 8 > 6 samples */
}

/* ---- PNG ---- */

Test(png, round_trip_gray_and_rgb) {
    for (int c = 1; c <= 3; c += 2) {
        const int w = 7, h = 5;
        uint8_t px[7 * 5 * 3];
        for (int i = 0; i < w * h * c; i++) px[i] = (uint8_t)(i * 37 + c);
        const char *p = tmp_path(c == 1 ? "g.png" : "rgb.png");
        png_write(p, px, w, h, c);
        uint8_t *back;
        int bw, bh, bc;
        png_read(p, &back, &bw, &bh, &bc);
        cr_assert(bw == w && bh == h && bc == c, "got %d x %d x %d", bw, bh, bc);
        cr_assert(!memcmp(back, px, (size_t)w * h * c));
        free(back);
    }
}

/* A PNG of any colour type and depth through libpng, for the conversion tests. */
static void write_png_raw(const char *path, int w, int h, int color, int depth, const uint8_t *data,
                          const png_color *pal, int npal) {
    FILE *fp = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    cr_assert(fp && png && info && !setjmp(png_jmpbuf(png)));
    png_init_io(png, fp);
    png_set_IHDR(png, info, w, h, depth, color, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(png, info, pal, npal);
    png_write_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, (png_bytep)(data + y * rowbytes));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(fp);
}

Test(png, converts_palette_16bit_alpha_and_low_depth) {
    uint8_t *px;
    int w, h, c;
    /* RGBA 16-bit, big-endian samples: alpha dropped, scaled to 8 bits. */
    uint8_t rgba16[2 * 8] = {0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x12, 0x34, /* pixel 0 */
                             0x00, 0x00, 0x40, 0x40, 0xff, 0xff, 0x00, 0x00};
    write_png_raw(tmp_path("rgba16.png"), 2, 1, PNG_COLOR_TYPE_RGB_ALPHA, 16, rgba16, NULL, 0);
    png_read(tmp_path("rgba16.png"), &px, &w, &h, &c);
    cr_assert(w == 2 && h == 1 && c == 3);
    cr_assert(px[0] == 255 && px[1] == 128 && px[2] == 0 && px[3] == 0 && px[4] == 64 && px[5] == 255,
              "got %d %d %d %d %d %d", px[0], px[1], px[2], px[3], px[4], px[5]);
    free(px);
    /* Palette (4-bit indices) -> RGB. */
    png_color pal[3] = {{10, 20, 30}, {40, 50, 60}, {70, 80, 90}};
    uint8_t idx[1] = {0x21}; /* pixels 2, 1 */
    write_png_raw(tmp_path("pal.png"), 2, 1, PNG_COLOR_TYPE_PALETTE, 4, idx, pal, 3);
    png_read(tmp_path("pal.png"), &px, &w, &h, &c);
    cr_assert(w == 2 && c == 3 && px[0] == 70 && px[1] == 80 && px[2] == 90 && px[3] == 40);
    free(px);
    /* Gray + alpha -> gray. */
    uint8_t ga[4] = {100, 0, 200, 255};
    write_png_raw(tmp_path("ga.png"), 2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, ga, NULL, 0);
    png_read(tmp_path("ga.png"), &px, &w, &h, &c);
    cr_assert(w == 2 && c == 1 && px[0] == 100 && px[1] == 200);
    free(px);
    /* 1-bit gray -> 0 / 255. */
    uint8_t bits[1] = {0xa0}; /* 1 0 1 */
    write_png_raw(tmp_path("g1.png"), 3, 1, PNG_COLOR_TYPE_GRAY, 1, bits, NULL, 0);
    png_read(tmp_path("g1.png"), &px, &w, &h, &c);
    cr_assert(w == 3 && c == 1 && px[0] == 255 && px[1] == 0 && px[2] == 255);
    free(px);
}

static const char *write_test_png(const char *rel, int w, int h, int c) {
    uint8_t *px = malloc((size_t)w * h * c);
    for (int i = 0; i < w * h * c; i++) px[i] = (uint8_t)(rng_uniform(9, RNG_STREAM_TEST, i) * 256);
    const char *p = tmp_path(rel);
    png_write(p, px, w, h, c);
    free(px);
    return p;
}

Test(png, truncated_file_stops_with_its_name, .exit_code = 1) {
    const char *p = write_test_png("t.png", 64, 64, 3);
    struct stat st;
    cr_assert(stat(p, &st) == 0);
    cr_assert(truncate(p, st.st_size / 2) == 0);
    expect_error_mentions(p);
    uint8_t *px;
    int w, h, c;
    png_read(p, &px, &w, &h, &c);
}

Test(png, corrupt_data_stops_with_its_name, .exit_code = 1) {
    const char *p = write_test_png("c.png", 64, 64, 1);
    FILE *f = fopen(p, "r+b");
    fseek(f, 200, SEEK_SET);
    for (int i = 0; i < 64; i++) fputc(0x5a, f); /* inside IDAT: its CRC no longer matches */
    fclose(f);
    expect_error_mentions(p);
    uint8_t *px;
    int w, h, c;
    png_read(p, &px, &w, &h, &c);
}

Test(png, not_a_png_stops_with_its_name, .exit_code = 1) {
    const char *p = tmp_path("x.png");
    FILE *f = fopen(p, "w");
    fputs("GIF89a", f);
    fclose(f);
    expect_error_mentions(p);
    uint8_t *px;
    int w, h, c;
    png_read(p, &px, &w, &h, &c);
}

Test(png, grid_layout_and_value_mapping) {
    const int n = 5, C = 3, H = 4, W = 6, cols = 3, pad = 2;
    float *img = malloc(sizeof(float) * n * C * H * W);
    for (int i = 0; i < n * C * H * W; i++) img[i] = -1.0f + 2.0f * (float)(i % 7) / 6.0f;
    img[0] = 3.0f;   /* clamps to 255 */
    img[1] = -5.0f;  /* clamps to 0 */
    img[2] = 0.0f;   /* 127.5 -> 128 */
    png_write_grid(tmp_path("grid.png"), img, n, C, H, W, cols, pad);
    uint8_t *px;
    int w, h, c;
    png_read(tmp_path("grid.png"), &px, &w, &h, &c);
    cr_assert(w == cols * W + (cols + 1) * pad && h == 2 * H + 3 * pad && c == 3, "grid is %d x %d x %d", w, h, c);
    cr_assert_eq(px[0], 0, "border is 0");
    /* image 0, channel 0, row 0 starts at (pad, pad) */
    const uint8_t *o = px + ((size_t)pad * w + pad) * 3;
    cr_assert(o[0] == 255 && o[3] == 0 && o[6] == 128, "got %d %d %d", o[0], o[3], o[6]);
    /* image 4 (row 1, col 1), channel 2, pixel (3, 5) */
    int i = 4, ch = 2, y = 3, x = 5;
    float v = img[((i * C + ch) * H + y) * W + x];
    const uint8_t *q = px + ((size_t)(pad + 1 * (H + pad) + y) * w + pad + 1 * (W + pad) + x) * 3 + ch;
    cr_assert_eq(*q, (uint8_t)lrintf((v + 1.0f) * 127.5f));
    /* the empty sixth cell is 0 */
    cr_assert_eq(px[((size_t)(pad + H + pad + 1) * w + pad + 2 * (W + pad) + 1) * 3], 0);
    free(px);
    free(img);
    png_write_grid(tmp_path("grid1.png"), img = calloc(2 * 9, sizeof(float)), 2, 1, 3, 3, 4, 0);
    png_read(tmp_path("grid1.png"), &px, &w, &h, &c);
    cr_assert(w == 12 && h == 3 && c == 1 && px[0] == 128);
    free(px);
    free(img);
}

/* ---- jit-prep ---- */

/* Run jit-prep with args; returns its exit code, output (stdout+stderr) into out. */
static int run_prep(const char *args, char *out, size_t cap) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", JIT_PREP_BIN, args);
    FILE *p = popen(cmd, "r");
    cr_assert(p != NULL);
    size_t got = fread(out, 1, cap - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(prep, synthetic_end_to_end) {
    char out[8192], args[1024];
    snprintf(args, sizeof args, "--synthetic 50 --out %s --size 8 --channels 3 --classes 4 --per-shard 20 --seed 3",
             tmp_path("syn"));
    cr_assert_eq(run_prep(args, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "50 samples") && strstr(out, "4 classes") && strstr(out, "synthetic-00002.h5"), "%s", out);
    ShardSet set;
    shardset_open(&set, tmp_path("syn"));
    cr_assert(set.n_files == 3 && set.total == 50 && set.channels == 3 && set.height == 8 && set.width == 8);
    cr_assert(set.num_classes == 4 && !strcmp(set.class_names[3], "class3"));
    Loader *L = loader_create(&set, 10, 0, 1, 0, 1, 2);
    float *x = malloc(sizeof(float) * 10 * 192);
    int y[10];
    for (int i = 0; i < 7; i++) loader_next(L, x, y);
    for (int i = 0; i < 10; i++) cr_assert(y[i] >= 0 && y[i] < 4);
    loader_free(L);
    free(x);
    shardset_close(&set);
}

Test(prep, png_dir_pads_and_crops_to_size) {
    make_dir("pngs");
    make_dir("pngs/b_dog");
    make_dir("pngs/a_cat");
    uint8_t g6[36], rgb10[300], rgba8[256];
    for (int i = 0; i < 36; i++) g6[i] = (uint8_t)(i + 1);
    for (int i = 0; i < 300; i++) rgb10[i] = (uint8_t)(i % 251 + 1);
    for (int i = 0; i < 256; i++) rgba8[i] = (uint8_t)(i + 1);
    png_write(tmp_path("pngs/a_cat/1.png"), g6, 6, 6, 1);
    png_write(tmp_path("pngs/a_cat/2.PNG"), rgb10, 10, 10, 3);
    write_png_raw(tmp_path("pngs/b_dog/x.png"), 8, 8, PNG_COLOR_TYPE_RGB_ALPHA, 8, rgba8, NULL, 0);
    FILE *f = fopen(tmp_path("pngs/b_dog/notes.txt"), "w");
    fclose(f);
    char out[8192], args[1024];
    /* --resize none: the old centring without resampling (the default is ADM's centre crop, tests/prep_test.py). */
    snprintf(args, sizeof args, "--png-dir %s --out %s --size 8 --channels 3 --resize none", tmp_path("pngs"),
             tmp_path("pd"));
    cr_assert_eq(run_prep(args, out, sizeof out), 0, "%s", out);
    ShardSet set;
    shardset_open(&set, tmp_path("pd"));
    cr_assert(set.total == 3 && set.num_classes == 2 && set.channels == 3 && set.height == 8);
    cr_assert(!strcmp(set.class_names[0], "a_cat") && !strcmp(set.class_names[1], "b_dog"));
    shardset_close(&set);
    /* The stored images, in folder order: 1.png, 2.PNG (class 0), x.png (class 1). */
    uint8_t img[3][3][8][8];
    int lab[3];
    io_hdf5_lock();
    hid_t fh = H5Fopen(tmp_path("pd/images-00000.h5"), H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(fh, "images", H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, img);
    H5Dclose(d);
    d = H5Dopen2(fh, "labels", H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, lab);
    H5Dclose(d);
    H5Fclose(fh);
    io_hdf5_unlock();
    cr_assert(lab[0] == 0 && lab[1] == 0 && lab[2] == 1);
    /* 6x6 gray centred with a 1-pixel 0 border, replicated to 3 channels */
    cr_assert(img[0][0][0][0] == 0 && img[0][2][7][7] == 0);
    cr_assert(img[0][0][1][1] == 1 && img[0][1][1][1] == 1 && img[0][2][6][6] == 36);
    /* 10x10 RGB cropped by 1 on each side: canvas (0,0) is source (1,1) */
    cr_assert(img[1][0][0][0] == rgb10[(1 * 10 + 1) * 3 + 0] && img[1][2][7][7] == rgb10[(8 * 10 + 8) * 3 + 2]);
    /* RGBA: alpha dropped */
    cr_assert(img[2][0][0][0] == rgba8[0] && img[2][1][0][1] == rgba8[5] && img[2][2][7][7] == rgba8[63 * 4 + 2]);
}

Test(prep, png_dir_with_a_corrupt_png_names_it) {
    make_dir("bad");
    make_dir("bad/c");
    const char *p = write_test_png("bad/c/broken.png", 16, 16, 3);
    cr_assert(truncate(p, 60) == 0);
    char out[8192], args[1024];
    snprintf(args, sizeof args, "--png-dir %s --out %s --size 16", tmp_path("bad"), tmp_path("bad_out"));
    /* The only file is bad: it is named as skipped and, nothing being left, the run fails. */
    cr_assert_eq(run_prep(args, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, p) && strstr(out, "skipped"), "%s", out);
}

Test(prep, bad_arguments_exit_2) {
    char out[8192], args[1024];
    cr_assert_eq(run_prep("", out, sizeof out), 2);
    cr_assert(strstr(out, "usage"), "%s", out);
    cr_assert_eq(run_prep("--synthetic abc --out x --size 8 --channels 1 --classes 2", out, sizeof out), 2);
    cr_assert_eq(run_prep("--synthetic 10 --out x --size 8 --channels 1", out, sizeof out), 2);
    cr_assert_eq(run_prep("--frobnicate 1", out, sizeof out), 2);
    snprintf(args, sizeof args, "--fmnist %s --png-dir %s --out x", tmp_dir(), tmp_dir());
    cr_assert_eq(run_prep(args, out, sizeof out), 2);
    cr_assert_eq(run_prep("--fmnist /x --out y --split valid", out, sizeof out), 2);
}

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

Test(prep, fashion_mnist_test_split) {
    struct stat st;
    if (stat(FMNIST_DIR "/t10k-images-idx3-ubyte.gz", &st) != 0)
        cr_skip_test("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
    char out[8192], args[1024];
    snprintf(args, sizeof args, "--fmnist %s --split test --out %s --per-shard 4000", FMNIST_DIR, tmp_path("fm"));
    cr_assert_eq(run_prep(args, out, sizeof out), 0, "%s", out);
    ShardSet set;
    shardset_open(&set, tmp_path("fm"));
    cr_assert(set.n_files == 3 && set.total == 10000 && set.channels == 1 && set.height == 32 && set.width == 32);
    cr_assert(set.num_classes == 10 && !strcmp(set.class_names[0], "T-shirt/top") &&
              !strcmp(set.class_names[9], "Ankle boot"));
    cr_assert(strstr(set.paths[0], "fmnist-test-00000.h5"));
    Loader *L = loader_create(&set, 100, 0, 1, 0, 0, 2);
    float x[100 * 1024];
    int y[100];
    loader_next(L, x, y);
    /* 28x28 centred on 32x32: the 2-pixel frame is background (0 -> -1). */
    for (int i = 0; i < 100; i++)
        for (int r = 0; r < 32; r++)
            for (int c = 0; c < 32; c++)
                if (r < 2 || r >= 30 || c < 2 || c >= 30) cr_assert_eq(x[i * 1024 + r * 32 + c], -1.0f);
    loader_free(L);
    shardset_close(&set);
}

/* io_mkdirs: parents made, an existing folder is fine, a file in the way is
 * an error that names the path. */
Test(fsutil, mkdirs) {
    char base[] = "/tmp/jit-mkdirs-XXXXXX", path[256], err[512];
    cr_assert_not_null(mkdtemp(base));
    snprintf(path, sizeof path, "%s/a/b/c", base);
    cr_assert_eq(io_mkdirs(path, err, sizeof err), 0, "%s", err);
    struct stat st;
    cr_expect(stat(path, &st) == 0 && S_ISDIR(st.st_mode), "a/b/c was not created");
    cr_expect_eq(io_mkdirs(path, err, sizeof err), 0, "an existing folder: %s", err);
    snprintf(path, sizeof path, "%s/a/file", base);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/a/file/x", base);
    cr_expect_eq(io_mkdirs(path, err, sizeof err), -1, "a file in the way must fail");
    cr_expect(strstr(err, path) != NULL && strstr(err, "cannot create the directory") != NULL, "got '%s'", err);
    snprintf(path, sizeof path, "%s/a/file", base);
    cr_expect_eq(io_mkdirs(path, err, sizeof err), -1, "an existing file is not a folder");
    cr_expect(strstr(err, "not a directory") != NULL, "got '%s'", err);
}
