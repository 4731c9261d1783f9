/* io/fsutil.h — small file-system helpers shared by the writers (shards,
 * checkpoints, run directories, sweep summaries). */
#ifndef IO_FSUTIL_H
#define IO_FSUTIL_H

#include <stddef.h>

/* mkdir -p: create path and its parents. 0, or -1 with "PATH: cannot create
 * the directory: REASON" in err (also when PATH exists and is no directory). */
int io_mkdirs(const char *path, char *err, size_t errlen);
/* The same, stopping with that message on failure. */
void io_mkdirs_or_die(const char *path);

#endif
