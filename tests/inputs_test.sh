#!/usr/bin/env bash
# tests/inputs_test.sh — every file input is a regular file, and reads are
# bounded (issue 28, items 4 and 5). A FIFO (mkfifo) given as any file input
# used to block in open() forever, and `jit-train --config /dev/zero` read
# until the kernel killed it at ~18 GB. Each entry point below must exit
# non-zero within seconds, with a message naming the file: --config (train,
# classify), --resume, SLA2Conversion's from:, jit-sample and jit-eval
# --checkpoint, a "latest" that is a FIFO, the PixelGen weights files, the
# Fashion-MNIST IDX file, sweep files, shards, the classifier; /dev/zero as
# --config or sweep file; a config over the 16 MiB limit (a sparse file).
# `timeout` turns a regression into a failure instead of a hang.
#   usage: inputs_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh" inputs_test
t_work "$1" "$2" inputs-test
fifo=$work/fifo.h5
mkfifo "$fifo"

# expect NAME NEEDLE CMD...: CMD exits non-zero (not by the timeout) within
# 10 s and its output names NEEDLE.
expect() {
  local name=$1 needle=$2 rc=0
  shift 2
  timeout -k 2 10 "$@" >"$work/out.log" 2>&1 </dev/null || rc=$?
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    bad "$name: still running after 10 s (blocked?)"
  elif [ "$rc" = 0 ]; then
    bad "$name: exit 0"
  elif ! grep -qF -- "$needle" "$work/out.log"; then
    bad "$name: exit $rc but the message does not name $needle:"
    tail -5 "$work/out.log"
  else
    ok "$name (exit $rc: $(grep -F -- "$needle" "$work/out.log" | head -1 | cut -c1-160))"
  fi
}

"$build/jit-prep" --synthetic 16 --out "$work/data" --size 32 --channels 1 --classes 10 >/dev/null || exit 1
"$build/jit-prep" --synthetic 16 --out "$work/rgb16" --size 16 --channels 3 --classes 4 >/dev/null || exit 1
small=(--set data.train="$work/data" --set run.out_dir="$work/run" --set train.steps=1 --set data.batch_size=4
       --set logging.progress=false)

expect "jit-train --config FIFO" "$fifo" "$build/jit-train" --config "$fifo"
expect "jit-train --config /dev/zero" "/dev/zero" "$build/jit-train" --config /dev/zero
truncate -s 17M "$work/huge.yaml"
expect "jit-train --config over 16 MiB" "$work/huge.yaml: the configuration is 17825792 bytes, more than the 16 MiB" "$build/jit-train" --config "$work/huge.yaml" --print-config
expect "jit-classify train --config FIFO" "$fifo" "$build/jit-classify" train --config "$fifo"
expect "jit-classify train --config /dev/zero" "/dev/zero" "$build/jit-classify" train --config /dev/zero
expect "jit-train --resume FIFO" "$fifo" "$build/jit-train" --config configs/fmnist-tiny.yaml "${small[@]}" --resume "$fifo"
mkdir -p "$work/ckdir"
mkfifo "$work/ckdir/latest"
expect "jit-train --resume DIR whose latest is a FIFO" "$work/ckdir/latest" \
  "$build/jit-train" --config configs/fmnist-tiny.yaml "${small[@]}" --resume "$work/ckdir"
expect "SLA2Conversion from: FIFO" "$fifo" "$build/jit-train" --config configs/fmnist-tiny-convert.yaml "${small[@]}" \
  --set "callbacks[0].from=$fifo"
expect "jit-sample --checkpoint FIFO" "$fifo" "$build/jit-sample" --checkpoint "$fifo" --out "$work/s.png"
expect "jit-sample --interval 0.1,-1" "--interval takes LO,HI with 0 <= LO < HI, got 0.1,-1" \
  "$build/jit-sample" --checkpoint "$fifo" --interval 0.1,-1 --out "$work/s.png"
expect "jit-eval --checkpoint FIFO" "$fifo" "$build/jit-eval" --checkpoint "$fifo" --classifier "$work/none.h5" \
  --real "$work/data"
expect "jit-eval --classifier FIFO" "$fifo" "$build/jit-eval" --checkpoint "$work/data/synthetic-00000.h5" --classifier "$fifo" \
  --real "$work/data"
expect "PixelGen weights FIFO" "$fifo" "$build/jit-train" --config configs/jit-tiny-pixelgen.yaml \
  --set data.train="$work/rgb16" --set run.out_dir="$work/pg" --set train.steps=1 --set losses.frozen_random_div=0 \
  --set losses.vgg_weights="$fifo" --set losses.lpips_weights="$fifo" --set losses.dino_weights="$fifo"
mkdir -p "$work/fmnist"
mkfifo "$work/fmnist/train-images-idx3-ubyte.gz"
expect "jit-prep --fmnist with a FIFO IDX file" "$work/fmnist/train-images-idx3-ubyte.gz" \
  "$build/jit-prep" --fmnist "$work/fmnist" --out "$work/fm-out"
expect "jit-sweep plan FIFO" "$fifo" "$build/jit-sweep" plan "$fifo"
expect "jit-sweep plan /dev/zero" "/dev/zero" "$build/jit-sweep" plan /dev/zero
truncate -s 17M "$work/huge-sweep.yaml"
expect "jit-sweep plan over 16 MiB" "$work/huge-sweep.yaml: the sweep file is 17825792 bytes, more than the 16 MiB" "$build/jit-sweep" plan "$work/huge-sweep.yaml"
expect "data.train FIFO (shard)" "$fifo" "$build/jit-train" --config configs/fmnist-tiny.yaml "${small[@]}" \
  --set data.train="$fifo"
expect "jit-prep --check FIFO" "$fifo" "$build/jit-prep" --check "$fifo"

t_done
