/* train/sweep/sweep_summary.c — the sweep's summary table, CSV and plot (sweep_summary.h). */
#include "train/sweep/sweep_summary.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "io/fsutil.h"
#include "train/sweep/sweep_metrics.h"
#include "train/sweep/sweep_plot.h"

enum { COL_RUN, COL_STATUS, COL_STEPS, COL_LOSS, COL_SPARSITY, COL_QAT, COL_SPEED, COL_FID, COL_ACC, N_COLS };

static const char *const col_title[N_COLS] = {
    "run", "status", "steps done", "final loss", "sparsity", "QAT", "images/s", "Fréchet distance",
    "conditional accuracy"};
static const char *const col_csv[N_COLS] = {
    "run", "status", "steps", "final_loss", "sparsity", "qat", "images_per_s", "frechet_distance",
    "conditional_accuracy"};

#define CELL 192 /* a cell holds a run name (at most SWEEP_MAX_NAME) */

typedef struct Row {
    RunStats st;
    char md[N_COLS][CELL];  /* as shown: rounded, "-" when missing */
    char csv[N_COLS][CELL]; /* full precision, empty when missing */
} Row;

static const char *state_name(RunState s) {
    static const char *const names[] = {"-", "partial", "preempted", "done"};
    return names[s];
}

/* A number in both forms: rounded for the table, full for the CSV. */
static void cell_num(Row *r, int col, double v, int decimals) {
    if (!isfinite(v)) {
        snprintf(r->md[col], CELL, "-");
        r->csv[col][0] = '\0';
        return;
    }
    snprintf(r->md[col], CELL, "%.*f", decimals, v);
    snprintf(r->csv[col], CELL, "%.9g", v);
}

static void fill_row(Row *r, const char *name) {
    const RunStats *st = &r->st;
    int started = st->state != RUN_NOT_STARTED;
    for (int c = 0; c < N_COLS; c++) snprintf(r->md[c], CELL, "-"), r->csv[c][0] = '\0';
    snprintf(r->md[COL_RUN], CELL, "%s", name);
    snprintf(r->csv[COL_RUN], CELL, "%s", name);
    snprintf(r->md[COL_STATUS], CELL, "%s", state_name(st->state));
    snprintf(r->csv[COL_STATUS], CELL, "%s", started ? state_name(st->state) : "not started");
    if (started) {
        snprintf(r->md[COL_STEPS], CELL, "%ld", st->steps);
        snprintf(r->csv[COL_STEPS], CELL, "%ld", st->steps);
    }
    if (started && st->n_records > 0) {
        cell_num(r, COL_LOSS, st->final_loss, 4);
        cell_num(r, COL_SPARSITY, st->sparsity, 3);
        /* No "qat" logged means no SLA2, hence no QAT. */
        snprintf(r->md[COL_QAT], CELL, "%s", st->qat > 0 ? "on" : "off");
        snprintf(r->csv[COL_QAT], CELL, "%d", st->qat > 0);
        cell_num(r, COL_SPEED, st->images_per_s, 1);
    }
    if (st->has_eval) {
        cell_num(r, COL_FID, st->frechet_distance, 2);
        cell_num(r, COL_ACC, st->conditional_accuracy, 4);
    }
}

/* Characters on screen of UTF-8 text (continuation bytes take no room). */
static int text_width(const char *s) {
    int w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* s padded with spaces to w characters, on the left or the right. */
static void put_padded(FILE *f, const char *s, int w, int right) {
    int pad = w - text_width(s);
    fputs("| ", f);
    if (right) fprintf(f, "%*s", pad > 0 ? pad : 0, "");
    fputs(s, f);
    if (!right) fprintf(f, "%*s", pad > 0 ? pad : 0, "");
    fputc(' ', f);
}

/* The markdown table, columns padded so that it also reads as plain text. */
static void write_table(FILE *f, const Row *rows, int n, int n_cols) {
    int w[N_COLS];
    for (int c = 0; c < n_cols; c++) {
        w[c] = text_width(col_title[c]);
        for (int i = 0; i < n; i++) w[c] = w[c] > text_width(rows[i].md[c]) ? w[c] : text_width(rows[i].md[c]);
    }
    for (int c = 0; c < n_cols; c++) put_padded(f, col_title[c], w[c], 0);
    fputs("|\n", f);
    for (int c = 0; c < n_cols; c++) {
        /* Numbers right-aligned: the markdown alignment row says so too. */
        fputs(c <= COL_STATUS ? "|:" : "|-", f);
        for (int k = 0; k < w[c]; k++) fputc('-', f);
        fputs(c <= COL_STATUS ? "-" : ":", f);
    }
    fputs("|\n", f);
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < n_cols; c++) put_padded(f, rows[i].md[c], w[c], c > COL_STATUS);
        fputs("|\n", f);
    }
}

static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void write_csv(FILE *f, const Row *rows, int n, int n_cols) {
    for (int c = 0; c < n_cols; c++) fprintf(f, "%s%s", c ? "," : "", col_csv[c]);
    fputc('\n', f);
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < n_cols; c++) {
            if (c) fputc(',', f);
            csv_field(f, rows[i].csv[c]);
        }
        fputc('\n', f);
    }
}

