#!/usr/bin/env bash
# scripts/demo.sh — the main job: install, build, and train the tiny JiT on
# Fashion-MNIST for a short run on the CPU (jit-smoke). Extra arguments go to
# jit-smoke, e.g. scripts/demo.sh --steps 200.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" --target jit-smoke
./build/jit-smoke --steps 40 "$@"
