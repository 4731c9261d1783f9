/* core/dynlib.h — shared libraries loaded at run time (dlopen), for the
 * large optional ones a program needs only on some paths: cuBLASLt (half a
 * gigabyte, about a second to map and relocate) only once a CUDA device is
 * initialised, NCCL only when a multi-GPU run starts it. Linking them instead
 * made every program of the CUDA build, and every run of it, pay that load,
 * and made every bundled GPU program need libnccl.so.2 (docs/gpu.md).
 * Failures stop through core/check.h with the library, the dynamic loader's
 * message and who needed it. */
#ifndef CORE_DYNLIB_H
#define CORE_DYNLIB_H

#ifdef __cplusplus
extern "C" {
#endif

/* dlopen(lib) (RTLD_NOW | RTLD_LOCAL), once per name and process; `who`
 * (e.g. "the CUDA backend's matrix products") goes into the error. */
void *dynlib_open(const char *lib, const char *who);
/* The symbol's address in a library dynlib_open returned; stops when absent
 * (a library too old for the code). */
void *dynlib_sym(void *lib_handle, const char *lib, const char *sym);
#ifdef __cplusplus
}
#endif

#endif
