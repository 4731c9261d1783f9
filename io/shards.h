/* io/shards.h — image data as HDF5 shards, and the streaming loader.
 *
 * Shard layout (format "jit-shard-v1"), one HDF5 file per shard:
 *   /images   uint8 [n, C, H, W], chunked along n for random access
 *   /labels   int32 [n], class ids in [0, num_classes)
 *   root attributes: format = "jit-shard-v1", num_classes (int), class_names
 *   (string array of num_classes), channels, height, width (int), manifest
 *   (the set's manifest file, "<prefix>.manifest.json"; absent in shards
 *   made before manifests: io/shards_manifest.h).
 * A shard set is a file, a directory (every *.h5 in it, sorted by name) or a
 * glob; every shard must agree on C, H, W and num_classes. A directory must
 * hold exactly the shards its manifest lists, with their sample, byte and
 * class counts; a file or glob names shards explicitly, and each must agree
 * with its manifest entry when the manifest is beside it.
 *
 * The loader streams batches on a prefetch thread. Each epoch is a Philox
 * permutation of all samples (seed, epoch). Batches are cut from it
 * globally: step s of an epoch takes samples [s*G, (s+1)*G) of the
 * permutation, G = batch * world, and rank r keeps [s*G + r*batch, ...+batch).
 * So ranks get disjoint parts covering the epoch (the last partial global
 * batch is dropped), and 1 rank with batch 2B sees exactly what 2 ranks with
 * batch B see together. The position (epoch, samples consumed) is the same
 * on every rank, so a run resumes on any rank count. Images come out as
 * floats in [-1, 1]; an optional horizontal flip is a Philox draw of
 * (seed, epoch, sample position), so it too is independent of the rank count. */
#ifndef IO_SHARDS_H
#define IO_SHARDS_H

#include <stdint.h>

#define SHARD_FORMAT "jit-shard-v1"

typedef struct ShardSet {
    int n_files;
    char **paths;
    int64_t *counts; /* samples per file */
    int64_t total;
    int channels, height, width, num_classes;
    char **class_names; /* num_classes strings */
    int64_t *crc32;     /* per file, from the set's manifest (-1: none); checked by shardset_verify */
} ShardSet;

/* Open and validate every shard; stops with the file name and the problem
 * (missing, not HDF5, wrong format attribute, wrong dtype or shape,
 * labels out of range, mismatch between shards). */
void shardset_open(ShardSet *s, const char *spec);
void shardset_close(ShardSet *s);
/* Every image of a shard set (file order) as floats in [-1, 1]: *images
 * [n, C, H, W], *labels [n] (core_malloc'ed). Stops with the shard set's
 * problem (missing, not shards, ...). */
void shardset_read_all(const char *spec, float **images, int **labels, int *n, int *C, int *H, int *W,
                       int *num_classes);
/* Read every image of every shard of an open set (what shardset_open does
 * not touch) and compare each file's CRC-32 with its manifest: stops naming
 * the file when a chunk cannot be read or the checksum differs. Returns the
 * number of images read. */
int64_t shardset_verify(const ShardSet *s);
/* Images [first, first + n) of an open set, in file order, as the 8-bit
 * pixels the shards hold, NCHW, into out (for evaluations that take images
 * by index: reference statistics over 50,000 images never hold them all). */
void shardset_read_range_u8(const ShardSet *s, int64_t first, int n, uint8_t *out);

/* Write images [n, C, H, W] (uint8) and labels [n] as shards of at most
 * per_shard samples: dir/prefix-00000.h5, ..., then the set's manifest
 * (io/shards_manifest.h). Returns the number of files. */
int shards_write(const char *dir, const char *prefix, const uint8_t *images, const int *labels, int64_t n, int C,
                 int H, int W, int64_t per_shard, int num_classes, const char *const *class_names);
/* The same, numbering the files from first_index: prefix-<first_index>.h5, ...
 * (jit-prep's parallel folder mode writes shard k wherever it was made),
 * without the manifest: the caller writes it when the whole set is done. */
int shards_write_from(const char *dir, const char *prefix, int first_index, const uint8_t *images, const int *labels,
                      int64_t n, int C, int H, int W, int64_t per_shard, int num_classes,
                      const char *const *class_names);

typedef struct LoaderPos {
    uint64_t epoch;
    uint64_t offset; /* samples of this epoch's permutation already consumed (all ranks together) */
} LoaderPos;

typedef struct Loader Loader; /* opaque: owns the prefetch thread */

/* batch: samples per rank per call; rank/world: this rank's share;
 * prefetch: batches kept ready (>= 1). */
Loader *loader_create(const ShardSet *s, int batch, int rank, int world, uint64_t seed, int hflip, int prefetch);
/* The next batch: images [batch, C, H, W] in [-1, 1], labels [batch]. */
void loader_next(Loader *L, float *images, int *labels);
/* Position of the next batch loader_next will return. */
LoaderPos loader_position(const Loader *L);
/* Continue from a saved position (drops what was prefetched). */
void loader_seek(Loader *L, LoaderPos pos);
/* Global batches per epoch: floor(total / (batch * world)). */
uint64_t loader_steps_per_epoch(const Loader *L);
void loader_free(Loader *L);

/* HDF5 in this build is not thread-safe: every HDF5 call outside the loader
 * thread must hold this lock (checkpoints, sample files, tests). */
void io_hdf5_lock(void);
void io_hdf5_unlock(void);
/* 1 when JIT_HDF5_ERRORS is set (and not "0"): HDF5's own error stack is
 * then printed where the readers and writers otherwise silence it (their
 * messages name the file and what is wrong; the stack is for debugging). */
int io_hdf5_errors_wanted(void);

#endif
