/* train/sweep/sweep_metrics.c — reading a run directory (sweep_metrics.h). */
#include "train/sweep/sweep_metrics.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "io/fsutil.h"
#include "io/json.h"

/* One step record, reduced to what the summary needs. */
typedef struct StepRec {
    long step;
    double loss, images_per_s;
    double topk;         /* NAN when not logged */
    double mon_sparsity; /* 1 - mean exact_fraction of the monitor's "sla2" array; NAN when not logged */
    double mon_err;      /* mean rel_l2_err of the monitor's "sla2" array; NAN when not logged */
    int qat;             /* -1 when not logged */
    int stage;           /* SLA2Conversion's stage (1 or 2); 0 when not logged */
} StepRec;

typedef struct RunLog {
    StepRec *rec;
    int n, cap;
    RunState state;
    long end_step;
} RunLog;

static double num_or_nan(const JsonValue *obj, const char *key) {
    double v;
    return json_get_number(obj, key, &v) ? v : NAN;
}

/* The mean of KEY over every layer and head of a monitor record; NAN when
 * the record has none. */
static double monitor_mean(const JsonValue *sla2, const char *key) {
    if (!sla2 || sla2->kind != JSON_ARRAY) return NAN;
    double sum = 0;
    int n = 0;
    for (int i = 0; i < sla2->n; i++) {
        const JsonValue *heads = json_get(sla2->items[i], "heads");
        if (!heads || heads->kind != JSON_ARRAY) continue;
        for (int h = 0; h < heads->n; h++) {
            double f;
            if (json_get_number(heads->items[h], key, &f)) sum += f, n++;
        }
    }
    return n ? sum / n : NAN;
}

static void log_event(RunLog *lg, const char *event, const JsonValue *obj) {
    double step = num_or_nan(obj, "step");
    if (!strcmp(event, "train_end")) {
        lg->state = RUN_DONE;
        lg->end_step = isfinite(step) ? (long)step : 0;
    } else if (!strcmp(event, "resume")) {
        /* Steps after the checkpoint were trained again: forget the first try. */
        lg->state = RUN_PARTIAL;
        while (lg->n > 0 && isfinite(step) && lg->rec[lg->n - 1].step > (long)step) lg->n--;
    } else if (!strcmp(event, "preempted")) {
        lg->state = RUN_PREEMPTED;
    }
}

static void log_step(RunLog *lg, const JsonValue *obj, double step) {
    if (lg->n == lg->cap) {
        lg->cap = lg->cap ? lg->cap * 2 : 256;
        lg->rec = core_realloc(lg->rec, sizeof *lg->rec * (size_t)lg->cap);
    }
    double qat = num_or_nan(obj, "qat"), stage = num_or_nan(obj, "stage");
    const JsonValue *sla2 = json_get(obj, "sla2");
    lg->rec[lg->n++] = (StepRec){
        .step = (long)step,
        .loss = num_or_nan(obj, "loss"), /* null (non-finite) reads as NAN */
        .images_per_s = num_or_nan(obj, "images_per_s"),
        .topk = num_or_nan(obj, "topk"),
        .mon_sparsity = 1.0 - monitor_mean(sla2, "exact_fraction"),
        .mon_err = monitor_mean(sla2, "rel_l2_err"),
        .qat = isfinite(qat) ? qat != 0 : -1,
        .stage = isfinite(stage) ? (int)stage : 0,
    };
    if (lg->state == RUN_PREEMPTED) lg->state = RUN_PARTIAL; /* it went on after all */
}

/* Walk metrics.jsonl. events_only: parse only the lines that are events (the
 * finished check on a long run). Returns 0 (also for a missing file: the run
 * has not started), -1 with err when the file cannot be read. */
static int read_log(const char *run_dir, int events_only, RunLog *lg, int *skipped, char *err, size_t errlen) {
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    memset(lg, 0, sizeof *lg);
    *skipped = 0;
    FILE *f = io_fopen_regular(path, "the run's log", err, errlen);
    if (!f) return errno == ENOENT ? 0 : -1;
    lg->state = RUN_PARTIAL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    for (long lineno = 1; (len = getline(&line, &cap, f)) > 0; lineno++) {
        int complete = line[len - 1] == '\n';
        if (events_only && !strstr(line, "\"event\"")) continue;
        char why[160];
        JsonValue *obj = json_parse(line, (size_t)len, why, sizeof why);
        if (!obj || obj->kind != JSON_OBJECT) {
            /* A line without its newline is being written right now: not damage. */
            if (complete) {
                fprintf(stderr, "%s:%ld: skipped: %s\n", path, lineno, obj ? "not a JSON object" : why);
                (*skipped)++;
            }
            json_free(obj);
            continue;
        }
        const char *event = json_get_string(obj, "event");
        double step = num_or_nan(obj, "step");
        if (event) log_event(lg, event, obj);
        else if (isfinite(step) && !events_only) log_step(lg, obj, step);
        json_free(obj);
    }
    int bad = ferror(f);
    free(line); /* getline's buffer comes from malloc */
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "%s: read error", path);
        core_free(lg->rec);
        return -1;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of the finite images_per_s of records [from, n). */
