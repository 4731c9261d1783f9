/* io/shards_loader.c — the streaming loader of io/shards.h: Philox epoch
 * permutations cut into global batches, read on a prefetch thread.
 *
 * Threads: the caller (one thread: loader_next / loader_seek /
 * loader_position) consumes a ring of `prefetch` batches that one producer
 * thread fills. The producer reads under io_hdf5_lock (HDF5 here is not
 * thread-safe) and converts to float outside it. A seek bumps a generation
 * counter and empties the ring; a batch the producer was reading for an
 * older generation is thrown away when it is done, so no stale batch is
 * ever handed out.
 *
 * Ending: the producer never ends the process. A read that fails (a shard
 * damaged or changed under the run) ends the thread with the message kept;
 * loader_next hands out the batches made before it, then joins the thread
 * and stops naming the file, on the caller's thread (the only one that may
 * call MPI_Abort through the check hook). A process that ends elsewhere
 * (any failed check, exit) stops and joins every live loader's thread from
 * an exit handler that runs before HDF5 is closed; the producer waits for
 * the HDF5 lock in slices so that it sees the stop even when the exiting
 * thread holds that lock.
 *
 * Random streams, both keyed by the seed, so every rank draws the same:
 *   permutation of epoch e: (seed, RNG_STREAM_DATA + e), 64-bit draws;
 *   flip of position p in epoch e: uniform (seed, RNG_STREAM_DATA + 2^31 + e, p) < 0.5.
 * Epochs are therefore limited to 2^31, far beyond any run. */
#include <hdf5.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/rng.h"
#include "io/shards.h"
#include "io/shards_internal.h"

#define LOADER_FLIP_STREAM (1ull << 31)
#define LOADER_MAX_EPOCH (1ull << 31)

struct Loader {
    /* configuration, fixed after create */
    int batch, rank, world, hflip, prefetch;
    uint64_t seed;
    int C, H, W;
    size_t image_bytes; /* C*H*W */
    int64_t total, global;
    int n_files;
    char **paths;
    int64_t *starts; /* starts[i] = first global sample of file i; starts[n_files] = total */
    hid_t *files, *dsets, *fspaces;
    int *direct; /* 1: one unfiltered image per chunk, read with H5Dread_chunk */
    hid_t mspace;
    int *labels; /* all labels, global sample order */
    float lut[256]; /* byte -> x / 127.5 - 1 */

    /* producer-private */
    int64_t *perm;
    uint64_t perm_epoch;
    int perm_valid;
    uint8_t *staging; /* batch raw images */

    /* the ring, guarded by mu */
    float *ring_images;
    int *ring_labels;
    LoaderPos *ring_pos;
    int head, count;
    LoaderPos prod_pos; /* next batch the producer makes */
    LoaderPos cons_pos; /* next batch loader_next returns (only the caller writes it) */
    uint64_t gen;
    int stop; /* also read without mu (io_hdf5_lock_unless): __atomic */
    int failed; /* the producer ended on a read error, message in err */
    char err[1200];
    pthread_mutex_t mu;
    pthread_cond_t cv_data, cv_space;
    pthread_t thread;
    int joined;
    pid_t pid;         /* the process that made it (a forked child has no such thread) */
    Loader *next_live; /* the live loaders, for the exit handler */
};

static pthread_mutex_t loader_live_mu = PTHREAD_MUTEX_INITIALIZER;
static Loader *loader_live;
static pthread_once_t loader_atexit_once = PTHREAD_ONCE_INIT;

/* Stop the producer and wait for it (idempotent; only the owner of L, or
 * the exit handler, calls it). */
static void loader_stop_thread(Loader *L) {
    if (L->joined) return;
    pthread_mutex_lock(&L->mu);
    __atomic_store_n(&L->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&L->cv_space);
    pthread_mutex_unlock(&L->mu);
    pthread_join(L->thread, NULL);
    L->joined = 1;
}

/* Registered after HDF5's lock is set up, so it runs before HDF5 is
 * closed (atexit runs handlers in reverse order). The loaders' memory is
 * left to the process's end (still reachable: no leak report). */
static void loader_atexit(void) {
    pthread_mutex_lock(&loader_live_mu);
    for (Loader *L = loader_live; L; L = L->next_live)
        if (L->pid == getpid() && !pthread_equal(L->thread, pthread_self())) loader_stop_thread(L);
    pthread_mutex_unlock(&loader_live_mu);
}

static void loader_register_atexit(void) { atexit(loader_atexit); }

/* A position as the batch it names: a remainder shorter than one global
 * batch is dropped, so such an offset means the start of the next epoch. */
static LoaderPos loader_normalize(const Loader *L, LoaderPos p) {
    if (p.offset + (uint64_t)L->global > (uint64_t)L->total) {
        p.epoch++;
        p.offset = 0;
    }
    return p;
}

