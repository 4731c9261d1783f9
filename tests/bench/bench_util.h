/* tests/bench/bench_util.h — what every benchmark program shares: a
 * monotonic clock in milliseconds, the median of repeated timings and
 * integer options. */
#ifndef TESTS_BENCH_BENCH_UTIL_H
#define TESTS_BENCH_BENCH_UTIL_H

#include <stdlib.h>
#include <string.h>
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

/* The value of option `name` ("--size 32"; the last one given), else def. */
static inline int bench_arg_int(int argc, char **argv, const char *name, int def) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) def = atoi(argv[i + 1]);
    return def;
}

#endif
