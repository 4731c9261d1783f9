#!/usr/bin/env bash
# scripts/test.sh — the test command (README, CI): installs what is needed,
# builds with warnings as errors, runs every test (unit, PyTorch parity,
# valgrind), then rebuilds with ASan + UBSan, the CUDA backend on the CPU
# emulator (tests/cuda_emu), and runs the unit tests and the emulated CUDA
# tests (label cuda_emu). Prints the slowest tests at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

scripts/setup.sh

echo "== release build (warnings are errors) =="
# The CUDA backend is compiled wherever nvcc is, GPU or not, so compile errors
# in it fail the tests (ctest skips its GPU tests without a GPU).
cuda=OFF
if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then cuda=ON; fi
cmake -S . -B build -DJIT_WERROR=ON -DJIT_CUDA=$cuda >/dev/null
cmake --build build -j"$jobs"
# The suite runs the OpenBLAS kernels the programs choose (a core set in
# OPENBLAS_CORETYPE is kept), so the parity tests hold the kernels that train.
blas=$(build/jit-train --print-blas)
echo "$blas"
export OPENBLAS_CORETYPE
OPENBLAS_CORETYPE=$(sed -E 's/.*, core ([A-Za-z0-9_]+),.*/\1/' <<<"$blas")
# Two tests at a time where both declared they keep one core busy (label
# one_core, the emulated CUDA tests; tests/CMakeLists.txt: jit_test_cores),
# every other test alone.
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== sanitizer build (ASan + UBSan) =="
cmake -S . -B build-asan -DJIT_SANITIZE=ON -DJIT_WERROR=ON -DJIT_CUDA=EMU -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-asan -j"$jobs"
ctest --test-dir build-asan -L 'unit|cuda_emu' --output-on-failure -j"$jobs"

echo "== slowest tests =="
# From ctest's cost data (name, runs, mean seconds), which a `ctest -N` inside
# a test (suite_cores_test) does not overwrite as it does LastTest.log.
for d in build build-asan; do
  cost=$d/Testing/Temporary/CTestCostData.txt
  [ -f "$cost" ] || continue
  awk -v d="$d" '/^---/{exit} NF == 3 {printf "%8.1f s  %s (%s)\n", $3, $1, d}' "$cost"
done | sort -rn | awk 'NR <= 12'  # awk reads to the end: head would SIGPIPE sort under pipefail
