/* io/shards.c — writing and validating "jit-shard-v1" HDF5 shards, and the
 * global HDF5 lock (the loader lives in io/shards_loader.c).
 *
 * Chunking: /images is chunked one image per chunk, [1, C, H, W], without
 * compression, in a file written with the HDF5 1.10 format (libver bounds
 * V110). The loader reads one random image at a time, so:
 *   - a read touches exactly one chunk: no neighbour bytes are read and
 *     thrown away, whatever the image size (1 KiB for 32x32 gray, 192 KiB
 *     for 256x256 RGB);
 *   - the 1.10 format indexes the chunks of a fixed-size dataset with a
 *     "fixed array", so finding chunk i is O(1) instead of a B-tree walk;
 *   - no filter means the bytes in the file are the pixels, and HDF5 can
 *     read them straight into the caller's buffer.
 * The chunk cache is set to 0 bytes when the dataset is opened for reading
 * (shards_images_dapl): in a random permutation an image is read once per
 * epoch, so a cache would never hit, and a chunk larger than the cache is
 * read directly into the destination instead of being copied through it.
 * Compression would make every single-image read decompress a chunk; the
 * page cache of the OS is what keeps a hot data set in memory. For shards
 * written by other tools with bigger or compressed chunks, a cache of a few
 * chunks is used instead so neighbouring reads can still hit.
 *
 * Measured with bench_loader (Fashion-MNIST 1x32x32, 6 shards, warm page
 * cache, 2-core x86 VM), images/s: this layout with H5Dread_chunk ~290k;
 * same with the pre-1.10 B-tree index ~185k; hyperslab H5Dread instead of
 * H5Dread_chunk ~190k (0 cache) / ~175k (1 MiB cache); 16 images per chunk
 * with a 1 MiB cache ~93k. Only chunks so big that a whole shard sits in a
 * 64 MiB cache catch up, which does not scale to large images. */
#define _GNU_SOURCE
#include "io/shards.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <hdf5.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/check.h"
#include "io/fsutil.h"
#include "io/h5.h"
#include "io/shards_internal.h"
#include "io/shards_manifest.h"

/* ---- the global HDF5 lock ---- */

static pthread_mutex_t io_hdf5_mutex;
static pthread_once_t io_hdf5_once = PTHREAD_ONCE_INIT;
/* How deep the calling thread is in io_hdf5_lock: > 0 at exit means the
 * process is ending from inside an HDF5 section, i.e. a check failed
 * half-way through an HDF5 operation. */
static __thread int io_hdf5_depth;
static int io_hdf5_own_atexit; /* 1: HDF5's own exit handler is not registered, ours closes it */

/* At exit, HDF5 is closed here instead of by its own atexit handler
 * (H5dont_atexit below), for two reasons:
 *   - a prefetch thread still inside an HDF5 call would race the close:
 *     taking the lock first (never given back: the process is ending) makes
 *     the close wait for the read in flight (the loaders' own exit handler,
 *     which runs before this one, normally has stopped them already);
 *   - after a failed write (disk full) HDF5 1.10 cannot close the file: its
 *     H5Fclose fails in the flush, yet leaves the half-freed file under its
 *     id, and closing the library closes it a second time and segfaults. A
 *     process that ends from inside an HDF5 section ends because such an
 *     operation failed; it skips the close (nothing is lost: the file being
 *     written is a temporary that io/fsutil_out.c removes at exit). */
static void io_hdf5_atexit(void) {
    int inside = io_hdf5_depth > 0;
    pthread_mutex_lock(&io_hdf5_mutex);
    if (io_hdf5_own_atexit && !inside) H5close();
}

static void io_hdf5_init(void) {
    /* Recursive: shards_* helpers that take the lock call each other. */
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&io_hdf5_mutex, &a);
    pthread_mutexattr_destroy(&a);
    /* Takes effect only before HDF5 initialises: the first HDF5 call of
     * the process must be under this lock (as every one is, by the rule in
     * io/shards.h). */
    io_hdf5_own_atexit = H5dont_atexit() >= 0;
    H5open();
    atexit(io_hdf5_atexit);
}

void io_hdf5_lock(void) {
    pthread_once(&io_hdf5_once, io_hdf5_init);
    pthread_mutex_lock(&io_hdf5_mutex);
    io_hdf5_depth++;
}

