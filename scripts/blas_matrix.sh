#!/usr/bin/env bash
# scripts/blas_matrix.sh [BUILD_DIR] [-- CTEST_ARGS...] — run the test suite
# (ctest in BUILD_DIR, default build) once per OpenBLAS core and thread count:
# cores $CORES (default "Prescott Haswell SkylakeX": OpenBLAS's SSE3 fallback,
# AVX2 and AVX-512 kernels; cores the CPU cannot run are skipped) and
# OpenMP/OpenBLAS threads $THREADS (default "1 2"). The suite's parity and
# gradient checks must hold whatever kernels and thread counts compute them
# (docs/decisions.md, "Kinks"). Too slow for CI (about ten minutes per cell
# on 2 cores); run it after touching a kernel or a tolerance. Prints one
# line per cell and a table at the end; exits 1 if any cell failed.
set -uo pipefail
cd "$(dirname "$0")/.."
build=build
if [[ $# -gt 0 && $1 != -- ]]; then build=$1; shift; fi
[[ ${1:-} == -- ]] && shift
[ -x "$build/jit-train" ] || { echo "blas_matrix: no $build/jit-train: build first (scripts/test.sh or cmake)"; exit 2; }
flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { [[ " $flags " == *" $1 "* ]]; }
summary=()
fail=0
for core in ${CORES:-Prescott Haswell SkylakeX}; do
    case $core in
        Haswell) has avx2 || { summary+=("$core: skipped (no AVX2)"); continue; } ;;
        SkylakeX) has avx512bw || { summary+=("$core: skipped (no AVX-512)"); continue; } ;;
    esac
    for t in ${THREADS:-1 2}; do
        log=$build/blas-matrix-$core-$t.log
        start=$(date +%s)
        OPENBLAS_CORETYPE=$core OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t \
            ctest --test-dir "$build" --output-on-failure "$@" >"$log" 2>&1
        rc=$?
        got=$(OPENBLAS_CORETYPE=$core "$build/jit-train" --print-blas | sed -E 's/.*, core ([A-Za-z0-9_]+),.*/\1/')
        line="$core x $t threads (OpenBLAS ran $got): $(grep -E 'tests passed|tests failed' "$log" | tail -1) in $(( $(date +%s) - start )) s"
        [ "$rc" = 0 ] || { line+="; failed: $(grep -E '^\s+[0-9]+ - ' "$log" | sed -E 's/^\s+[0-9]+ - //' | tr '\n' ' ') (log: $log)"; fail=1; }
        echo "blas_matrix: $line"
        summary+=("$line")
    done
done
echo "== blas_matrix =="
printf '  %s\n' "${summary[@]}"
exit $fail
