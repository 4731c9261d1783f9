/* io/image.h — one image file (JPEG or PNG) as planar 8-bit pixels, for
 * jit-prep's class-folder input. */
#ifndef IO_IMAGE_H
#define IO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* Whether a file name has an image extension jit-prep reads: .jpg, .jpeg or
 * .png, in any case (ImageNet's train folders hold *.JPEG). */
int image_name_ok(const char *name);

/* Decode path as C planes (C = 1: gray, Rec. 601 luma (299 R + 587 G +
 * 114 B + 500) / 1000 of colour files; C = 3: RGB, gray replicated) into a
 * core_malloc'ed C x h x w array. The format is found from the first bytes,
 * not the name (ImageNet holds a PNG named .JPEG). Returns 0, or -1 with the
 * reason in err: empty file, unknown format, corrupt or truncated data. */
int image_read(const char *path, int C, uint8_t **planar, int *width, int *height, char *err, size_t errlen);

#endif
