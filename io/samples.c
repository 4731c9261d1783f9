/* io/samples.c — writing generated samples to HDF5 (see samples.h). */
#include "io/samples.h"

#include <errno.h>
#include <hdf5.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "io/fsutil.h"
#include "io/shards.h"

/* One dataset, 0 or -1 (errno kept for the message). */
static int samples_write_dataset(hid_t f, const char *name, hid_t ftype, hid_t mtype, int rank, const hsize_t *dims,
                                 const void *buf) {
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
    int e = errno;
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    errno = e;
    return ok ? 0 : -1;
}

void samples_write_h5(const char *path, const float *images, const int *labels, int n, int C, int H, int W) {
    /* The file is made in memory (HDF5's core driver) and written with
     * stdio under a temporary name, renamed when complete (io/fsutil.h): a
     * failed write is then ours to report. Written by HDF5 to disk, a write
     * that failed (a full disk, a size limit) left libhdf5 to crash at exit
     * closing the file. Sample files are small (n x C x H x W floats). */
    io_hdf5_lock();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, (size_t)1 << 20, 0);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    CHECK(f >= 0, "%s: cannot make the HDF5 file in memory", path);
    hsize_t dims[4] = {(hsize_t)n, (hsize_t)C, (hsize_t)H, (hsize_t)W}, nl = (hsize_t)n;
    CHECK(samples_write_dataset(f, "samples", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, dims, images) == 0 &&
              samples_write_dataset(f, "labels", H5T_STD_I32LE, H5T_NATIVE_INT, 1, &nl, labels) == 0,
          "%s: cannot make the HDF5 file in memory (out of memory?)", path);
    CHECK(H5Fflush(f, H5F_SCOPE_LOCAL) >= 0, "%s: cannot finish the HDF5 file in memory", path);
    ssize_t size = H5Fget_file_image(f, NULL, 0);
    CHECK(size > 0, "%s: cannot finish the HDF5 file in memory", path);
    void *image = core_malloc((size_t)size);
    CHECK(H5Fget_file_image(f, image, (size_t)size) == size, "%s: cannot finish the HDF5 file in memory", path);
    H5Fclose(f);
    io_hdf5_unlock();
    IoOut out;
    char err[2400];
    FILE *fp = io_out_fopen(&out, path, err, sizeof err);
    CHECK(fp != NULL, "%s", err);
    size_t put = fwrite(image, 1, (size_t)size, fp);
    int e = errno;
    core_free(image);
    if (put != (size_t)size) {
        fclose(fp);
        io_out_abandon(&out);
        FAIL("writing %s failed: %s", path, strerror(e));
    }
    CHECK(io_out_fclose_commit(&out, fp, err, sizeof err) == 0, "writing %s failed: %s", path, err);
}
