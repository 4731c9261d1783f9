/* io/shards_manifest.h — the manifest that says a prepared shard set is
 * complete (see shards_manifest.c for the checks).
 *
 * jit-prep writes OUT/<prefix>.manifest.json last, atomically (temporary
 * name, fsync, rename), after every shard of the set:
 *   {"format": "jit-shard-manifest-v1", "prefix": ..., "channels": C,
 *    "height": H, "width": W, "num_classes": K, "class_names": [...],
 *    "class_counts": [samples of class 0, ...], "total": N,
 *    "shards": [{"file": "images-00000.h5", "samples": n, "bytes": b,
 *                "crc32": c}, ...]}
 * and each shard carries the root attribute manifest = "<prefix>.manifest.json".
 * A shard without that attribute was made before manifests existed: such a
 * set is accepted with a notice. */
#ifndef IO_SHARDS_MANIFEST_H
#define IO_SHARDS_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "io/shards.h"

#define SHARD_MANIFEST_FORMAT "jit-shard-manifest-v1"
#define SHARD_MANIFEST_ATTR "manifest"

/* "<prefix>.manifest.json" into out. */
void shards_manifest_name(const char *prefix, char *out, size_t n);
/* CRC-32 (zlib's) of a file's bytes and its size; stops naming the file
 * when it cannot be read. */
uint32_t shards_file_crc32(const char *path, int64_t *bytes);
/* Write dir/<prefix>.manifest.json for the shards files[i] (base names;
 * NULL entries are skipped), atomically. class_counts: K totals. */
void shards_manifest_write(const char *dir, const char *prefix, int n, char *const *files, const int64_t *samples,
                           const int64_t *bytes, const uint32_t *crc, int C, int H, int W, int K,
                           const char *const *class_names, const int64_t *class_counts);
/* Remove dir/<prefix>.manifest.json (before a set is written again: a
 * killed rewrite must not look complete under the old manifest). */
void shards_manifest_remove(const char *dir, const char *prefix);
/* The checks of shardset_open (shards_manifest.c): manifest_attr[i] is
 * shard i's attribute (NULL: none), class_counts the set's totals from its
 * labels. Stops naming the set, the manifest and the shard when the set
 * disagrees with its manifest; fills s->crc32 from the manifest (-1: not
 * listed). */
void shards_manifest_check(ShardSet *s, const char *spec, int spec_is_dir, char *const *manifest_attr,
                           const int64_t *class_counts);

#endif