int io_hdf5_lock_unless(const int *stop) {
    pthread_once(&io_hdf5_once, io_hdf5_init);
    for (;;) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += 20 * 1000 * 1000; /* how often *stop is looked at */
        if (t.tv_nsec >= 1000 * 1000 * 1000) t.tv_sec++, t.tv_nsec -= 1000 * 1000 * 1000;
        if (pthread_mutex_timedlock(&io_hdf5_mutex, &t) == 0) {
            io_hdf5_depth++;
            return 1;
        }
        if (__atomic_load_n(stop, __ATOMIC_ACQUIRE)) return 0;
    }
}

void io_hdf5_unlock(void) {
    io_hdf5_depth--;
    pthread_mutex_unlock(&io_hdf5_mutex);
}

int io_hdf5_errors_wanted(void) {
    const char *e = getenv("JIT_HDF5_ERRORS");
    return e && *e && strcmp(e, "0") != 0;
}

/* ---- small helpers ---- */

char *shards_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = core_malloc(n);
    memcpy(d, s, n);
    return d;
}


/* Dataset access list for /images: see the chunking note at the top. */
hid_t shards_images_dapl(hid_t dset, size_t image_bytes) {
    hid_t dcpl = H5Dget_create_plist(dset);
    size_t cache = 0;
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
        hsize_t cd[8] = {0};
        int nd = H5Pget_chunk(dcpl, 8, cd);
        size_t chunk = 1;
        for (int i = 0; i < nd; i++) chunk *= (size_t)cd[i];
        int nfilters = H5Pget_nfilters(dcpl);
        if (nfilters > 0 || chunk > image_bytes) {
            cache = 8 * chunk;
            if (cache < ((size_t)1 << 20)) cache = (size_t)1 << 20;
            if (cache > ((size_t)64 << 20)) cache = (size_t)64 << 20;
        }
    }
    H5Pclose(dcpl);
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    /* 521 slots: a prime well above the chunks that fit, as the HDF5 guide advises. */
    H5Pset_chunk_cache(dapl, 521, cache, 1.0);
    return dapl;
}

/* ---- writing ---- */

/* A shard write that failed (disk full, quota, I/O error): the message
 * names the shard, what was being written and the system's reason, which
 * HDF5's error stack (silenced while writing) would bury in a hundred lines.
 * The temporary file goes at exit (io/fsutil_out.c). */
static _Noreturn void shards_write_failed(const char *path, const char *what) {
    int err = errno;
    FAIL("%s: cannot write %s: %s%s", path, what, err ? strerror(err) : "HDF5 error",
         err == ENOSPC || err == EDQUOT ? " (free space on the file system)" : "");
}

/* Attributes through io/h5.h: strings fixed-length (io/h5.h says why; the
 * readers below take both kinds). */
static void shards_write_attr_int(hid_t f, const char *path, const char *name, int v) {
    errno = 0;
    if (h5_write_i64(f, name, v) != 0) shards_write_failed(path, name);
}

static void shards_write_attr_strings(hid_t f, const char *path, const char *name, const char *const *s, int n) {
    errno = 0;
    int r = n < 0 ? h5_write_str(f, name, s[0]) : h5_write_strs(f, name, s, n);
    if (r != 0) shards_write_failed(path, name);
}

