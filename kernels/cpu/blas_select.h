/* kernels/cpu/blas_select.h — which OpenBLAS kernels the CPU backend runs.
 *
 * Debian's OpenBLAS is built with DYNAMIC_ARCH: at load it reads the CPU's
 * identity and picks a "core" (a set of kernels). A CPU newer than the
 * library (for example Intel family 6 model 207 under OpenBLAS 0.3.21) is
 * not recognised and gets the generic Prescott (SSE3) kernels: every linear
 * layer then runs 3-5x slower, silently. OpenBLAS reads OPENBLAS_CORETYPE
 * only when it loads, so the one way to change the choice is to start the
 * process again with it set: blas_select does that, before anything else
 * (MPI included) has started.
 *
 * Policy (docs/decisions.md, "OpenBLAS core"): the best core the CPU's
 * instruction set supports, AVX-512 (F, CD, BW, DQ, VL) -> SkylakeX,
 * AVX2 + FMA -> Haswell, when OpenBLAS picked a weaker one. Overrides:
 *   OPENBLAS_CORETYPE=NAME   set by the user: kept as it is;
 *   JIT_BLAS_CORE=keep       run whatever OpenBLAS picked;
 *   JIT_BLAS_CORE=NAME       run core NAME (re-executes when needed).
 * scripts/test.sh runs the suite with the core the programs choose, so the
 * parity tests check the kernels that train. */
#ifndef KERNELS_CPU_BLAS_SELECT_H
#define KERNELS_CPU_BLAS_SELECT_H

#include <stddef.h>

/* The CPU's vector instruction sets, as far as the choice needs them. */
enum { BLAS_ISA_AVX2 = 1, BLAS_ISA_AVX512 = 2 };

/* The instruction sets this CPU (and its OS) supports. */
unsigned blas_cpu_isa(void);

/* The core to run instead of `detected` on a CPU with `isa`, or NULL to keep
 * `detected` (pure: the policy above, tested in test_core). */
const char *blas_choose_core(const char *detected, unsigned isa);

/* Call first in main(): applies the policy and the overrides, re-executing
 * the program (same argv, same pid) with OPENBLAS_CORETYPE set when the core
 * must change; returns only when the process runs the chosen core (or the
 * choice could not be applied, said on stderr). With print != 0, rank 0 of
 * a job (read from the launcher's environment) prints one line naming the
 * core and why. */
void blas_select(char **argv, int print);

/* The core the programs run with, and why, for scripts and logs (after
 * blas_select, or in a process that did not call it: what it would choose). */
const char *blas_select_describe(char *buf, size_t len);

#endif
