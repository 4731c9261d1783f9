/* tests/bench/bench_loader.c — images/s of the shard loader alone (batch 32,
 * prefetch 4, hflip on): the caller only takes batches, so the figure is
 * what the prefetch thread delivers (random single-image HDF5 reads, uint8
 * -> float, flips). Shards are made from Fashion-MNIST on a 32x32 canvas
 * (synthetic 32x32x1 when the dataset is not installed) in a temporary
 * directory, so they sit in the page cache: this is the warm-cache rate.
 * A figure, not an assertion. Prints one line:
 *   loader_images_per_s=<float> batch=32 prefetch=4 ...
 *   bench_loader [--steps 4000] [--batch 32] [--prefetch 4] [--shards SPEC] */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/profile.h"
#include "core/rng.h"
#include "io/idx.h"
#include "io/shards.h"

#define BENCH_FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
#define BENCH_FMNIST_LABELS "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz"

/* Shards of Fashion-MNIST (or synthetic) in dir; returns the source name. */
static const char *bench_make_shards(const char *dir) {
    const int S = 32;
    int64_t n;
    uint8_t *img;
    int *lab;
    const char *source;
    struct stat st;
    if (stat(BENCH_FMNIST, &st) == 0 && stat(BENCH_FMNIST_LABELS, &st) == 0) {
        IdxArray im, lb;
        idx_read(BENCH_FMNIST, &im);
        idx_read(BENCH_FMNIST_LABELS, &lb);
        n = im.dims[0];
        int h = im.dims[1], w = im.dims[2], oy = (S - h) / 2, ox = (S - w) / 2;
        img = core_calloc((size_t)n * S * S);
        lab = core_malloc(sizeof(int) * (size_t)n);
        for (int64_t i = 0; i < n; i++) {
            lab[i] = lb.data[i];
            for (int y = 0; y < h; y++)
                memcpy(img + ((size_t)i * S + oy + y) * S + ox, im.data + ((size_t)i * h + y) * w, (size_t)w);
        }
        idx_free(&im);
        idx_free(&lb);
        source = "fashion-mnist";
    } else {
        n = 60000;
        img = core_malloc((size_t)n * S * S);
        lab = core_malloc(sizeof(int) * (size_t)n);
        for (size_t i = 0; i < (size_t)n * S * S; i++) img[i] = (uint8_t)(rng_uniform(1, RNG_STREAM_TEST, i) * 256);
        for (int64_t i = 0; i < n; i++) lab[i] = (int)(i % 10);
        source = "synthetic";
    }
    const char *names[10] = {"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"};
    shards_write(dir, "bench", img, lab, n, 1, S, S, 10000, 10, names);
    core_free(img);
    core_free(lab);
    return source;
}

int main(int argc, char **argv) {
    int steps = 4000, batch = 32, prefetch = 4;
    const char *spec = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--prefetch")) prefetch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--shards")) spec = argv[i + 1];
        else {
            fprintf(stderr, "usage: bench_loader [--steps N] [--batch B] [--prefetch P] [--shards SPEC]\n");
            return 2;
        }
    }
    char tmp[] = "/tmp/bench_loader_XXXXXX";
    const char *source = "given";
    if (!spec) {
        CHECK(mkdtemp(tmp) != NULL, "cannot make a temporary directory under /tmp");
        source = bench_make_shards(tmp);
        spec = tmp;
    }
    ShardSet s;
    shardset_open(&s, spec);
    Loader *L = loader_create(&s, batch, 0, 1, 1234, 1, prefetch);
    size_t img = (size_t)s.channels * s.height * s.width;
    float *x = core_malloc(sizeof(float) * (size_t)batch * img);
    int *y = core_malloc(sizeof(int) * (size_t)batch);
    for (int i = 0; i < 20; i++) loader_next(L, x, y); /* warm-up: first permutation, ring full */
    double t0 = core_now_s();
    for (int i = 0; i < steps; i++) loader_next(L, x, y);
    double dt = core_now_s() - t0;
    printf("loader_images_per_s=%.1f batch=%d prefetch=%d hflip=1 steps=%d image=%dx%dx%d samples=%lld files=%d "
           "source=%s seconds=%.3f\n",
           (double)steps * batch / dt, batch, prefetch, steps, s.channels, s.height, s.width, (long long)s.total,
           s.n_files, source, dt);
    loader_free(L);
    if (spec == tmp)
        for (int i = 0; i < s.n_files; i++) unlink(s.paths[i]);
    shardset_close(&s);
    if (spec == tmp) rmdir(tmp);
    core_free(x);
    core_free(y);
    return 0;
}