static void shards_write_file(const char *path, const char *manifest, const uint8_t *images, const int *labels,
                              int64_t n, int C, int H, int W, int num_classes, const char *const *class_names) {
    /* Under a temporary name, renamed when complete (io/fsutil.h): a killed
     * jit-prep leaves no half-written shard under a shard's name. */
    IoOut out;
    char err[2400];
    CHECK(io_out_begin(&out, path, err, sizeof err) == 0, "%s", err);
    H5E_auto2_t efunc;
    void *edata;
    H5Eget_auto2(H5E_DEFAULT, &efunc, &edata);
    if (!io_hdf5_errors_wanted()) H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* shards_write_failed reports */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* 1.10 format: fixed-array chunk index (O(1) chunk lookup); readable by HDF5 >= 1.10 and h5py. */
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110);
    errno = 0;
    hid_t f = H5Fcreate(out.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) shards_write_failed(out.tmp, "the shard file");

    hsize_t dims[4] = {(hsize_t)n, (hsize_t)C, (hsize_t)H, (hsize_t)W};
    hsize_t chunk[4] = {1, (hsize_t)C, (hsize_t)H, (hsize_t)W};
    hid_t sp = H5Screate_simple(4, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 4, chunk);
    /* Every chunk is written below: allocate them together (one contiguous run
     * in file order) and skip the fill value pass. */
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    /* A Fletcher-32 checksum per image, verified by HDF5 on every read: a
     * flipped byte on shared storage is an error naming the shard, not a
     * silently different pixel. */
    H5Pset_fletcher32(dcpl);
    errno = 0;
    hid_t d = H5Dcreate2(f, "images", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, images) < 0)
        shards_write_failed(path, "/images");
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);

    hsize_t ln = (hsize_t)n;
    sp = H5Screate_simple(1, &ln, NULL);
    dcpl = H5Pcreate(H5P_DATASET_CREATE); /* one chunk, checksummed like the images */
    H5Pset_chunk(dcpl, 1, &ln);
    H5Pset_fletcher32(dcpl);
    errno = 0;
    d = H5Dcreate2(f, "labels", H5T_STD_I32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    if (d < 0 || H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels) < 0)
        shards_write_failed(path, "/labels");
    H5Dclose(d);
    H5Sclose(sp);

    const char *fmt = SHARD_FORMAT;
    shards_write_attr_strings(f, path, "format", &fmt, -1);
    shards_write_attr_int(f, path, "num_classes", num_classes);
    shards_write_attr_strings(f, path, "class_names", class_names, num_classes);
    shards_write_attr_int(f, path, "channels", C);
    shards_write_attr_int(f, path, "height", H);
    shards_write_attr_int(f, path, "width", W);
    shards_write_attr_strings(f, path, SHARD_MANIFEST_ATTR, &manifest, -1);
    errno = 0;
    if (H5Fclose(f) < 0) shards_write_failed(out.tmp, "the end of the file");
    H5Eset_auto2(H5E_DEFAULT, efunc, edata);
    CHECK(io_out_commit(&out, err, sizeof err) == 0, "%s", err);
}

int shards_write(const char *dir, const char *prefix, const uint8_t *images, const int *labels, int64_t n, int C,
                 int H, int W, int64_t per_shard, int num_classes, const char *const *class_names) {
    io_mkdirs_or_die(dir);
    shards_manifest_remove(dir, prefix); /* until the new one is written, the set is incomplete */
    int files = shards_write_from(dir, prefix, 0, images, labels, n, C, H, W, per_shard, num_classes, class_names);
    /* The manifest, last: the set is complete only when it exists. */
    char **names = core_calloc(sizeof(char *) * (size_t)files);
    int64_t *samples = core_malloc(sizeof(int64_t) * (size_t)files), *bytes = core_malloc(sizeof(int64_t) * (size_t)files);
    uint32_t *crc = core_malloc(sizeof(uint32_t) * (size_t)files);
    int64_t *counts = core_calloc(sizeof(int64_t) * (size_t)num_classes);
    for (int64_t i = 0; i < n; i++) counts[labels[i]]++;
    for (int k = 0; k < files; k++) {
        size_t len = strlen(dir) + strlen(prefix) + 32;
        char *path = core_malloc(len);
        snprintf(path, len, "%s/%s-%05d.h5", dir, prefix, k);
        names[k] = shards_strdup(path + strlen(dir) + 1);
        samples[k] = n - (int64_t)k * per_shard < per_shard ? n - (int64_t)k * per_shard : per_shard;
        crc[k] = shards_file_crc32(path, &bytes[k]);
        core_free(path);
    }
    shards_manifest_write(dir, prefix, files, names, samples, bytes, crc, C, H, W, num_classes, class_names, counts);
    for (int k = 0; k < files; k++) core_free(names[k]);
    core_free(names), core_free(samples), core_free(bytes), core_free(crc), core_free(counts);
    return files;
}

