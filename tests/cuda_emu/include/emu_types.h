/* tests/cuda_emu/include/emu_types.h — the CUDA value types the emulated
 * headers share: dim3 and the library data types (library_types.h). */
#ifndef EMU_TYPES_H
#define EMU_TYPES_H

typedef struct dim3 {
    unsigned int x, y, z;
#ifdef __cplusplus
    constexpr dim3(unsigned int a = 1, unsigned int b = 1, unsigned int c = 1) : x(a), y(b), z(c) {}
#endif
} dim3;

typedef enum cudaDataType_t {
    CUDA_R_32F = 0,
    CUDA_R_64F = 1,
    CUDA_R_16F = 2,
    CUDA_R_16BF = 14,
} cudaDataType;

#endif
