/* kernels/backends.c — the registry: which backends this build has, by name
 * and by device. The one file above kernels/<backend>/ that knows which are
 * built; a new backend is a folder kernels/<name>/ with its Backend, and one
 * line here (in its build's #ifdef). */
#include <stdio.h>
#include <string.h>

#include "core/backend.h"
#include "core/check.h"

extern const Backend backend_cpu_impl; /* kernels/cpu/backend_cpu.c */
#ifdef JIT_HAVE_CUDA
extern const Backend backend_cuda_impl; /* kernels/cuda/backend_cuda.c */
#endif

static const Backend *const registry[] = {
    &backend_cpu_impl,
#ifdef JIT_HAVE_CUDA
    &backend_cuda_impl,
#endif
};
#define N_BACKENDS (sizeof registry / sizeof registry[0])

const Backend *backend_cpu(void) { return &backend_cpu_impl; }

const Backend *backend_find(const char *name) {
    for (size_t i = 0; i < N_BACKENDS; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

const char *backend_names(void) {
    static char names[128];
    names[0] = '\0';
    for (size_t i = 0; i < N_BACKENDS; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", registry[i]->name);
    return names;
}

/* The names every build knows, so that a missing one gets the right message. */
static int known_name(const char *name) { return !strcmp(name, "cpu") || !strcmp(name, "cuda"); }

const Backend *backend_open(const char *name, BackendPrecision precision, int local_rank, const char *who) {
    CHECK(known_name(name), "%s: unknown device '%s' (cpu or cuda)", who, name);
    const Backend *b = backend_find(name);
    CHECK(b != NULL,
          "%s: the %s device is not available in this build: it was configured without the %s backend (no nvcc "
          "found, or -DJIT_CUDA=OFF); rebuild with its toolkit, or use one of: %s",
          who, name, name, backend_names());
    char err[256];
    const char *why = b->open(precision, local_rank, err, sizeof err);
    CHECK(why == NULL, "%s: %s", who, why);
    return b;
}

