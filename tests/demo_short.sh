#!/usr/bin/env bash
# tests/demo_short.sh — the README demo itself (scripts/demo.sh), shortened:
# 20 training steps on the Fashion-MNIST test split, checkpoints along the way,
# then jit-eval's grid and scores of 2 samples per class at 2 sampler steps.
# Checks the run's files, 20 metrics lines, the grid's size, eval.json, and
# the demo's closing lines (timings, accuracy and Fréchet distance).
#   usage: demo_short.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh" demo_short
t_work "$1" "$2" demo-short
"$build/jit-prep" --fmnist /usr/share/datasets/fashion-mnist --out "$work/data" --split test --canvas 32 >/dev/null
BUILD=$build DATA=$work/data TEST_DATA=$work/test EVAL_ARGS="--per-class 2 --steps 2" scripts/demo.sh \
  --set run.out_dir="$work/run" --set train.steps=20 --set train.checkpoint_every=10 --set train.log_every=5 \
  --set logging.progress=false >"$work/demo.log" 2>&1 || { cat "$work/demo.log"; exit 1; }
fail=0
for f in run/config.yaml run/metrics.jsonl run/ckpt/latest run/ckpt/ckpt-00000010.h5 run/ckpt/ckpt-00000020.h5 \
         run/samples.png run/eval.json test/fmnist-test-00000.h5; do
  if [ ! -s "$work/$f" ]; then echo "demo_short: missing $f"; fail=1; fi
done
steps=$(grep -c '"loss"' "$work/run/metrics.jsonl" || true)
if [ "$steps" != 20 ]; then echo "demo_short: metrics.jsonl has $steps step records, expected 20"; fail=1; fi
for pat in "^demo: [0-9]* s in all: setup [0-9]* s, build [0-9]* s, data [0-9]* s, training [0-9]* s, sampling" \
           "^demo: conditional accuracy 0*\.*[0-9.]* of 20 samples .* Fréchet distance [0-9.]"; do
  if ! grep -q "$pat" "$work/demo.log"; then echo "demo_short: no line matching '$pat'"; fail=1; fi
done
/usr/bin/python3 - "$work/run/samples.png" <<'PY' || fail=1
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", data[16:24])
# 2 samples per class of 32 px with a 2 px border: 2*32 + 3*2 = 70 wide; 10 classes: 10*32 + 11*2 = 342 high
assert (w, h) == (70, 342), f"grid is {w}x{h}, expected 70x342"
print(f"demo_short: samples.png {w}x{h}")
PY
if [ $fail = 0 ]; then echo "demo_short: 1 passed, 0 failed"; else cat "$work/demo.log"; echo "demo_short: 0 passed, 1 failed"; fi
exit $fail
