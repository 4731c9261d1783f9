/* io/png.c — PNG files through libpng's classic API (see io/png.h).
 *
 * libpng reports errors by calling an error function that must not return;
 * ours records the message and longjmps back to the setjmp in the caller,
 * which frees what it allocated and returns the message (png_read_try; png_read
 * stops with it and the file name). Pointers that
 * change after setjmp are volatile, as C requires for values read after a
 * longjmp. Warnings (e.g. an odd sRGB profile) are ignored: the pixels are
 * still good.
 *
 * Reading converts to 8-bit gray or RGB: palettes expand to RGB, 1/2/4-bit
 * gray to 8 bits, 16-bit samples are scaled to 8 bits, and alpha (an alpha
 * channel; a tRNS chunk is not expanded) is dropped, not composited: gray +
 * alpha -> gray, RGBA -> RGB, like PIL's convert("RGB"). */
#include "io/png.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"
#include "io/fsutil.h"
#include "io/image.h"

/* Largest width or height accepted when reading: a corrupt header must not
 * turn into a giant allocation. */
#define PNG_IO_MAX_DIM 32768

typedef struct PngIoCtx {
    char msg[256];
} PngIoCtx;

static void png_io_on_error(png_structp png, png_const_charp msg) {
    PngIoCtx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

static void png_io_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

void png_write(const char *path, const uint8_t *pixels, int width, int height, int channels) {
    CHECK(channels == 1 || channels == 3, "%s: png_write takes 1 (gray) or 3 (RGB) channels, not %d", path, channels);
    CHECK(width > 0 && height > 0, "%s: png_write of an empty %d x %d image", path, width, height);
    /* Under a temporary name, renamed when complete (io/fsutil.h): a killed
     * or failed write never leaves a partial PNG under the final name. */
    IoOut out;
    char err[2400];
    FILE *fp = io_out_fopen(&out, path, err, sizeof err);
    CHECK(fp != NULL, "%s: cannot create the PNG file: %s", path, err);
    PngIoCtx ctx = {{0}};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_io_on_error, png_io_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    CHECK(png && info, "%s: libpng could not start (out of memory?)", path);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(fp);
        io_out_abandon(&out);
        FAIL("%s: writing the PNG failed: %s (disk full?)", path, ctx.msg);
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++) png_write_row(png, pixels + (size_t)y * width * channels);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    CHECK(io_out_fclose_commit(&out, fp, err, sizeof err) == 0, "%s: writing the PNG failed: %s", path, err);
}

int png_read_try(const char *path, size_t max_pixels, uint8_t **pixels, int *width, int *height, int *channels,
                 char *err, size_t errlen) {
    FILE *fp = io_fopen_regular(path, "the PNG file", err, errlen);
    if (!fp) return -1;
    unsigned char sig[8];
    size_t got = fread(sig, 1, 8, fp);
    if (got != 8 || png_sig_cmp(sig, 0, 8) != 0) {
        fclose(fp);
        snprintf(err, errlen, "not a PNG file (bad signature)");
        return -1;
    }
    PngIoCtx ctx = {{0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_io_on_error, png_io_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(fp);
        snprintf(err, errlen, "libpng could not start (out of memory?)");
        return -1;
    }
    uint8_t *volatile data = NULL;
    png_bytep *volatile rows = NULL;
    volatile int too_large = 0; /* the message is then no "corrupt" */
    if (setjmp(png_jmpbuf(png))) {
        core_free(data);
        core_free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        fclose(fp);
        snprintf(err, errlen, "%s%s", too_large ? "" : "corrupt or truncated PNG: ", ctx.msg);
        return -1;
    }
    png_init_io(png, fp);
    png_set_sig_bytes(png, 8);
    png_set_user_limits(png, PNG_IO_MAX_DIM, PNG_IO_MAX_DIM);
    png_read_info(png, info);
    /* The header's size, before anything is allocated for the rows: a PNG's
     * zlib stream of zero rows compresses ~1000:1, so a small file can
     * declare gigabytes of pixels. */
    size_t iw = png_get_image_width(png, info), ih = png_get_image_height(png, info);
    if (iw * ih > max_pixels) {
        snprintf(ctx.msg, sizeof ctx.msg,
                 "image of %zu x %zu pixels is too large (at most %zu pixels; jit-prep --max-pixels raises the limit)",
                 iw, ih, max_pixels);
        too_large = 1;
        png_longjmp(png, 1);
    }
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_scale_16(png);
    if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int w = (int)png_get_image_width(png, info), h = (int)png_get_image_height(png, info);
    int c = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (!((c == 1 || c == 3) && rowbytes == (size_t)w * c)) {
        snprintf(ctx.msg, sizeof ctx.msg, "unexpected layout after conversion (%d channels, %zu bytes per row)", c,
                 rowbytes);
        png_longjmp(png, 1);
    }
    data = core_malloc((size_t)h * rowbytes);
    rows = core_malloc(sizeof(png_bytep) * (size_t)h);
    for (int y = 0; y < h; y++) rows[y] = data + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(fp);
    core_free(rows);
    *pixels = data;
    *width = w;
    *height = h;
    *channels = c;
    return 0;
}

void png_read(const char *path, uint8_t **pixels, int *width, int *height, int *channels) {
    char err[320];
    if (png_read_try(path, IMAGE_DEFAULT_MAX_PIXELS, pixels, width, height, channels, err, sizeof err) != 0)
        FAIL("%s: %s", path, err);
}

/* [-1, 1] -> 0..255, rounded; out-of-range values clamp, NaN becomes 0. */
static uint8_t png_io_to_byte(float v) {
    float q = (v + 1.0f) * 127.5f;
    if (!(q > 0.0f)) return 0;
    if (q >= 255.0f) return 255;
    return (uint8_t)lrintf(q);
}

/* Layout: rows = ceil(n / cols); width = cols*W + (cols+1)*pad, height =
 * rows*H + (rows+1)*pad. The border (around and between images) and the
 * empty cells of a last partial row are 0 (black). */
void png_write_grid(const char *path, const float *images, int n, int C, int H, int W, int cols, int pad) {
    CHECK(C == 1 || C == 3, "%s: png_write_grid takes 1 (gray) or 3 (RGB) channels, not %d", path, C);
    CHECK(n > 0 && H > 0 && W > 0 && cols > 0 && pad >= 0,
          "%s: png_write_grid needs n, H, W, cols > 0 and pad >= 0 (got n %d, H %d, W %d, cols %d, pad %d)", path, n,
          H, W, cols, pad);
    int rows = (n + cols - 1) / cols;
    int gw = cols * W + (cols + 1) * pad, gh = rows * H + (rows + 1) * pad;
    uint8_t *grid = core_calloc((size_t)gw * gh * C);
    for (int i = 0; i < n; i++) {
        int y0 = pad + (i / cols) * (H + pad), x0 = pad + (i % cols) * (W + pad);
        for (int ch = 0; ch < C; ch++)
            for (int y = 0; y < H; y++) {
                const float *src = images + (((size_t)i * C + ch) * H + y) * W;
                uint8_t *dst = grid + ((size_t)(y0 + y) * gw + x0) * C + ch;
                for (int x = 0; x < W; x++) dst[(size_t)x * C] = png_io_to_byte(src[x]);
            }
    }
    png_write(path, grid, gw, gh, C);
    core_free(grid);
}
