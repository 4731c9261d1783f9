#!/usr/bin/env bash
# tests/trainer_exit.sh — a normal end of jit-train exits 0: in the sanitizer
# build too, with LeakSanitizer on (it used to exit 1 at every end because of
# Open MPI's start-up allocations; dist/comm.c pauses leak detection around
# MPI_Init and MPI_Finalize only; and it failed now and then with "Tracer
# caught signal 11 ... LeakSanitizer has encountered a fatal error", on a
# dynamic TLS block MPI_Init leaves: core/sanitizer_options.c, tests/lsan_dtls.c).
# Two steps of a small run, a checkpoint and a grid.
#   usage: trainer_exit.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh" trainer_exit
t_work "$1" "$2" trainer-exit
# A sanitized jit-train carries the runtime's defaults (core/sanitizer_options.c).
syms=$(nm -D "$build/jit-train")
if grep -q ' __asan_init' <<<"$syms" && ! grep -q ' T __asan_default_options' <<<"$syms"; then
  echo "trainer_exit: FAIL the sanitized jit-train lacks __asan_default_options (core/sanitizer_options.c)"
  exit 1
fi
"$build/jit-prep" --synthetic 32 --out "$work/data" --size 32 --channels 1 --classes 10 >/dev/null
rc=0
"$build/jit-train" --config configs/fmnist-tiny-full.yaml --set data.train="$work/data" --set run.out_dir="$work/run" \
  --set train.steps=2 --set data.batch_size=4 --set sampling.per_class=1 --set sampling.steps=1 \
  --set logging.progress=false >"$work/log" 2>&1 || rc=$?
if [ "$rc" != 0 ] || grep -q "LeakSanitizer" "$work/log"; then
  cat "$work/log"
  echo "trainer_exit: FAIL jit-train exited $rc"
  exit 1
fi
echo "trainer_exit: ok, jit-train exited 0 ($(grep -c '"loss"' "$work/run/metrics.jsonl") steps)"
