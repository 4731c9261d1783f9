/* train/programs/sample_main.c — jit-sample: images from a checkpoint with the JiT
 * sampler (Heun, Euler last step, CFG inside an interval, EMA weights).
 *
 *   jit-sample --checkpoint runs/fmnist-tiny/ckpt [--steps 50] [--cfg 2.0]
 *              [--interval 0.1,1.0] [--per-class 8] [--labels 207,360]
 *              [--ema 0|-1] [--seed 0] [--batch 64] [--out samples.png]
 *              [--h5 samples.h5] [--device cpu|cuda] [--precision auto|fp32|bf16]
 *
 * The model configuration is the one saved in the checkpoint. The PNG has
 * one row per class: every class of the model, or the classes --labels
 * names, in its order (an ImageNet model has 1,000 classes: --labels draws a
 * few). The HDF5 file holds the raw samples and labels.
 * --device cuda runs the network on GPU 0 (bf16 matrix products unless
 * --precision fp32); the noise and the sampler's steps stay on the host.
 *
 *   jit-sample --checkpoint CKPT --num-images N --png-dir DIR [--chunk C] ...
 * writes N class-balanced images (image i: class i*K/N, noise of (seed, i))
 * as DIR/<i>.png, the 8-bit rounding of the official evaluation, split
 * across MPI ranks (mpirun): the same files on any number of ranks
 * (train/eval/fid_eval.h; jit-eval fid scores such a set without PNGs). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/profile.h"
#include "io/ckpt.h"
#include "io/png.h"
#include "io/samples.h"
#include "kernels/cpu/blas_select.h"
#include "dist/comm.h"
#include "train/config/config.h"
#include "train/eval/fid.h"
#include "train/eval/fid_eval.h"
#include "train/model/jit_checkpoint.h"
#include "train/model/sampler.h"
#include "train/trainer_device.h"

/* --num-images N --png-dir DIR: round-robin chunks of image indices over the
 * ranks, each image a function of (seed, index) only. */
static void sample_set(JitModel *m, Graph *g, const SamplerConfig *sc0, const JitConfig *mc, long n_images, int chunk,
                       int batch, const char *dir, Comm *comm) {
    long total = (n_images + chunk - 1) / chunk;
    size_t per = (size_t)mc->in_channels * mc->img_size * mc->img_size;
    float *img = core_malloc(sizeof(float) * per * (size_t)chunk);
    uint8_t *u8 = core_malloc(per * (size_t)chunk);
    int *labels = core_malloc(sizeof(int) * (size_t)chunk);
    double t0 = core_now_s();
    for (long k = comm->rank; k < total; k += comm->world) {
        long first = k * chunk;
        int n = (int)(n_images - first < chunk ? n_images - first : chunk);
        for (int i = 0; i < n; i++) labels[i] = fid_label_of(first + i, n_images, mc->num_classes);
        SamplerConfig sc = *sc0;
        sc.first_index = (uint64_t)first;
        sampler_run(m, g, &sc, labels, n, batch < n ? batch : n, img);
        fid_to_u8(img, per * (size_t)n, u8);
        fid_write_pngs(dir, first, n, mc->in_channels, mc->img_size, mc->img_size, u8);
        if (comm->rank == 0) {
            double el = core_now_s() - t0, done = (double)(k + 1) * chunk < n_images ? (double)(k + 1) * chunk : n_images;
            printf("jit-sample: about %.0f of %ld images (%.1f images/s on all ranks, ETA %.0f s)\n", done, n_images,
                   done / el, (n_images - done) / (done / el));
            fflush(stdout);
        }
    }
    comm_barrier(comm);
    if (comm->rank == 0) printf("jit-sample: wrote %ld images to %s\n", n_images, dir);
    core_free(img), core_free(u8), core_free(labels);
}

