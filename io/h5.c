/* io/h5.c — HDF5 attributes written and read once (see io/h5.h). */
#include "io/h5.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"

static int write_scalar(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, const void *v) {
    hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(obj, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, mem_type, v) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return ok ? 0 : -1;
}

int h5_write_i64(hid_t obj, const char *name, long long v) {
    return write_scalar(obj, name, H5T_STD_I64LE, H5T_NATIVE_LLONG, &v);
}
int h5_write_u64(hid_t obj, const char *name, uint64_t v) {
    return write_scalar(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v);
}
int h5_write_f64(hid_t obj, const char *name, double v) {
    return write_scalar(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

/* count strings of at most width - 1 bytes, fixed-length UTF-8; a scalar
 * when n < 0. */
static int write_strings(hid_t obj, const char *name, const char *const *s, int n) {
    int count = n < 0 ? 1 : n;
    size_t width = 1;
    for (int i = 0; i < count; i++) width = strlen(s[i]) + 1 > width ? strlen(s[i]) + 1 : width;
    char *buf = core_calloc(width * (size_t)(count ? count : 1));
    for (int i = 0; i < count; i++) memcpy(buf + (size_t)i * width, s[i], strlen(s[i]));
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, width);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hsize_t dim = (hsize_t)count;
    hid_t sp = n < 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, t, buf) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    core_free(buf);
    return ok ? 0 : -1;
}

int h5_write_str(hid_t obj, const char *name, const char *s) { return write_strings(obj, name, &s, -1); }
int h5_write_strs(hid_t obj, const char *name, const char *const *s, int n) { return write_strings(obj, name, s, n); }

/* The attribute, open, when it exists and holds one value of class cls. */
static hid_t open_scalar(hid_t obj, const char *name, H5T_class_t cls, H5T_class_t cls2, int *status) {
    *status = 0;
    if (H5Aexists(obj, name) <= 0) return -1;
    *status = -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    H5T_class_t c = H5Tget_class(t);
    int ok = (c == cls || c == cls2) && H5Sget_simple_extent_npoints(sp) == 1;
    H5Tclose(t), H5Sclose(sp);
    if (!ok) {
        H5Aclose(a);
        return -1;
    }
    *status = 1;
    return a;
}

static int read_scalar(hid_t obj, const char *name, H5T_class_t cls, H5T_class_t cls2, hid_t mem_type, void *out) {
    int status;
    hid_t a = open_scalar(obj, name, cls, cls2, &status);
    if (status != 1) return status;
    int ok = H5Aread(a, mem_type, out) >= 0;
    H5Aclose(a);
    return ok ? 1 : -1;
}

int h5_read_i64(hid_t obj, const char *name, long long *out) {
    return read_scalar(obj, name, H5T_INTEGER, H5T_INTEGER, H5T_NATIVE_LLONG, out);
}
int h5_read_u64(hid_t obj, const char *name, uint64_t *out) {
    return read_scalar(obj, name, H5T_INTEGER, H5T_INTEGER, H5T_NATIVE_UINT64, out);
}
int h5_read_f64(hid_t obj, const char *name, double *out) {
    return read_scalar(obj, name, H5T_FLOAT, H5T_INTEGER, H5T_NATIVE_DOUBLE, out);
}

char *h5_read_str(hid_t obj, const char *name) {
    int status;
    hid_t a = open_scalar(obj, name, H5T_STRING, H5T_STRING, &status);
    if (status != 1) return NULL;
    hid_t t = H5Aget_type(a), mt = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mt, H5Tget_cset(t));
    char *copy = NULL;
    if (H5Tis_variable_str(t) > 0) {
        H5Tset_size(mt, H5T_VARIABLE);
        char *s = NULL;
        if (H5Aread(a, mt, &s) >= 0 && s) {
            copy = strdup(s);
            H5free_memory(s);
        }
    } else {
        size_t n = H5Tget_size(t);
        H5Tset_size(mt, n);
        H5Tset_strpad(mt, H5T_STR_NULLPAD);
        copy = calloc(n + 1, 1);
        if (copy && H5Aread(a, mt, copy) < 0) free(copy), copy = NULL;
    }
    H5Tclose(mt), H5Tclose(t), H5Aclose(a);
    return copy;
}

static void shape_text(char *buf, size_t len, const hsize_t *d, int nd) {
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < nd && k < len; i++) k += (size_t)snprintf(buf + k, len - k, "%s%llu", i ? ", " : "",
                                                                   (unsigned long long)d[i]);
    if (k < len) snprintf(buf + k, len - k, "]");
}

static hid_t open_group(hid_t f, const char *path, const char *group) {
    CHECK(H5Lexists(f, group, H5P_DEFAULT) > 0, "%s: no group '%s'", path, group);
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    CHECK(g >= 0, "%s: cannot open group '%s'", path, group);
    return g;
}

int h5_param_group_check(hid_t f, const char *path, const char *group, const ParamStore *ps, int *missing,
                         char *detail, size_t detail_len) {
    hid_t g = open_group(f, path, group);
    int bad = -1;
    *missing = 0;
    if (detail_len) detail[0] = '\0';
    for (int i = 0; i < ps->n; i++) {
        const ParamInfo *p = &ps->info[i];
        if (H5Lexists(g, p->name, H5P_DEFAULT) <= 0) {
            (*missing)++;
            continue;
        }
        if (bad >= 0) continue;
        hid_t d = H5Dopen2(g, p->name, H5P_DEFAULT), sp = H5Dget_space(d);
        hsize_t dims[8], want[TENSOR_MAX_DIMS];
        int nd = H5Sget_simple_extent_ndims(sp);
        if (nd > 8) nd = 8;
        H5Sget_simple_extent_dims(sp, dims, NULL);
        H5Sclose(sp), H5Dclose(d);
        int same = nd == p->ndim;
        for (int k = 0; same && k < nd; k++) same = dims[k] == (hsize_t)p->shape[k];
        if (same) continue;
        bad = i;
        for (int k = 0; k < p->ndim; k++) want[k] = (hsize_t)p->shape[k];
        char a[96], b[96];
        shape_text(a, sizeof a, dims, nd);
        shape_text(b, sizeof b, want, p->ndim);
        snprintf(detail, detail_len, "%s in the file but %s in the model", a, b);
    }
    H5Gclose(g);
    return bad;
}

int h5_param_group_read(hid_t f, const char *path, const char *group, const ParamStore *ps, float *base) {
    hid_t g = open_group(f, path, group);
    int missing = 0;
    for (int i = 0; i < ps->n; i++) {
        const ParamInfo *p = &ps->info[i];
        if (H5Lexists(g, p->name, H5P_DEFAULT) <= 0) {
            missing++;
            continue;
        }
        hid_t d = H5Dopen2(g, p->name, H5P_DEFAULT);
        CHECK(d >= 0 && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, base + p->offset) >= 0,
              "%s: reading %s/%s failed (truncated or corrupt file?)", path, group, p->name);
        H5Dclose(d);
    }
    H5Gclose(g);
    return missing;
}
