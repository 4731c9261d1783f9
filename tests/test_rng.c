/* tests/test_rng.c — Philox4x32-10 against the published Random123
 * known-answer vectors, and the statistics and determinism of the float draws. */
#include <criterion/criterion.h>
#include <math.h>

#include "core/rng.h"

Test(rng, philox_known_answer_vectors) {
    /* Random123 kat_vectors, "philox4x32 10" lines. */
    static const struct {
        uint32_t ctr[4], key[2], want[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
        uint32_t out[4];
        rng_philox4x32_10(kat[i].ctr, kat[i].key, out);
        for (int j = 0; j < 4; j++)
            cr_expect_eq(out[j], kat[i].want[j], "vector %zu word %d: got %08x want %08x", i, j, out[j],
                         kat[i].want[j]);
    }
}

Test(rng, block_maps_seed_stream_and_counter) {
    /* rng_block(seed, stream, block) is Philox with ctr = (block, stream), key = seed. */
    uint32_t a[4], b[4];
    const uint32_t ctr[4] = {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344};
    const uint32_t key[2] = {0xa4093822, 0x299f31d0};
    rng_block(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull, a);
    rng_philox4x32_10(ctr, key, b);
    for (int j = 0; j < 4; j++) cr_expect_eq(a[j], b[j]);
}

Test(rng, uniform_is_open_interval_with_right_moments) {
    const int n = 200000;
    double s = 0, s2 = 0;
    float lo = 1, hi = 0;
    for (int i = 0; i < n; i++) {
        float u = rng_uniform(42, RNG_STREAM_TEST, (uint64_t)i);
        cr_assert(u > 0.0f && u < 1.0f, "uniform %d = %g is outside (0,1)", i, u);
        s += u, s2 += (double)u * u;
        lo = u < lo ? u : lo, hi = u > hi ? u : hi;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    cr_expect(fabs(mean - 0.5) < 0.005, "mean %g", mean);
    cr_expect(fabs(var - 1.0 / 12) < 0.002, "variance %g", var);
    cr_expect(lo < 1e-4 && hi > 1 - 1e-4);
}

Test(rng, normal_has_right_moments) {
    const int n = 200000;
    double s = 0, s2 = 0, s4 = 0;
    for (int i = 0; i < n; i++) {
        double x = rng_normal(7, RNG_STREAM_TEST + 1, (uint64_t)i);
        cr_assert(isfinite(x));
        s += x, s2 += x * x, s4 += x * x * x * x;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    cr_expect(fabs(mean) < 0.01, "mean %g", mean);
    cr_expect(fabs(var - 1.0) < 0.02, "variance %g", var);
    cr_expect(fabs(s4 / n - 3.0) < 0.1, "fourth moment %g", s4 / n);
}

Test(rng, draws_are_pure_functions_of_seed_stream_index) {
    float a[1000], b[1000];
    rng_fill_normal(a, 1000, 5, RNG_STREAM_NOISE, 100, 0.0f, 1.0f);
    for (int i = 0; i < 1000; i++) b[i] = rng_normal(5, RNG_STREAM_NOISE, 100 + (uint64_t)i);
    for (int i = 0; i < 1000; i++) cr_assert_eq(a[i], b[i], "fill and single draw differ at %d", i);
    /* Different seed or stream: different numbers. */
    cr_expect_neq(rng_normal(5, RNG_STREAM_NOISE, 0), rng_normal(6, RNG_STREAM_NOISE, 0));
    cr_expect_neq(rng_normal(5, RNG_STREAM_NOISE, 0), rng_normal(5, RNG_STREAM_NOISE + 1, 0));
}