static LoaderPos loader_advance(const Loader *L, LoaderPos p) {
    p.offset += (uint64_t)L->global;
    return loader_normalize(L, p);
}

/* Fisher-Yates with 64-bit Philox draws scaled to [0, i] (Lemire's
 * multiply-shift; the bias, below (i+1)/2^64, is immaterial). */
static void loader_permute(Loader *L, uint64_t epoch) {
    int64_t n = L->total;
    for (int64_t i = 0; i < n; i++) L->perm[i] = i;
    uint64_t stream = RNG_STREAM_DATA + epoch;
    uint32_t w[4];
    uint64_t have = UINT64_MAX;
    for (int64_t i = n - 1, k = 0; i > 0; i--, k++) {
        uint64_t block = (uint64_t)k >> 1;
        if (block != have) rng_block(L->seed, stream, have = block, w);
        int lane = (int)(k & 1) * 2;
        uint64_t x = (uint64_t)w[lane] | (uint64_t)w[lane + 1] << 32;
        int64_t j = (int64_t)(((unsigned __int128)x * (uint64_t)(i + 1)) >> 64);
        int64_t t = L->perm[i];
        L->perm[i] = L->perm[j];
        L->perm[j] = t;
    }
    L->perm_epoch = epoch;
    L->perm_valid = 1;
}

