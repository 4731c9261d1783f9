/* tests/h5read.c — minimal HDF5 readers for the reference fixtures. */
#include "h5read.h"

#include <hdf5.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

h5r_file h5r_open(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(f >= 0, "cannot open fixture %s: run the reference_fixtures test (ctest) or "
                  "/usr/bin/python3 tests/reference/make_fixture.py --out DIR",
          path);
    return f;
}

void h5r_close(h5r_file f) { H5Fclose((hid_t)f); }

int h5r_exists(h5r_file f, const char *name) { return H5Lexists((hid_t)f, name, H5P_DEFAULT) > 0; }

size_t h5r_numel(h5r_file f, const char *name, int *ndim, int dims[8]) {
    hid_t d = H5Dopen2((hid_t)f, name, H5P_DEFAULT);
    CHECK(d >= 0, "fixture has no dataset '%s'", name);
    hid_t s = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(s);
    CHECK(nd >= 0 && nd <= 8, "dataset '%s' has %d dimensions", name, nd);
    hsize_t h[8];
    H5Sget_simple_extent_dims(s, h, NULL);
    size_t n = 1;
    for (int i = 0; i < nd; i++) {
        n *= h[i];
        if (dims) dims[i] = (int)h[i];
    }
    if (ndim) *ndim = nd;
    H5Sclose(s);
    H5Dclose(d);
    return n;
}

static void h5r_read(h5r_file f, const char *name, hid_t type, void *out, size_t n) {
    size_t have = h5r_numel(f, name, NULL, NULL);
    CHECK(have == n, "dataset '%s' has %zu elements, expected %zu", name, have, n);
    hid_t d = H5Dopen2((hid_t)f, name, H5P_DEFAULT);
    CHECK(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0, "reading dataset '%s' failed", name);
    H5Dclose(d);
}

void h5r_read_f32(h5r_file f, const char *name, float *out, size_t n) { h5r_read(f, name, H5T_NATIVE_FLOAT, out, n); }
void h5r_read_f64(h5r_file f, const char *name, double *out, size_t n) { h5r_read(f, name, H5T_NATIVE_DOUBLE, out, n); }
void h5r_read_i32(h5r_file f, const char *name, int *out, size_t n) { h5r_read(f, name, H5T_NATIVE_INT, out, n); }

/* Open an attribute given as "name" (root) or "obj/path/name". */
static hid_t h5r_attr_open(h5r_file f, const char *name) {
    char obj[256] = ".";
    const char *attr = name, *slash = strrchr(name, '/');
    if (slash) {
        size_t n = (size_t)(slash - name);
        CHECK(n < sizeof obj, "attribute path %s is too long", name);
        memcpy(obj, name, n);
        obj[n] = 0;
        attr = slash + 1;
    }
    CHECK(H5Aexists_by_name((hid_t)f, obj, attr, H5P_DEFAULT) > 0, "fixture has no attribute '%s'", name);
    return H5Aopen_by_name((hid_t)f, obj, attr, H5P_DEFAULT, H5P_DEFAULT);
}

int64_t h5r_attr_i64(h5r_file f, const char *name) {
    hid_t a = h5r_attr_open(f, name);
    int64_t v = 0;
    CHECK(H5Aread(a, H5T_NATIVE_INT64, &v) >= 0, "reading attribute '%s' failed", name);
    H5Aclose(a);
    return v;
}

double h5r_attr_f64(h5r_file f, const char *name) {
    hid_t a = h5r_attr_open(f, name);
    double v = 0;
    CHECK(H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0, "reading attribute '%s' failed", name);
    H5Aclose(a);
    return v;
}

void h5r_attr_str(h5r_file f, const char *name, char *out, size_t n) {
    hid_t a = h5r_attr_open(f, name), t = H5Aget_type(a);
    CHECK(H5Tget_class(t) == H5T_STRING, "attribute '%s' is not a string", name);
    if (H5Tis_variable_str(t) > 0) {
        char *s = NULL;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(t)); /* h5py writes UTF-8; HDF5 will not convert ASCII<->UTF-8 */
        CHECK(H5Aread(a, mt, &s) >= 0, "reading attribute '%s' failed", name);
        snprintf(out, n, "%s", s ? s : "");
        H5free_memory(s);
        H5Tclose(mt);
    } else {
        size_t len = H5Tget_size(t);
        char *buf = calloc(len + 1, 1);
        CHECK(H5Aread(a, t, buf) >= 0, "reading attribute '%s' failed", name);
        snprintf(out, n, "%s", buf);
        free(buf);
    }
    H5Tclose(t);
    H5Aclose(a);
}
