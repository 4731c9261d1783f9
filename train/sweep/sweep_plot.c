/* train/sweep/sweep_plot.c — the sweep's scatter plot as plain SVG text (sweep_plot.h). */
#include "train/sweep/sweep_plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

/* Canvas and plot area in SVG pixels. The right margin is wide because the
 * labels (run names such as "sla2_topk_ratio=0.25,enable_step=1000") go to
 * the right of their points. */
enum { SVG_W = 900, SVG_H = 500, PLOT_L = 90, PLOT_T = 64, PLOT_W = 500, PLOT_H = 350 };
#define LABEL_CHAR_W 6.2 /* average advance of an 11 px sans-serif character */
#define LABEL_LINE_H 13.0

static const char *const kind_name[PLOT_N_KINDS] = {"full attention", "SLA2", "SLA2 + QAT",
                                                    "SLA2 converted from full attention"};

/* QAT runs are rings, the others dots: a QAT run and its twin without QAT
 * often land on the same spot, and a ring stays visible around a dot. Converted runs are
 * green dots. */
static const char *marker_style(PlotKind k) {
    static const char *const style[] = {
        "r=\"5\" fill=\"#555555\"",
        "r=\"5\" fill=\"#1f77b4\"",
        "r=\"6.5\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\"",
        "r=\"5\" fill=\"#2ca02c\"",
    };
    return style[k];
}

/* XML-escaped text. */
static void svg_text(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t') fputc(*s, f);
        }
    }
}

/* A tick step of 1, 2 or 5 times a power of ten giving about `target` ticks. */
static double nice_step(double range, int target) {
    double raw = range / target, mag = pow(10.0, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

typedef struct Axis {
    double lo, hi;     /* the visible range */
    double t0, step;   /* ticks at t0, t0 + step, ... up to hi */
    int n_ticks;
    int decimals;      /* for the tick labels */
} Axis;

/* Ticks over [lo, hi] rounded out to whole steps, after a margin of `pad`
 * (a fraction of the range) so that no point sits on the frame; a
 * degenerate range is widened first. */
static Axis make_axis(double lo, double hi, int target, double pad) {
    if (!(hi - lo > 1e-12 * fmax(1.0, fabs(hi)))) {
        double w = fmax(fabs(hi) * 0.05, 1e-3);
        lo -= w, hi += w;
    }
    double m = (hi - lo) * pad;
    Axis a;
    a.step = nice_step(hi - lo + 2 * m, target);
    a.lo = floor((lo - m) / a.step + 1e-9) * a.step;
    a.hi = ceil((hi + m) / a.step - 1e-9) * a.step;
    a.t0 = a.lo;
    a.n_ticks = (int)lround((a.hi - a.lo) / a.step) + 1;
    a.decimals = (int)fmax(0.0, ceil(-log10(a.step) - 1e-9));
    return a;
}

/* The sparsity axis: ticks over exactly [0, 1] (extended only if a value lies
 * outside), the view a little wider so that points at 0 or 1 stay visible. */
static Axis fraction_axis(double lo, double hi) {
    Axis a = make_axis(fmin(lo, 0.0), fmax(hi, 1.0), 10, 0.0);
    double m = 0.03 * (a.hi - a.lo);
    a.lo -= m, a.hi += m;
    return a;
}

static double px_x(const Axis *a, double x) { return PLOT_L + (x - a->lo) / (a->hi - a->lo) * PLOT_W; }
static double px_y(const Axis *a, double y) { return PLOT_T + PLOT_H - (y - a->lo) / (a->hi - a->lo) * PLOT_H; }

/* Tick i; a rounding residue at zero would print as "-0.0". */
static double tick_value(const Axis *a, int i) {
    double v = a->t0 + i * a->step;
    return fabs(v) < a->step * 1e-6 ? 0.0 : v;
}

static void draw_axes(FILE *f, const Axis *ax, const Axis *ay, const char *x_title, const char *y_title) {
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#000\"/>\n", PLOT_L, PLOT_T,
            PLOT_W, PLOT_H);
    for (int i = 0; i < ax->n_ticks; i++) {
        double v = tick_value(ax, i), x = px_x(ax, v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e5e5e5\"/>\n", x, PLOT_T, x,
                PLOT_T + PLOT_H);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#000\"/>\n", x, PLOT_T + PLOT_H, x,
                PLOT_T + PLOT_H + 5);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.*f</text>\n", x, PLOT_T + PLOT_H + 19,
                ax->decimals, v);
    }
    for (int i = 0; i < ay->n_ticks; i++) {
        double v = tick_value(ay, i), y = px_y(ay, v);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", PLOT_L, y,
                PLOT_L + PLOT_W, y);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#000\"/>\n", PLOT_L - 5, y, PLOT_L, y);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.*f</text>\n", PLOT_L - 8, y + 4, ay->decimals, v);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"13\">", PLOT_L + PLOT_W / 2,
            PLOT_T + PLOT_H + 44);
    svg_text(f, x_title);
    fprintf(f, "</text>\n<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 %d %d)\">",
            24, PLOT_T + PLOT_H / 2, 24, PLOT_T + PLOT_H / 2);
    svg_text(f, y_title);
    fputs("</text>\n", f);
}