static double median_speed(const StepRec *r, int from, int n) {
    double *v = core_malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    int k = 0;
    for (int i = from; i < n; i++)
        if (isfinite(r[i].images_per_s)) v[k++] = r[i].images_per_s;
    qsort(v, (size_t)k, sizeof *v, cmp_double);
    double m = k == 0 ? NAN : k % 2 ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
    core_free(v);
    return m;
}

/* Mean of the finite losses of the last 10% of the records that have one (at least 1). */
static double final_loss(const StepRec *r, int n) {
    int finite = 0;
    for (int i = 0; i < n; i++) finite += isfinite(r[i].loss) != 0;
    int want = finite / 10 > 1 ? finite / 10 : 1, got = 0;
    double sum = 0;
    for (int i = n - 1; i >= 0 && got < want; i--)
        if (isfinite(r[i].loss)) sum += r[i].loss, got++;
    return got ? sum / got : NAN;
}

static void summarise(const RunLog *lg, RunStats *st) {
    const StepRec *r = lg->rec;
    int n = lg->n;
    st->n_records = n;
    st->steps = n ? r[n - 1].step : 0;
    st->final_loss = final_loss(r, n);
    /* The Monitor's measured fraction is the truth; the scheduled top-k is the fallback. */
    st->sparsity = 0, st->sparsity_source = 0;
    for (int i = n - 1; i >= 0; i--)
        if (isfinite(r[i].mon_sparsity)) {
            st->sparsity = r[i].mon_sparsity, st->sparsity_source = 2;
            break;
        }
    for (int i = n - 1; i >= 0 && st->sparsity_source == 0; i--)
        if (isfinite(r[i].topk)) st->sparsity = 1.0 - r[i].topk, st->sparsity_source = 1;
    st->attn_err = NAN;
    for (int i = n - 1; i >= 0 && !isfinite(st->attn_err); i--) st->attn_err = r[i].mon_err;
    st->qat = -1;
    for (int i = n - 1; i >= 0 && st->qat < 0; i--) st->qat = r[i].qat;
    st->converted = 0;
    for (int i = 0; i < n && !st->converted; i++) st->converted = r[i].stage != 0;
    /* The first steps include start-up (threads, first touches of memory). */
    st->images_per_s = median_speed(r, n > 5 ? 5 : 0, n);
}

static int read_eval(const char *run_dir, RunStats *st, char *err, size_t errlen) {
    char path[1200];
    snprintf(path, sizeof path, "%s/eval.json", run_dir);
    char *text;
    size_t n;
    if (io_read_bounded(path, "eval.json", IO_MAX_TEXT_BYTES, &text, &n, err, errlen))
        return errno == ENOENT ? 0 : -1; /* absent: not evaluated (yet) */
    char why[160];
    JsonValue *v = json_parse(text, n, why, sizeof why);
    core_free(text);
    if (!v || v->kind != JSON_OBJECT) {
        snprintf(err, errlen, "%s: %s", path, v ? "expected a JSON object" : why);
        json_free(v);
        return -1;
    }
    st->has_eval = 1;
    st->frechet_distance = num_or_nan(v, "frechet_distance");
    st->conditional_accuracy = num_or_nan(v, "conditional_accuracy");
    json_free(v);
    return 0;
}

int sweep_read_run(const char *run_dir, RunStats *st, char *err, size_t errlen) {
    memset(st, 0, sizeof *st);
    st->final_loss = st->images_per_s = st->attn_err = NAN;
    st->frechet_distance = st->conditional_accuracy = NAN;
    st->qat = -1;
    RunLog lg;
    if (read_log(run_dir, 0, &lg, &st->skipped_lines, err, errlen)) return -1;
    st->state = lg.state;
    st->end_step = lg.end_step;
    if (lg.state != RUN_NOT_STARTED) summarise(&lg, st);
    core_free(lg.rec);
    return read_eval(run_dir, st, err, errlen);
}

RunState sweep_run_state(const char *run_dir, long *end_step) {
    RunLog lg;
    int skipped;
    char err[256];
    *end_step = 0;
    if (read_log(run_dir, 1, &lg, &skipped, err, sizeof err)) {
        fprintf(stderr, "jit-sweep: %s\n", err);
        return RUN_PARTIAL; /* unreadable: do not claim it is done */
    }
    *end_step = lg.end_step;
    core_free(lg.rec);
    return lg.state;
}