int shards_write_from(const char *dir, const char *prefix, int first_index, const uint8_t *images, const int *labels,
                      int64_t n, int C, int H, int W, int64_t per_shard, int num_classes,
                      const char *const *class_names) {
    CHECK(n > 0, "shards_write: no samples to write (n = %lld)", (long long)n);
    CHECK(C > 0 && H > 0 && W > 0, "shards_write: bad image shape %d x %d x %d", C, H, W);
    CHECK(per_shard > 0, "shards_write: per_shard must be positive (got %lld)", (long long)per_shard);
    CHECK(num_classes > 0 && class_names, "shards_write: need num_classes > 0 and their names");
    for (int k = 0; k < num_classes; k++)
        CHECK(class_names[k] != NULL, "shards_write: class_names[%d] is NULL", k);
    for (int64_t i = 0; i < n; i++)
        CHECK(labels[i] >= 0 && labels[i] < num_classes, "shards_write: label %d of sample %lld is outside [0, %d)",
              labels[i], (long long)i, num_classes);
    io_mkdirs_or_die(dir);
    size_t image_bytes = (size_t)C * H * W;
    int files = 0;
    char manifest[300];
    shards_manifest_name(prefix, manifest, sizeof manifest);
    io_hdf5_lock();
    for (int64_t start = 0; start < n; start += per_shard, files++) {
        int64_t m = n - start < per_shard ? n - start : per_shard;
        size_t len = strlen(dir) + strlen(prefix) + 32;
        char *path = core_malloc(len);
        snprintf(path, len, "%s/%s-%05d.h5", dir, prefix, first_index + files);
        shards_write_file(path, manifest, images + (size_t)start * image_bytes, labels + start, m, C, H, W,
                          num_classes, class_names);
        core_free(path);
    }
    io_hdf5_unlock();
    return files;
}

/* ---- reading attributes (any integer / any string type, as h5py also writes them) ---- */

static hid_t shards_attr_open(hid_t f, const char *path, const char *name) {
    htri_t e = H5Aexists(f, name);
    CHECK(e > 0, "%s: no '%s' attribute on the root group: not a jit-shard (make shards with jit-prep)", path, name);
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    CHECK(a >= 0, "%s: cannot open attribute '%s'", path, name);
    return a;
}

static int shards_attr_int(hid_t f, const char *path, const char *name) {
    long long v = 0;
    int r = h5_read_i64(f, name, &v);
    CHECK(r != 0, "%s: no '%s' attribute on the root group: not a jit-shard (make shards with jit-prep)", path, name);
    CHECK(r == 1, "%s: attribute '%s' must be a single integer", path, name);
    CHECK(v >= INT32_MIN && v <= INT32_MAX, "%s: attribute '%s' = %lld is out of range", path, name, v);
    return (int)v;
}

/* Read a string attribute (scalar or 1-D, fixed or variable length) into
 * *count core_malloc'ed strings. */
static char **shards_attr_strings(hid_t f, const char *path, const char *name, int *count) {
    hid_t a = shards_attr_open(f, path, name);
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
    CHECK(H5Tget_class(ft) == H5T_STRING, "%s: attribute '%s' must be a string (or strings)", path, name);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    CHECK(np >= 1 && np < (1 << 24), "%s: attribute '%s' has %lld values", path, name, (long long)np);
    int n = (int)np;
    char **out;
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mt, H5Tget_cset(ft));
    if (H5Tis_variable_str(ft) > 0) { /* a legacy shard: the global heap, read in isolation */
        H5Tset_size(mt, H5T_VARIABLE);
        out = shards_read_vlen_strings(a, mt, n, path, name);
    } else {
        out = core_malloc(sizeof(char *) * (size_t)n);
        size_t sz = H5Tget_size(ft);
        H5Tset_size(mt, sz);
        H5Tset_strpad(mt, H5T_STR_NULLPAD);
        char *buf = core_calloc(sz * (size_t)n + 1);
        CHECK(H5Aread(a, mt, buf) >= 0, "%s: cannot read string attribute '%s'", path, name);
        for (int i = 0; i < n; i++) {
            out[i] = core_calloc(sz + 1);
            memcpy(out[i], buf + (size_t)i * sz, sz);
        }
        core_free(buf);
    }
    H5Tclose(mt);
    H5Sclose(sp);
    H5Tclose(ft);
    H5Aclose(a);
    *count = n;
    return out;
}

static void shards_free_strings(char **s, int n) {
    if (!s) return;
    for (int i = 0; i < n; i++) core_free(s[i]);
    core_free(s);
}

/* ---- opening a shard ---- */

/* The 8-byte HDF5 signature sits at offset 0, 512, 1024, 2048, ... */
static int shards_has_hdf5_signature(const char *path) {
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    int found = 0;
    for (long off = 0; !found && off <= (1L << 20); off = off ? off * 2 : 512) {
        unsigned char b[8];
        if (fseek(fp, off, SEEK_SET) != 0 || fread(b, 1, 8, fp) != 8) break;
        found = !memcmp(b, sig, 8);
    }
    fclose(fp);
    return found;
}

