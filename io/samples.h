/* io/samples.h — generated samples as HDF5: /samples float32 [n, C, H, W]
 * (model space, about [-1, 1]) and /labels int32 [n]. */
#ifndef IO_SAMPLES_H
#define IO_SAMPLES_H

void samples_write_h5(const char *path, const float *images, const int *labels, int n, int C, int H, int W);

#endif
