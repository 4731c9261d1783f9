/* io/png.h — PNG files through libpng: reading images for jit-prep's folder
 * input, writing images and sample grids. */
#ifndef IO_PNG_H
#define IO_PNG_H

#include <stddef.h>
#include <stdint.h>

/* Write 8-bit pixels, row-major, interleaved channels (1 = gray, 3 = RGB). */
void png_write(const char *path, const uint8_t *pixels, int width, int height, int channels);
/* Read any PNG as 8-bit gray (channels = 1) or RGB (channels = 3): palette,
 * 16-bit and alpha are converted. *pixels is malloc'ed, interleaved.
 * Stops with the file name on a missing or corrupt file. */
void png_read(const char *path, uint8_t **pixels, int *width, int *height, int *channels);
/* The same, but a missing or corrupt file returns -1 with the reason in err
 * (0 on success), for readers that skip bad files instead of stopping; an
 * image of more than max_pixels pixels is refused from its header (IHDR),
 * before any allocation for its rows. png_read uses
 * IMAGE_DEFAULT_MAX_PIXELS (io/image.h). */
int png_read_try(const char *path, size_t max_pixels, uint8_t **pixels, int *width, int *height, int *channels,
                 char *err, size_t errlen);
/* A grid of n images [n, C, H, W] with values in [-1, 1], `cols` per row,
 * `pad` pixels of border between them. */
void png_write_grid(const char *path, const float *images, int n, int C, int H, int W, int cols, int pad);

#endif