hid_t shards_open_file(const char *path) {
    char err[1400];
    int fd = io_open_regular(path, "a shard", err, sizeof err);
    CHECK(fd >= 0, "%s", err);
    struct stat st;
    CHECK(fstat(fd, &st) == 0, "%s: cannot open shard (%s)", path, strerror(errno));
    close(fd);
    hid_t f;
    H5E_BEGIN_TRY { f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); }
    H5E_END_TRY;
    if (f < 0) {
        if (shards_has_hdf5_signature(path))
            FAIL("%s: an HDF5 file that cannot be opened: truncated or corrupt (%lld bytes); write it again with "
                 "jit-prep",
                 path, (long long)st.st_size);
        FAIL("%s: not an HDF5 file (no HDF5 signature); shards are made by jit-prep", path);
    }
    return f;
}

/* "float (4 bytes)", "signed integer (2 bytes)", ... for messages about a wrong dtype. */
static const char *shards_type_desc(hid_t t, char *buf, size_t cap) {
    size_t sz = H5Tget_size(t);
    switch (H5Tget_class(t)) {
    case H5T_INTEGER:
        snprintf(buf, cap, "%s integer (%zu byte%s)", H5Tget_sign(t) == H5T_SGN_NONE ? "unsigned" : "signed", sz,
                 sz == 1 ? "" : "s");
        break;
    case H5T_FLOAT: snprintf(buf, cap, "float (%zu bytes)", sz); break;
    case H5T_STRING: snprintf(buf, cap, "string"); break;
    case H5T_COMPOUND: snprintf(buf, cap, "compound"); break;
    default: snprintf(buf, cap, "HDF5 type class %d (%zu bytes)", (int)H5Tget_class(t), sz); break;
    }
    return buf;
}

/* Open /images and check it is uint8 [n, C, H, W]; returns the dataset. */
hid_t shards_open_images(hid_t f, const char *path, int64_t *n, int dims_chw[3]) {
    htri_t e;
    H5E_BEGIN_TRY { e = H5Lexists(f, "images", H5P_DEFAULT); }
    H5E_END_TRY;
    CHECK(e > 0, "%s: no /images dataset", path);
    hid_t d = H5Dopen2(f, "images", H5P_DEFAULT);
    CHECK(d >= 0, "%s: /images is not a dataset", path);
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    char desc[64];
    CHECK(H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 1 && H5Tget_sign(t) == H5T_SGN_NONE,
          "%s: /images must be uint8 (unsigned 8-bit integers), found %s", path, shards_type_desc(t, desc, sizeof desc));
    int nd = H5Sget_simple_extent_ndims(sp);
    CHECK(nd == 4, "%s: /images must be 4-D [n, C, H, W], found %d dimensions", path, nd);
    hsize_t h[4];
    H5Sget_simple_extent_dims(sp, h, NULL);
    /* Each dimension bounded first, so that the product cannot wrap (a
     * crafted [1, 2^32, 2^32, 1] would multiply to 0). */
    CHECK(h[1] > 0 && h[2] > 0 && h[3] > 0 && h[1] <= 65536 && h[2] <= 65536 && h[3] <= 65536 &&
              h[1] * h[2] * h[3] < (1ull << 31),
          "%s: /images has implausible image shape %llu x %llu x %llu", path, (unsigned long long)h[1],
          (unsigned long long)h[2], (unsigned long long)h[3]);
    *n = (int64_t)h[0];
    for (int i = 0; i < 3; i++) dims_chw[i] = (int)h[i + 1];
    H5Sclose(sp);
    H5Tclose(t);
    return d;
}

