/* tests/bench/bench_util.h — what every benchmark program shares: a
 * monotonic clock in milliseconds and the median of repeated timings. */
#ifndef TESTS_BENCH_BENCH_UTIL_H
#define TESTS_BENCH_BENCH_UTIL_H

#include <stdlib.h>
#include <time.h>

#include "core/profile.h"

static inline double bench_now_ms(void) { return core_now_s() * 1e3; }

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts t in place (so t[0] and t[n - 1] are then the extremes). */
static inline double bench_median(double *t, int n) {
    qsort(t, (size_t)n, sizeof(double), bench_cmp_double);
    return t[n / 2];
}

#endif
