#!/usr/bin/env bash
# tests/pixelgen_train_test.sh — PixelGen's LPIPS term in jit-train, end to
# end, with random frozen networks at 1/16 width (losses.frozen_random_div):
#   1. the term is logged on every step record and falls over 80 steps;
#   2. resume: 20 steps straight == 10 + resume + 10 (loss and lpips bit-identical);
#   3. 2 ranks x batch 4 == 1 rank x batch 8 (lpips and loss per step, to
#      rounding: the same global gated mean, summed in another order);
#   4. errors before any step: LPIPS without weight files, a missing file
#      (named with its config key), a one-channel model.
#   usage: pixelgen_train_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
build=$(cd "$2" && pwd)
work=$build/pixelgen-train-test
rm -rf "$work"
mkdir -p "$work"
cd "$work"
py=/usr/bin/python3
mpirun="mpirun --allow-run-as-root --oversubscribe --bind-to none -x OMP_NUM_THREADS=1"
pass=0
fail=0
ok() { echo "pixelgen_train_test: PASS $*"; pass=$((pass + 1)); }
bad() { echo "pixelgen_train_test: FAIL $*"; fail=$((fail + 1)); }

"$build/jit-prep" --synthetic 256 --out data --size 16 --channels 3 --classes 4 --seed 3 >/dev/null || exit 1
cat >c.yaml <<YAML
run: {name: pg, seed: 5}
model: {name: jit-tiny, img_size: 16, in_channels: 3, patch: 4, depth: 2, hidden: 64, heads: 2, bottleneck: 16,
        in_context_len: 4, in_context_start: 1, num_classes: 4}
data: {train: $work/data, batch_size: 8, prefetch: 2}
optim: {lr: 2.0e-3, warmup_steps: 2, ema: [0.99]}
train: {steps: 20, log_every: 5, checkpoint_every: 10, keep_last: 5}
sampling: {steps: 2, per_class: 0}
logging: {progress: false}
losses: {lpips_weight: 5.0, frozen_random_div: 16}
YAML
train() { "$build/jit-train" --config c.yaml "$@"; }

# 1. logged and falling
train --set run.out_dir=fall --set train.steps=80 >fall.log 2>&1
$py - fall/metrics.jsonl <<'PY' && ok "lpips on every step record, falling over 80 steps" || bad "lpips logged and falling (see $work/fall.log)"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
steps = [r for r in recs if "step" in r and "loss" in r]
assert len(steps) == 80 and all("lpips" in r for r in steps), len(steps)
v = [r["lpips"] for r in steps]
first, last = sum(v[:10]) / 10, sum(v[-10:]) / 10
print(f"lpips: first 10 steps {first:.4f}, last 10 {last:.4f}")
assert last < 0.98 * first, (first, last)
PY

# 2. resume bit for bit
train --set run.out_dir=straight >straight.log 2>&1
train --set run.out_dir=split --set train.steps=10 >split1.log 2>&1
train --set run.out_dir=split --resume auto >split2.log 2>&1
$py - straight/metrics.jsonl split/metrics.jsonl <<'PY' && ok "resume: steps 11-20 equal bit for bit (loss, lpips)" || bad "resume (see $work/split2.log)"
import json, sys
def rows(p):
    return {r["step"]: (r["loss"], r["lpips"]) for r in map(json.loads, open(p)) if "loss" in r}
a, b = rows(sys.argv[1]), rows(sys.argv[2])
for s in range(11, 21):
    assert a[s] == b[s], (s, a[s], b[s])
PY

# 3. 2 ranks == 1 rank with twice the batch
train --set run.out_dir=one --set train.steps=6 >one.log 2>&1
$mpirun -np 2 "$build/jit-train" --config c.yaml --set run.out_dir=two --set train.steps=6 --set data.batch_size=4 \
  >two.log 2>&1
$py - one/metrics.jsonl two/metrics.jsonl <<'PY' && ok "2 ranks x batch 4 == 1 rank x batch 8 (loss and lpips, 6 steps)" || bad "2 ranks (see $work/two.log)"
import json, sys
def rows(p):
    return {r["step"]: (r["loss"], r["lpips"]) for r in map(json.loads, open(p)) if "loss" in r}
a, b = rows(sys.argv[1]), rows(sys.argv[2])
assert sorted(a) == sorted(b) == list(range(1, 7)), (a, b)
for s in a:
    for x, y in zip(a[s], b[s]):
        assert abs(x - y) <= 1e-4 * abs(x), (s, a[s], b[s])
PY

# 4. errors before any step
out=$(train --set run.out_dir=e1 --set losses.frozen_random_div=0 2>&1)
if [ $? -ne 0 ] && echo "$out" | grep -q "losses.lpips_weight: LPIPS needs losses.vgg_weights and losses.lpips_weights"; then
  ok "LPIPS without its files: $out"
else bad "LPIPS without its files: '$out'"; fi
out=$(train --set run.out_dir=e2 --set losses.frozen_random_div=0 --set losses.vgg_weights=$work/none.h5 \
  --set losses.lpips_weights=$work/none2.h5 2>&1)
if [ $? -ne 0 ] && echo "$out" | grep -q "losses.vgg_weights = $work/none.h5: not a readable HDF5 file" &&
  [ ! -e e2/metrics.jsonl ]; then
  ok "a missing weight file, named with its key, before any step"
else bad "missing weight file: '$out'"; fi
out=$(train --set run.out_dir=e3 --set model.in_channels=1 2>&1)
if [ $? -ne 0 ] && echo "$out" | grep -q "LPIPS compares RGB images"; then
  ok "LPIPS on a one-channel model: refused"
else bad "one-channel model: '$out'"; fi

echo "pixelgen_train_test: $pass passed, $fail failed"
[ $fail -eq 0 ]
