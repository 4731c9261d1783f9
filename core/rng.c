/* core/rng.c — Philox4x32-10 (Salmon et al., SC'11) and the float draws built on it. */
#include "core/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void rng_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

void rng_block(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4]) {
    const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                             (uint32_t)(stream >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    rng_philox4x32_10(ctr, key, out);
}

/* 24 high bits -> (0,1): never 0, so log() in Box-Muller is finite. */
static inline float rng_to_open01(uint32_t x) { return ((float)(x >> 8) + 0.5f) * (1.0f / 16777216.0f); }

float rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    uint32_t w[4];
    rng_block(seed, stream, index >> 2, w);
    return rng_to_open01(w[index & 3]);
}

/* Box-Muller in double so CPU results do not depend on float libm details. */
static inline float rng_box_muller(uint32_t a, uint32_t b, int second) {
    double u1 = rng_to_open01(a), u2 = rng_to_open01(b);
    double r = sqrt(-2.0 * log(u1));
    double th = 6.283185307179586 * u2;
    return (float)(second ? r * sin(th) : r * cos(th));
}

float rng_normal(uint64_t seed, uint64_t stream, uint64_t index) {
    uint32_t w[4];
    rng_block(seed, stream, index >> 2, w);
    int lane = (int)(index & 3);
    int pair = lane >> 1;
    return rng_box_muller(w[2 * pair], w[2 * pair + 1], lane & 1);
}

void rng_fill_uniform(float *out, size_t n, uint64_t seed, uint64_t stream, uint64_t offset, float lo, float hi) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t j = 0; j < n; j++) out[j] = lo + (hi - lo) * rng_uniform(seed, stream, offset + j);
}

void rng_fill_normal(float *out, size_t n, uint64_t seed, uint64_t stream, uint64_t offset, float mean, float std) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t j = 0; j < n; j++) out[j] = mean + std * rng_normal(seed, stream, offset + j);
}
