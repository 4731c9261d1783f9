/* train/losses/feature_cache.h — a host cache of per-image feature rows keyed
 * by the image's content: PixelGen's DINOv2 target Phi(x) depends only on
 * the clean image, so with losses.dino_cache_mb each image's 256 x 768
 * floats are computed once and reused in later epochs. The key is a 64-bit
 * hash of the image's pixels as the model sees them, so a flipped or
 * otherwise augmented image is simply another entry. The cache fills up to
 * its budget and then stops inserting: no eviction, so what a step reads
 * does not depend on the order of earlier steps beyond first sight. */
#ifndef TRAIN_LOSSES_FEATURE_CACHE_H
#define TRAIN_LOSSES_FEATURE_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct FeatCache {
    size_t row;      /* floats per entry */
    size_t cap, n;   /* entries the budget holds, entries held */
    size_t n_slots;  /* open-addressing table, a power of two >= 2 cap */
    uint64_t *keys;  /* [n_slots], 0 = empty */
    uint32_t *index; /* [n_slots]: the entry of each key */
    float *rows;     /* [cap, row] */
    uint64_t lookups, hits;
} FeatCache;

/* A cache of rows of `row` floats within budget_bytes (the rows only). */
void featcache_init(FeatCache *c, size_t row, size_t budget_bytes);
void featcache_free(FeatCache *c);
/* The content key of n floats (never 0). */
uint64_t featcache_key(const float *data, size_t n);
/* The row of key, or NULL; counts the lookup. */
const float *featcache_get(FeatCache *c, uint64_t key);
/* A slot for key's row to be written into (row floats), or NULL when the
 * cache is full or already holds key. */
float *featcache_put(FeatCache *c, uint64_t key);

#endif
