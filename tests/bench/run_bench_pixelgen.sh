#!/usr/bin/env bash
# tests/bench/run_bench_pixelgen.sh — what each of PixelGen's losses costs a
# training step on the CPU at the tiny size (configs/jit-tiny-pixelgen.yaml:
# jit-tiny 16x16 RGB, batch 8, frozen networks at 1/16 width), as ratios
# against the flow loss alone run in the same command: each term alone, all
# three, and all three with lambda measured on every step (the second replay
# of the tape). Milliseconds per step are the median of the per-step figures
# in metrics.jsonl after the first 5 steps. Then bench_dinov2 and
# bench_lpips: the FLOPs per image at 256 px against JiT-B/16's step.
#   usage: tests/bench/run_bench_pixelgen.sh [BUILD_DIR] [STEPS]
set -euo pipefail
build=${1:-build}
steps=${2:-60}
work=$(mktemp -d /tmp/jit-bench-pixelgen-XXXXXX)
trap 'rm -rf "$work"' EXIT
"$build/jit-prep" --synthetic 256 --out "$work/data" --size 16 --channels 3 --classes 4 --seed 3 >/dev/null
median_ms() {
  /usr/bin/python3 - "$1" <<'PY'
import json, statistics, sys
v = [json.loads(l)["images_per_s"] for l in open(sys.argv[1]) if '"loss"' in l]
print(f"{statistics.median(1000.0 * 8 / x for x in v[5:]):.3f}")
PY
}
off="--set losses.repa_weight=0 --set losses.lpips_weight=0 --set losses.pdino_weight=0"
run() { # name, overrides...
  local name=$1
  shift
  # shellcheck disable=SC2068
  "$build/jit-train" --config configs/jit-tiny-pixelgen.yaml --set data.train="$work/data" \
    --set run.out_dir="$work/$name" --set train.steps="$steps" --set train.checkpoint_every=0 $@ >/dev/null 2>&1
  median_ms "$work/$name/metrics.jsonl"
}
base=$(run flow $off)
echo "flow loss alone: $base ms/step (the baseline)"
report() { /usr/bin/python3 -c "import sys; print(f'{sys.argv[1]}: {float(sys.argv[2]):.3f} ms/step, {float(sys.argv[2]) / float(sys.argv[3]):.2f}x the flow loss alone')" "$@"; }
report "+ REPA" "$(run repa $off --set losses.repa_weight=0.5)" "$base"
report "+ LPIPS" "$(run lpips $off --set losses.lpips_weight=5 --set losses.adaptive_start=-1)" "$base"
report "+ P-DINO" "$(run pdino $off --set losses.pdino_weight=1 --set losses.adaptive_start=-1)" "$base"
report "+ all three" "$(run all --set losses.adaptive_start=-1)" "$base"
report "+ all three, lambda measured every step" "$(run adapt --set losses.adaptive_every=1)" "$base"
"$build/tests/bench/bench_dinov2"
"$build/tests/bench/bench_lpips"