/* Read /labels (integer, length n) into out and check [0, num_classes). */
void shards_read_labels(hid_t f, const char *path, int64_t n, int num_classes, int *out) {
    htri_t e;
    H5E_BEGIN_TRY { e = H5Lexists(f, "labels", H5P_DEFAULT); }
    H5E_END_TRY;
    CHECK(e > 0, "%s: no /labels dataset", path);
    hid_t d = H5Dopen2(f, "labels", H5P_DEFAULT);
    CHECK(d >= 0, "%s: /labels is not a dataset", path);
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    char desc[64];
    CHECK(H5Tget_class(t) == H5T_INTEGER, "%s: /labels must be integers, found %s", path,
          shards_type_desc(t, desc, sizeof desc));
    int nd = H5Sget_simple_extent_ndims(sp);
    hsize_t len = 0;
    if (nd == 1) H5Sget_simple_extent_dims(sp, &len, NULL);
    CHECK(nd == 1 && (int64_t)len == n, "%s: /labels must be 1-D with one label per image (%lld), found %d-D of %llu",
          path, (long long)n, nd, (unsigned long long)len);
    if (n > 0)
        CHECK(H5Dread(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0,
              "%s: cannot read /labels as int (values too large?)", path);
    for (int64_t i = 0; i < n; i++)
        CHECK(out[i] >= 0 && out[i] < num_classes, "%s: label %d of sample %lld is outside [0, num_classes = %d)",
              path, out[i], (long long)i, num_classes);
    H5Sclose(sp);
    H5Tclose(t);
    H5Dclose(d);
}

/* ---- finding the files of a spec ---- */

static int shards_cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int shards_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* The shard paths of spec (file, directory of *.h5, or glob), sorted by name. */
static char **shards_list(const char *spec, int *count) {
    char **paths = NULL;
    int n = 0, cap = 0;
    struct stat st;
    if (stat(spec, &st) == 0 && S_ISDIR(st.st_mode)) {
        DIR *dp = opendir(spec);
        CHECK(dp != NULL, "%s: cannot list the shard directory (%s)", spec, strerror(errno));
        struct dirent *de;
        while ((de = readdir(dp)) != NULL) {
            if (de->d_name[0] == '.' || !shards_ends_with(de->d_name, ".h5")) continue;
            if (n == cap) paths = core_realloc(paths, sizeof(char *) * (size_t)(cap = cap ? 2 * cap : 16));
            size_t len = strlen(spec) + strlen(de->d_name) + 2;
            paths[n] = core_malloc(len);
            snprintf(paths[n++], len, "%s/%s", spec, de->d_name);
        }
        closedir(dp);
        CHECK(n > 0, "%s: the directory holds no *.h5 shards (make them with jit-prep)", spec);
    } else if (stat(spec, &st) == 0) {
        paths = core_realloc(NULL, sizeof(char *));
        paths[n++] = shards_strdup(spec);
    } else if (strpbrk(spec, "*?[")) {
        glob_t g;
        int r = glob(spec, 0, NULL, &g);
        CHECK(r == 0 && g.gl_pathc > 0, "%s: no shard file matches this pattern", spec);
        paths = core_realloc(NULL, sizeof(char *) * g.gl_pathc);
        for (size_t i = 0; i < g.gl_pathc; i++) paths[n++] = shards_strdup(g.gl_pathv[i]);
        globfree(&g);
    } else {
        FAIL("%s: no such shard file or directory (%s)", spec, strerror(errno));
    }
    /* glob sorts by the locale's collation, readdir not at all: one order everywhere. */
    qsort(paths, (size_t)n, sizeof(char *), shards_cmp_str);
    *count = n;
    return paths;
}

/* ---- the shard set ---- */

void shardset_open(ShardSet *s, const char *spec) {
    memset(s, 0, sizeof *s);
    CHECK(spec && spec[0], "shardset_open: empty shard spec (give a file, a directory or a glob)");
    s->paths = shards_list(spec, &s->n_files);
    s->counts = core_calloc(sizeof(int64_t) * (size_t)s->n_files);
    struct stat sst;
    int spec_is_dir = stat(spec, &sst) == 0 && S_ISDIR(sst.st_mode);
    char **manifest_attr = core_calloc(sizeof(char *) * (size_t)s->n_files);
    int64_t *class_counts = NULL;
    io_hdf5_lock();
    /* Our own messages name the file; HDF5's error stack would only bury them. */
    H5E_auto2_t efunc;
    void *edata;
    H5Eget_auto2(H5E_DEFAULT, &efunc, &edata);
    if (!io_hdf5_errors_wanted()) H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    for (int i = 0; i < s->n_files; i++) {
        const char *path = s->paths[i];
        hid_t f = shards_open_file(path);
        int nf = 0;
        char **fmt = shards_attr_strings(f, path, "format", &nf);
        if (nf != 1 || strcmp(fmt[0], SHARD_FORMAT) != 0) {
            for (char *c = fmt[0]; *c; c++) /* a corrupt file's bytes are not text: keep the message readable */
                if ((unsigned char)*c < 32 || (unsigned char)*c > 126) *c = '?';
            FAIL("%s: format attribute is '%s', expected '%s'", path, fmt[0], SHARD_FORMAT);
        }
        shards_free_strings(fmt, nf);
        int K = shards_attr_int(f, path, "num_classes");
        int C = shards_attr_int(f, path, "channels"), H = shards_attr_int(f, path, "height"),
            W = shards_attr_int(f, path, "width");
        CHECK(K > 0, "%s: num_classes is %d, must be positive", path, K);
        int nn = 0;
        char **names = shards_attr_strings(f, path, "class_names", &nn);
        CHECK(nn == K, "%s: class_names has %d names for num_classes = %d", path, nn, K);
        int64_t n;
        int chw[3];
        hid_t d = shards_open_images(f, path, &n, chw);
        H5Dclose(d);
        CHECK(chw[0] == C && chw[1] == H && chw[2] == W,
              "%s: /images is [n, %d, %d, %d] but the attributes say channels %d, height %d, width %d", path, chw[0],
              chw[1], chw[2], C, H, W);
        int *labels = core_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
        shards_read_labels(f, path, n, K, labels);
        if (i == 0) class_counts = core_calloc(sizeof(int64_t) * (size_t)K);
        if (K == (i == 0 ? K : s->num_classes))
            for (int64_t j = 0; j < n; j++) class_counts[labels[j]]++;
        core_free(labels);
        htri_t has_manifest;
        H5E_BEGIN_TRY { has_manifest = H5Aexists(f, SHARD_MANIFEST_ATTR); }
        H5E_END_TRY;
        if (has_manifest > 0) {
            int nmf = 0;
            char **mf = shards_attr_strings(f, path, SHARD_MANIFEST_ATTR, &nmf);
            manifest_attr[i] = shards_strdup(mf[0]);
            shards_free_strings(mf, nmf);
        }
        H5Fclose(f);
        if (i == 0) {
            s->channels = C, s->height = H, s->width = W, s->num_classes = K;
            s->class_names = names;
        } else {
            CHECK(C == s->channels && H == s->height && W == s->width && K == s->num_classes,
                  "%s: images %d x %d x %d with %d classes, but %s has %d x %d x %d with %d classes; all shards of a "
                  "set must agree",
                  path, C, H, W, K, s->paths[0], s->channels, s->height, s->width, s->num_classes);
            for (int k = 0; k < K; k++)
                CHECK(!strcmp(names[k], s->class_names[k]),
                      "%s: class %d is named '%s', but '%s' in %s; all shards of a set must agree", path, k,
                      names[k], s->class_names[k], s->paths[0]);
            shards_free_strings(names, nn);
        }
        s->counts[i] = n;
        s->total += n;
    }
    H5Eset_auto2(H5E_DEFAULT, efunc, edata);
    io_hdf5_unlock();
    /* Complete: the shards its manifest lists, no more, no fewer (io/shards_manifest.c). */
    shards_manifest_check(s, spec, spec_is_dir, manifest_attr, class_counts);
    for (int i = 0; i < s->n_files; i++) core_free(manifest_attr[i]);
    core_free(manifest_attr);
    core_free(class_counts);
    CHECK(s->total > 0, "%s: the shard set holds no samples", spec);
}

int64_t shardset_verify(const ShardSet *s) {
    int64_t total = 0;
    io_hdf5_lock();
    H5E_auto2_t efunc;
    void *edata;
    H5Eget_auto2(H5E_DEFAULT, &efunc, &edata);
    if (!io_hdf5_errors_wanted()) H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    size_t per = (size_t)s->channels * s->height * s->width;
    uint8_t *buf = core_malloc(per * 64);
    for (int i = 0; i < s->n_files; i++) {
        const char *path = s->paths[i];
        hid_t f = shards_open_file(path);
        int64_t n;
        int chw[3];
        hid_t d = shards_open_images(f, path, &n, chw), sp = H5Dget_space(d);
        for (int64_t i0 = 0; i0 < n; i0 += 64) { /* 64 images at a time: memory stays small for any shard */
            hsize_t start[4] = {(hsize_t)i0, 0, 0, 0}, count[4] = {(hsize_t)(n - i0 < 64 ? n - i0 : 64),
                                                                  (hsize_t)chw[0], (hsize_t)chw[1], (hsize_t)chw[2]};
            hid_t mem = H5Screate_simple(4, count, NULL);
            H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, count, NULL);
            CHECK(H5Dread(d, H5T_NATIVE_UINT8, mem, sp, H5P_DEFAULT, buf) >= 0,
                  "%s: images %lld..%lld cannot be read (a corrupt or truncated shard)", path, (long long)i0,
                  (long long)(i0 + (int64_t)count[0] - 1));
            H5Sclose(mem);
        }
        H5Sclose(sp), H5Dclose(d), H5Fclose(f);
        total += n;
        if (s->crc32 && s->crc32[i] >= 0) {
            uint32_t crc = shards_file_crc32(path, NULL);
            CHECK(crc == (uint32_t)s->crc32[i],
                  "%s: CRC-32 of the file is %08x, its manifest says %08x: the file changed since jit-prep wrote it",
                  path, crc, (uint32_t)s->crc32[i]);
        }
    }
    core_free(buf);
    H5Eset_auto2(H5E_DEFAULT, efunc, edata);
    io_hdf5_unlock();
    return total;
}

