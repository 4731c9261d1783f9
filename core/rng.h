/* core/rng.h — Philox4x32-10 counter-based random numbers.
 *
 * A number is a pure function of (seed, stream, index): no generator state to
 * save, so every rank, the CPU and the GPU, and a resumed run all draw the
 * same values. Streams keep independent uses apart (parameter init, dropout,
 * diffusion noise, ...); see the RNG_STREAM_* bases. */
#ifndef CORE_RNG_H
#define CORE_RNG_H

#include <stddef.h>
#include <stdint.h>

/* Stream namespaces: the high 32 bits say what the numbers are for, the low
 * 32 bits pick an instance (parameter index, layer, step, ...). */
#define RNG_STREAM_PARAM_INIT (1ull << 32)
#define RNG_STREAM_DROPOUT (2ull << 32)
#define RNG_STREAM_NOISE (3ull << 32)
#define RNG_STREAM_TIME (4ull << 32)
#define RNG_STREAM_LABEL_DROP (5ull << 32)
#define RNG_STREAM_DATA (6ull << 32)
#define RNG_STREAM_TEST (7ull << 32)
#define RNG_STREAM_SAMPLE (8ull << 32)

/* The raw bijection: 10 rounds of Philox4x32 on counter ctr under key. */
void rng_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Four 32-bit words for block `block` of (seed, stream). The counter is
 * (block lo, block hi, stream lo, stream hi) and the key is the seed. */
void rng_block(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4]);

/* Uniform in the open interval (0, 1), 24 random bits: index i is lane i%4 of block i/4. */
float rng_uniform(uint64_t seed, uint64_t stream, uint64_t index);
/* Standard normal by Box-Muller: block i/4 gives two pairs, lanes (0,1) and (2,3). */
float rng_normal(uint64_t seed, uint64_t stream, uint64_t index);

/* out[j] = lo + (hi-lo) * uniform(seed, stream, offset + j) */
void rng_fill_uniform(float *out, size_t n, uint64_t seed, uint64_t stream, uint64_t offset, float lo, float hi);
/* out[j] = mean + std * normal(seed, stream, offset + j) */
void rng_fill_normal(float *out, size_t n, uint64_t seed, uint64_t stream, uint64_t offset, float mean, float std);

#endif
