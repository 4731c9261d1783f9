/* io/fsutil.h — small file-system helpers shared by the readers and writers
 * (configs, sweep files, checkpoints, shards, weights, images; shards,
 * checkpoints, run directories, sweep summaries).
 *
 * Inputs: every file the framework reads goes through io_open_regular (or
 * io_check_regular, for files a library opens by name, e.g. HDF5) first. It
 * opens with O_NONBLOCK, so a FIFO given as a file never blocks in open(),
 * then refuses anything fstat does not call a regular file (a FIFO, a
 * device such as /dev/zero, a directory, a socket) with a message naming
 * the path and what it was meant to be. Text inputs read whole (configs,
 * sweep files) are bounded besides: io_read_bounded stops at a stated size.
 *
 * Outputs (io/fsutil_out.c): a file is written under "<path>.tmp" and
 * renamed onto its final name only when complete, so the final name never
 * holds a partial file. A temporary file still pending when the program
 * exits (a failed check ends it with exit(1)) is removed then. */
#ifndef IO_FSUTIL_H
#define IO_FSUTIL_H

#include <stddef.h>
#include <stdio.h>

/* The most a configuration or sweep file may hold: far above any real one
 * (the largest in configs/ is a few KiB), far below what would exhaust a
 * node's memory. */
#define IO_MAX_TEXT_BYTES ((size_t)16 << 20)

/* mkdir -p: create path and its parents. 0, or -1 with "PATH: cannot create
 * the directory: REASON" in err (also when PATH exists and is no directory). */
int io_mkdirs(const char *path, char *err, size_t errlen);
/* The same, stopping with that message on failure. */
void io_mkdirs_or_die(const char *path);

/* Open path read-only if it is a regular file (symbolic links followed).
 * Returns the descriptor (blocking again, close-on-exec), or -1 with
 * "PATH: cannot open WHAT: REASON" or "PATH: WHAT is a FIFO (named pipe), not
 * a regular file" in err; errno is ENOENT for a missing file (callers that
 * treat "absent" as normal test it) and EINVAL for a wrong file type.
 * what: "the configuration", "the checkpoint", ... */
int io_open_regular(const char *path, const char *what, char *err, size_t errlen);
/* The same as a stdio stream ("rb"), or NULL with err. */
FILE *io_fopen_regular(const char *path, const char *what, char *err, size_t errlen);
/* Only the check, for files a library opens by name (HDF5): 0 or -1 with err. */
int io_check_regular(const char *path, const char *what, char *err, size_t errlen);
/* The check, stopping with its message on failure. */
void io_require_regular(const char *path, const char *what);
/* The whole of a regular file of at most max bytes, NUL-terminated, in a
 * core_malloc'ed *text of *len bytes. 0, or -1 with err (a file larger than
 * max is refused from its size, before anything is read, and a file that
 * grows past max while read is refused too). */
int io_read_bounded(const char *path, const char *what, size_t max, char **text, size_t *len, char *err,
                    size_t errlen);

/* ---- outputs (fsutil_out.c) ---- */

/* A file being written: the final path and its temporary name. */
typedef struct IoOut {
    char path[1100];
    char tmp[1120];
} IoOut;

/* Name the temporary file for path (path + ".tmp") and register it for
 * removal at exit; 0, or -1 with err when the path is too long. Writers that
 * open the file themselves (HDF5's H5Fcreate) create o->tmp. */
int io_out_begin(IoOut *o, const char *path, char *err, size_t errlen);
/* io_out_begin, then fopen(o->tmp, "wb"): the stream, or NULL with err. */
FILE *io_out_fopen(IoOut *o, const char *path, char *err, size_t errlen);
/* After a stream from io_out_fopen: flush, fsync and close it, then
 * io_out_commit. 0, or -1 with err (the temporary file is then removed). */
int io_out_fclose_commit(IoOut *o, FILE *f, char *err, size_t errlen);
/* Rename o->tmp onto o->path (after an fsync of the file, so the rename
 * never publishes data still only in memory). 0, or -1 with err (the
 * temporary file is then removed). */
int io_out_commit(IoOut *o, char *err, size_t errlen);
/* Give up: remove o->tmp. */
void io_out_abandon(IoOut *o);

#endif
