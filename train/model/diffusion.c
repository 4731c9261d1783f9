/* train/model/diffusion.c — logit-normal timesteps and Gaussian noise from Philox. */
#include "train/model/diffusion.h"

#include <math.h>

#include "core/rng.h"

float diffusion_time(const DiffusionConfig *dc, uint64_t seed, uint64_t sample) {
    double logit = dc->p_mean + dc->p_std * rng_normal(seed, RNG_STREAM_TIME, sample);
    return (float)(1.0 / (1.0 + exp(-logit)));
}

void diffusion_noise_batch(const DiffusionConfig *dc, uint64_t seed, uint64_t sample0, const float *x, float *z,
                           float *t, int B, int per) {
    for (int b = 0; b < B; b++) {
        uint64_t s = sample0 + (uint64_t)b;
        float tb = diffusion_time(dc, seed, s);
        t[b] = tb;
        const float *xb = x + (size_t)b * per;
        float *zb = z + (size_t)b * per;
        /* Noise index = sample * per + pixel: a pure function of the sample. */
        for (int i = 0; i < per; i++) {
            float e = dc->noise_scale * rng_normal(seed, RNG_STREAM_NOISE, s * (uint64_t)per + (uint64_t)i);
            zb[i] = tb * xb[i] + (1.0f - tb) * e;
        }
    }
}
