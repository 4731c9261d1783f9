/* train/sweep/sweep_plot.h — the sweep summary's scatter plot as hand-written SVG
 * (no plotting library in a C training framework): quality against
 * sparsity, one labelled point per run (or per group of seeds, with error
 * bars of one standard deviation), axes with ticks and titles. */
#ifndef TRAIN_SWEEP_SWEEP_PLOT_H
#define TRAIN_SWEEP_SWEEP_PLOT_H

#include <stdio.h>

typedef enum { PLOT_DENSE = 0, PLOT_SLA2 = 1, PLOT_SLA2_QAT = 2, PLOT_SLA2_CONVERTED = 3, PLOT_N_KINDS } PlotKind;

typedef struct PlotPoint {
    const char *label;
    double x, y;  /* x: sparsity in [0, 1]; y: any finite value */
    PlotKind kind; /* the marker's colour, explained in a legend */
    double yerr;   /* > 0: an error bar y - yerr .. y + yerr */
} PlotPoint;

/* Write the whole SVG document to f. Points with a non-finite x or y are
 * left out; with none left the axes are drawn with a "no data" note. */
void sweep_plot_svg(FILE *f, const char *title, const char *x_title, const char *y_title, const PlotPoint *pts, int n);

#endif