void shardset_read_range_u8(const ShardSet *s, int64_t first, int n, uint8_t *out) {
    CHECK(first >= 0 && n >= 0 && first + n <= s->total, "images %lld..%lld of a shard set of %lld", (long long)first,
          (long long)(first + n - 1), (long long)s->total);
    size_t per = (size_t)s->channels * s->height * s->width;
    int64_t base = 0;
    io_hdf5_lock();
    for (int i = 0; i < s->n_files && n > 0; base += s->counts[i], i++) {
        if (first >= base + s->counts[i]) continue;
        int64_t lo = first - base, take = s->counts[i] - lo < n ? s->counts[i] - lo : n;
        hid_t f = shards_open_file(s->paths[i]);
        int64_t cnt;
        int chw[3];
        hid_t d = shards_open_images(f, s->paths[i], &cnt, chw), sp = H5Dget_space(d);
        hsize_t start[4] = {(hsize_t)lo, 0, 0, 0}, count[4] = {(hsize_t)take, (hsize_t)chw[0], (hsize_t)chw[1],
                                                              (hsize_t)chw[2]};
        hid_t mem = H5Screate_simple(4, count, NULL);
        H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, count, NULL);
        CHECK(H5Dread(d, H5T_NATIVE_UINT8, mem, sp, H5P_DEFAULT, out) >= 0,
              "%s: images %lld..%lld cannot be read (a corrupt or truncated shard)", s->paths[i], (long long)lo,
              (long long)(lo + take - 1));
        H5Sclose(mem), H5Sclose(sp), H5Dclose(d), H5Fclose(f);
        out += (size_t)take * per, first += take, n -= (int)take;
    }
    io_hdf5_unlock();
}