static int loader_file_of(const Loader *L, int64_t g) {
    int lo = 0, hi = L->n_files - 1; /* last file whose start <= g */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (L->starts[mid] <= g) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* 0, or -1 with the reason in L->err. */
static int loader_read_image(Loader *L, int64_t g, uint8_t *dst) {
    int f = loader_file_of(L, g);
    hsize_t off[4] = {(hsize_t)(g - L->starts[f]), 0, 0, 0};
    if (L->direct[f]) {
        uint32_t filters = 0;
        herr_t r;
        H5E_BEGIN_TRY { r = H5Dread_chunk(L->dsets[f], H5P_DEFAULT, off, &filters, dst); }
        H5E_END_TRY;
        if (r >= 0) return 0;
        /* e.g. a chunk never written: fall back to the ordinary path, which reads fill values */
    }
    hsize_t cnt[4] = {1, (hsize_t)L->C, (hsize_t)L->H, (hsize_t)L->W};
    if (H5Sselect_hyperslab(L->fspaces[f], H5S_SELECT_SET, off, NULL, cnt, NULL) >= 0 &&
        H5Dread(L->dsets[f], H5T_NATIVE_UINT8, L->mspace, L->fspaces[f], H5P_DEFAULT, dst) >= 0)
        return 0;
    snprintf(L->err, sizeof L->err,
             "%s: reading image %llu of /images failed (file changed or damaged since it was opened?)", L->paths[f],
             (unsigned long long)off[0]);
    return -1;
}

/* Make the batch at pos (this rank's part) into ring slot `slot`: 0, -1 on
 * a read error (L->err says which), 1 when stopped while waiting. */
static int loader_fill(Loader *L, LoaderPos pos, int slot) {
    if (!L->perm_valid || L->perm_epoch != pos.epoch) loader_permute(L, pos.epoch);
    uint64_t base = pos.offset + (uint64_t)L->rank * (uint64_t)L->batch;
    if (!io_hdf5_lock_unless(&L->stop)) return 1;
    int bad = 0;
    for (int k = 0; k < L->batch && !bad; k++)
        bad = loader_read_image(L, L->perm[base + (uint64_t)k], L->staging + (size_t)k * L->image_bytes);
    io_hdf5_unlock();
    if (bad) return -1;
    float *out = L->ring_images + (size_t)slot * L->batch * L->image_bytes;
    int *lab = L->ring_labels + (size_t)slot * L->batch;
    for (int k = 0; k < L->batch; k++) {
        uint64_t p = base + (uint64_t)k;
        lab[k] = L->labels[L->perm[p]];
        const uint8_t *src = L->staging + (size_t)k * L->image_bytes;
        float *dst = out + (size_t)k * L->image_bytes;
        int flip = L->hflip && rng_uniform(L->seed, RNG_STREAM_DATA + LOADER_FLIP_STREAM + pos.epoch, p) < 0.5f;
        if (!flip) {
            for (size_t i = 0; i < L->image_bytes; i++) dst[i] = L->lut[src[i]];
        } else {
            for (int r = 0; r < L->C * L->H; r++) {
                const uint8_t *s = src + (size_t)r * L->W;
                float *d = dst + (size_t)r * L->W;
                for (int x = 0; x < L->W; x++) d[x] = L->lut[s[L->W - 1 - x]];
            }
        }
    }
    return 0;
}

static void *loader_thread(void *arg) {
    Loader *L = arg;
    pthread_mutex_lock(&L->mu);
    for (;;) {
        while (!L->stop && L->count == L->prefetch) pthread_cond_wait(&L->cv_space, &L->mu);
        if (L->stop) break;
        uint64_t gen = L->gen;
        LoaderPos pos = L->prod_pos;
        int slot = (L->head + L->count) % L->prefetch;
        pthread_mutex_unlock(&L->mu);
        int r = loader_fill(L, pos, slot);
        pthread_mutex_lock(&L->mu);
        if (r > 0) break; /* stopped */
        if (r < 0) {
            L->failed = 1;
            pthread_cond_signal(&L->cv_data);
            break;
        }
        if (gen != L->gen) continue; /* a seek came in meanwhile: this batch is stale */
        L->ring_pos[slot] = pos;
        L->count++;
        L->prod_pos = loader_advance(L, pos);
        pthread_cond_signal(&L->cv_data);
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

Loader *loader_create(const ShardSet *s, int batch, int rank, int world, uint64_t seed, int hflip, int prefetch) {
    CHECK(s && s->n_files > 0 && s->total > 0, "loader_create: open the shard set first (shardset_open)");
    CHECK(batch > 0, "loader_create: batch must be positive (got %d)", batch);
    CHECK(world > 0 && rank >= 0 && rank < world, "loader_create: rank %d is not in [0, world = %d)", rank, world);
    CHECK(prefetch >= 1, "loader_create: prefetch must be at least 1 (got %d)", prefetch);
    int64_t global = (int64_t)batch * world;
    CHECK(s->total >= global,
          "the shard set (%s, ...) has %lld samples, fewer than one global batch of %d x %d ranks = %lld; use a "
          "smaller batch",
          s->paths[0], (long long)s->total, batch, world, (long long)global);

    Loader *L = core_calloc(sizeof *L);
    L->batch = batch, L->rank = rank, L->world = world, L->hflip = hflip != 0, L->prefetch = prefetch;
    L->seed = seed;
    L->C = s->channels, L->H = s->height, L->W = s->width;
    L->image_bytes = (size_t)L->C * L->H * L->W;
    L->total = s->total, L->global = global;
    L->n_files = s->n_files;
    for (int v = 0; v < 256; v++) L->lut[v] = (float)v / 127.5f - 1.0f;

    int nf = L->n_files;
    L->paths = core_malloc(sizeof(char *) * (size_t)nf);
    L->starts = core_malloc(sizeof(int64_t) * (size_t)(nf + 1));
    L->files = core_malloc(sizeof(hid_t) * (size_t)nf);
    L->dsets = core_malloc(sizeof(hid_t) * (size_t)nf);
    L->fspaces = core_malloc(sizeof(hid_t) * (size_t)nf);
    L->direct = core_calloc(sizeof(int) * (size_t)nf);
    L->labels = core_malloc(sizeof(int) * (size_t)L->total);
    L->starts[0] = 0;
    io_hdf5_lock();
    hsize_t mdims[4] = {1, (hsize_t)L->C, (hsize_t)L->H, (hsize_t)L->W};
    L->mspace = H5Screate_simple(4, mdims, NULL);
    for (int i = 0; i < nf; i++) {
        const char *path = L->paths[i] = shards_strdup(s->paths[i]);
        /* Kept open for the loader's life: one open per shard, not one per image. */
        hid_t f = shards_open_file(path);
        int64_t n;
        int chw[3];
        hid_t d = shards_open_images(f, path, &n, chw);
        CHECK(n == s->counts[i] && chw[0] == L->C && chw[1] == L->H && chw[2] == L->W,
              "%s: the shard changed since shardset_open (now %lld images of %d x %d x %d)", path, (long long)n,
              chw[0], chw[1], chw[2]);
        shards_read_labels(f, path, n, s->num_classes, L->labels + L->starts[i]);
        hid_t dapl = shards_images_dapl(d, L->image_bytes);
        hid_t dcpl = H5Dget_create_plist(d);
        if (H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_nfilters(dcpl) == 0) {
            hsize_t cd[4] = {0};
            L->direct[i] = H5Pget_chunk(dcpl, 4, cd) == 4 && cd[0] == 1 && cd[1] == mdims[1] && cd[2] == mdims[2] &&
                           cd[3] == mdims[3];
        }
        H5Pclose(dcpl);
        H5Dclose(d);
        L->dsets[i] = H5Dopen2(f, "images", dapl);
        H5Pclose(dapl);
        CHECK(L->dsets[i] >= 0, "%s: cannot reopen /images", path);
        L->fspaces[i] = H5Dget_space(L->dsets[i]);
        L->files[i] = f;
        L->starts[i + 1] = L->starts[i] + n;
    }
    io_hdf5_unlock();

    L->perm = core_malloc(sizeof(int64_t) * (size_t)L->total);
    L->staging = core_malloc((size_t)batch * L->image_bytes);
    L->ring_images = core_malloc(sizeof(float) * (size_t)prefetch * batch * L->image_bytes);
    L->ring_labels = core_malloc(sizeof(int) * (size_t)prefetch * batch);
    L->ring_pos = core_calloc(sizeof(LoaderPos) * (size_t)prefetch);
    L->cons_pos = L->prod_pos = loader_normalize(L, (LoaderPos){0, 0});
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->cv_data, NULL);
    pthread_cond_init(&L->cv_space, NULL);
    int rc = pthread_create(&L->thread, NULL, loader_thread, L);
    CHECK(rc == 0, "loader_create: cannot start the prefetch thread (error %d)", rc);
    L->pid = getpid();
    pthread_once(&loader_atexit_once, loader_register_atexit); /* after io_hdf5_lock above set HDF5 up */
    pthread_mutex_lock(&loader_live_mu);
    L->next_live = loader_live;
    loader_live = L;
    pthread_mutex_unlock(&loader_live_mu);
    return L;
}

void loader_next(Loader *L, float *images, int *labels) {
    pthread_mutex_lock(&L->mu);
    while (L->count == 0 && !L->failed) pthread_cond_wait(&L->cv_data, &L->mu);
    int slot = L->head, failed = L->count == 0;
    pthread_mutex_unlock(&L->mu);
    if (failed) {
        loader_stop_thread(L); /* it has ended: this only joins it */
        FAIL("%s", L->err);
    }
    /* The producer never writes the head slot while count > 0, and only
     * this thread takes slots or seeks: copying without the lock is safe. */
    CHECK(L->ring_pos[slot].epoch == L->cons_pos.epoch && L->ring_pos[slot].offset == L->cons_pos.offset,
          "loader: internal error, prefetched batch is at (%llu, %llu), expected (%llu, %llu)",
          (unsigned long long)L->ring_pos[slot].epoch, (unsigned long long)L->ring_pos[slot].offset,
          (unsigned long long)L->cons_pos.epoch, (unsigned long long)L->cons_pos.offset);
    size_t nimg = (size_t)L->batch * L->image_bytes;
    memcpy(images, L->ring_images + (size_t)slot * nimg, sizeof(float) * nimg);
    memcpy(labels, L->ring_labels + (size_t)slot * L->batch, sizeof(int) * (size_t)L->batch);
    pthread_mutex_lock(&L->mu);
    L->head = (L->head + 1) % L->prefetch;
    L->count--;
    L->cons_pos = loader_advance(L, L->cons_pos);
    pthread_cond_signal(&L->cv_space);
    pthread_mutex_unlock(&L->mu);
}

LoaderPos loader_position(const Loader *L) { return L->cons_pos; }

void loader_seek(Loader *L, LoaderPos pos) {
    CHECK(pos.epoch < LOADER_MAX_EPOCH, "loader_seek: epoch %llu is beyond 2^31", (unsigned long long)pos.epoch);
    CHECK(pos.offset <= (uint64_t)L->total,
          "loader_seek: offset %llu is beyond the %lld samples of an epoch (%s, ...): the position was saved "
          "with a different data set",
          (unsigned long long)pos.offset, (long long)L->total, L->paths[0]);
    pos = loader_normalize(L, pos);
    pthread_mutex_lock(&L->mu);
    L->gen++;
    L->head = 0;
    L->count = 0;
    L->prod_pos = pos;
    L->cons_pos = pos;
    pthread_cond_broadcast(&L->cv_space);
    pthread_mutex_unlock(&L->mu);
}

uint64_t loader_steps_per_epoch(const Loader *L) { return (uint64_t)(L->total / L->global); }

void loader_free(Loader *L) {
    if (!L) return;
    pthread_mutex_lock(&loader_live_mu);
    Loader **p = &loader_live;
    while (*p != L) p = &(*p)->next_live;
    *p = L->next_live;
    pthread_mutex_unlock(&loader_live_mu);
    loader_stop_thread(L);
    pthread_cond_destroy(&L->cv_space);
    pthread_cond_destroy(&L->cv_data);
    pthread_mutex_destroy(&L->mu);
    io_hdf5_lock();
    for (int i = 0; i < L->n_files; i++) {
        H5Sclose(L->fspaces[i]);
        H5Dclose(L->dsets[i]);
        H5Fclose(L->files[i]);
        core_free(L->paths[i]);
    }
    H5Sclose(L->mspace);
    io_hdf5_unlock();
    core_free(L->paths);
    core_free(L->starts);
    core_free(L->files);
    core_free(L->dsets);
    core_free(L->fspaces);
    core_free(L->direct);
    core_free(L->labels);
    core_free(L->perm);
    core_free(L->staging);
    core_free(L->ring_images);
    core_free(L->ring_labels);
    core_free(L->ring_pos);
    core_free(L);
}
