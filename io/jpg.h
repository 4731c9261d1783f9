/* io/jpg.h — JPEG files through libjpeg-turbo, for jit-prep's folder input.
 * (Not "jpeg_": that prefix is libjpeg's own.) */
#ifndef IO_JPG_H
#define IO_JPG_H

#include <stddef.h>
#include <stdint.h>

/* Decode path as 8-bit gray (*channels = 1) or RGB (*channels = 3),
 * interleaved, row-major; *pixels is core_malloc'ed. Decoding uses the
 * settings PIL's JPEG plugin uses (accurate integer DCT, fancy upsampling),
 * so the pixels equal Image.open(path) bit for bit. CMYK and YCCK files
 * become RGB by PIL's convert("RGB") of its Adobe-inverted CMYK. Returns 0,
 * or -1 with the reason in err (a corrupt, truncated or unsupported file):
 * never stops the program, so one bad file costs only itself. An image of
 * more than max_pixels pixels is refused from its header (before libjpeg
 * allocates its buffers, which for a progressive file hold every
 * coefficient of the image). */
int jpg_read(const char *path, size_t max_pixels, uint8_t **pixels, int *width, int *height, int *channels, char *err,
             size_t errlen);

#endif
