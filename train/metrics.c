/* train/metrics.c — JSON-lines metrics and the progress line. */
#include "train/metrics.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/check.h"
#include "io/json.h"

/* A record cut short (a full disk, a kill mid-write, zeros after a crash)
 * is an unterminated last line: appending after it would glue the next
 * record onto it, an invalid JSON line. Cut the file back to its last
 * newline and say what went. */
static void metrics_repair(const char *path) {
    FILE *f = fopen(path, "r+b");
    if (!f) return; /* none yet: nothing to repair */
    CHECK(fseeko(f, 0, SEEK_END) == 0, "cannot read %s: %s", path, strerror(errno));
    off_t size = ftello(f), end = size, keep = 0;
    char buf[65536];
    int found = 0, last_ok = 0;
    while (end > 0 && !found) {
        off_t start = end > (off_t)sizeof buf ? end - (off_t)sizeof buf : 0;
        size_t n = (size_t)(end - start);
        CHECK(fseeko(f, start, SEEK_SET) == 0 && fread(buf, 1, n, f) == n, "cannot read %s: %s", path,
              strerror(errno));
        if (end == size) last_ok = buf[n - 1] == '\n';
        if (last_ok) break;
        for (size_t i = n; i-- > 0;)
            if (buf[i] == '\n') {
                keep = start + (off_t)i + 1, found = 1;
                break;
            }
        end = start;
    }
    if (!last_ok && size > 0) {
        char shown[64] = "";
        CHECK(fseeko(f, keep, SEEK_SET) == 0, "cannot read %s: %s", path, strerror(errno));
        size_t n = fread(shown, 1, sizeof shown - 1, f);
        shown[n] = 0;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)shown[i] < 32) shown[i] = '.';
        CHECK(ftruncate(fileno(f), keep) == 0, "cannot repair %s: %s", path, strerror(errno));
        fprintf(stderr, "notice: %s: dropped a cut last line (%lld bytes: '%s%s'), left by a write that did not finish\n",
                path, (long long)(size - keep), shown, size - keep > (off_t)n ? "..." : "");
    }
    fclose(f);
}

void metrics_open(Metrics *m, const char *path, int append) {
    if (path && append) metrics_repair(path);
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
