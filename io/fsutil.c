/* io/fsutil.c — mkdir -p (see fsutil.h). */
#include "io/fsutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/check.h"

int io_mkdirs(const char *path, char *err, size_t errlen) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
        snprintf(err, errlen, "%.64s...: cannot create the directory: path too long", path);
        return -1;
    }
    /* Parents first; their errors show up at the last mkdir (ENOENT, EACCES). */
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(tmp, 0755);
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create the directory: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: cannot create the directory: it exists and is not a directory", path);
        return -1;
    }
    return 0;
}

void io_mkdirs_or_die(const char *path) {
    char err[4200];
    if (io_mkdirs(path, err, sizeof err)) FAIL("%s", err);
}
