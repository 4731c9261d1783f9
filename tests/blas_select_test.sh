#!/usr/bin/env bash
# tests/blas_select_test.sh — the programs' choice of OpenBLAS core
# (kernels/cpu/blas_select.h), end to end: JIT_BLAS_CORE=Prescott makes
# jit-train start itself again on OpenBLAS's SSE3 kernels and say so (the
# path a machine whose OpenBLAS falls back takes, in reverse); a core set in
# OPENBLAS_CORETYPE is kept; a name OpenBLAS does not take is reported; a
# short training run under the re-execution keeps its arguments and trains.
#   usage: blas_select_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh" blas_select_test
t_work "$1" "$2" blas-select
fail=0
expect() { # WHAT PATTERN TEXT
    if grep -qE "$2" <<<"$3"; then echo "blas_select_test: PASS $1"; else
        echo "blas_select_test: FAIL $1: expected /$2/ in: $3"; fail=1; fi
}
unset OPENBLAS_CORETYPE JIT_BLAS_CORE
out=$(JIT_BLAS_CORE=Prescott "$build/jit-train" --print-blas)
expect "JIT_BLAS_CORE=Prescott re-executes on Prescott" '^blas: OpenBLAS [0-9.]+, core Prescott, [0-9]+ threads \(JIT_BLAS_CORE=Prescott\)$' "$out"
out=$(OPENBLAS_CORETYPE=Prescott "$build/jit-train" --print-blas)
expect "OPENBLAS_CORETYPE is kept" 'core Prescott.*OPENBLAS_CORETYPE=Prescott from the environment' "$out"
out=$(OPENBLAS_CORETYPE=Prescott JIT_BLAS_CORE=Haswell "$build/jit-train" --print-blas)
expect "OPENBLAS_CORETYPE wins over JIT_BLAS_CORE" 'core Prescott' "$out"
out=$(JIT_BLAS_CORE=NoSuchCore "$build/jit-train" --print-blas)
expect "an unknown core is reported" 'OpenBLAS did not take core NoSuchCore' "$out"
out=$("$build/jit-train" --print-blas)
expect "the default says why" '^blas: OpenBLAS [0-9.]+, core [A-Za-z0-9_]+, [0-9]+ threads \((OpenBLAS picked|OpenBLAS.s own pick)' "$out"
# a run started again keeps its arguments (the --set below must take effect)
"$build/jit-prep" --synthetic 16 --out "$work/data" --size 32 --channels 1 --classes 2 >/dev/null
rc=0
JIT_BLAS_CORE=Prescott "$build/jit-train" --config configs/fmnist-tiny-full.yaml --set data.train="$work/data" \
    --set run.out_dir="$work/run" --set train.steps=2 --set data.batch_size=4 --set model.num_classes=2 \
    --set sampling.per_class=1 --set sampling.steps=1 --set logging.progress=false >"$work/log" 2>&1 || rc=$?
expect "jit-train runs under the re-execution (exit $rc)" '^0$' "$rc"
expect "... prints the line once" '^1$' "$(grep -c '^blas: .*core Prescott' "$work/log")"
expect "... with its arguments" '^2$' "$(grep -c '"loss"' "$work/run/metrics.jsonl" 2>/dev/null || echo 0)"
[ "$fail" = 0 ] || { cat "$work/log"; exit 1; }
