/* io/jpg.c — JPEG decoding through libjpeg-turbo (see io/jpg.h).
 *
 * libjpeg's default error handler prints and calls exit(): one corrupt file
 * in a million would end a whole prep run. Ours formats the message and
 * longjmps back to jpg_read, which frees what it holds and returns -1.
 * Values changed after setjmp and read after the longjmp are volatile.
 *
 * Warnings: libjpeg only warns about a file cut short ("Premature end of
 * JPEG file") or about damaged entropy-coded data, and then fills the rest
 * of the image with grey or garbage. Those few warnings (JPG_DAMAGE below)
 * make the file an error: a half-grey image is not a training sample, and
 * PIL too refuses a truncated file ("image file is truncated"). Every other
 * warning (extraneous bytes before a marker, odd JFIF headers, ...) leaves
 * the pixels complete, as in PIL, so it is ignored; nothing is printed from
 * inside libjpeg.
 *
 * Colour: 1 component -> gray; 3 -> RGB (libjpeg's YCbCr conversion);
 * 4 (CMYK or YCCK, libjpeg delivers CMYK) -> RGB the way PIL's
 * Image.open(...).convert("RGB") does: PIL reads every 4-component JPEG as
 * Adobe's inverted CMYK, then R = (255 - K) - (C (255 - K) + 127) / 255 with
 * C = 255 - stored C, K = 255 - stored K (its exact integer rounding below). */
#include "io/jpg.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

/* jpeglib.h needs FILE and size_t declared first. */
#include <jpeglib.h>
#include <jerror.h>

#include "core/alloc.h"
#include "io/fsutil.h"

/* A corrupt header must not turn into a giant allocation: at most this a
 * side, and at most the caller's max_pixels in all. */
#define JPG_MAX_DIM 32768

typedef struct JpgErr {
    struct jpeg_error_mgr pub; /* first: libjpeg sees a jpeg_error_mgr */
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} JpgErr;

static void jpg_on_error(j_common_ptr cinfo) {
    JpgErr *e = (JpgErr *)cinfo->err;
    cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}

/* Warnings that mean pixels are missing or invented. */
static int jpg_damage(int code) {
    return code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE ||
           code == JWRN_MUST_RESYNC;
}

/* level < 0: a warning; >= 0: trace output, which we never want. */
static void jpg_on_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;
    cinfo->err->num_warnings++;
    if (jpg_damage(cinfo->err->msg_code)) jpg_on_error(cinfo);
}

/* PIL's MULDIV255: a * b / 255 rounded, in integers. */
static inline int jpg_muldiv255(int a, int b) {
    int t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

int jpg_read(const char *path, size_t max_pixels, uint8_t **pixels, int *width, int *height, int *channels, char *err,
             size_t errlen) {
    FILE *fp = io_fopen_regular(path, "the JPEG file", err, errlen);
    if (!fp) return -1;
    struct jpeg_decompress_struct cinfo;
    JpgErr jerr;
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpg_on_error;
    jerr.pub.emit_message = jpg_on_message;
    jerr.msg[0] = '\0';
    uint8_t *volatile data = NULL;
    uint8_t *volatile row = NULL;
    volatile int too_large = 0; /* the message is then no "corrupt" */
    if (setjmp(jerr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        fclose(fp);
        core_free(data);
        core_free(row);
        snprintf(err, errlen, "%s%s", too_large ? "" : "corrupt or truncated JPEG: ", jerr.msg);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, fp);
    jpeg_read_header(&cinfo, TRUE);
    /* From the header, before jpeg_start_decompress allocates (the output
     * is the image's own size: no scaling below). */
    size_t iw = cinfo.image_width, ih = cinfo.image_height;
    if (iw == 0 || ih == 0 || iw > JPG_MAX_DIM || ih > JPG_MAX_DIM || iw * ih > max_pixels) {
        snprintf(jerr.msg, sizeof jerr.msg,
                 "image of %zu x %zu pixels is too large (at most %d a side and %zu pixels in all; jit-prep "
                 "--max-pixels raises the limit)",
                 iw, ih, JPG_MAX_DIM, max_pixels);
        too_large = 1;
        longjmp(jerr.jump, 1);
    }
    int comps = cinfo.num_components;
    if (comps == 1) cinfo.out_color_space = JCS_GRAYSCALE;
    else if (comps == 3) cinfo.out_color_space = JCS_RGB;
    else if (comps == 4) cinfo.out_color_space = JCS_CMYK;
    else {
        snprintf(jerr.msg, sizeof jerr.msg, "%d colour components (1, 3 or 4 are supported)", comps);
        longjmp(jerr.jump, 1);
    }
    /* libjpeg's defaults, which PIL keeps unless asked for a draft: set here
     * so a changed default cannot make our pixels differ from PIL's. */
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    cinfo.scale_num = cinfo.scale_denom = 1;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height, oc = cinfo.output_components;
    if ((size_t)w != iw || (size_t)h != ih) { /* cannot happen at scale 1: the check above must hold */
        snprintf(jerr.msg, sizeof jerr.msg, "decoder output %d x %d differs from the header's %zu x %zu", w, h, iw, ih);
        longjmp(jerr.jump, 1);
    }
    int c = oc == 4 ? 3 : oc;
    data = core_malloc((size_t)w * h * c);
    if (oc == 4) row = core_malloc((size_t)w * 4);
    while (cinfo.output_scanline < cinfo.output_height) {
        int y = (int)cinfo.output_scanline;
        JSAMPROW r = oc == 4 ? row : data + (size_t)y * w * c;
        jpeg_read_scanlines(&cinfo, &r, 1);
        if (oc == 4)
            for (int x = 0; x < w; x++) {
                const uint8_t *p = row + (size_t)x * 4;
                int nk = p[3]; /* 255 - K, K = 255 - stored */
                for (int ch = 0; ch < 3; ch++) {
                    int v = nk - jpg_muldiv255(255 - p[ch], nk);
                    data[((size_t)y * w + x) * 3 + ch] = (uint8_t)(v < 0 ? 0 : v);
                }
            }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    fclose(fp);
    core_free(row);
    *pixels = data;
    *width = w;
    *height = h;
    *channels = c;
    return 0;
}
