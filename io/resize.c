/* io/resize.c — PIL-exact BOX/BICUBIC resampling and ADM's centre crop
 * (see io/resize.h for the procedure).
 *
 * Matching PIL to the last grey level needs its arithmetic, not just its
 * filters: the weights are computed in double exactly as Resample.c orders
 * the operations (so build without FMA contraction: the Release flags have
 * -ffp-contract=off), each output's window starts and ends where PIL's
 * truncating "round" puts it, and the weights become integers scaled by
 * 2^22 (RESIZE_PREC) rounded half away from zero. A pixel is then an int
 * sum that starts at 2^21 (rounding), is shifted down by 22 and clipped to
 * [0, 255]; the horizontal pass stores that 8-bit value and the vertical
 * pass reads it, as PIL's temporary image does. The horizontal pass only
 * covers the source rows the vertical windows use. */
#include "io/resize.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/check.h"

/* 32 bits minus 8 for the pixel minus 2 of headroom: a weight sum can
 * exceed 1 (bicubic lobes) and partial sums can go negative. */
#define RESIZE_PREC 22

/* PIL's box: 1 on (-0.5, 0.5]. */
static double resize_box(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }

/* Keys' cubic convolution with a = -0.5 (Catmull-Rom), support 2. The
 * expressions keep PIL's grouping so the doubles round the same way. */
static double resize_cubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* One axis: out output positions over `in` inputs. For output i, taps
 * [first[i], first[i] + count[i]) with weights w[i * ksize + t]. */
typedef struct ResizeAxis {
    int ksize;
    int *first, *count;
    int32_t *w;
} ResizeAxis;

static void resize_axis_init(ResizeAxis *ax, int in, int out, ResizeFilter filter) {
    double (*f)(double) = filter == RESIZE_BOX ? resize_box : resize_cubic;
    double support = filter == RESIZE_BOX ? 0.5 : 2.0;
    double scale = (double)in / out, fscale = scale < 1.0 ? 1.0 : scale;
    /* Down-scaling by s stretches the filter by s: every input pixel then
     * contributes, which is what keeps the result free of aliasing. */
    support *= fscale;
    int ksize = (int)ceil(support) * 2 + 1;
    ax->ksize = ksize;
    ax->first = core_malloc(sizeof(int) * (size_t)out);
    ax->count = core_malloc(sizeof(int) * (size_t)out);
    ax->w = core_malloc(sizeof(int32_t) * (size_t)out * ksize);
    double *tmp = core_malloc(sizeof(double) * (size_t)ksize);
    for (int i = 0; i < out; i++) {
        double center = 0.0 + (i + 0.5) * scale, inv = 1.0 / fscale, sum = 0.0;
        /* (int) truncates toward zero: PIL's "rounding" of the window ends. */
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        int n = hi - lo;
        for (int t = 0; t < n; t++) {
            tmp[t] = f((t + lo - center + 0.5) * inv);
            sum += tmp[t];
        }
        int32_t *w = ax->w + (size_t)i * ksize;
        for (int t = 0; t < ksize; t++) {
            double v = t < n ? (sum != 0.0 ? tmp[t] / sum : tmp[t]) : 0.0;
            v *= (double)(1 << RESIZE_PREC);
            w[t] = (int32_t)(v < 0 ? v - 0.5 : v + 0.5);
        }
        ax->first[i] = lo;
        ax->count[i] = n;
    }
    core_free(tmp);
}

static void resize_axis_free(ResizeAxis *ax) {
    core_free(ax->first);
    core_free(ax->count);
    core_free(ax->w);
}

