/* train/model/sampler.h — JiT's sampler: Heun steps on linspace(0, 1, S+1) with a
 * final Euler step (2S - 1 network evaluations), x-prediction turned into a
 * velocity with the training clamp, and classifier-free guidance applied
 * only inside an interval of t. */
#ifndef TRAIN_MODEL_SAMPLER_H
#define TRAIN_MODEL_SAMPLER_H

#include <signal.h>
#include <stdint.h>

#include "core/graph.h"
#include "train/config/config.h"
#include "train/model/jit.h"

typedef struct SamplerConfig {
    int steps;           /* S */
    float cfg;           /* guidance scale w; 1 = no guidance */
    float cfg_lo, cfg_hi; /* w applies for cfg_lo < t < cfg_hi, else 1 */
    int cfg_official;     /* the official rule: t < cfg_hi and (cfg_lo == 0 or t > cfg_lo) */
    float noise_scale;
    uint64_t seed;
    /* The index of out[0] among all the images drawn with this seed: image
     * first_index + i starts from the noise of (seed, first_index + i), so
     * a set can be drawn in pieces (ranks, chunks) and be the same images. */
    uint64_t first_index;
    /* When set, checked before every network evaluation: nonzero stops the
     * sampling (a SIGTERM during the end-of-run grid must not wait for it). */
    const volatile sig_atomic_t *stop;
} SamplerConfig;

/* A run's sampling settings (its configuration's `sampling:` and run.seed),
 * each overridden where the caller gives one: steps >= 1, cfg >= 0,
 * cfg_lo >= 0, cfg_hi >= 0, seed >= 0 (the trainer passes -1 for all; the
 * programs pass their options). first_index and stop are left 0. */
SamplerConfig sampler_config(const Config *c, int steps, float cfg, float cfg_lo, float cfg_hi, long long seed);

/* Generate n images of the given classes into out [n, C, H, W] (model
 * space, about [-1, 1]), `batch` at a time. Sample i's starting noise is a
 * Philox draw of (seed, i): results do not depend on the batch size. The
 * model and the graph may be on any device, the same one (jit_to_device):
 * the noise and the update steps stay on the host, so a GPU run starts
 * from the same noise as the CPU's. */
/* Returns 0, or -1 when sc->stop cut it short (out is then incomplete). */
int sampler_run(JitModel *m, Graph *g, const SamplerConfig *sc, const int *labels, int n, int batch, float *out);

#endif
