/* io/h5.h — the HDF5 attributes every file of the framework writes and
 * reads (checkpoints, shards, the classifier's weights), written once.
 *
 * Strings are written fixed-length UTF-8 (NUL-terminated): they are read
 * from the object header, where the 1.10 format checksums them, not from the
 * global heap that variable-length strings use (a corrupted heap crashes or
 * hangs libhdf5; docs/robustness.md). The readers take both kinds, and any
 * integer or float type, as h5py also writes them. Writers return 0, or -1
 * when HDF5 failed (the caller names the file). Callers hold io_hdf5_lock. */
#ifndef IO_H5_H
#define IO_H5_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "core/params.h"

int h5_write_i64(hid_t obj, const char *name, long long v);
int h5_write_u64(hid_t obj, const char *name, uint64_t v);
int h5_write_f64(hid_t obj, const char *name, double v);
int h5_write_str(hid_t obj, const char *name, const char *s);
/* n strings as a 1-D attribute, padded to the longest. */
int h5_write_strs(hid_t obj, const char *name, const char *const *s, int n);

/* A scalar attribute: 1 and *out when present and of the kind asked (any
 * integer type for the integer readers, any number for h5_read_f64), 0
 * when absent, -1 when present but of another kind or unreadable. */
int h5_read_i64(hid_t obj, const char *name, long long *out);
int h5_read_u64(hid_t obj, const char *name, uint64_t *out);
int h5_read_f64(hid_t obj, const char *name, double *out);
/* A scalar string attribute (fixed or variable length), malloc'ed; NULL
 * when absent or not a string. Variable-length strings are read in this
 * process: files whose heap may be damaged are read as io/shards.c does. */
char *h5_read_str(hid_t obj, const char *name);

/* Named parameter groups: group/<parameter name> datasets of a ParamStore's
 * shapes (checkpoints' params, optim/m, ema/...; the classifier's params).
 *
 * h5_param_group_check compares the group with the store: *missing gets
 * the number of parameters without a dataset; the return value is the
 * index of the first parameter whose dataset has another shape (-1: none),
 * with "[a, b] in the file but [c, d] in the model" in detail. Stops when
 * the file has no such group. */
int h5_param_group_check(hid_t f, const char *path, const char *group, const ParamStore *ps, int *missing,
                         char *detail, size_t detail_len);
/* Read every parameter present (as float32) into base + its offset; the
 * shapes must have been checked. Stops naming the file and dataset when a
 * read fails. Returns the number absent. */
int h5_param_group_read(hid_t f, const char *path, const char *group, const ParamStore *ps, float *base);

#endif
