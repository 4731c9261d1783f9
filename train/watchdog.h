/* train/watchdog.h — a rank that stops making progress is noticed.
 *
 * A thread per rank watches the step loop: when no step completes for
 * run.watchdog_s seconds while it is armed, it prints which rank waited, at
 * which step, and which ranks have gone quiet, then ends the process with
 * TRAINER_EXIT_STALLED; mpirun (or srun) then ends the other ranks. Before,
 * a rank stopped with SIGSTOP left the others spinning in an all-reduce
 * with no message for as long as it lasted.
 *
 * Time is counted by the watchdog's own ticks, each worth at most two tick
 * periods: a process that is stopped as a whole (SLURM's job suspension:
 * SIGSTOP, later SIGCONT) does not count its pause against itself. A stopped
 * rank cannot speak; the others can, and say who it is: with several ranks
 * every watchdog writes a heartbeat file (out_dir/heartbeat/rank-NNNNN: its
 * pid, host and last step), and a firing watchdog names the ranks whose
 * file has not moved for half the limit, by the file system's own clock.
 *
 * The trainer disarms it where ranks legitimately wait on one another for
 * long (rank 0 sampling a grid while the others wait at a barrier). */
#ifndef TRAIN_WATCHDOG_H
#define TRAIN_WATCHDOG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct Watchdog {
    pthread_t thread;
    int running;
    pthread_mutex_t mu;         /* with wake: the thread's tick, cut short by watchdog_stop */
    pthread_cond_t wake;
    atomic_int stop;
    atomic_int armed;
    atomic_uint_fast64_t beats; /* completed steps seen, for the thread */
    atomic_uint_fast64_t step;  /* the last completed step */
    double limit_s;
    int rank, world, exit_code;
    int hb_fd;                  /* this rank's heartbeat file (-1: none) */
    char hb_dir[1100];
    char source[256];           /* the config, for messages */
} Watchdog;

/* Starts the thread, armed, unless limit_s is 0 (then every call is a
 * no-op). out_dir: where the heartbeat files go when world > 1. */
void watchdog_start(Watchdog *w, double limit_s, int rank, int world, const char *out_dir, const char *source,
                    uint64_t step, int exit_code);
/* A step completed: the clock starts again. */
void watchdog_beat(Watchdog *w, uint64_t step);
/* Disarm / re-arm (re-arming starts the clock again). */
void watchdog_pause(Watchdog *w);
void watchdog_resume(Watchdog *w);
void watchdog_stop(Watchdog *w);

#endif
