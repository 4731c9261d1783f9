/* tests/cuda_emu/emu_child.h — what the emulator's self-tests (emu_detect,
 * emu_streams) share: CK, which stops on a failed CUDA call, and
 * emu_run_child, which runs a case in a child process, since a detector
 * that fires ends the process, and since the emulator reads its settings
 * (EMU_STREAM_SEED, EMU_ORDER) once per process. */
#ifndef EMU_CHILD_H
#define EMU_CHILD_H

#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define CK(call)                                                                                           \
    do {                                                                                                   \
        cudaError_t e_ = (call);                                                                           \
        if (e_ != cudaSuccess) {                                                                           \
            fprintf(stderr, "%s: %s failed: %s\n", __FILE__, #call, cudaGetErrorName(e_));                 \
            exit(3);                                                                                       \
        }                                                                                                  \
    } while (0)

/* Runs fn(arg) in a child whose stderr is captured into err (len bytes);
 * returns its exit status (0 when fn returns; 128+signal when killed). */
static inline int emu_run_child(void (*fn)(void *), void *arg, char *err, size_t len) {
    int fd[2];
    if (pipe(fd)) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        fn(arg);
        exit(0);
    }
    close(fd[1]);
    size_t got = 0;
    ssize_t r;
    while ((r = read(fd[0], err + got, len - 1 - got)) > 0) got += (size_t)r;
    err[got] = 0;
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#endif
