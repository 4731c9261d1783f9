#!/usr/bin/env bash
# tests/bench/run_bench_train.sh — training throughput of fmnist-tiny (SLA2)
# and its full-attention twin on this machine, and the data loader alone, in
# one command. Images/s is the median of the per-step figures in
# metrics.jsonl after the first 5 steps; the loader must deliver at least 10x
# what training consumes.
#   usage: tests/bench/run_bench_train.sh [BUILD_DIR] [STEPS] [DATA_DIR]
set -euo pipefail
build=${1:-build}
steps=${2:-40}
data=${3:-data/fmnist}
work=$(mktemp -d /tmp/jit-bench-train-XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ ! -f "$data/fmnist-train-00000.h5" ]; then
  "$build/jit-prep" --fmnist /usr/share/datasets/fashion-mnist --out "$data" --split train --canvas 32 >/dev/null
fi
median_ips() {
  /usr/bin/python3 - "$1" <<'PY'
import json, statistics, sys
v = [json.loads(l)["images_per_s"] for l in open(sys.argv[1]) if '"loss"' in l]
print(f"{statistics.median(v[5:]):.1f}")
PY
}
for cfg in fmnist-tiny fmnist-tiny-full; do
  "$build/jit-train" --config "configs/$cfg.yaml" --set data.train="$data" --set run.out_dir="$work/$cfg" \
    --set train.steps="$steps" --set train.sample_every=0 --set logging.progress=false >/dev/null
  echo "$cfg: $(median_ips "$work/$cfg/metrics.jsonl") images/s (batch 32, median of steps 6-$steps)"
done
"$build/tests/bench/bench_loader" --shards "$data"