void shardset_close(ShardSet *s) {
    for (int i = 0; i < s->n_files; i++) core_free(s->paths[i]);
    core_free(s->paths);
    core_free(s->counts);
    core_free(s->crc32);
    shards_free_strings(s->class_names, s->num_classes);
    memset(s, 0, sizeof *s);
}

/* Every image of a shard set, as floats in [-1, 1] (see shards.h). */
void shardset_read_all(const char *spec, float **images, int **labels, int *n, int *C, int *H, int *W,
                       int *num_classes) {
    ShardSet s;
    shardset_open(&s, spec);
    CHECK(s.total > 0 && s.total < (1 << 30), "%s: %lld images", spec, (long long)s.total);
    size_t per = (size_t)s.channels * s.height * s.width;
    float *img = core_malloc(sizeof(float) * (size_t)s.total * per);
    int *lab = core_malloc(sizeof(int) * (size_t)s.total);
    uint8_t *buf = NULL;
    size_t cap = 0;
    int64_t off = 0;
    for (int i = 0; i < s.n_files; i++) {
        io_hdf5_lock();
        hid_t f = shards_open_file(s.paths[i]);
        int64_t cnt;
        int dims[3];
        hid_t d = shards_open_images(f, s.paths[i], &cnt, dims);
        if ((size_t)cnt * per > cap) buf = core_realloc(buf, cap = (size_t)cnt * per);
        CHECK(H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0, "%s: reading /images failed",
              s.paths[i]);
        shards_read_labels(f, s.paths[i], cnt, s.num_classes, lab + off);
        H5Dclose(d);
        H5Fclose(f);
        io_hdf5_unlock();
        for (size_t k = 0; k < (size_t)cnt * per; k++) img[(size_t)off * per + k] = (float)buf[k] / 127.5f - 1.0f;
        off += cnt;
    }
    core_free(buf);
    *images = img, *labels = lab, *n = (int)s.total;
    *C = s.channels, *H = s.height, *W = s.width, *num_classes = s.num_classes;
    shardset_close(&s);
}
