/* io/samples.c — writing generated samples to HDF5 (see samples.h). */
#include "io/samples.h"

#include <hdf5.h>

#include "core/check.h"
#include "io/shards.h"

void samples_write_h5(const char *path, const float *images, const int *labels, int n, int C, int H, int W) {
    io_hdf5_lock();
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(f >= 0, "cannot create %s", path);
    hsize_t dims[4] = {(hsize_t)n, (hsize_t)C, (hsize_t)H, (hsize_t)W}, nl = (hsize_t)n;
    hid_t sp = H5Screate_simple(4, dims, NULL);
    hid_t d = H5Dcreate2(f, "samples", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, images) >= 0, "writing %s failed",
          path);
    H5Dclose(d), H5Sclose(sp);
    sp = H5Screate_simple(1, &nl, NULL);
    d = H5Dcreate2(f, "labels", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(d >= 0 && H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels) >= 0, "writing %s failed", path);
    H5Dclose(d), H5Sclose(sp);
    CHECK(H5Fclose(f) >= 0, "closing %s failed (disk full?)", path);
    io_hdf5_unlock();
}
