/* train/metrics.c — JSON-lines metrics and the progress line. */
#include "train/metrics.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "io/json.h"

void metrics_open(Metrics *m, const char *path, int append) {
    m->f = path ? fopen(path, append ? "a" : "w") : NULL;
    CHECK(!path || m->f, "cannot open metrics file %s: %s", path, strerror(errno));
    snprintf(m->path, sizeof m->path, "%s", path ? path : "");
    m->first = 1;
}

void metrics_close(Metrics *m) {
    if (m->f) fclose(m->f);
    m->f = NULL;
}

static void key(Metrics *m, const char *k) {
    fprintf(m->f, "%s\"%s\": ", m->first ? "" : ", ", k);
    m->first = 0;
}

void metrics_begin(Metrics *m) {
    if (!m->f) return;
    fputc('{', m->f);
    m->first = 1;
}

void metrics_int(Metrics *m, const char *k, long long v) {
    if (!m->f) return;
    key(m, k);
    fprintf(m->f, "%lld", v);
}

void metrics_num(Metrics *m, const char *k, double v) {
    if (!m->f) return;
    key(m, k);
    json_write_number(m->f, v);
}

void metrics_str(Metrics *m, const char *k, const char *v) {
    if (!m->f) return;
    key(m, k);
    json_write_string(m->f, v);
}

FILE *metrics_value(Metrics *m, const char *k) {
    if (!m->f) return NULL;
    key(m, k);
    return m->f;
}

void metrics_end(Metrics *m) {
    if (!m->f) return;
    fputs("}\n", m->f);
    errno = 0;
    CHECK(fflush(m->f) == 0 && !ferror(m->f), "cannot write %s: %s; stopping (the last checkpoint is intact)",
          m->path, strerror(errno ? errno : EIO));
}

void progress_init(Progress *p, int mode) {
    p->tty = mode < 0 ? isatty(STDOUT_FILENO) : mode;
    p->last_len = 0;
}

void progress_line(Progress *p, const char *text) {
    if (p->tty) {
        int n = (int)strlen(text);
        printf("\r%s%*s", text, p->last_len > n ? p->last_len - n : 0, "");
        p->last_len = n;
    } else {
        printf("%s\n", text);
    }
    fflush(stdout);
}

void progress_done(Progress *p) {
    if (p->tty && p->last_len) printf("\n");
    p->last_len = 0;
    fflush(stdout);
}
