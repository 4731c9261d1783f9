#!/usr/bin/env bash
# scripts/demo.sh — the main job: install, build, prepare Fashion-MNIST as
# HDF5 shards, train JiT-SLA2 with QAT on the CPU (configs/fmnist-demo.yaml),
# then sample 20 images per class from the EMA weights (the configuration's
# sampler: 10 Heun steps, CFG 3 for the demo), write them as a grid
# and score them with jit-eval (conditional accuracy by the committed
# classifier, Fréchet distance to 2,000 real test images). Prints where the
# time went.
#
#   scripts/demo.sh                                  # the demo (a few minutes on 2 cores)
#   scripts/demo.sh --set train.steps=200            # extra arguments go to jit-train
#   CONFIG=configs/fmnist-tiny.yaml scripts/demo.sh  # the 1500-step configuration (and -full: its twin)
#
# Environment: CONFIG, BUILD (build directory), DATA and TEST_DATA (shard
# directories, prepared when they hold no shard), EVAL_ARGS (extra jit-eval
# arguments, e.g. "--per-class 5 --steps 5"). Re-running continues the run
# from its newest checkpoint (--resume auto).
set -euo pipefail
cd "$(dirname "$0")/.."
config=${CONFIG:-configs/fmnist-demo.yaml}
build=${BUILD:-build}
data=${DATA:-data/fmnist}
test_data=${TEST_DATA:-data/fmnist-test}
now() { date +%s.%N; }
t0=$(now)

scripts/setup.sh demo
t1=$(now)
cmake -S . -B "$build" >/dev/null
cmake --build "$build" -j"$(nproc)" --target jit-prep jit-train jit-eval jit-sample
t2=$(now)

has_shards() { compgen -G "$1/*.h5" >/dev/null; }
has_shards "$data" ||
  "$build/jit-prep" --fmnist /usr/share/datasets/fashion-mnist --out "$data" --split train --canvas 32
# jit-eval's real images: the first 2,000 of the test split
has_shards "$test_data" ||
  "$build/jit-prep" --fmnist /usr/share/datasets/fashion-mnist --out "$test_data" --split test --canvas 32 \
    --per-shard 2000
t3=$(now)

"$build/jit-train" --config "$config" --set data.train="$data" "$@" --resume auto
t4=$(now)

out_dir=$(sed -n 's/^  out_dir: *//p' "$config" | head -n 1)
for a in "$@"; do case "$a" in run.out_dir=*) out_dir=${a#run.out_dir=} ;; esac; done
# shellcheck disable=SC2086 # EVAL_ARGS is a list of options
"$build/jit-eval" --checkpoint "$out_dir/ckpt" --classifier models/fmnist-classifier.h5 \
  --real "$(compgen -G "$test_data/*.h5" | head -n 1)" --per-class 20 ${EVAL_ARGS:-} \
  --png "$out_dir/samples.png" --out "$out_dir/eval.json"
t5=$(now)

json() { sed -n "s/.*\"$1\": \([-0-9.e+]*\).*/\1/p" "$out_dir/eval.json" | head -n 1; }
awk -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" -v t4="$t4" -v t5="$t5" 'BEGIN {
  printf "demo: %.0f s in all: setup %.0f s, build %.0f s, data %.0f s, training %.0f s, sampling and evaluation %.0f s\n",
         t5 - t0, t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4 }'
echo "demo: conditional accuracy $(json conditional_accuracy) of $(json n_samples) samples (real test images:" \
     "$(json real_conditional_accuracy)), Fréchet distance $(json frechet_distance) (real floor" \
     "$(json real_frechet_distance))"
echo "demo: samples in $out_dir/samples.png, metrics in $out_dir/metrics.jsonl, scores in $out_dir/eval.json"
