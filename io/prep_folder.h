/* io/prep_folder.h — jit-prep's class-folder mode: DIR/<class>/<image>
 * (JPEG or PNG) -> "jit-shard-v1" shards, decoded and resized on threads
 * and, under mpirun, spread over ranks. */
#ifndef IO_PREP_FOLDER_H
#define IO_PREP_FOLDER_H

#include <stdint.h>

#include "dist/comm.h"

typedef enum { PREP_RESIZE_CENTER_CROP = 0, PREP_RESIZE_NONE = 1 } PrepResize;

typedef struct PrepFolderOpts {
    const char *dir, *out, *prefix;
    int size, channels;
    PrepResize resize;
    int64_t per_shard;
    int threads; /* decoding threads on this rank, >= 1 */
    size_t max_pixels; /* per source image (width x height); 0: IMAGE_DEFAULT_MAX_PIXELS */
} PrepFolderOpts;

/* Convert the folder; every rank of comm calls it. Returns the exit code:
 * 0 when at least one image was written, 1 when none could be read. */
int prep_folder_run(const PrepFolderOpts *o, Comm *comm);

/* Warn about OUT/prefix-NNNNN.h5 files that this run did not write
 * (written[k] != 0 for the k it wrote, k < n): a directory spec reads every
 * *.h5, so a leftover from an earlier run would join the set. */
void prep_warn_stale(const char *out, const char *prefix, const int *written, int n);

/* Threads for one rank: OMP_NUM_THREADS when set, else the CPUs this process
 * may run on, shared among the node's ranks unless mpirun bound each rank to
 * its own CPUs. */
int prep_default_threads(const Comm *comm);

#endif
