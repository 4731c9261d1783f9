/* tests/cuda_emu/include/cuda_bf16.h — bfloat16 for the CPU emulator: the
 * storage type, the pair type and the conversions the backend uses, with the
 * GPU's rounding (to nearest even; NaN stays a quiet NaN). */
#ifndef EMU_CUDA_BF16_H
#define EMU_CUDA_BF16_H

#include <stdint.h>
#include <string.h>

typedef struct __nv_bfloat16 {
    uint16_t bits;
} __nv_bfloat16;

static inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    __nv_bfloat16 r;
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        r.bits = (uint16_t)((u >> 16) | 0x40u);
    } else {
        u += 0x7fffu + ((u >> 16) & 1u);
        r.bits = (uint16_t)(u >> 16);
    }
    return r;
}

static inline float __bfloat162float(__nv_bfloat16 b) {
    uint32_t u = (uint32_t)b.bits << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* A pair, x in the low half of the 32 bits (as on the GPU). */
typedef struct __attribute__((aligned(4))) __nv_bfloat162 {
    __nv_bfloat16 x, y;
} __nv_bfloat162;

static inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }

static inline __nv_bfloat162 __floats2bfloat162_rn(float lo, float hi) {
    __nv_bfloat162 r;
    r.x = __float2bfloat16_rn(lo);
    r.y = __float2bfloat16_rn(hi);
    return r;
}

static inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.bits; }

static inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) {
    __nv_bfloat16 r;
    r.bits = u;
    return r;
}

static inline float __low2float(__nv_bfloat162 v) { return __bfloat162float(v.x); }
static inline float __high2float(__nv_bfloat162 v) { return __bfloat162float(v.y); }

#endif
