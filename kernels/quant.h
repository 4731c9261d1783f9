/* kernels/quant.h — exact emulation of the low-bit formats SLA2's QAT uses:
 * FP8 E4M3 ("fn": bias 7, 3 mantissa bits, max 448, no infinities, round to
 * nearest even, saturating) and symmetric INT8 (round half away from zero).
 * Plain C, shared by the CPU kernels and the tests; the CUDA kernels will
 * use the hardware conversions and be tested against these. */
#ifndef KERNELS_QUANT_H
#define KERNELS_QUANT_H

#include <stdint.h>

#define FP8_E4M3_MAX 448.0f

/* Round x to the nearest representable E4M3 value (ties to even), saturating
 * at +-448. NaN stays NaN. */
float fp8_e4m3_round(float x);
/* fp8_e4m3_round in integer and float arithmetic only (no frexpf, ldexpf or
 * nearbyintf calls), so loops over it vectorise; equal to fp8_e4m3_round for
 * every float (tests/test_sla2.c: quant/fp8_inline_equals_the_reference).
 * Normal E4M3 values (|x| >= 2^-6): the float32 mantissa rounded to 3 bits,
 * ties to even, a carry moving into the exponent; below 2^-6 the E4M3
 * subnormals are the multiples of 2^-9, which adding and subtracting 2^14
 * rounds to (float32's spacing at 2^14 is 2^-9), ties to even. */
static inline float fp8_e4m3_round_inline(float x) {
    union {
        float f;
        uint32_t u;
    } in = {.f = x}, mag, rn, out;
    uint32_t sign = in.u & 0x80000000u;
    mag.u = in.u & 0x7fffffffu;
    rn.u = (mag.u + 0x7ffffu + ((mag.u >> 20) & 1u)) & 0xfff00000u;
    float sub = (mag.f + 16384.0f) - 16384.0f;
    float r = mag.f < 0.015625f ? sub : rn.f;
    out.f = r > FP8_E4M3_MAX || mag.u >= 0x7f800000u ? FP8_E4M3_MAX : r;
    out.u |= sign;
    return x != x ? x : out.f;
}
/* The 8-bit code of fp8_e4m3_round(x) (saturating; NaN -> 0x7f). */
uint8_t fp8_e4m3_encode(float x);
/* The value of a code (0x7f and 0xff are NaN). */
float fp8_e4m3_decode(uint8_t code);

/* Symmetric INT8 of x / scale: round half away from zero, clamp to [-127, 127]. */
static inline int8_t int8_quantize(float x, float scale) {
    float r = x / scale;
    r = r >= 0.0f ? (float)(int)(r + 0.5f) : -(float)(int)(-r + 0.5f);
    r = r > 127.0f ? 127.0f : (r < -127.0f ? -127.0f : r);
    return (int8_t)r;
}

#endif
