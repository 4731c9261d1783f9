/* tests/h5read.h — reading the PyTorch reference fixtures (HDF5) in tests.
 * Every reader converts to the requested native type and stops with the
 * file, the dataset and what is wrong. */
#ifndef TESTS_H5READ_H
#define TESTS_H5READ_H

#include <stddef.h>
#include <stdint.h>

typedef long long h5r_file; /* an hid_t */

h5r_file h5r_open(const char *path);
void h5r_close(h5r_file f);
int h5r_exists(h5r_file f, const char *name);
/* Number of elements of a dataset; its dims into dims[0..*ndim) when given. */
size_t h5r_numel(h5r_file f, const char *name, int *ndim, int dims[8]);
void h5r_read_f32(h5r_file f, const char *name, float *out, size_t n);
void h5r_read_f64(h5r_file f, const char *name, double *out, size_t n);
void h5r_read_i32(h5r_file f, const char *name, int *out, size_t n);
/* Attributes: "name" on the root group, or "group/name" on a group. */
int64_t h5r_attr_i64(h5r_file f, const char *name);
double h5r_attr_f64(h5r_file f, const char *name);
void h5r_attr_str(h5r_file f, const char *name, char *out, size_t n);

#endif
