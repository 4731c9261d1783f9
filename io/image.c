/* io/image.c — format sniffing and channel conversion over io/jpg and
 * io/png (see io/image.h). The decoders never stop the program: a bad file
 * comes back as an error string, so a folder with a few broken files still
 * converts. */
#include "io/image.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "io/fsutil.h"
#include "io/jpg.h"
#include "io/png.h"

int image_name_ok(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && dot != name &&
           (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

int image_read(const char *path, int C, size_t max_pixels, uint8_t **planar, int *width, int *height, char *err,
               size_t errlen) {
    if (!max_pixels) max_pixels = IMAGE_DEFAULT_MAX_PIXELS;
    FILE *fp = io_fopen_regular(path, "the image", err, errlen);
    if (!fp) return -1;
    unsigned char sig[8] = {0};
    size_t got = fread(sig, 1, sizeof sig, fp);
    fclose(fp);
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t *px = NULL;
    int w = 0, h = 0, c = 0, rc;
    if (got == 0) {
        snprintf(err, errlen, "empty file (0 bytes)");
        return -1;
    } else if (got >= 3 && sig[0] == 0xff && sig[1] == 0xd8 && sig[2] == 0xff) {
        rc = jpg_read(path, max_pixels, &px, &w, &h, &c, err, errlen);
    } else if (got == 8 && !memcmp(sig, png_sig, 8)) {
        rc = png_read_try(path, max_pixels, &px, &w, &h, &c, err, errlen);
    } else {
        snprintf(err, errlen, "neither a JPEG nor a PNG file (it starts with %02x %02x %02x %02x)", sig[0], sig[1],
                 sig[2], sig[3]);
        return -1;
    }
    if (rc != 0) return -1;
    /* interleaved h x w x c -> planar C x h x w, converting the channel count */
    uint8_t *out = core_malloc((size_t)C * h * w);
    size_t plane = (size_t)h * w;
    if (c == 1) { /* gray: copied to every plane */
        for (int ch = 0; ch < C; ch++) memcpy(out + ch * plane, px, plane);
    } else if (C == 3) { /* RGB: de-interleaved */
        for (size_t i = 0; i < plane; i++) {
            out[i] = px[3 * i];
            out[plane + i] = px[3 * i + 1];
            out[2 * plane + i] = px[3 * i + 2];
        }
    } else { /* RGB -> gray */
        for (size_t i = 0; i < plane; i++) {
            const uint8_t *p = px + 3 * i;
            out[i] = (uint8_t)((299 * p[0] + 587 * p[1] + 114 * p[2] + 500) / 1000);
        }
    }
    core_free(px);
    *planar = out;
    *width = w;
    *height = h;
    return 0;
}
