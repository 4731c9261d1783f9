/* kernels/cpu/quant.c — FP8 E4M3 rounding, encoding and decoding. */
#include <math.h>

#include "kernels/quant.h"

float fp8_e4m3_round(float x) {
    if (isnan(x)) return x;
    float a = fabsf(x);
    if (a >= FP8_E4M3_MAX) return copysignf(FP8_E4M3_MAX, x);
    /* Spacing of representable values: 2^(e-3) in the binade [2^e, 2^(e+1)),
     * and 2^-9 for the subnormals below 2^-6. */
    int e;
    frexpf(a, &e); /* a = f * 2^e, f in [0.5, 1): the binade is [2^(e-1), 2^e) */
    int exp2 = e - 1 < -6 ? -6 : e - 1;
    float quantum = ldexpf(1.0f, exp2 - 3);
    float r = nearbyintf(a / quantum) * quantum; /* default rounding mode: ties to even */
    if (r > FP8_E4M3_MAX) r = FP8_E4M3_MAX;
    return copysignf(r, x);
}

float fp8_e4m3_decode(uint8_t code) {
    int s = code >> 7, e = (code >> 3) & 15, m = code & 7;
    if (e == 15 && m == 7) return NAN;
    float v = e == 0 ? ldexpf((float)m, -9) : ldexpf(1.0f + m / 8.0f, e - 7);
    return s ? -v : v;
}

uint8_t fp8_e4m3_encode(float x) {
    if (isnan(x)) return 0x7f;
    float r = fp8_e4m3_round(x);
    uint8_t s = signbit(r) ? 0x80 : 0;
    float a = fabsf(r);
    if (a == 0.0f) return s;
    int e;
    float f = frexpf(a, &e); /* a = f 2^e, f in [0.5, 1) */
    int be = e - 1 + 7;       /* biased exponent of 1.m form */
    if (be <= 0) return s | (uint8_t)(int)ldexpf(a, 9); /* subnormal: a = m 2^-9 */
    int m = (int)((f * 2.0f - 1.0f) * 8.0f);
    return s | (uint8_t)(be << 3) | (uint8_t)m;
}
