/* core/tensor.c — shape bookkeeping and shape checks for Tensor. */
#include "core/tensor.h"

#include <stdio.h>
#include <string.h>

#include "core/check.h"


void tensor_set_shape(Tensor *t, int ndim, const int *shape) {
    CHECK(ndim >= 1 && ndim <= TENSOR_MAX_DIMS, "tensors have 1 to %d dimensions, got %d", TENSOR_MAX_DIMS, ndim);
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < TENSOR_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    for (int i = 0; i < ndim; i++) {
        CHECK(shape[i] > 0, "dimension %d of a tensor is %d; sizes must be positive", i, shape[i]);
        t->numel *= (size_t)shape[i];
    }
}

bool tensor_same_shape(const Tensor *a, const Tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

const char *tensor_shape_str(const Tensor *t, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < t->ndim && k < n; i++) k += (size_t)snprintf(buf + k, n - k, i ? ", %d" : "%d", t->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

void tensor_check_shape(const char *file, int line, const char *what, const Tensor *t, int ndim, const int *shape) {
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = shape[i] < 0 || shape[i] == t->shape[i];
    if (ok) return;
    char got[96], want[96] = "[";
    size_t k = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) k += (size_t)snprintf(want + k, sizeof want - k, i ? ", *" : "*");
        else k += (size_t)snprintf(want + k, sizeof want - k, i ? ", %d" : "%d", shape[i]);
    }
    snprintf(want + k, sizeof want - k, "]");
    check_fail(file, line, NULL, "tensor %s%s%s has shape %s, expected %s", what, t->name ? " " : "",
               t->name ? t->name : "", tensor_shape_str(t, got, sizeof got), want);
}
