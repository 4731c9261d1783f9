/* kernels/cpu/blas_select.c — choosing OpenBLAS's kernels (see blas_select.h
 * for the why and the policy). */
#include "kernels/cpu/blas_select.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* OpenBLAS's own introspection (declared in its cblas.h under some builds
 * only, so declared here). */
char *openblas_get_corename(void);
char *openblas_get_config(void);
int openblas_get_num_threads(void);

/* Marks a process started again by blas_select: "CORE,DETECTED,REASON". */
#define BLAS_REEXEC_ENV "JIT_BLAS_REEXEC"

static char blas_why[256];  /* why the running core runs: set by blas_select */

unsigned blas_cpu_isa(void) {
    unsigned isa = 0;
#if defined(__x86_64__) || defined(__i386__)
    /* libgcc's checks include the OS's XSAVE support for the YMM and ZMM
     * state, so a feature reported here is usable. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isa |= BLAS_ISA_AVX2;
    if ((isa & BLAS_ISA_AVX2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        isa |= BLAS_ISA_AVX512;
#endif
    return isa;
}

/* OpenBLAS 0.3.21's x86-64 cores by the widest vector kernels they use:
 * 1 SSE, 2 AVX, 3 AVX2 + FMA, 4 AVX-512. 0: a name this table does not know
 * (a newer OpenBLAS, another architecture): never replaced. */
static int blas_core_level(const char *core) {
    static const char *const sse[] = {"Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom",
                                      "Core2", "Penryn", "Dunnington", "Nehalem", "Opteron", "Opteron_SSE3",
                                      "Barcelona", "Bobcat", "Nano"};
    static const char *const avx[] = {"Sandybridge", "Bulldozer", "Piledriver", "Steamroller", "Excavator"};
    static const char *const avx2[] = {"Haswell", "Zen"};
    static const char *const avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
    static const struct {
        const char *const *names;
        size_t n;
        int level;
    } table[] = {{sse, sizeof sse / sizeof *sse, 1},
                 {avx, sizeof avx / sizeof *avx, 2},
                 {avx2, sizeof avx2 / sizeof *avx2, 3},
                 {avx512, sizeof avx512 / sizeof *avx512, 4}};
    for (size_t t = 0; t < sizeof table / sizeof *table; t++)
        for (size_t i = 0; i < table[t].n; i++)
            if (!strcasecmp(core, table[t].names[i])) return table[t].level;
    return 0;
}

const char *blas_choose_core(const char *detected, unsigned isa) {
    const char *best = (isa & BLAS_ISA_AVX512) ? "SkylakeX" : (isa & BLAS_ISA_AVX2) ? "Haswell" : NULL;
    if (!best || !detected) return NULL;
    int have = blas_core_level(detected);
    return have > 0 && have < blas_core_level(best) ? best : NULL;
}

static const char *blas_isa_name(unsigned isa) {
    return (isa & BLAS_ISA_AVX512) ? "AVX-512" : (isa & BLAS_ISA_AVX2) ? "AVX2" : "neither AVX2 nor AVX-512";
}

/* This process's rank in an MPI or SLURM job, from the launcher's
 * environment (MPI is not initialised yet when blas_select runs). */
static int blas_launcher_rank(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return 0;
}

/* What blas_select would decide in this process: the core to re-execute
 * with (NULL: keep the running one), and why, into blas_why. */
static const char *blas_decide(void) {
    const char *running = openblas_get_corename();
    unsigned isa = blas_cpu_isa();
    const char *env = getenv("OPENBLAS_CORETYPE"), *mode = getenv("JIT_BLAS_CORE");
    if (env && *env) {
        snprintf(blas_why, sizeof blas_why, "OPENBLAS_CORETYPE=%s from the environment", env);
        return NULL;
    }
    if (mode && *mode && strcasecmp(mode, "auto")) {
        if (!strcasecmp(mode, "keep")) {
            snprintf(blas_why, sizeof blas_why, "OpenBLAS's own pick, kept by JIT_BLAS_CORE=keep");
            return NULL;
        }
        snprintf(blas_why, sizeof blas_why, "JIT_BLAS_CORE=%s", mode);
        return strcasecmp(mode, running) ? mode : NULL;
    }
    const char *want = blas_choose_core(running, isa);
    if (want)
        snprintf(blas_why, sizeof blas_why,
                 "OpenBLAS picked %s on a CPU with %s; JIT_BLAS_CORE=keep keeps OpenBLAS's pick", running,
                 blas_isa_name(isa));
    else
        snprintf(blas_why, sizeof blas_why, "OpenBLAS's own pick on a CPU with %s", blas_isa_name(isa));
    return want;
}

void blas_select(char **argv, int print) {
    const char *running = openblas_get_corename();
    const char *marker = getenv(BLAS_REEXEC_ENV);
    if (marker && *marker) {
        /* Started again by blas_select: did OpenBLAS take the core asked for? */
        char want[64] = "", rest[200] = "";
        if (sscanf(marker, "%63[^,],%199[^\n]", want, rest) < 1) want[0] = 0;
        if (!strcasecmp(want, running))
            snprintf(blas_why, sizeof blas_why, "%s", rest);
        else
            snprintf(blas_why, sizeof blas_why,
                     "OpenBLAS did not take core %s (OPENBLAS_CORETYPE); check the name, or set JIT_BLAS_CORE=keep",
                     want);
        unsetenv(BLAS_REEXEC_ENV); /* children (jit-sweep's jit-train) inherit OPENBLAS_CORETYPE only */
    } else {
        const char *want = blas_decide();
        if (want) {
            char mark[sizeof blas_why + 80];
            snprintf(mark, sizeof mark, "%s,%s", want, blas_why);
            /* The path, not /proc/self/exe itself: under valgrind that is
             * valgrind, while readlink gives the program (valgrind says so). */
            char self[4096];
            ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
            if (n > 0 && setenv("OPENBLAS_CORETYPE", want, 1) == 0 && setenv(BLAS_REEXEC_ENV, mark, 1) == 0) {
                self[n] = 0;
                fflush(NULL);
                execv(self, argv);
            }
            /* Only reached when the re-execution failed: go on as we are. */
            snprintf(blas_why, sizeof blas_why, "could not start again with OPENBLAS_CORETYPE=%s (%s)", want,
                     strerror(errno));
            unsetenv("OPENBLAS_CORETYPE");
            unsetenv(BLAS_REEXEC_ENV);
        }
    }
    if (print && blas_launcher_rank() == 0) {
        char line[400];
        fprintf(stderr, "%s\n", blas_select_describe(line, sizeof line));
    }
}

const char *blas_select_describe(char *buf, size_t len) {
    if (!blas_why[0]) (void)blas_decide();
    char version[64] = "OpenBLAS";
    const char *cfg = openblas_get_config();
    if (cfg) sscanf(cfg, "%*s %63s", version);
    snprintf(buf, len, "blas: OpenBLAS %s, core %s, %d threads (%s)", version, openblas_get_corename(),
             openblas_get_num_threads(), blas_why);
    return buf;
}
