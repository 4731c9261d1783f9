/* train/metrics.h — metrics as JSON lines (one object per line) in the run
 * directory, written by rank 0 only, flushed per line so a crash loses
 * nothing already logged; and the human progress line, which rewrites
 * itself on a terminal and prints whole lines into a log file. */
#ifndef TRAIN_METRICS_H
#define TRAIN_METRICS_H

#include <stdio.h>

typedef struct Metrics {
    FILE *f;
    char path[1024];
    int first; /* no key written yet in the open record */
} Metrics;

/* append (a resumed run): a cut last line left by an interrupted write is
 * dropped first, with a notice naming the file. */
void metrics_open(Metrics *m, const char *path, int append);
void metrics_close(Metrics *m);
void metrics_begin(Metrics *m);
void metrics_int(Metrics *m, const char *key, long long v);
void metrics_num(Metrics *m, const char *key, double v); /* non-finite numbers are written as null */
void metrics_str(Metrics *m, const char *key, const char *v);
/* The key, then the stream to write its value into with io/json.h's writer
 * (nested arrays and objects); NULL when no file is open. */
FILE *metrics_value(Metrics *m, const char *key);
/* Ends the record and flushes it: a write error (a full disk) stops the run
 * with the file named, rather than training on without a log. */
void metrics_end(Metrics *m);

typedef struct Progress {
    int tty;      /* rewrite one line with \r */
    int last_len;
} Progress;

/* mode: -1 auto (a terminal on stdout), 0 plain lines, 1 force rewriting */
void progress_init(Progress *p, int mode);
void progress_line(Progress *p, const char *text);
void progress_done(Progress *p);

#endif
