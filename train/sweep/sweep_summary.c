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

enum { COL_RUN, COL_STATUS, COL_STEPS, COL_LOSS, COL_SPARSITY, COL_ATTN_ERR, COL_QAT, COL_SPEED, COL_FID, COL_ACC, N_COLS };

static const char *const col_title[N_COLS] = {
    "run", "status", "steps done", "final loss", "sparsity", "attention error", "QAT", "images/s", "Fréchet distance",
    "conditional accuracy"};
static const char *const col_csv[N_COLS] = {
    "run", "status", "steps", "final_loss", "sparsity", "attention_rel_err", "qat", "images_per_s", "frechet_distance",
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
        cell_num(r, COL_ATTN_ERR, st->attn_err, 4);
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

/* --- over seeds: mean and spread per group of runs that differ only in run.seed --- */

enum { G_LOSS, G_SPARSITY, G_ATTN_ERR, G_FID, G_ACC, N_G };
static const char *const g_title[N_G] = {"final loss", "sparsity", "attention error", "Fréchet distance",
                                         "conditional accuracy"};
static const char *const g_csv[N_G] = {"final_loss", "sparsity", "attention_rel_err", "frechet_distance",
                                       "conditional_accuracy"};

typedef struct Stat {
    int n;           /* runs with a value */
    double mean, sd; /* sd: the sample standard deviation (0 for one run) */
} Stat;

typedef struct Group {
    int n_runs;
    Stat st[N_G];
    PlotKind kind;
} Group;

static Stat stat_of(const double *v, int n) {
    Stat st = {0, NAN, NAN};
    double sum = 0;
    for (int i = 0; i < n; i++) sum += v[i];
    if (n == 0) return st;
    st.n = n, st.mean = sum / n;
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (v[i] - st.mean) * (v[i] - st.mean);
    st.sd = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
    return st;
}

static PlotKind run_kind(const RunStats *st) {
    if (st->sparsity_source == 0 && st->qat < 0) return PLOT_DENSE;
    return st->converted ? PLOT_SLA2_CONVERTED : st->qat > 0 ? PLOT_SLA2_QAT : PLOT_SLA2;
}

/* One Group per Sweep.groups entry, over the runs (seeds) that have data. */
static Group *group_stats(const Sweep *s, const Row *rows) {
    Group *g = core_calloc(sizeof *g * (size_t)(s->n_groups ? s->n_groups : 1));
    double *v = core_calloc(sizeof(double) * (size_t)(s->n_runs ? s->n_runs : 1));
    for (int gi = 0; gi < s->n_groups; gi++) {
        for (int q = 0; q < N_G; q++) {
            int m = 0;
            for (int i = 0; i < s->n_runs; i++) {
                const RunStats *st = &rows[i].st;
                if (s->runs[i].group != gi) continue;
                if (q == 0) g[gi].n_runs++, g[gi].kind = run_kind(st);
                int trained = st->state != RUN_NOT_STARTED && st->n_records > 0;
                double x = q == G_LOSS ? (trained ? st->final_loss : NAN)
                           : q == G_SPARSITY ? (trained ? st->sparsity : NAN)
                           : q == G_ATTN_ERR ? (trained ? st->attn_err : NAN)
                           : q == G_FID ? (st->has_eval ? st->frechet_distance : NAN)
                                        : (st->has_eval ? st->conditional_accuracy : NAN);
                if (isfinite(x)) v[m++] = x;
            }
            g[gi].st[q] = stat_of(v, m);
        }
    }
    core_free(v);
    return g;
}

/* The over-seeds table: run, seeds with data / seeds, and mean ± sd. */
static void write_seed_table(FILE *f, const Sweep *s, const Group *g) {
    static const int decimals[N_G] = {4, 3, 4, 2, 4};
    enum { NC = N_G + 2 };
    const char *titles[NC] = {"run", "seeds", g_title[0], g_title[1], g_title[2], g_title[3], g_title[4]};
    char(*cell)[NC][CELL] = core_calloc(sizeof *cell * (size_t)(s->n_groups ? s->n_groups : 1));
    int w[NC];
    for (int c = 0; c < NC; c++) w[c] = text_width(titles[c]);
    for (int gi = 0; gi < s->n_groups; gi++) {
        snprintf(cell[gi][0], CELL, "%s", s->groups[gi]);
        snprintf(cell[gi][1], CELL, "%d/%d", g[gi].st[G_LOSS].n, g[gi].n_runs);
        for (int q = 0; q < N_G; q++) {
            const Stat *st = &g[gi].st[q];
            if (st->n == 0) snprintf(cell[gi][2 + q], CELL, "-");
            else snprintf(cell[gi][2 + q], CELL, "%.*f ± %.*f", decimals[q], st->mean, decimals[q], st->sd);
        }
        for (int c = 0; c < NC; c++) w[c] = w[c] > text_width(cell[gi][c]) ? w[c] : text_width(cell[gi][c]);
    }
    for (int c = 0; c < NC; c++) put_padded(f, titles[c], w[c], 0);
    fputs("|\n", f);
    for (int c = 0; c < NC; c++) {
        fputs(c == 0 ? "|:" : "|-", f);
        for (int k = 0; k < w[c]; k++) fputc('-', f);
        fputs(c == 0 ? "-" : ":", f);
    }
    fputs("|\n", f);
    for (int gi = 0; gi < s->n_groups; gi++) {
        for (int c = 0; c < NC; c++) put_padded(f, cell[gi][c], w[c], c > 0);
        fputs("|\n", f);
    }
    core_free(cell);
}

static void write_seed_csv(FILE *f, const Sweep *s, const Group *g) {
    fputs("run,seeds,runs", f);
    for (int q = 0; q < N_G; q++) fprintf(f, ",%s_mean,%s_sd", g_csv[q], g_csv[q]);
    fputc('\n', f);
    for (int gi = 0; gi < s->n_groups; gi++) {
        csv_field(f, s->groups[gi]);
        fprintf(f, ",%d,%d", g[gi].st[G_LOSS].n, g[gi].n_runs);
        for (int q = 0; q < N_G; q++) {
            const Stat *st = &g[gi].st[q];
            if (st->n) fprintf(f, ",%.9g,%.9g", st->mean, st->sd);
            else fputs(",,", f);
        }
        fputc('\n', f);
    }
}

/* What the writers share: the rows, computed once, and with seeds the
 * groups' statistics, computed once. */
typedef struct Summary {
    const Sweep *s;
    const Row *rows;
    int n, n_cols;
    const Group *groups; /* NULL without seeds */
} Summary;

static void write_markdown(FILE *f, const Summary *m) {
    const Sweep *s = m->s;
    fprintf(f, "# Sweep `%s`\n\n", s->name);
    fprintf(f, "%d runs of `%s` (sweep file `%s`, runs in `%s`), summarised by `jit-sweep summary`.\n\n", m->n,
            s->base, s->path, s->out_dir);
    write_table(f, m->rows, m->n, m->n_cols);
    fputs("\n- **status**: `done` (a `train_end` event), `partial` (started: running, stopped or crashed), "
          "`preempted` (checkpointed on a signal; `jit-sweep run` resumes it), `-` not started.\n"
          "- **final loss**: mean training loss over the last 10% of the step records (at least one).\n"
          "- **sparsity**: 1 - the mean `exact_fraction` over the layers and heads of the last "
          "QuantizedAttentionMonitor record; without one, 1 - the last logged top-k ratio; 0 for full attention.\n"
          "- **attention error**: the mean relative L2 error of SLA2's output against full attention over the "
          "layers and heads of the last QuantizedAttentionMonitor record (`-` without one).\n"
          "- **QAT**: the last logged `qat` (off when the model has no SLA2).\n"
          "- **images/s**: median over the step records after the first 5.\n",
          f);
    if (m->n_cols > COL_FID)
        fputs("- **Fréchet distance**, **conditional accuracy**: from the run's `eval.json`.\n", f);
    if (m->groups) {
        fprintf(f, "\n## Over seeds\n\nEach run repeated with %d seeds: mean ± sample standard deviation over the "
                   "seeds that have a value (`seeds`: with a value / all); also in `summary_seeds.csv`.\n\n",
                s->n_seeds);
        write_seed_table(f, s, m->groups);
    }
    fputs("\n![quality against sparsity](summary.svg)\n", f);
}

/* One point per run that has logged a step, or with seeds one per group at
 * the means with an error bar of one sd. */
static void write_plot(FILE *f, const Summary *m) {
    const Sweep *s = m->s;
    const Row *rows = m->rows;
    /* Fréchet distance is the quality measure when every run has one; the
     * training loss otherwise (a partial comparison would mix the two). */
    int use_fid = m->n > 0;
    for (int i = 0; i < m->n; i++) use_fid &= rows[i].st.has_eval && isfinite(rows[i].st.frechet_distance);
    PlotPoint *pts = core_calloc(sizeof *pts * (size_t)(m->n ? m->n : 1));
    int k = 0;
    if (m->groups) {
        for (int gi = 0; gi < s->n_groups; gi++) {
            const Group *g = &m->groups[gi];
            const Stat *y = &g->st[use_fid ? G_FID : G_LOSS];
            if (g->st[G_SPARSITY].n == 0 || y->n == 0) continue;
            pts[k++] = (PlotPoint){.label = s->groups[gi], .x = g->st[G_SPARSITY].mean, .y = y->mean,
                                   .yerr = y->sd, .kind = g->kind};
        }
    } else {
        for (int i = 0; i < m->n; i++) {
            const RunStats *st = &rows[i].st;
            if (st->state == RUN_NOT_STARTED || st->n_records == 0) continue;
            pts[k++] = (PlotPoint){.label = rows[i].md[COL_RUN], .x = st->sparsity,
                                   .y = use_fid ? st->frechet_distance : st->final_loss, .kind = run_kind(st)};
        }
    }
    char title[300], y_title[160];
    snprintf(title, sizeof title, "Sweep %s: quality against sparsity", s->name);
    snprintf(y_title, sizeof y_title, "%s%s",
             use_fid ? "Fréchet distance (eval.json, lower is better)" : "final loss (mean of the last 10% of steps)",
             m->groups ? ", mean ± sd over seeds" : "");
    sweep_plot_svg(f, title, "sparsity (1 - fraction of attention blocks computed exactly)", y_title, pts, k);
    core_free(pts);
}

typedef void (*Writer)(FILE *f, const Summary *m);

static void csv_writer(FILE *f, const Summary *m) { write_csv(f, m->rows, m->n, m->n_cols); }
static void seed_csv_writer(FILE *f, const Summary *m) { write_seed_csv(f, m->s, m->groups); }

/* Write OUT_DIR/NAME through a temporary file, so a reader never sees half a summary. */
static int write_file(const Summary *m, const char *name, Writer w, char *err, size_t errlen) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", m->s->out_dir, name);
    IoOut out;
    FILE *f = io_out_fopen(&out, path, err, errlen);
    if (!f) return -1;
    w(f, m);
    return io_out_fclose_commit(&out, f, err, errlen);
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
    Group *groups = rc == 0 && s->n_seeds > 0 ? group_stats(s, rows) : NULL;
    Summary m = {.s = s, .rows = rows, .n = s->n_runs, .n_cols = any_eval ? N_COLS : COL_FID, .groups = groups};
    if (rc == 0) rc = io_mkdirs(s->out_dir, err, errlen);
    if (rc == 0) rc = write_file(&m, "summary.md", write_markdown, err, errlen);
    if (rc == 0) rc = write_file(&m, "summary.csv", csv_writer, err, errlen);
    if (rc == 0) rc = write_file(&m, "summary.svg", write_plot, err, errlen);
    if (rc == 0 && groups) rc = write_file(&m, "summary_seeds.csv", seed_csv_writer, err, errlen);
    if (rc == 0) write_table(out, rows, s->n_runs, m.n_cols);
    if (rc == 0 && groups) {
        fputc('\n', out);
        write_seed_table(out, s, groups);
    }
    core_free(groups);
    core_free(rows);
    return rc;
}
