/* io/idx.h — reading IDX files (the MNIST / Fashion-MNIST format), gzipped
 * or plain, as shipped by Debian's dataset-fashion-mnist package. */
#ifndef IO_IDX_H
#define IO_IDX_H

#include <stddef.h>
#include <stdint.h>

typedef struct IdxArray {
    int ndim;
    int dims[4];
    size_t count; /* product of dims */
    uint8_t *data;
} IdxArray;

/* Read an unsigned-byte IDX file (magic 0x00000801 / 0x00000803 / ...).
 * Stops with the file name and the problem on a missing, truncated or
 * malformed file. */
void idx_read(const char *path, IdxArray *out);
void idx_free(IdxArray *a);

#endif