static inline uint8_t resize_clip(int32_t acc) {
    int32_t v = acc >> RESIZE_PREC; /* arithmetic shift: floor, as PIL's lookup table */
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

void resize_pil(const uint8_t *src, int C, int w, int h, uint8_t *dst, int ow, int oh, ResizeFilter filter) {
    CHECK(C > 0 && w > 0 && h > 0 && ow > 0 && oh > 0, "resize_pil: bad sizes %d x %d x %d -> %d x %d", C, h, w, oh,
          ow);
    ResizeAxis vx;
    resize_axis_init(&vx, h, oh, filter);
    int row0 = vx.first[0], row1 = vx.first[oh - 1] + vx.count[oh - 1]; /* source rows the vertical pass reads */
    const uint8_t *mid = src;                                             /* C x mid_h x mid_w */
    uint8_t *tmp = NULL;
    int mid_w = w, mid_row0 = 0, mid_h = h;
    if (ow != w) {
        ResizeAxis hx;
        resize_axis_init(&hx, w, ow, filter);
        mid_h = row1 - row0, mid_row0 = row0, mid_w = ow;
        tmp = core_malloc((size_t)C * mid_h * ow);
        for (int c = 0; c < C; c++)
            for (int y = 0; y < mid_h; y++) {
                const uint8_t *in = src + ((size_t)c * h + row0 + y) * w;
                uint8_t *out = tmp + ((size_t)c * mid_h + y) * ow;
                for (int x = 0; x < ow; x++) {
                    const uint8_t *p = in + hx.first[x];
                    const int32_t *k = hx.w + (size_t)x * hx.ksize;
                    int32_t acc = 1 << (RESIZE_PREC - 1);
                    for (int t = 0; t < hx.count[x]; t++) acc += p[t] * k[t];
                    out[x] = resize_clip(acc);
                }
            }
        resize_axis_free(&hx);
        mid = tmp;
    }
    if (oh != h) {
        for (int c = 0; c < C; c++)
            for (int y = 0; y < oh; y++) {
                const int32_t *k = vx.w + (size_t)y * vx.ksize;
                const uint8_t *in = mid + ((size_t)c * mid_h + vx.first[y] - mid_row0) * mid_w;
                uint8_t *out = dst + ((size_t)c * oh + y) * ow;
                for (int x = 0; x < ow; x++) {
                    int32_t acc = 1 << (RESIZE_PREC - 1);
                    for (int t = 0; t < vx.count[y]; t++) acc += in[(size_t)t * mid_w + x] * k[t];
                    out[x] = resize_clip(acc);
                }
            }
    } else {
        /* Same height: the windows are single rows with weight 1, all rows kept. */
        memcpy(dst, mid, (size_t)C * oh * ow);
    }
    core_free(tmp);
    resize_axis_free(&vx);
}

void resize_center_crop(const uint8_t *src, int C, int w, int h, uint8_t *dst, int S) {
    CHECK(C > 0 && w > 0 && h > 0 && S > 0, "resize_center_crop: bad sizes %d x %d x %d -> %d", C, h, w, S);
    uint8_t *cur = NULL; /* owned copy once the first resize ran */
    const uint8_t *img = src;
    while ((w < h ? w : h) >= 2 * S) {
        int nw = w / 2, nh = h / 2;
        uint8_t *next = core_malloc((size_t)C * nw * nh);
        resize_pil(img, C, w, h, next, nw, nh, RESIZE_BOX);
        core_free(cur);
        img = cur = next;
        w = nw, h = nh;
    }
    double scale = (double)S / (w < h ? w : h);
    /* nearbyint in the default rounding mode is Python's round(): half to even. */
    int nw = (int)nearbyint(w * scale), nh = (int)nearbyint(h * scale);
    if (nw != w || nh != h) {
        uint8_t *next = core_malloc((size_t)C * nw * nh);
        resize_pil(img, C, w, h, next, nw, nh, RESIZE_BICUBIC);
        core_free(cur);
        img = cur = next;
        w = nw, h = nh;
    }
    CHECK(w >= S && h >= S, "resize_center_crop: %d x %d is smaller than the crop %d", w, h, S);
    int y0 = (h - S) / 2, x0 = (w - S) / 2;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < S; y++)
            memcpy(dst + ((size_t)c * S + y) * S, img + ((size_t)c * h + y0 + y) * w + x0, (size_t)S);
    core_free(cur);
}

void resize_center_pad(const uint8_t *src, int C, int w, int h, uint8_t *dst, int S) {
    int oy = (S - h) / 2, ox = (S - w) / 2;
    if (S < h) oy = -((h - S) / 2);
    if (S < w) ox = -((w - S) / 2);
    for (int c = 0; c < C; c++)
        for (int y = 0; y < S; y++) {
            int sy = y - oy;
            if (sy < 0 || sy >= h) continue;
            for (int x = 0; x < S; x++) {
                int sx = x - ox;
                if (sx >= 0 && sx < w) dst[((size_t)c * S + y) * S + x] = src[((size_t)c * h + sy) * w + sx];
            }
        }
}
