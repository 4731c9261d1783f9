/* core/check.h — checking macros that stop with file:line, what failed and a hint.
 *
 * Every check in the project goes through these so that an error names the
 * place and says what to do, instead of a bare assert or a segfault. */
#ifndef CORE_CHECK_H
#define CORE_CHECK_H

#include <stdio.h>
#include <stdlib.h>

/* Called on a failed check. Distributed code installs a hook that aborts the
 * whole MPI job instead of leaving the other ranks waiting. */
typedef void (*CheckFailHook)(void);
void check_set_fail_hook(CheckFailHook hook);
/* C++ spelling for the CUDA backend's .cu files, which include this header. */
#ifdef __cplusplus
#define CHECK_NORETURN [[noreturn]]
#else
#define CHECK_NORETURN _Noreturn
#endif
CHECK_NORETURN void check_fail(const char *file, int line, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* CHECK(cond, "hint with %d", args): stop with file:line when cond is false. */
#define CHECK(cond, ...) \
    do { if (!(cond)) check_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); } while (0)

/* FAIL("message"): unconditional stop with file:line. */
#define FAIL(...) check_fail(__FILE__, __LINE__, NULL, __VA_ARGS__)

#endif
