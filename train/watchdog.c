/* train/watchdog.c — the step loop's watchdog thread (see watchdog.h). */
#include "train/watchdog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/fsutil.h"

static double watchdog_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Rewritten in place (its mtime is the beat): pid, host, last step. */
static void watchdog_heartbeat(Watchdog *w) {
    if (w->hb_fd < 0) return;
    char host[256] = "?", rec[400];
    gethostname(host, sizeof host - 1);
    int n = snprintf(rec, sizeof rec, "pid %ld\nhost %s\nstep %llu\n", (long)getpid(), host,
                     (unsigned long long)atomic_load(&w->step));
    if (ftruncate(w->hb_fd, 0) != 0 || pwrite(w->hb_fd, rec, (size_t)n, 0) != n) {
        /* a heartbeat that cannot be written only makes the report vaguer */
    }
}

/* The ranks whose heartbeat file has not moved for half the limit, judged
 * against this rank's own file just written (one clock: the file system's). */
static int watchdog_name_quiet_ranks(Watchdog *w) {
    struct stat self;
    if (w->hb_fd < 0 || fstat(w->hb_fd, &self) != 0) return 0;
    int quiet = 0;
    for (int r = 0; r < w->world; r++) {
        if (r == w->rank) continue;
        char p[1200], rec[400] = "";
        snprintf(p, sizeof p, "%s/rank-%05d", w->hb_dir, r);
        struct stat st;
        double age = 1e30;
        FILE *f = fopen(p, "r");
        if (f && fstat(fileno(f), &st) == 0) {
            age = difftime(self.st_mtime, st.st_mtime);
            size_t n = fread(rec, 1, sizeof rec - 1, f);
            rec[n] = 0;
        }
        if (f) fclose(f);
        if (age < 0.5 * w->limit_s) continue;
        char said[600];
        size_t k = 0;
        for (const char *c = rec; *c && k + 3 < sizeof said; c++) {
            if (*c != '\n') said[k++] = *c;
            else if (c[1]) said[k++] = ',', said[k++] = ' ';
        }
        said[k] = 0;
        if (age > 1e29)
            fprintf(stderr, "  rank %d: no heartbeat file %s: it never started watching?\n", r, p);
        else
            fprintf(stderr, "  rank %d (%s): silent for %.0f s: stopped, hung or lost?\n", r, said, age);
        quiet++;
    }
    return quiet;
}

static _Noreturn void watchdog_fire(Watchdog *w, double stalled) {
    unsigned long long s = (unsigned long long)atomic_load(&w->step);
    fprintf(stderr,
            "error: %s: watchdog: rank %d of %d is stuck in step %llu: no training step completed for %.0f s "
            "(run.watchdog_s = %g; step %llu was the last)\n",
            w->source, w->rank, w->world, s + 1, stalled, w->limit_s, s);
    if (w->world > 1) {
        watchdog_heartbeat(w);
        if (watchdog_name_quiet_ranks(w) == 0)
            fprintf(stderr, "  every other rank's watchdog is alive: a rank is stuck inside a step (a collective, "
                            "the file system, a device?)\n");
    }
    fprintf(stderr, "  ending the job (exit %d); resume from the last checkpoint with --resume auto\n", w->exit_code);
    fflush(stderr);
    fflush(stdout);
    _exit(w->exit_code); /* not exit(): the main thread is inside MPI or a kernel */
}

static void *watchdog_main(void *arg) {
    Watchdog *w = arg;
    double period = w->limit_s / 8;
    if (period < 0.05) period = 0.05;
    if (period > 5) period = 5;
    double hb_every = w->limit_s / 4 < 30 ? w->limit_s / 4 : 30, since_hb = hb_every;
    double prev = watchdog_now(), stalled = 0;
    uint_fast64_t seen = atomic_load(&w->beats);
    pthread_mutex_lock(&w->mu);
    while (!atomic_load(&w->stop)) {
        /* Wait out the tick on a condition, not in nanosleep, so that
         * watchdog_stop wakes the thread at once: a tick is up to 5 s, and
         * every normal exit joins this thread. */
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        double end = (double)until.tv_sec + until.tv_nsec * 1e-9 + period;
        until.tv_sec = (time_t)end, until.tv_nsec = (long)((end - (double)(time_t)end) * 1e9);
        while (!atomic_load(&w->stop) && pthread_cond_timedwait(&w->wake, &w->mu, &until) != ETIMEDOUT) {
        }
        if (atomic_load(&w->stop)) break;
        pthread_mutex_unlock(&w->mu);
        double now = watchdog_now(), dt = now - prev;
        prev = now;
        /* A gap longer than two ticks is this process having been stopped
         * (or starved): not a stall of its step loop. */
        if (dt > 2 * period) dt = 2 * period;
        since_hb += dt;
        if (since_hb >= hb_every) watchdog_heartbeat(w), since_hb = 0;
        uint_fast64_t b = atomic_load(&w->beats);
        if (b != seen || !atomic_load(&w->armed)) {
            seen = b, stalled = 0;
        } else {
            stalled += dt;
            if (stalled >= w->limit_s) watchdog_fire(w, stalled);
        }
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

void watchdog_start(Watchdog *w, double limit_s, int rank, int world, const char *out_dir, const char *source,
                    uint64_t step, int exit_code) {
    memset(w, 0, sizeof *w);
    w->hb_fd = -1;
    if (limit_s <= 0) return;
    w->limit_s = limit_s, w->rank = rank, w->world = world, w->exit_code = exit_code;
    snprintf(w->source, sizeof w->source, "%s", source);
    atomic_store(&w->step, step);
    atomic_store(&w->armed, 1);
    if (world > 1) {
        char err[1300];
        snprintf(w->hb_dir, sizeof w->hb_dir, "%s/heartbeat", out_dir);
        if (io_mkdirs(w->hb_dir, err, sizeof err) == 0) {
            char p[1200];
            snprintf(p, sizeof p, "%s/rank-%05d", w->hb_dir, rank);
            w->hb_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        }
        if (w->hb_fd < 0)
            fprintf(stderr, "warning: %s: rank %d: no heartbeat file in %s (%s): a stalled job's report will not "
                            "name the silent rank\n", source, rank, w->hb_dir, strerror(errno));
        watchdog_heartbeat(w);
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&w->mu, NULL);
    if (pthread_create(&w->thread, NULL, watchdog_main, w) == 0) w->running = 1;
    else fprintf(stderr, "warning: %s: rank %d: cannot start the watchdog thread: a stalled rank goes unnoticed\n",
                 source, rank);
}

void watchdog_beat(Watchdog *w, uint64_t step) {
    atomic_store(&w->step, step);
    atomic_fetch_add(&w->beats, 1);
}

void watchdog_pause(Watchdog *w) { atomic_store(&w->armed, 0); }

void watchdog_resume(Watchdog *w) {
    atomic_fetch_add(&w->beats, 1);
    atomic_store(&w->armed, 1);
}

void watchdog_stop(Watchdog *w) {
    if (w->running) {
        pthread_mutex_lock(&w->mu);
        atomic_store(&w->stop, 1);
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->mu);
        w->running = 0;
    }
    if (w->hb_fd >= 0) {
        char p[1200];
        snprintf(p, sizeof p, "%s/rank-%05d", w->hb_dir, w->rank);
        close(w->hb_fd);
        unlink(p); /* a clean end; the directory goes with the last file */
        rmdir(w->hb_dir);
        w->hb_fd = -1;
    }
}
