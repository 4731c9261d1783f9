/* kernels/bilinear_tf.h — TensorFlow 1.x's bilinear resize, as torch-fidelity
 * reimplements it for the FID Inception-v3's input (docs/eval.md, "The FID
 * Inception network"): align_corners False, no half-pixel offset, no
 * antialias. Plain C that nvcc also compiles, so the CPU and CUDA kernels
 * share it. For output o of an axis of n_in samples resized to n_out:
 *   scale = n_in / n_out (in double, then rounded to float32),
 *   u = (float)o * scale in float32, lo = (int)u, hi = min(lo + 1, n_in - 1),
 *   f = u - lo;
 * and a pixel is the lerp along x of rows lo and hi, then along y:
 *   a + (b - a) f, each operation rounded on its own (no fused multiply-add:
 *   PyTorch's element-wise ops round each one), which keeps it bit-exact. */
#ifndef KERNELS_BILINEAR_TF_H
#define KERNELS_BILINEAR_TF_H

#include <stddef.h>

#ifdef __CUDACC__
#define BILINEAR_FN __host__ __device__ static inline
#else
#define BILINEAR_FN static inline
#endif

#ifdef __CUDA_ARCH__ /* nvcc would fuse a multiply and an add */
#define BILINEAR_LERP(a, b, f) __fadd_rn((a), __fmul_rn(__fsub_rn((b), (a)), (f)))
#else /* the C build and the emulator compile with -ffp-contract=off */
#define BILINEAR_LERP(a, b, f) ((a) + ((b) - (a)) * (f))
#endif

BILINEAR_FN float bilinear_tf_scale(int n_in, int n_out) { return (float)((double)n_in / (double)n_out); }

/* The two source indices of output index o and the weight of the second. */
BILINEAR_FN void bilinear_tf_tap(int o, float scale, int n_in, int *lo, int *hi, float *f) {
    float u = (float)o * scale;
    int i = (int)u;
    if (i > n_in - 1) i = n_in - 1; /* cannot happen for o < n_out; a guard, not a rule */
    *lo = i;
    *hi = i + 1 < n_in ? i + 1 : n_in - 1;
    *f = u - (float)i;
}

/* Output (oy, ox) of one plane src [Hi, Wi]. */
BILINEAR_FN float bilinear_tf_pixel(const float *src, int Hi, int Wi, int oy, int ox, float sy, float sx) {
    int y0, y1, x0, x1;
    float fy, fx;
    bilinear_tf_tap(oy, sy, Hi, &y0, &y1, &fy);
    bilinear_tf_tap(ox, sx, Wi, &x0, &x1, &fx);
    const float *r0 = src + (size_t)y0 * Wi, *r1 = src + (size_t)y1 * Wi;
    float top = BILINEAR_LERP(r0[x0], r0[x1], fx), bot = BILINEAR_LERP(r1[x0], r1[x1], fx);
    return BILINEAR_LERP(top, bot, fy);
}

#endif
