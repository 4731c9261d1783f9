/* kernels/cuda/ops_cuda.cu — the CUDA op table: every entry of
 * core/op_list.h filled with its kernel cuda_<name> (declared in
 * kernels/cuda/ops_cuda.h), on device pointers. Generated from the list, so
 * the designated initializers come in the struct's order (C++ requires it)
 * and no entry is left NULL (a NULL would crash far from here). */
#include "kernels/cuda/cuda_common.cuh"

extern "C" const OpTable ops_cuda = {
    .name = "cuda",
#define OP(ret, op, params) .op = cuda_##op,
#include "core/op_list.h"
#undef OP
};
