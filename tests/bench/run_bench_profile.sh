#!/usr/bin/env bash
# tests/bench/run_bench_profile.sh — where a training step of the demo's model
# goes, in one command: fmnist-tiny (SLA2) at step 600 (router at its 0.5
# target, QAT off) and at step 1100 (QAT on), fmnist-tiny-full (full
# attention), each with phases, ops, and GFLOP/s against the sgemm measured
# in the same run (tests/bench/bench_profile.c states the FLOP formula); then
# the PyTorch reference's forward+backward on the same threads as the anchor
# (run_bench_step.sh).
#   usage: tests/bench/run_bench_profile.sh [BUILD_DIR] [THREADS] [STEPS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
threads=${2:-2}
steps=${3:-10}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/jit-prep" --synthetic 1024 --out "$work/data" --size 32 --channels 1 --classes 10 >/dev/null
prof() { # prof CONFIG STEP
  OMP_NUM_THREADS=$threads "$build/tests/bench/bench_profile" --config "$1" --at-step "$2" --steps "$steps" \
    --warmup 3 --set data.train="$work/data" --set run.out_dir="$work/run" | grep -v '^QuantizedAttentionMonitor'
  echo
}
prof configs/fmnist-tiny.yaml 600
prof configs/fmnist-tiny.yaml 1100
prof configs/fmnist-tiny-full.yaml 600
"$here/run_bench_step.sh" "$build" "$threads" "$steps"