static void usage(void) {
    fprintf(stderr, "usage: jit-sample --checkpoint FILE|DIR [--steps S] [--cfg W] [--interval LO,HI] [--per-class N]\n"
                    "                  [--labels C1,C2,...] [--ema K|-1] [--seed S] [--batch B] [--out PNG] [--h5 FILE]\n"
                    "                  [--device cpu|cuda] [--precision auto|fp32|bf16]\n"
                    "       jit-sample --checkpoint FILE|DIR --num-images N --png-dir DIR [--chunk C] [options above]\n"
                    "  (N class-balanced images as DIR/<index>.png, shared among MPI ranks: the same files on any count)\n"
                    "  --labels: draw only these classes (0 .. num_classes-1), in this order, N of each\n"
                    "            (default: every class of the model)\n");
    exit(2);
}

/* --labels "207,360": the class numbers, in order (repeats allowed: a row
 * each). Every entry must be an integer in [0, num_classes); an error names
 * the entry and the checkpoint whose model sets the range. Returns how many;
 * *out is core_malloc'ed (core_free). */
static int sample_parse_labels(const char *spec, int num_classes, const char *ckpt_path, int **out) {
    int cap = 1;
    for (const char *c = spec; *c; c++) cap += *c == ',';
    int *labels = core_malloc(sizeof(int) * (size_t)cap), n = 0;
    const char *p = spec;
    for (;;) {
        size_t len = strcspn(p, ",");
        char item[64];
        CHECK(len > 0, "jit-sample: --labels '%s': entry %d is empty (give class numbers separated by commas, "
              "e.g. --labels 207,360)", spec, n + 1);
        snprintf(item, sizeof item, "%.*s", (int)(len < sizeof item - 1 ? len : sizeof item - 1), p);
        char *end;
        errno = 0;
        long v = strtol(item, &end, 10);
        CHECK(len < sizeof item && end != item && *end == 0 && errno == 0,
              "jit-sample: --labels: '%.*s' is not a class number (an integer from 0 to %d)", (int)len, p,
              num_classes - 1);
        CHECK(v >= 0 && v < num_classes,
              "jit-sample: --labels: class %ld is out of range: the model of %s has classes 0 to %d", v, ckpt_path,
              num_classes - 1);
        labels[n++] = (int)v;
        if (!p[len]) break;
        p += len + 1;
    }
    *out = labels;
    return n;
}

