/* kernels/pool2d.h — one window of k x k pooling on a channels-last image
 * (op pool2d_fwd, the FID Inception-v3's pools), shared by the CPU kernel
 * and its CUDA twin: the window of output (oy, ox) starts at (oy*s - pad,
 * ox*s - pad) and is clipped to the image; a max pool takes the maximum of
 * what is left (PyTorch pads with -inf), an average pool divides the sum
 * of what is left by its count (count_include_pad False). Sums run in
 * row-major order, as PyTorch's CPU kernel adds them. */
#ifndef KERNELS_POOL2D_H
#define KERNELS_POOL2D_H

#include <stddef.h>

#ifdef __CUDACC__
#define POOL2D_FN __host__ __device__ static inline
#else
#define POOL2D_FN static inline
#endif

/* Rows [y0, y1) and columns [x0, x1) of the clipped window. */
POOL2D_FN void pool2d_window(int oy, int ox, int H, int W, int k, int s, int pad, int *y0, int *y1, int *x0, int *x1) {
    int ys = oy * s - pad, xs = ox * s - pad;
    *y0 = ys > 0 ? ys : 0, *x0 = xs > 0 ? xs : 0;
    *y1 = ys + k < H ? ys + k : H, *x1 = xs + k < W ? xs + k : W;
}

/* Channel c of the window over img [H, W, C] (one image). */
POOL2D_FN float pool2d_value(const float *img, int W, int C, int c, int y0, int y1, int x0, int x1, int avg) {
    float acc = avg ? 0.0f : img[((size_t)y0 * W + x0) * C + c];
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            float v = img[((size_t)y * W + x) * C + c];
            if (avg) acc += v;
            else if (v > acc) acc = v;
        }
    return avg ? acc / (float)((y1 - y0) * (x1 - x0)) : acc;
}

#endif
