/* io/shards_legacy.c — the variable-length string attributes of shards
 * written before jit-prep switched to fixed-length ones, read so that a
 * corrupt file is an error and not a crash.
 *
 * Variable-length strings live in HDF5's global heap, and libhdf5 crashes
 * (segfault in H5HG_read) or loops on a corrupted heap: tests/fuzz.py found
 * both, and the crashing inputs are in tests/fuzz_corpus/. A library crash
 * cannot be caught in-process, so the one read that reaches the heap runs
 * in a forked child with a time limit, which sends the strings back through
 * a pipe. Only such legacy attributes take this path; the parent holds
 * io_hdf5_lock (no other thread is inside HDF5 at the fork), and the child
 * leaves with _exit (no atexit handler of HDF5 or MPI runs twice). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/check.h"
#include "core/profile.h"
#include "io/shards_internal.h"

/* The time limit: 30 s, or JIT_LEGACY_READ_SECONDS (1 to 3600; the fuzz
 * harness uses a few seconds, where libhdf5 loops on a mutated heap). */
static int shards_legacy_seconds(void) {
    const char *e = getenv("JIT_LEGACY_READ_SECONDS");
    long v = e ? strtol(e, NULL, 10) : 0;
    return v >= 1 && v <= 3600 ? (int)v : 30;
}

/* The child: read, then write n records of (uint32 length, bytes). It dies
 * with its parent (a killed job must not leave a child looping in libhdf5)
 * and by its own alarm a little after the parent's limit. */
static _Noreturn void shards_legacy_child(int out, hid_t a, hid_t mt, int n, int limit) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm((unsigned)limit + 5);
    char **buf = calloc((size_t)n, sizeof(char *));
    if (!buf || H5Aread(a, mt, buf) < 0) _exit(3);
    for (int i = 0; i < n; i++) {
        const char *s = buf[i] ? buf[i] : "";
        uint32_t len = (uint32_t)strlen(s);
        if (write(out, &len, sizeof len) != (ssize_t)sizeof len || write(out, s, len) != (ssize_t)len) _exit(4);
    }
    _exit(0);
}

char **shards_read_vlen_strings(hid_t a, hid_t mt, int n, const char *path, const char *name) {
    int fd[2];
    CHECK(pipe(fd) == 0, "%s: pipe for reading attribute '%s': %s", path, name, strerror(errno));
    int limit = shards_legacy_seconds();
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0, "%s: fork for reading attribute '%s': %s", path, name, strerror(errno));
    if (pid == 0) {
        close(fd[0]);
        shards_legacy_child(fd[1], a, mt, n, limit);
    }
    close(fd[1]);
    size_t cap = 4096, used = 0;
    char *data = core_malloc(cap);
    double t0 = core_now_s();
    for (;;) {
        long left_ms = limit * 1000L - (long)((core_now_s() - t0) * 1000.0);
        struct pollfd p = {.fd = fd[0], .events = POLLIN};
        int r = left_ms > 0 ? poll(&p, 1, (int)left_ms) : 0;
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            FAIL("%s: reading attribute '%s' did not finish in %d s: libhdf5 loops on this file's variable-length "
                 "strings (a corrupt shard, written before jit-prep used fixed-length strings: prepare it again)",
                 path, name, limit);
        }
        if (used == cap) data = core_realloc(data, cap *= 2);
        ssize_t got = read(fd[0], data + used, cap - used);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        used += (size_t)got;
    }
    close(fd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    CHECK(!WIFSIGNALED(status), "%s: reading attribute '%s' crashed libhdf5 (signal %d) on this file's "
                                "variable-length strings: a corrupt shard (written before jit-prep used "
                                "fixed-length strings: prepare it again)",
          path, name, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: cannot read string attribute '%s' (a corrupt shard?)",
          path, name);
    char **out = core_malloc(sizeof(char *) * (size_t)n);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        uint32_t len;
        CHECK(at + sizeof len <= used, "%s: attribute '%s': short read of its strings", path, name);
        memcpy(&len, data + at, sizeof len);
        at += sizeof len;
        CHECK(len <= used - at, "%s: attribute '%s': short read of its strings", path, name);
        out[i] = core_malloc(len + 1);
        memcpy(out[i], data + at, len);
        out[i][len] = 0;
        at += len;
    }
    core_free(data);
    return out;
}
