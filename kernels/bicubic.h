/* kernels/bicubic.h — PyTorch's bicubic interpolation taps (align_corners
 * False, no antialias, A = -0.75; docs/pixelgen.md, "PyTorch's bicubic
 * interpolation"): the four source indices and weights of one output index
 * on one axis. Plain C that nvcc also compiles for the device, so the CPU
 * and CUDA kernels share it. For output o of an axis of n_in input samples
 * and source step r (n_in / n_out for a size, 1 / scale for a scale factor):
 *   u = r (o + 0.5) - 0.5 (not clamped), i = floor(u), f = u - i;
 *   taps i-1 .. i+2, each clamped to [0, n_in - 1] (replicate border);
 *   weights K2(1 + f), K1(f), K1(1 - f), K2(2 - f) with
 *   K1(d) = ((A + 2) d - (A + 3)) d^2 + 1 and K2(d) = ((A d - 5A) d + 8A) d - 4A. */
#ifndef KERNELS_BICUBIC_H
#define KERNELS_BICUBIC_H

#ifdef __CUDACC__
#define BICUBIC_FN __host__ __device__ static inline
#else
#define BICUBIC_FN static inline
#endif

#define BICUBIC_A (-0.75f)

BICUBIC_FN float bicubic_k1(float d) { return ((BICUBIC_A + 2.0f) * d - (BICUBIC_A + 3.0f)) * d * d + 1.0f; }
BICUBIC_FN float bicubic_k2(float d) {
    return ((BICUBIC_A * d - 5.0f * BICUBIC_A) * d + 8.0f * BICUBIC_A) * d - 4.0f * BICUBIC_A;
}

/* The taps of output index o: idx[4] and w[4]. */
BICUBIC_FN void bicubic_taps(int o, float r, int n_in, int idx[4], float w[4]) {
    float u = r * ((float)o + 0.5f) - 0.5f;
    float fl = floorf(u);
    int i = (int)fl;
    float f = u - fl;
    w[0] = bicubic_k2(1.0f + f), w[1] = bicubic_k1(f), w[2] = bicubic_k1(1.0f - f), w[3] = bicubic_k2(2.0f - f);
    for (int t = 0; t < 4; t++) {
        int j = i - 1 + t;
        idx[t] = j < 0 ? 0 : j > n_in - 1 ? n_in - 1 : j;
    }
}

#endif
