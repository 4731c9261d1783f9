#!/usr/bin/env bash
# scripts/demo.sh — the main job: install, build, prepare Fashion-MNIST as
# HDF5 shards, train JiT-SLA2 (configs/fmnist-tiny.yaml) on the CPU, and
# sample a grid (one row per class) from the EMA weights.
#
#   scripts/demo.sh                          # the full demo (1500 steps, ~15 min on 2 cores)
#   scripts/demo.sh --set train.steps=200    # extra arguments go to jit-train
#   CONFIG=configs/fmnist-tiny-full.yaml scripts/demo.sh   # the full-attention twin
#
# Re-running continues the run from its newest checkpoint (--resume auto).
set -euo pipefail
cd "$(dirname "$0")/.."
config=${CONFIG:-configs/fmnist-tiny.yaml}
data=${DATA:-data/fmnist}

scripts/setup.sh demo
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" --target jit-prep jit-train jit-sample

if [ ! -f "$data/fmnist-train-00000.h5" ]; then
  ./build/jit-prep --fmnist /usr/share/datasets/fashion-mnist --out "$data" --split train --canvas 32
fi
./build/jit-train --config "$config" --set data.train="$data" "$@" --resume auto

out_dir=$(sed -n 's/^  out_dir: *//p' "$config" | head -n 1)
for a in "$@"; do case "$a" in run.out_dir=*) out_dir=${a#run.out_dir=} ;; esac; done
./build/jit-sample --checkpoint "$out_dir/ckpt" --out "$out_dir/samples.png" --h5 "$out_dir/samples.h5"
echo "demo: metrics in $out_dir/metrics.jsonl, samples in $out_dir/samples.png"
