#!/usr/bin/env bash
# scripts/test.sh — the test command (README, CI): installs what is needed,
# builds with warnings as errors, runs every test (unit, PyTorch parity,
# valgrind), then rebuilds with ASan + UBSan and runs the unit tests again.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

scripts/setup.sh

echo "== release build (warnings are errors) =="
cmake -S . -B build -DJIT_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure

echo "== sanitizer build (ASan + UBSan) =="
cmake -S . -B build-asan -DJIT_SANITIZE=ON -DJIT_WERROR=ON -DJIT_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-asan -j"$jobs"
ctest --test-dir build-asan -L unit --output-on-failure
