/* train/model/diffusion.h — the JiT flow objective's noising of a batch.
 *
 * t = sigmoid(s), s ~ N(P_mean, P_std); e ~ N(0, noise_scale^2);
 * z = t x + (1 - t) e (t = 1 is clean data). All draws are Philox numbers of
 * (seed, stream, global sample index), so a sample's noise does not depend
 * on the batch it lands in, the rank that holds it, or a resume. */
#ifndef TRAIN_MODEL_DIFFUSION_H
#define TRAIN_MODEL_DIFFUSION_H

#include <stdint.h>

typedef struct DiffusionConfig {
    float p_mean, p_std;  /* logit-normal t: JiT uses -0.8, 0.8 */
    float noise_scale;    /* image_size / 256 in JiT; 1 for small images */
} DiffusionConfig;

/* The timestep of global sample `sample` (what diffusion_noise_batch gives
 * it): any rank can count, say, the samples of the whole global batch above
 * a threshold without communicating. */
float diffusion_time(const DiffusionConfig *dc, uint64_t seed, uint64_t sample);
/* x [B, per] clean images in [-1, 1] -> z [B, per], t [B]. sample0 is the
 * global index of the batch's first sample (step * global_batch + offset). */
void diffusion_noise_batch(const DiffusionConfig *dc, uint64_t seed, uint64_t sample0, const float *x, float *z,
                           float *t, int B, int per);

#endif
