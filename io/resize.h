/* io/resize.h — resampling images to the training size the way the JiT
 * recipe's Python pipeline does, so jit-prep's shards hold the pixels that
 * PIL (Pillow 9.4, the version Debian ships) would have given.
 *
 * resize_center_crop is ADM's center_crop_arr (guided-diffusion, copied by
 * JiT's util/crop.py), for an image of w x h and a target S:
 *   1. while min(w, h) >= 2 S: resize to (w / 2, h / 2) (integer division)
 *      with PIL's BOX filter;
 *   2. scale = S / min(w, h); resize to (round(w scale), round(h scale))
 *      with PIL's BICUBIC filter (round: Python's, ties to even);
 *   3. take the S x S crop at ((h' - S) / 2, (w' - S) / 2) (floor).
 * Images smaller than S are enlarged by step 2 alone.
 *
 * resize_pil is the resampler of PIL's Image.resize (libImaging/Resample.c)
 * for 8-bit bands, re-implemented: a separable filter, horizontal pass then
 * vertical, with the filter's support widened by the down-scale factor
 * (anti-aliasing), coefficients normalised to sum 1 and rounded to 22-bit
 * fixed point, and the horizontal result rounded and clipped to 8 bits
 * before the vertical pass, as PIL does. Every band is filtered alone, so a
 * planar image of C bands gives what PIL gives for mode L or RGB.
 *
 * resize_center_pad is the older jit-prep placement that never interpolates:
 * the image is centred on an S x S canvas of 0, padded where smaller and
 * cropped where larger. Images are planar: C x h x w, row-major. */
#ifndef IO_RESIZE_H
#define IO_RESIZE_H

#include <stdint.h>

typedef enum { RESIZE_BOX = 0, RESIZE_BICUBIC = 1 } ResizeFilter;

/* src C x h x w -> dst C x oh x ow (ow, oh >= 1). */
void resize_pil(const uint8_t *src, int C, int w, int h, uint8_t *dst, int ow, int oh, ResizeFilter filter);

/* src C x h x w -> dst C x S x S by ADM's center_crop_arr (above). */
void resize_center_crop(const uint8_t *src, int C, int w, int h, uint8_t *dst, int S);

/* src C x h x w centred on dst C x S x S, which the caller has zeroed; an odd
 * difference puts the extra row/column at the bottom/right. */
void resize_center_pad(const uint8_t *src, int C, int w, int h, uint8_t *dst, int S);

#endif
