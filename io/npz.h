/* io/npz.h — NumPy's .npz files (a zip archive of .npy arrays), read and
 * written without Python: the official FID reference statistics
 * (fid_stats/jit_in256_stats.npz: "mu" [2048] and "sigma" [2048, 2048],
 * float64) are such files, and the reference statistics this framework
 * computes are written the same way so that numpy reads them back.
 *
 * Formats (public specifications, docs/eval.md): the .npy header is
 * "\x93NUMPY", version (1.0, 2.0 or 3.0), a little-endian header length
 * (2 bytes in 1.0, 4 in later versions) and a Python dict literal with
 * 'descr' ('<f8', '<f4', ...), 'fortran_order' and 'shape'. The zip side
 * follows PKWARE's APPNOTE: the central directory (and its ZIP64 records,
 * which np.savez always writes) gives each member's sizes and offset;
 * members are stored or deflated (np.savez_compressed), inflated with zlib
 * and checked against their CRC-32.
 *
 * Errors name the file and the key: "FILE: key 'sigma': ...". */
#ifndef IO_NPZ_H
#define IO_NPZ_H

#include <stddef.h>

#define NPZ_MAX_DIMS 4

/* Read member KEY (".npy" appended) of the .npz at path as float64 (from
 * '<f8' or '<f4'), C order (a Fortran-order array is transposed). *data is
 * core_malloc'ed; *ndim and shape[NPZ_MAX_DIMS] describe it. 0, or -1 with
 * the message in err. */
int npz_read_f64(const char *path, const char *key, double **data, int *ndim, long *shape, char *err,
                 size_t errlen);

/* One array to write: float64, C order. */
typedef struct NpzArray {
    const char *key;
    const double *data;
    int ndim;
    long shape[NPZ_MAX_DIMS];
} NpzArray;

/* Write the arrays as an uncompressed .npz (what np.savez writes; members
 * "KEY.npy", .npy version 1.0), atomically (io_out_*). 0, or -1 with err. */
int npz_write_f64(const char *path, const NpzArray *arrays, int n, char *err, size_t errlen);

#endif
