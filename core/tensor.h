/* core/tensor.h — the Tensor: a contiguous float32 array of up to 4
 * dimensions, in the memory of the graph's backend (core/backend.h).
 *
 * A tensor does not own memory: activations point into the step arena,
 * parameters into the flat parameter buffer. `grad` is NULL until backward
 * first writes it (parameters point it into the flat gradient buffer). */
#ifndef CORE_TENSOR_H
#define CORE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>

#define TENSOR_MAX_DIMS 4

/* Where memory lives: the host, or a GPU's memory (core/device.h). */
typedef enum { DEVICE_CPU = 0, DEVICE_CUDA = 1 } Device;

typedef struct Tensor {
    float *data;
    float *grad;
    int ndim;
    int shape[TENSOR_MAX_DIMS];
    size_t numel;
    bool requires_grad;
    const char *name; /* parameter name, or NULL for activations */
    int param_id;     /* index + 1 in its ParamStore; 0 for anything else */
} Tensor;

/* Fill shape fields; checks 1 <= ndim <= 4 and positive dims. */
void tensor_set_shape(Tensor *t, int ndim, const int *shape);
/* Last dimension, and the product of all the others ("rows"). */
static inline int tensor_cols(const Tensor *t) { return t->shape[t->ndim - 1]; }
static inline size_t tensor_rows(const Tensor *t) { return t->numel / (size_t)t->shape[t->ndim - 1]; }
bool tensor_same_shape(const Tensor *a, const Tensor *b);
/* "[3, 288, 192]" into buf, for error messages. */
const char *tensor_shape_str(const Tensor *t, char *buf, size_t n);

/* CHECK_SHAPE(t, ndim, d0, d1, ...): stop with both shapes when they differ
 * (-1 matches any size). */
#define CHECK_SHAPE(t, nd, ...) tensor_check_shape(__FILE__, __LINE__, #t, (t), (nd), (const int[]){__VA_ARGS__})
void tensor_check_shape(const char *file, int line, const char *what, const Tensor *t, int ndim, const int *shape);

#endif