int main(int argc, char **argv) {
    blas_select(argv, 1); /* first: it may start the program again (blas_select.h) */
    const char *ckpt = NULL, *out_png = "samples.png", *out_h5 = NULL, *device = "cpu", *labels_spec = NULL;
    RunPrecision precision = PRECISION_AUTO;
    int steps = -1, per_class = -1, ema = -2, batch = 64;
    float cfgw = -1, lo = -1, hi = -1;
    long long seed = -1;
    long num_images = 0;
    int chunk = FID_CHUNK_DEFAULT;
    const char *png_dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        if (!strcmp(a, "--checkpoint")) ckpt = v;
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--cfg")) cfgw = strtof(v, NULL);
        else if (!strcmp(a, "--interval"))
            CHECK(sscanf(v, "%f,%f", &lo, &hi) == 2 && lo >= 0 && lo < hi, "--interval takes LO,HI with 0 <= LO < HI, got %s", v);
        else if (!strcmp(a, "--per-class")) per_class = atoi(v);
        else if (!strcmp(a, "--labels")) labels_spec = v;
        else if (!strcmp(a, "--ema")) ema = atoi(v);
        else if (!strcmp(a, "--seed")) seed = atoll(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--out")) out_png = v;
        else if (!strcmp(a, "--h5")) out_h5 = v;
        else if (!strcmp(a, "--num-images")) num_images = atol(v);
        else if (!strcmp(a, "--png-dir")) png_dir = v;
        else if (!strcmp(a, "--chunk")) chunk = atoi(v);
        else if (!strcmp(a, "--device")) device = v;
        else if (!strcmp(a, "--precision")) {
            if (!strcmp(v, "auto")) precision = PRECISION_AUTO;
            else if (!strcmp(v, "fp32")) precision = PRECISION_FP32;
            else if (!strcmp(v, "bf16")) precision = PRECISION_BF16;
            else FAIL("jit-sample: --precision takes auto, fp32 or bf16, got '%s'", v);
        }
        else usage();
        i++;
    }
    if (!ckpt) usage();
    CHECK(!num_images == !png_dir, "jit-sample: --num-images and --png-dir go together");
    CHECK(num_images >= 0 && chunk >= 1, "jit-sample: --num-images must be positive and --chunk at least 1");
    Comm comm;
    if (num_images) comm_init(&comm, &argc, &argv);
    /* First, so a missing GPU stops before any work. */
    const Backend *be = backend_open(device, trainer_backend_precision(precision), num_images ? comm.local_rank : 0,
                                     "jit-sample --device");
    /* The checkpoint carries its resolved configuration: the model it
     * describes, with the weights chosen (the raw ones or an EMA copy). */
    char path[1100];
    Config cfg;
    JitModel m;
    uint64_t step;
    jit_load_checkpoint(ckpt, &ema, &m, &cfg, &step, path, sizeof path);

    if (steps < 0) steps = cfg.sample_steps;
    if (per_class < 0) per_class = cfg.samples_per_class > 0 ? cfg.samples_per_class : 8; /* 0: the run wrote no grids */
    CHECK(steps >= 1 && per_class >= 1 && batch >= 1, "--steps, --per-class and --batch must be positive");
    SamplerConfig sc = sampler_config(&cfg, steps, cfgw, lo, lo < 0 ? -1 : hi, seed); /* no interval: the run's */
    cfgw = sc.cfg, lo = sc.cfg_lo, hi = sc.cfg_hi;
    jit_to_device(&m, be); /* uploads the weights just chosen */

    const JitConfig *mc = &cfg.model;
    if (num_images) {
        Graph g;
        graph_init(&g, be, 64u << 20);
        if (comm.rank == 0)
            printf("jit-sample: %s (step %llu, %s weights), %ld images over %d rank%s, %d steps, cfg %.2f in (%.2f, "
                   "%.2f)\n", path, (unsigned long long)step, ema >= 0 ? "EMA" : "raw", num_images, comm.world,
                   comm.world > 1 ? "s" : "", steps, cfgw, lo, hi);
        sample_set(&m, &g, &sc, mc, num_images, chunk, batch, png_dir, &comm);
        graph_free(&g);
        jit_free(&m);
        comm_finalize(&comm);
        return 0;
    }
    /* The grid's rows: the chosen classes, or all of them. */
    int *rows, classes;
    if (labels_spec) {
        classes = sample_parse_labels(labels_spec, mc->num_classes, path, &rows);
    } else {
        classes = mc->num_classes;
        rows = core_malloc(sizeof(int) * (size_t)classes);
        for (int c = 0; c < classes; c++) rows[c] = c;
    }
    CHECK((long long)classes * per_class <= INT_MAX / 2, "jit-sample: %d classes x --per-class %d is too many samples",
          classes, per_class);
    int n = classes * per_class, per = mc->in_channels * mc->img_size * mc->img_size;
    int *labels = core_malloc(sizeof(int) * (size_t)n);
    float *out = core_malloc(sizeof(float) * (size_t)n * per);
    for (int i = 0; i < n; i++) labels[i] = rows[i / per_class];
    Graph g;
    graph_init(&g, be, 64u << 20);
    char devname[256];
    printf("jit-sample: %s (step %llu, %s weights), %d classes%s%s x %d, %d steps, cfg %.2f in (%.2f, %.2f), on %s\n",
           path, (unsigned long long)step, ema >= 0 ? "EMA" : "raw", classes, labels_spec ? " " : "",
           labels_spec ? labels_spec : "", per_class, steps, cfgw, lo, hi, be->describe(devname, sizeof devname));
    sampler_run(&m, &g, &sc, labels, n, batch, out);
    png_write_grid(out_png, out, n, mc->in_channels, mc->img_size, mc->img_size, per_class, 2);
    printf("jit-sample: wrote %s\n", out_png);
    if (out_h5) {
        samples_write_h5(out_h5, out, labels, n, mc->in_channels, mc->img_size, mc->img_size);
        printf("jit-sample: wrote %s\n", out_h5);
    }
    core_free(rows), core_free(labels), core_free(out);
    graph_free(&g);
    jit_free(&m);
    return 0;
}
