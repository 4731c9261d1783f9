/* train/losses/feature_cache.c — the content-keyed feature cache (feature_cache.h). */
#include "train/losses/feature_cache.h"

#include <string.h>

#include "core/alloc.h"
#include "core/check.h"

void featcache_init(FeatCache *c, size_t row, size_t budget_bytes) {
    memset(c, 0, sizeof *c);
    CHECK(row > 0, "feature cache: empty rows");
    c->row = row;
    c->cap = budget_bytes / (row * sizeof(float));
    CHECK(c->cap < UINT32_MAX, "feature cache: %zu entries are too many", c->cap);
    c->n_slots = 16;
    while (c->n_slots < 2 * c->cap) c->n_slots *= 2;
    c->keys = core_calloc(c->n_slots * sizeof(uint64_t));
    c->index = core_malloc(c->n_slots * sizeof(uint32_t));
    c->rows = c->cap ? core_malloc(c->cap * row * sizeof(float)) : NULL;
}

void featcache_free(FeatCache *c) {
    core_free(c->keys), core_free(c->index), core_free(c->rows);
    memset(c, 0, sizeof *c);
}

/* splitmix64's finaliser */
static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t featcache_key(const float *data, size_t n) {
    uint64_t h = mix(n), w;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        memcpy(&w, data + i, sizeof w);
        h = mix(h ^ w) + 0x9e3779b97f4a7c15ull;
    }
    if (i < n) {
        uint32_t last;
        memcpy(&last, data + i, sizeof last);
        h = mix(h ^ last);
    }
    return h ? h : 1;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t slot_of(const FeatCache *c, uint64_t key) {
    size_t s = (size_t)key & (c->n_slots - 1);
    while (c->keys[s] && c->keys[s] != key) s = (s + 1) & (c->n_slots - 1);
    return s;
}

const float *featcache_get(FeatCache *c, uint64_t key) {
    c->lookups++;
    size_t s = slot_of(c, key);
    if (!c->keys[s]) return NULL;
    c->hits++;
    return c->rows + (size_t)c->index[s] * c->row;
}

float *featcache_put(FeatCache *c, uint64_t key) {
    if (c->n >= c->cap) return NULL;
    size_t s = slot_of(c, key);
    if (c->keys[s]) return NULL;
    c->keys[s] = key;
    c->index[s] = (uint32_t)c->n;
    return c->rows + c->n++ * c->row;
}
