/* tests/cuda_emu/emu_cases.h — the driver of the emulator's detector
 * programs (emu_detect.cu, emu_tc_test.cu): each case is a function run
 * with fixed = 0 (its deliberately broken version, which must stop with a
 * report holding every expected string) and fixed = 1 (which must run and
 * give the right answer), each in a child process so a stop ends only it.
 *   PROG              every case, a table, exit 1 if any is wrong
 *   PROG NAME         one case (broken and fixed, in children), exit 1 if wrong
 *   PROG NAME fixed|broken   one version in this process (to debug it)
 * With the checks the cases share (CK, expect_value). Included by one .cu
 * file per program (static functions). */
#ifndef EMU_CASES_H
#define EMU_CASES_H

#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A CUDA call of a case that must succeed (exit 3 otherwise). */
#define CK(call)                                                                                           \
    do {                                                                                                   \
        cudaError_t e_ = (call);                                                                           \
        if (e_ != cudaSuccess) {                                                                           \
            fprintf(stderr, "emu case: %s failed: %s\n", #call, cudaGetErrorName(e_));                    \
            exit(3);                                                                                       \
        }                                                                                                  \
    } while (0)

/* A fixed case's check: element i of device array d must be want (exit 4 otherwise). */
static void expect_value(const float *d, int i, float want) {
    float got;
    CK(cudaMemcpy(&got, d + i, sizeof got, cudaMemcpyDeviceToHost));
    if (got != want) {
        fprintf(stderr, "emu case: element %d is %g, expected %g\n", i, got, want);
        exit(4);
    }
}

#define EMU_CASE_EXPECTS 5

typedef struct {
    const char *name;
    void (*fn)(int fixed);
    const char *expect[EMU_CASE_EXPECTS]; /* all in the broken version's output (NULL: unused) */
} EmuCase;

/* Runs fn(fixed) in a child; returns its exit status (128+signal when killed) and its stderr. */
static int emu_case_child(const EmuCase *c, int fixed, char *err, size_t len) {
    int fd[2];
    if (pipe(fd)) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        c->fn(fixed);
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

/* One case, broken and fixed; prints its table row; 1 if it is wrong. */
static int emu_case_check(const EmuCase *c) {
    static char err[1 << 16];
    static char why[1 << 16];
    int sb = emu_case_child(c, 0, err, sizeof err);
    int fired = sb != 0;
    const char *missing = NULL;
    for (int i = 0; i < EMU_CASE_EXPECTS && c->expect[i]; i++)
        if (!strstr(err, c->expect[i])) {
            fired = 0;
            missing = c->expect[i];
        }
    snprintf(why, sizeof why, "%s", err);
    int sf = emu_case_child(c, 1, err, sizeof err);
    printf("%-22s %-28s %s\n", c->name, fired ? "detected" : "NOT DETECTED", sf == 0 ? "runs" : "FAILS");
    if (!fired)
        printf("  expected \"%s\"; status %d, output:\n%s\n", missing ? missing : "a failure", sb, why);
    else
        printf("  %.*s\n", (int)strcspn(why, "\n"), why);
    if (sf != 0) printf("  fixed case: status %d, output:\n%s\n", sf, err);
    return !fired || sf != 0;
}

static int emu_cases_main(int argc, char **argv, const EmuCase *cases, int n, const char *prog) {
    if (argc >= 2) {
        for (int i = 0; i < n; i++) {
            if (strcmp(argv[1], cases[i].name)) continue;
            if (argc == 3) {
                cases[i].fn(!strcmp(argv[2], "fixed"));
                return 0;
            }
            return emu_case_check(&cases[i]);
        }
        fprintf(stderr, "%s: no case '%s'\n", prog, argv[1]);
        return 2;
    }
    int bad = 0;
    printf("%-22s %-28s %s\n", "case", "broken", "fixed");
    for (int i = 0; i < n; i++) bad += emu_case_check(&cases[i]);
    printf("%d of %d detectors %s\n", n - bad, n,
           bad ? "FAILED" : "fire on their broken kernel and pass the fixed one");
    return bad != 0;
}

#endif
