/* core/check.c — the failure path of the checking macros. */
#include "core/check.h"

#include <stdarg.h>

static CheckFailHook check_hook;

void check_set_fail_hook(CheckFailHook hook) { check_hook = hook; }

void check_fail(const char *file, int line, const char *what, const char *fmt, ...) {
    fflush(stdout);
    if (what) fprintf(stderr, "error: %s:%d: check failed: %s\n  hint: ", file, line, what);
    else fprintf(stderr, "error: %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    if (check_hook) check_hook();
    exit(1);
}
