#!/usr/bin/env bash
# tests/bench/run_bench_step.sh — forward+backward time of the tiny JiT at
# batch 32: this project's CPU backend against the PyTorch reference model
# doing the same work on the same cores, in one command. Prints both medians
# and their ratio (PyTorch / C: above 1 means we are faster).
#   usage: tests/bench/run_bench_step.sh [BUILD_DIR] [THREADS] [ITERS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
threads=${2:-2}
iters=${3:-10}
c_line=$(OMP_NUM_THREADS=$threads "$build/tests/bench/bench_step" --batch 32 --iters "$iters" --warmup 2)
t_line=$(/usr/bin/python3 "$here/bench_step_torch.py" --batch 32 --iters "$iters" --warmup 2 --threads "$threads")
echo "$c_line"
echo "$t_line"
c=$(sed -n 's/.*median=\([0-9.]*\).*/\1/p' <<<"$c_line")
t=$(sed -n 's/.*median=\([0-9.]*\).*/\1/p' <<<"$t_line")
awk -v c="$c" -v t="$t" -v th="$threads" 'BEGIN { printf "jit-tiny batch 32 fwd+bwd, %d threads: C %.1f ms, PyTorch %.1f ms, speed-up %.2fx\n", th, c, t, t / c }'
