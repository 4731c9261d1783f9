/* io/fsutil.c — mkdir -p and the regular-file checks on inputs (see fsutil.h). */
#include "io/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
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

static const char *io_kind(mode_t m) {
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISDIR(m)) return "a directory";
    if (S_ISSOCK(m)) return "a socket";
    return "a special file";
}

int io_open_regular(const char *path, const char *what, char *err, size_t errlen) {
    if (!path || !path[0]) {
        snprintf(err, errlen, "(empty path): cannot open %s: no file named", what);
        errno = ENOENT;
        return -1;
    }
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
     * writer, forever; the type is checked on what was opened (no window
     * between a stat and the open). */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open %s: %s", path, what, strerror(e));
        errno = e;
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open %s: %s", path, what, strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: %s is %s, not a regular file", path, what, io_kind(st.st_mode));
        close(fd);
        errno = EINVAL;
        return -1;
    }
    /* Reads block again, as every reader expects (a regular file never
     * returns EAGAIN anyway; this keeps the descriptor ordinary). */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

FILE *io_fopen_regular(const char *path, const char *what, char *err, size_t errlen) {
    int fd = io_open_regular(path, what, err, errlen);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open %s: %s", path, what, strerror(e));
        close(fd);
        errno = e;
    }
    return f;
}

int io_check_regular(const char *path, const char *what, char *err, size_t errlen) {
    int fd = io_open_regular(path, what, err, errlen);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

void io_require_regular(const char *path, const char *what) {
    char err[1400];
    if (io_check_regular(path, what, err, sizeof err)) FAIL("%s", err);
}

int io_read_bounded(const char *path, const char *what, size_t max, char **text, size_t *len, char *err,
                    size_t errlen) {
    *text = NULL;
    *len = 0;
    int fd = io_open_regular(path, what, err, errlen);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) == 0 && (unsigned long long)st.st_size > max) {
        snprintf(err, errlen, "%s: %s is %lld bytes, more than the %zu MiB it may have", path, what,
                 (long long)st.st_size, max >> 20);
        close(fd);
        errno = EFBIG;
        return -1;
    }
    /* The size is a hint (a file can grow while read): read at most max + 1
     * bytes and refuse the file when the last one arrives. */
    size_t cap = (size_t)st.st_size + 1 < max + 1 ? (size_t)st.st_size + 1 : max + 1, n = 0;
    if (cap < 4096) cap = 4096;
    char *buf = core_malloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap > max) break;
            cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            buf = core_realloc(buf, cap + 1);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            snprintf(err, errlen, "%s: cannot read %s: %s", path, what, strerror(e));
            close(fd);
            core_free(buf);
            errno = e;
            return -1;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    if (n > max) {
        snprintf(err, errlen, "%s: %s grew past the %zu MiB it may have while it was read", path, what, max >> 20);
        core_free(buf);
        errno = EFBIG;
        return -1;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}