static void write_markdown(FILE *f, const Sweep *s, const Row *rows, int n, int n_cols) {
    fprintf(f, "# Sweep `%s`\n\n", s->name);
    fprintf(f, "%d runs of `%s` (sweep file `%s`, runs in `%s`), summarised by `jit-sweep summary`.\n\n", n, s->base,
            s->path, s->out_dir);
    write_table(f, rows, n, n_cols);
    fputs("\n- **status**: `done` (a `train_end` event), `partial` (started: running, stopped or crashed), "
          "`preempted` (checkpointed on a signal; `jit-sweep run` resumes it), `-` not started.\n"
          "- **final loss**: mean training loss over the last 10% of the step records (at least one).\n"
          "- **sparsity**: 1 - the mean `exact_fraction` over the layers and heads of the last "
          "QuantizedAttentionMonitor record; without one, 1 - the last logged top-k ratio; 0 for full attention.\n"
          "- **QAT**: the last logged `qat` (off when the model has no SLA2).\n"
          "- **images/s**: median over the step records after the first 5.\n",
          f);
    if (n_cols > COL_FID)
        fputs("- **Fréchet distance**, **conditional accuracy**: from the run's `eval.json`.\n", f);
    fputs("\n![quality against sparsity](summary.svg)\n", f);
}

static void write_plot(FILE *f, const Sweep *s, const Row *rows, int n) {
    /* Fréchet distance is the quality measure when every run has one; the
     * training loss otherwise (a partial comparison would mix the two). */
    int use_fid = n > 0;
    for (int i = 0; i < n; i++) use_fid &= rows[i].st.has_eval && isfinite(rows[i].st.frechet_distance);
    PlotPoint *pts = core_calloc(sizeof *pts * (size_t)(n ? n : 1));
    int m = 0;
    for (int i = 0; i < n; i++) {
        const RunStats *st = &rows[i].st;
        if (st->state == RUN_NOT_STARTED || st->n_records == 0) continue;
        pts[m++] = (PlotPoint){
            .label = rows[i].md[COL_RUN],
            .x = st->sparsity,
            .y = use_fid ? st->frechet_distance : st->final_loss,
            .kind = st->sparsity_source == 0 && st->qat < 0 ? PLOT_DENSE : st->qat > 0 ? PLOT_SLA2_QAT : PLOT_SLA2,
        };
    }
    char title[300];
    snprintf(title, sizeof title, "Sweep %s: quality against sparsity", s->name);
    sweep_plot_svg(f, title, "sparsity (1 - fraction of attention blocks computed exactly)",
                   use_fid ? "Fréchet distance (eval.json, lower is better)"
                           : "final loss (mean of the last 10% of steps)",
                   pts, m);
    core_free(pts);
}


typedef void (*Writer)(FILE *f, const Sweep *s, const Row *rows, int n, int n_cols);

static void md_writer(FILE *f, const Sweep *s, const Row *rows, int n, int n_cols) {
    write_markdown(f, s, rows, n, n_cols);
}
static void csv_writer(FILE *f, const Sweep *s, const Row *rows, int n, int n_cols) { write_csv(f, rows, n, n_cols); }
static void svg_writer(FILE *f, const Sweep *s, const Row *rows, int n, int n_cols) { write_plot(f, s, rows, n); }

/* Write OUT_DIR/NAME through a temporary file, so a reader never sees half a summary. */
static int write_file(const Sweep *s, const char *name, Writer w, const Row *rows, int n, int n_cols, char *err,
                      size_t errlen) {
    char path[1200], tmp[1220];
    snprintf(path, sizeof path, "%s/%s", s->out_dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
        return -1;
    }
    w(f, s, rows, n, n_cols);
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int sweep_summary(const Sweep *s, FILE *out, char *err, size_t errlen) {
    Row *rows = core_calloc(sizeof *rows * (size_t)s->n_runs);
    int any_eval = 0, rc = 0;
    for (int i = 0; i < s->n_runs && rc == 0; i++) {
        char dir[1024];
        sweep_run_dir(s, i, dir, sizeof dir);
        rc = sweep_read_run(dir, &rows[i].st, err, errlen);
        fill_row(&rows[i], s->runs[i].name);
        any_eval |= rows[i].st.has_eval;
    }
    int n_cols = any_eval ? N_COLS : COL_FID;
    if (rc == 0) rc = io_mkdirs(s->out_dir, err, errlen);
    if (rc == 0) rc = write_file(s, "summary.md", md_writer, rows, s->n_runs, n_cols, err, errlen);
    if (rc == 0) rc = write_file(s, "summary.csv", csv_writer, rows, s->n_runs, n_cols, err, errlen);
    if (rc == 0) rc = write_file(s, "summary.svg", svg_writer, rows, s->n_runs, n_cols, err, errlen);
    if (rc == 0) write_table(out, rows, s->n_runs, n_cols);
    core_free(rows);
    return rc;
}
