/* io/shards_internal.h — helpers shared by io/shards.c (writing, validation)
 * and io/shards_loader.c (the streaming loader). Not a public interface.
 * Every function here calls HDF5: hold io_hdf5_lock() around them. */
#ifndef IO_SHARDS_INTERNAL_H
#define IO_SHARDS_INTERNAL_H

#include <hdf5.h>
#include <stdint.h>

char *shards_strdup(const char *s); /* core_malloc'ed copy */
/* H5Fopen read-only; stops naming the file when it is missing, not HDF5, or truncated. */
hid_t shards_open_file(const char *path);
/* Open /images, check uint8 and 4-D; *n images of dims_chw = {C, H, W}. */
hid_t shards_open_images(hid_t f, const char *path, int64_t *n, int dims_chw[3]);
/* Read /labels (integers, length n) into out, checking [0, num_classes). */
void shards_read_labels(hid_t f, const char *path, int64_t n, int num_classes, int *out);
/* n variable-length strings of attribute a (memory type mt), read in a
 * forked child with a time limit (io/shards_legacy.c): a corrupt legacy
 * shard that crashes or hangs libhdf5 is an error naming path and name.
 * Returns n core_malloc'ed strings. */
char **shards_read_vlen_strings(hid_t a, hid_t mt, int n, const char *path, const char *name);
/* io_hdf5_lock for the loader's thread, which must not wait for the lock
 * for ever: the process may be ending with another thread holding it (a
 * check that failed inside an HDF5 section). 1 with the lock held, or 0
 * without it once *stop is set. */
int io_hdf5_lock_unless(const int *stop);
/* Access property list for reopening /images: the chunk cache policy. */
hid_t shards_images_dapl(hid_t dset, size_t image_bytes);

#endif
