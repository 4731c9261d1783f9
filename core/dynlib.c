/* core/dynlib.c — run-time loading of optional shared libraries (see dynlib.h). */
#include "core/dynlib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#include "core/check.h"

#define DYNLIB_MAX 8

static struct {
    char name[64];
    void *h;
} dynlib_open_libs[DYNLIB_MAX];
static int dynlib_n;
static pthread_mutex_t dynlib_lock = PTHREAD_MUTEX_INITIALIZER;

void *dynlib_open(const char *lib, const char *who) {
    pthread_mutex_lock(&dynlib_lock);
    void *h = NULL;
    for (int i = 0; i < dynlib_n && !h; i++)
        if (strcmp(dynlib_open_libs[i].name, lib) == 0) h = dynlib_open_libs[i].h;
    if (!h) {
        h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
        const char *err = h ? NULL : dlerror();
        CHECK(h != NULL, "cannot load %s, which %s needs: %s (is its folder on LD_LIBRARY_PATH? the CUDA toolkit "
              "keeps it in /usr/local/cuda/lib64 or lib, a Python environment in site-packages/nvidia/*/lib)",
              lib, who, err ? err : "unknown error");
        CHECK(dynlib_n < DYNLIB_MAX && strlen(lib) < sizeof dynlib_open_libs[0].name, "dynlib: too many libraries");
        strcpy(dynlib_open_libs[dynlib_n].name, lib);
        dynlib_open_libs[dynlib_n++].h = h;
    }
    pthread_mutex_unlock(&dynlib_lock);
    return h;
}

void *dynlib_sym(void *lib_handle, const char *lib, const char *sym) {
    dlerror();
    void *p = dlsym(lib_handle, sym);
    const char *err = dlerror();
    CHECK(p != NULL && err == NULL, "%s has no symbol %s (%s): the library is older than the code needs", lib, sym,
          err ? err : "NULL");
    return p;
}
