/* io/image.h — one image file (JPEG or PNG) as planar 8-bit pixels, for
 * jit-prep's class-folder input. */
#ifndef IO_IMAGE_H
#define IO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* Whether a file name has an image extension jit-prep reads: .jpg, .jpeg or
 * .png, in any case (ImageNet's train folders hold *.JPEG). */
int image_name_ok(const char *name);

/* The most pixels (width x height) a decoded image may have unless told
 * otherwise: Pillow's MAX_IMAGE_PIXELS (1024^3 / 4 / 3 = 89,478,485, about
 * 9459 x 9459), far above any training image and far below what a small
 * crafted file could make a decoder allocate (a 388 KB PNG declared
 * 20000 x 20000 took 1.28 GB). jit-prep --max-pixels changes it. */
#define IMAGE_DEFAULT_MAX_PIXELS ((size_t)89478485)

/* Decode path as C planes (C = 1: gray, Rec. 601 luma (299 R + 587 G +
 * 114 B + 500) / 1000 of colour files; C = 3: RGB, gray replicated) into a
 * core_malloc'ed C x h x w array. The format is found from the first bytes,
 * not the name (ImageNet holds a PNG named .JPEG). An image of more than
 * max_pixels pixels (0: IMAGE_DEFAULT_MAX_PIXELS) is refused from its header,
 * before anything is allocated for it. Returns 0, or -1 with the reason in
 * err: not a regular file, empty file, unknown format, too many pixels,
 * corrupt or truncated data. */
int image_read(const char *path, int C, size_t max_pixels, uint8_t **planar, int *width, int *height, char *err,
               size_t errlen);

#endif
