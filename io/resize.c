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
 * covers the source rows the vertical windows use.
 *
 * Speed: both passes combine whole rows (resize_rows), the horizontal one
 * on a transposed plane, so the inner loop is a contiguous multiply-add the
 * compiler vectorises; the integer sums are unchanged, so is the result. */
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

/* out row i = clip(sum_t k_i[t] * in row (first[i] + t)), rows of n bytes
 * (in rows `stride` apart). Tap by tap over a whole row of int sums: the
 * loads are contiguous and the compiler vectorises them; the sums are PIL's
 * sums, added in PIL's order. acc holds n ints. */
static void resize_rows(const uint8_t *in, size_t stride, int n, const ResizeAxis *ax, int nout, int row_offset,
                        uint8_t *out, int32_t *acc) {
    for (int i = 0; i < nout; i++) {
        const int32_t *k = ax->w + (size_t)i * ax->ksize;
        const uint8_t *base = in + (size_t)(ax->first[i] - row_offset) * stride;
        for (int x = 0; x < n; x++) acc[x] = 1 << (RESIZE_PREC - 1);
        for (int t = 0; t < ax->count[i]; t++) {
            const uint8_t *row = base + (size_t)t * stride;
            int32_t kt = k[t];
            for (int x = 0; x < n; x++) acc[x] += row[x] * kt;
        }
        uint8_t *o = out + (size_t)i * n;
        for (int x = 0; x < n; x++) o[x] = resize_clip(acc[x]);
    }
}

/* dst (cols x rows) = src (rows x cols, rows `stride` apart) transposed. */
static void resize_transpose(const uint8_t *src, size_t stride, int rows, int cols, uint8_t *dst) {
    enum { B = 32 }; /* blocks that stay in L1 both ways */
    for (int r0 = 0; r0 < rows; r0 += B)
        for (int c0 = 0; c0 < cols; c0 += B) {
            int r1 = r0 + B < rows ? r0 + B : rows, c1 = c0 + B < cols ? c0 + B : cols;
            for (int r = r0; r < r1; r++)
                for (int c = c0; c < c1; c++) dst[(size_t)c * rows + r] = src[(size_t)r * stride + c];
        }
}

void resize_pil(const uint8_t *src, int C, int w, int h, uint8_t *dst, int ow, int oh, ResizeFilter filter) {
    CHECK(C > 0 && w > 0 && h > 0 && ow > 0 && oh > 0, "resize_pil: bad sizes %d x %d x %d -> %d x %d", C, h, w, oh,
          ow);
    ResizeAxis vx;
    resize_axis_init(&vx, h, oh, filter);
    /* Only the source rows the vertical pass reads go through the horizontal one. */
    int row0 = vx.first[0], row1 = vx.first[oh - 1] + vx.count[oh - 1];
    int rows = row1 - row0, big = (w > ow ? w : ow) > oh ? (w > ow ? w : ow) : oh;
    int32_t *acc = core_malloc(sizeof(int32_t) * (size_t)(big > rows ? big : rows));
    uint8_t *mid = NULL, *t_in = NULL, *t_out = NULL;
    if (ow != w) {
        /* Horizontal pass as a row pass on the transposed plane: w x rows -> ow x rows -> rows x ow. */
        ResizeAxis hx;
        resize_axis_init(&hx, w, ow, filter);
        mid = core_malloc((size_t)C * rows * ow);
        t_in = core_malloc((size_t)w * rows);
        t_out = core_malloc((size_t)ow * rows);
        for (int c = 0; c < C; c++) {
            resize_transpose(src + ((size_t)c * h + row0) * w, (size_t)w, rows, w, t_in);
            resize_rows(t_in, (size_t)rows, rows, &hx, ow, 0, t_out, acc);
            resize_transpose(t_out, (size_t)rows, ow, rows, mid + (size_t)c * rows * ow);
        }
        resize_axis_free(&hx);
    }
    for (int c = 0; c < C; c++) {
        const uint8_t *plane = mid ? mid + (size_t)c * rows * ow : src + (size_t)c * h * w;
        if (oh != h) resize_rows(plane, (size_t)ow, ow, &vx, oh, mid ? row0 : 0, dst + (size_t)c * oh * ow, acc);
        else memcpy(dst + (size_t)c * oh * ow, plane, (size_t)oh * ow); /* same height: every row, weight 1 */
    }
    core_free(acc);
    core_free(t_in);
    core_free(t_out);
    core_free(mid);
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