/* One line of the legend above the plot, for the kinds that occur. */
static void draw_legend(FILE *f, const int used[PLOT_N_KINDS]) {
    double x = PLOT_L;
    for (int k = 0; k < PLOT_N_KINDS; k++) {
        if (!used[k]) continue;
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%d\" %s/>\n", x + 5, PLOT_T - 16, marker_style(k));
        fprintf(f, "<text x=\"%.1f\" y=\"%d\">%s</text>\n", x + 14, PLOT_T - 12, kind_name[k]);
        x += 34 + LABEL_CHAR_W * strlen(kind_name[k]);
    }
}

typedef struct Placed {
    double x0, x1, cy;
} Placed;

/* Greedy label placement: next to the point if free, else the nearest
 * free line above or below (runs with equal sparsity, e.g. QAT on and off,
 * would otherwise print on top of each other). */
static double place_label(Placed *placed, int n_placed, double x0, double x1, double py) {
    for (int t = 0; t < 24; t++) {
        double dy = (t + 1) / 2 * LABEL_LINE_H * (t % 2 ? -1 : 1), cy = py + dy;
        int free = cy > PLOT_T - 4 && cy < PLOT_T + PLOT_H + 4;
        for (int j = 0; j < n_placed && free; j++)
            free = !(x0 < placed[j].x1 && placed[j].x0 < x1 && fabs(cy - placed[j].cy) < LABEL_LINE_H - 1);
        if (free) return cy;
    }
    return py;
}

typedef struct Order {
    int i;
    double py;
} Order;

static int cmp_order(const void *a, const void *b) {
    double x = ((const Order *)a)->py, y = ((const Order *)b)->py;
    return (x > y) - (x < y);
}

static void draw_points(FILE *f, const Axis *ax, const Axis *ay, const PlotPoint *pts, int n) {
    Order *ord = core_malloc(sizeof *ord * (size_t)(n ? n : 1));
    Placed *placed = core_malloc(sizeof *placed * (size_t)(n ? n : 1));
    int m = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(pts[i].x) && isfinite(pts[i].y)) ord[m++] = (Order){i, px_y(ay, pts[i].y)};
    qsort(ord, (size_t)m, sizeof *ord, cmp_order);
    for (int k = 0; k < m; k++) {
        const PlotPoint *p = &pts[ord[k].i];
        double px = px_x(ax, p->x), py = ord[k].py;
        double x0 = px + 11, x1 = x0 + LABEL_CHAR_W * strlen(p->label);
        double cy = place_label(placed, k, x0, x1, py);
        placed[k] = (Placed){x0, x1, cy};
        if (fabs(cy - py) > 1)
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-width=\"0.7\"/>\n",
                    px + 4, py, x0 - 2, cy);
        if (p->yerr > 0 && isfinite(p->yerr)) /* one standard deviation over seeds */
            fprintf(f,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\" stroke-width=\"1\"/>\n"
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\" stroke-width=\"1\"/>\n"
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\" stroke-width=\"1\"/>\n",
                    px, px_y(ay, p->y - p->yerr), px, px_y(ay, p->y + p->yerr), px - 4, px_y(ay, p->y - p->yerr),
                    px + 4, px_y(ay, p->y - p->yerr), px - 4, px_y(ay, p->y + p->yerr), px + 4,
                    px_y(ay, p->y + p->yerr));
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" %s><title>", px, py, marker_style(p->kind));
        svg_text(f, p->label);
        fprintf(f, ": %.4g, %.4g</title></circle>\n<text x=\"%.1f\" y=\"%.1f\">", p->x, p->y, x0, cy + 4);
        svg_text(f, p->label);
        fputs("</text>\n", f);
    }
    core_free(ord);
    core_free(placed);
}

void sweep_plot_svg(FILE *f, const char *title, const char *x_title, const char *y_title, const PlotPoint *pts, int n) {
    /* x is a fraction: always show all of [0, 1] so sweeps compare by eye. */
    double xlo = 0, xhi = 1, ylo = INFINITY, yhi = -INFINITY;
    int used[PLOT_N_KINDS] = {0}, any = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(pts[i].x) || !isfinite(pts[i].y)) continue;
        double e = pts[i].yerr > 0 && isfinite(pts[i].yerr) ? pts[i].yerr : 0;
        xlo = fmin(xlo, pts[i].x), xhi = fmax(xhi, pts[i].x);
        ylo = fmin(ylo, pts[i].y - e), yhi = fmax(yhi, pts[i].y + e);
        used[pts[i].kind] = 1, any = 1;
    }
    if (!any) ylo = 0, yhi = 1;
    Axis ax = fraction_axis(xlo, xhi), ay = make_axis(ylo, yhi, 6, 0.05);

    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
            SVG_W, SVG_H, SVG_W, SVG_H);
    fprintf(f, "<text x=\"%d\" y=\"24\" font-size=\"15\" font-weight=\"bold\">", PLOT_L);
    svg_text(f, title);
    fputs("</text>\n", f);
    draw_legend(f, used);
    draw_axes(f, &ax, &ay, x_title, y_title);
    if (any) draw_points(f, &ax, &ay, pts, n);
    else
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#999\">no data yet: no run has logged a "
                   "step</text>\n", PLOT_L + PLOT_W / 2, PLOT_T + PLOT_H / 2);
    fputs("</svg>\n", f);
}
