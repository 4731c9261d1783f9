/* io/fsutil_out.c — outputs written to a temporary name and renamed when
 * complete (see fsutil.h).
 *
 * Pending temporary names are kept in a small table and removed by an atexit
 * handler: a write that fails ends the program through check_fail's
 * exit(1), and then leaves nothing behind, neither under the final name
 * (never written there) nor under the temporary one. A SIGKILL or an
 * uncaught signal skips atexit: the "<name>.tmp" may remain, never the final
 * name. The table is small because a program has few outputs open at once
 * (jit-sample: a PNG and an HDF5 file, one after the other). */
#include "io/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IO_OUT_PENDING 16

static pthread_mutex_t io_out_mutex = PTHREAD_MUTEX_INITIALIZER;
static char io_out_pending[IO_OUT_PENDING][1120];
static int io_out_registered;

static void io_out_atexit(void) {
    pthread_mutex_lock(&io_out_mutex);
    for (int i = 0; i < IO_OUT_PENDING; i++)
        if (io_out_pending[i][0]) unlink(io_out_pending[i]);
    pthread_mutex_unlock(&io_out_mutex);
}

static void io_out_track(const char *tmp, int add) {
    pthread_mutex_lock(&io_out_mutex);
    if (!io_out_registered) {
        atexit(io_out_atexit);
        io_out_registered = 1;
    }
    for (int i = 0; i < IO_OUT_PENDING; i++) {
        if (add ? io_out_pending[i][0] == '\0' : strcmp(io_out_pending[i], tmp) == 0) {
            if (add) snprintf(io_out_pending[i], sizeof io_out_pending[i], "%s", tmp);
            else io_out_pending[i][0] = '\0';
            break;
        }
    }
    pthread_mutex_unlock(&io_out_mutex);
}

int io_out_begin(IoOut *o, const char *path, char *err, size_t errlen) {
    if (snprintf(o->path, sizeof o->path, "%s", path) >= (int)sizeof o->path) {
        snprintf(err, errlen, "%.64s...: cannot write: path too long", path);
        return -1;
    }
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp", path);
    io_out_track(o->tmp, 1);
    return 0;
}

FILE *io_out_fopen(IoOut *o, const char *path, char *err, size_t errlen) {
    if (io_out_begin(o, path, err, errlen)) return NULL;
    FILE *f = fopen(o->tmp, "wb");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "cannot write %s: %s", o->tmp, strerror(e));
        io_out_track(o->tmp, 0);
        errno = e;
    }
    return f;
}

void io_out_abandon(IoOut *o) {
    unlink(o->tmp);
    io_out_track(o->tmp, 0);
}

int io_out_fclose_commit(IoOut *o, FILE *f, char *err, size_t errlen) {
    int bad = fflush(f) != 0 || ferror(f);
    int e = errno;
    if (fclose(f) != 0 && !bad) bad = 1, e = errno; /* io_out_commit fsyncs */
    if (bad) {
        snprintf(err, errlen, "cannot write %s: %s", o->tmp, strerror(e));
        io_out_abandon(o);
        errno = e; /* for callers that word their own message */
        return -1;
    }
    return io_out_commit(o, err, errlen);
}

int io_out_commit(IoOut *o, char *err, size_t errlen) {
    int fd = open(o->tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL)) {
        int e = errno;
        snprintf(err, errlen, "cannot write %s: %s", o->tmp, strerror(e));
        if (fd >= 0) close(fd);
        io_out_abandon(o);
        errno = e;
        return -1;
    }
    close(fd);
    if (rename(o->tmp, o->path) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot rename %s to %s: %s", o->tmp, o->path, strerror(e));
        io_out_abandon(o);
        errno = e;
        return -1;
    }
    io_out_track(o->tmp, 0);
    return 0;
}
