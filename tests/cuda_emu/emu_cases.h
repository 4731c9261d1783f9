/* tests/cuda_emu/emu_cases.h — the driver of the emulator's detector
 * programs (emu_detect.cu, emu_tc_test.cu): each case is a function run
 * with fixed = 0 (its deliberately broken version, which must stop with a
 * report holding every expected string) and fixed = 1 (which must run and
 * give the right answer), each in a child process so a stop ends only it.
 *   PROG              every case, a table, exit 1 if any is wrong
 *   PROG NAME         one case (broken and fixed, in children), exit 1 if wrong
 *   PROG NAME fixed|broken   one version in this process (to debug it)
 * With the check the fixed cases share (expect_value; CK is emu_child.h's). Included by one .cu
 * file per program (static functions). */
#ifndef EMU_CASES_H
#define EMU_CASES_H

#include <stdio.h>
#include <string.h>

#include "tests/cuda_emu/emu_child.h" /* CK, emu_run_child */

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

/* Runs c->fn(fixed) in a child (emu_child.h); its exit status and stderr. */
struct EmuCaseRun {
    const EmuCase *c;
    int fixed;
};
static void emu_case_main(void *arg) {
    const EmuCaseRun *r = (const EmuCaseRun *)arg;
    r->c->fn(r->fixed);
}
static int emu_case_child(const EmuCase *c, int fixed, char *err, size_t len) {
    EmuCaseRun r = {c, fixed};
    return emu_run_child(emu_case_main, &r, err, len);
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
