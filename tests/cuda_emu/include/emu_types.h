/* tests/cuda_emu/include/emu_types.h — the CUDA value types the emulated
 * headers share: dim3, the vector types (float2, float4, uint2, uint4) and
 * the library data types (library_types.h). */
#ifndef EMU_TYPES_H
#define EMU_TYPES_H

typedef struct dim3 {
    unsigned int x, y, z;
#ifdef __cplusplus
    constexpr dim3(unsigned int a = 1, unsigned int b = 1, unsigned int c = 1) : x(a), y(b), z(c) {}
#endif
} dim3;

/* The vector types of vector_types.h the kernels use, with CUDA's alignment
 * (a float4 or uint4 access is one 16-byte access, which must be aligned). */
typedef struct __attribute__((aligned(8))) float2 {
    float x, y;
} float2;
typedef struct __attribute__((aligned(16))) float4 {
    float x, y, z, w;
} float4;
typedef struct __attribute__((aligned(8))) uint2 {
    unsigned int x, y;
} uint2;
typedef struct __attribute__((aligned(16))) uint4 {
    unsigned int x, y, z, w;
} uint4;
static inline float2 make_float2(float x, float y) {
    float2 r = {x, y};
    return r;
}
static inline float4 make_float4(float x, float y, float z, float w) {
    float4 r = {x, y, z, w};
    return r;
}
static inline uint2 make_uint2(unsigned int x, unsigned int y) {
    uint2 r = {x, y};
    return r;
}
static inline uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) {
    uint4 r = {x, y, z, w};
    return r;
}

typedef enum cudaDataType_t {
    CUDA_R_32F = 0,
    CUDA_R_64F = 1,
    CUDA_R_16F = 2,
    CUDA_R_16BF = 14,
} cudaDataType;

#endif
