/* train/losses/frozen.c — loading the frozen networks' weight files (frozen.h). */
#include "train/losses/frozen.h"

#include <stdio.h>

#include "core/check.h"
#include "io/fsutil.h"
#include "io/h5.h"
#include "io/shards.h" /* io_hdf5_lock */

/* A weights file, read-only, with io_hdf5_lock held (the caller unlocks
 * after H5Fclose); stops naming the config key when it cannot be opened. */
static hid_t open_weights(const char *path, const char *what) {
    char err[1400];
    CHECK(io_check_regular(path, "the weights file", err, sizeof err) == 0, "%s = %s", what, err);
    io_hdf5_lock();
    hid_t f;
    H5E_BEGIN_TRY { f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); }
    H5E_END_TRY;
    CHECK(f >= 0, "%s = %s: not a readable HDF5 file (scripts/pixelgen_weights.py makes it from the public weights)",
          what, path);
    return f;
}

void frozen_load_group(ParamStore *ps, const char *path, const char *what, const char *group) {
    hid_t f = open_weights(path, what);
    CHECK(H5Lexists(f, group, H5P_DEFAULT) > 0, "%s = %s: the file has no group '%s' (is it the right file?)", what,
          path, group);
    int missing;
    char detail[256];
    int bad = h5_param_group_check(f, path, group, ps, &missing, detail, sizeof detail);
    if (missing) {
        for (int i = 0; i < ps->n; i++) {
            char ds[PARAM_NAME_MAX + 64];
            snprintf(ds, sizeof ds, "%s/%s", group, ps->info[i].name);
            CHECK(H5Lexists(f, ds, H5P_DEFAULT) > 0, "%s = %s: dataset %s is missing (%d of %d missing)", what, path,
                  ds, missing, ps->n);
        }
    }
    CHECK(bad < 0, "%s = %s: %s/%s is %s", what, path, group, bad >= 0 ? ps->info[bad].name : "", detail);
    h5_param_group_read(f, path, group, ps, ps->host);
    H5Fclose(f);
    io_hdf5_unlock();
    params_push(ps);
}

int frozen_dataset_shape(const char *path, const char *what, const char *dataset, int dims[8], const char *hint) {
    hid_t f = open_weights(path, what);
    hid_t d;
    H5E_BEGIN_TRY { d = H5Dopen2(f, dataset, H5P_DEFAULT); }
    H5E_END_TRY;
    CHECK(d >= 0, "%s = %s: dataset %s is missing (%s)", what, path, dataset, hint);
    hid_t sp = H5Dget_space(d);
    hsize_t h[8] = {0};
    int nd = H5Sget_simple_extent_ndims(sp);
    if (nd >= 1 && nd <= 8) H5Sget_simple_extent_dims(sp, h, NULL);
    else nd = 0;
    for (int i = 0; i < nd; i++) dims[i] = (int)h[i];
    H5Sclose(sp), H5Dclose(d), H5Fclose(f);
    io_hdf5_unlock();
    return nd;
}

void frozen_views(ParamStore *ps) {
    for (int i = 0; i < ps->n; i++) ps->views[i].requires_grad = false;
}
