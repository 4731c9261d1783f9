#!/usr/bin/env bash
# tests/demo_short.sh — the README demo in a shortened form, as a test:
# jit-prep (Fashion-MNIST test split) -> jit-train configs/fmnist-tiny.yaml for
# 20 steps (sampling and checkpointing along the way) -> jit-sample; checks
# that the PNG grids, the HDF5 samples, the checkpoint and 20 metrics lines exist.
#   usage: demo_short.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
work=$build/demo-short
rm -rf "$work"
mkdir -p "$work"
cd "$src"
"$build/jit-prep" --fmnist /usr/share/datasets/fashion-mnist --out "$work/data" --split test --canvas 32
"$build/jit-train" --config configs/fmnist-tiny.yaml --set data.train="$work/data" --set run.out_dir="$work/run" \
  --set train.steps=20 --set train.sample_every=10 --set train.checkpoint_every=10 --set train.log_every=5 \
  --set sampling.steps=3 --set sampling.per_class=2 --set logging.progress=false
"$build/jit-sample" --checkpoint "$work/run/ckpt" --steps 3 --per-class 2 --out "$work/run/samples.png" \
  --h5 "$work/run/samples.h5"
fail=0
for f in run/config.yaml run/metrics.jsonl run/ckpt/latest run/ckpt/ckpt-00000020.h5 run/samples/step-00000010.png \
         run/samples/step-00000020.png run/samples/step-00000020.h5 run/samples.png run/samples.h5; do
  if [ ! -s "$work/$f" ]; then echo "demo_short: missing $f"; fail=1; fi
done
steps=$(grep -c '"loss"' "$work/run/metrics.jsonl" || true)
if [ "$steps" != 20 ]; then echo "demo_short: metrics.jsonl has $steps step records, expected 20"; fail=1; fi
/usr/bin/python3 - "$work/run/samples.png" <<'PY' || fail=1
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", data[16:24])
# 2 samples per class of 32 px with a 2 px border: 2*32 + 3*2 = 70 wide; 10 classes: 10*32 + 11*2 = 342 high
assert (w, h) == (70, 342), f"grid is {w}x{h}, expected 70x342"
print(f"demo_short: samples.png {w}x{h}")
PY
if [ $fail = 0 ]; then echo "demo_short: 1 passed, 0 failed"; else echo "demo_short: 0 passed, 1 failed"; fi
exit $fail
