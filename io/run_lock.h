/* io/run_lock.h — one trainer per run directory: an advisory lock on
 * <dir>/run.lock.
 *
 * The lock is flock(2) on the file, so the kernel releases it when the
 * process ends in any way (exit, crash, SIGKILL); the file itself stays and
 * says who holds it (pid, host, start time), so a second trainer can name
 * the first. A normal release empties the file: a non-empty file whose lock
 * is free was left by a process that died holding it (a stale lock), which
 * is named and taken over, never an obstacle. The file is never unlinked:
 * removing it would let two processes lock two different inodes of the same
 * name. On a file system without locks (flock fails with ENOLCK or
 * EOPNOTSUPP) the run goes on with a warning. */
#ifndef IO_RUN_LOCK_H
#define IO_RUN_LOCK_H

#include <stddef.h>

#define RUN_LOCK_NAME "run.lock"

typedef struct RunLock {
    int fd;          /* -1: not held */
    char path[1100];
} RunLock;

/* Take dir/run.lock, or stop with a message naming the holder (pid, host,
 * start time) and what to do. who names the config in messages. */
void run_lock_acquire(RunLock *l, const char *dir, const char *who);
/* Empty the file and release the lock (a no-op when not held). */
void run_lock_release(RunLock *l);

#endif
