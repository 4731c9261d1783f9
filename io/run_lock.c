/* io/run_lock.c — the run directory's lock file (see run_lock.h). */
#include "io/run_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "core/check.h"

/* The holder's record: "pid P\nhost H\nstarted T\n", read into one line
 * "pid P on host H, started T" for messages ("" when the file is empty).
 * *dead (when given) is set when P is no process of this host: the record
 * of a holder that was killed, which the new holder has not yet replaced. */
static void run_lock_describe_ex(int fd, char *out, size_t n, int *dead) {
    char buf[512] = "";
    ssize_t got = pread(fd, buf, sizeof buf - 1, 0);
    buf[got > 0 ? got : 0] = 0;
    char pid[32] = "?", host[256] = "?", started[64] = "?";
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "pid ", 4)) snprintf(pid, sizeof pid, "%s", line + 4);
        else if (!strncmp(line, "host ", 5)) snprintf(host, sizeof host, "%s", line + 5);
        else if (!strncmp(line, "started ", 8)) snprintf(started, sizeof started, "%s", line + 8);
    }
    if (got <= 0) snprintf(out, n, "%s", "");
    else snprintf(out, n, "pid %s on host %s, started %s", pid, host, started);
    if (dead) {
        char self[256] = "";
        gethostname(self, sizeof self - 1);
        long p = strtol(pid, NULL, 10);
        *dead = got > 0 && p > 0 && !strcmp(host, self) && kill((pid_t)p, 0) != 0 && errno == ESRCH;
    }
}

static void run_lock_describe(int fd, char *out, size_t n) { run_lock_describe_ex(fd, out, n, NULL); }

static void run_lock_write_self(RunLock *l) {
    char host[256] = "?", when[64] = "?", rec[512];
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %z", &tm);
    int n = snprintf(rec, sizeof rec, "pid %ld\nhost %s\nstarted %s\n", (long)getpid(), host, when);
    /* Best effort: the lock is what protects; the record only names us. */
    if (ftruncate(l->fd, 0) != 0 || pwrite(l->fd, rec, (size_t)n, 0) != n)
        fprintf(stderr, "warning: cannot write %s: %s (the lock is held all the same)\n", l->path, strerror(errno));
}

void run_lock_acquire(RunLock *l, const char *dir, const char *who) {
    l->fd = -1;
    snprintf(l->path, sizeof l->path, "%s/%s", dir, RUN_LOCK_NAME);
    int fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    CHECK(fd >= 0, "%s: cannot open the run directory's lock file %s: %s", who, l->path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        if (err == EWOULDBLOCK) {
            /* Started together: the holder may not have written its record
             * yet (the file is empty, or still names a killed holder), or
             * may end while we look: then the lock is ours after all. */
            char holder[400] = "";
            int dead = 0, got_lock = 0;
            for (int i = 0; i < 40; i++) {
                run_lock_describe_ex(fd, holder, sizeof holder, &dead);
                if (holder[0] && !dead) break;
                usleep(50000);
                if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
                    got_lock = 1;
                    break;
                }
            }
            if (got_lock) {
                l->fd = fd;
                run_lock_write_self(l);
                return;
            }
            close(fd);
            if (dead) holder[0] = 0;
            FAIL("%s: run.out_dir %s is in use by another trainer (%s; it holds %s): wait for it to end or stop it, "
                 "or give this run another run.out_dir",
                 who, dir, holder[0] ? holder : "it has not said who it is yet", l->path);
        }
        fprintf(stderr, "warning: %s: cannot lock %s (%s): the file system has no locks; a second trainer on this "
                        "directory would not be stopped\n", who, l->path, strerror(err));
    } else {
        char stale[400];
        run_lock_describe(fd, stale, sizeof stale);
        if (stale[0])
            fprintf(stderr, "notice: %s: %s names %s, which is no longer running (it ended without releasing the "
                            "lock: killed?); taking it over\n", who, l->path, stale);
    }
    l->fd = fd;
    run_lock_write_self(l);
}

void run_lock_release(RunLock *l) {
    if (l->fd < 0) return;
    /* Empty: the next trainer sees a clean release, not a stale lock. */
    if (ftruncate(l->fd, 0) != 0) { /* nothing to do: it would read as stale, which is harmless */ }
    close(l->fd); /* releases the flock */
    l->fd = -1;
}
