#!/usr/bin/env bash
# tests/eval_test.sh — jit-eval and scripts/compare_fmnist.sh end to end
# through the real programs: a 10-step checkpoint evaluated twice with the same
# seed (identical eval.json apart from timings, with the keys jit-sweep reads),
# the command-line errors (missing classifier, missing real data, a checkpoint
# of another model size than its configuration, a classifier for another image
# size), `jit-classify test`, and the comparison script at 20 steps.
# jit-eval's real data is 2,000 of the 10,000 test images (two shards): its
# real-image accuracy is checked against `jit-classify test` on the same
# images, and `jit-classify test` on all of them against the stored accuracy
# (test_eval checks jit-eval's on all of them).
#   usage: eval_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh" eval_test
t_work "$1" "$2" eval-test
py=/usr/bin/python3
fail=0
check() { # check NAME COMMAND...: run, report
  if "${@:2}"; then echo "eval_test: ok   $1"; else echo "eval_test: FAIL $1"; fail=1; fi
}
expect_error() { # expect_error NAME PATTERN COMMAND...: exit code 1 and PATTERN in stderr
  local name=$1 pat=$2 rc=0
  shift 2
  "$@" >"$work/err.txt" 2>&1 || rc=$?
  if [ "$rc" = 1 ] && grep -q -- "$pat" "$work/err.txt"; then
    echo "eval_test: ok   $name"
  else
    echo "eval_test: FAIL $name (exit $rc, expected 1 and '$pat'):"; cat "$work/err.txt"; fail=1
  fi
}

"$build/jit-prep" --fmnist /usr/share/datasets/fashion-mnist --out "$work/data" --split test --canvas 32 \
  --per-shard 1000 >/dev/null
real=$work/real # the first 2,000 test images
mkdir -p "$real"
for s in "$work"/data/*-00000.h5 "$work"/data/*-00001.h5; do ln -s "$s" "$real/"; done
classifier=$src/models/fmnist-classifier.h5
if [ ! -f "$classifier" ]; then
  echo "eval_test: $classifier is absent: training a small classifier for the test"
  classifier=$work/classifier.h5
  "$build/jit-classify" train --config configs/eval/fmnist-classifier.yaml --set data.train="$work/data" \
    --set data.test="$work/data" --set train.steps=300 --set model.depth=1 --out "$classifier" >/dev/null
fi

# jit-classify test: prints the accuracy stored at training time (same data, same batch)
"$build/jit-classify" test --model "$classifier" --data "$work/data" >"$work/cls.txt"
check "jit-classify test equals the stored test accuracy" "$py" - "$classifier" "$work/cls.txt" <<'PY'
import h5py, re, sys
stored = float(h5py.File(sys.argv[1], "r").attrs["test_accuracy"])
got = float(re.search(r"accuracy ([0-9.]+)", open(sys.argv[2]).read()).group(1))
assert abs(got - stored) < 1e-4, (got, stored)
PY

# a 10-step checkpoint of the full-attention demo model
"$build/jit-train" --config configs/fmnist-tiny-full.yaml --set data.train="$work/data" \
  --set run.out_dir="$work/run" --set train.steps=10 --set train.sample_every=0 --set train.log_every=5 \
  --set data.batch_size=8 --set sampling.per_class=1 --set sampling.steps=2 \
  --set logging.progress=false >/dev/null
"$build/jit-classify" test --model "$classifier" --data "$real" >"$work/cls-real.txt"
ev=(--checkpoint "$work/run/ckpt" --classifier "$classifier" --real "$real" --per-class 2 --steps 2)
"$build/jit-eval" "${ev[@]}" --out "$work/eval1.json" --png "$work/eval1.png" >"$work/eval1.txt"
"$build/jit-eval" "${ev[@]}" --out "$work/eval2.json" --quiet
check "jit-eval prints the table" grep -q "real floor: half vs half" "$work/eval1.txt"
check "jit-eval --png writes the samples' grid" "$py" -c "
import struct, sys
b = open(sys.argv[1], 'rb').read(24)
assert b[:8] == b'\x89PNG\r\n\x1a\n', b[:8]
w, h = struct.unpack('>II', b[16:24])
assert h > 4 * w > 0, (w, h)  # one row per class (10), per_class (2) columns
" "$work/eval1.png"
check "eval.json: keys, values, deterministic" "$py" - "$work/eval1.json" "$work/eval2.json" "$work/cls-real.txt" <<'PY'
import json, math, re, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for k in ("frechet_distance", "conditional_accuracy", "real_frechet_distance", "real_conditional_accuracy",
          "per_class_accuracy", "real_per_class_accuracy", "settings", "class_names"):
    assert k in a, k
assert isinstance(a["frechet_distance"], float) and math.isfinite(a["frechet_distance"])
assert 0 <= a["conditional_accuracy"] <= 1 and len(a["per_class_accuracy"]) == 10
assert a["n_samples"] == 20 and a["settings"]["steps"] == 2 and a["settings"]["per_class"] == 2
assert a["frechet_distance"] > a["real_frechet_distance"] > 0
classified = float(re.search(r"accuracy ([0-9.]+)", open(sys.argv[3]).read()).group(1))
assert abs(a["real_conditional_accuracy"] - classified) < 1e-4, (a["real_conditional_accuracy"], classified)
a.pop("seconds"), b.pop("seconds")
assert a == b, "two runs with the same seed differ"
PY
"$build/jit-eval" "${ev[@]}" --seed 99 --out "$work/eval3.json" --quiet
check "another seed, another result" "$py" -c "
import json, sys
a, c = (json.load(open(p)) for p in sys.argv[1:3])
assert a['frechet_distance'] != c['frechet_distance']" "$work/eval1.json" "$work/eval3.json"

# errors
expect_error "missing classifier" "does not exist" \
  "$build/jit-eval" --checkpoint "$work/run/ckpt" --classifier "$work/none.h5" --real "$work/data"
expect_error "missing real data" "no such shard" \
  "$build/jit-eval" --checkpoint "$work/run/ckpt" --classifier "$classifier" --real "$work/none"
expect_error "missing checkpoint" "does not exist" \
  "$build/jit-eval" --checkpoint "$work/none" --classifier "$classifier" --real "$real"
cp "$(ls "$work"/run/ckpt/ckpt-*.h5 | tail -n 1)" "$work/other-size.h5"
"$py" - "$work/other-size.h5" <<'PY'
import h5py, sys
with h5py.File(sys.argv[1], "r+") as f:  # the configuration now names a narrower model than the weights
    cfg = f.attrs["config"]
    cfg = cfg.decode() if isinstance(cfg, bytes) else cfg
    assert "hidden: 192" in cfg
    f.attrs["config"] = cfg.replace("hidden: 192", "hidden: 96")
PY
expect_error "checkpoint of another model size" "another model size" \
  "$build/jit-eval" --checkpoint "$work/other-size.h5" --classifier "$classifier" --real "$real"
"$build/jit-prep" --fmnist /usr/share/datasets/fashion-mnist --out "$work/data28" --split test --canvas 28 >/dev/null
"$build/jit-classify" train --config configs/eval/fmnist-classifier.yaml --set data.train="$work/data28" \
  --set data.test="$work/data28" --set train.steps=1 --set model.img_size=28 --set model.depth=1 \
  --out "$work/c28.h5" >/dev/null
expect_error "classifier for another image size" "trained on 1x28x28" \
  "$build/jit-eval" --checkpoint "$work/run/ckpt" --classifier "$work/c28.h5" --real "$real"
expect_error "bad classifier config" "unknown key 'train.stepz'" \
  "$build/jit-classify" train --config configs/eval/fmnist-classifier.yaml --set train.stepz=3

# the comparison script, shortened
PER_CLASS=2 EVAL_STEPS=2 BUILD="$build" DATA="$work/data" TEST_DATA="$real" CLASSIFIER="$classifier" \
  TRAIN_SET="data.batch_size=8 sampling.per_class=1 sampling.steps=2" \
  OUT="$work/compare" scripts/compare_fmnist.sh 20 >"$work/compare.txt" 2>&1 || { cat "$work/compare.txt"; fail=1; }
check "comparison.md has both runs and the floor" "$py" - "$work/compare/comparison.md" <<'PY'
import sys
t = open(sys.argv[1]).read()
rows = [l for l in t.splitlines() if l.startswith("| ")]
assert rows[0].startswith("| run | steps | Fréchet distance | conditional accuracy | final loss | sparsity | images/s")
assert any(r.startswith("| fmnist-tiny-full (full attention) | 20 |") for r in rows), rows
assert any(r.startswith("| fmnist-tiny (SLA2) | 20 |") for r in rows), rows
assert any(r.startswith("| real test images (floor)") for r in rows), rows
assert "n/a" not in "".join(r for r in rows if "fmnist" in r), rows
PY

if [ $fail = 0 ]; then echo "eval_test: 1 passed, 0 failed"; else echo "eval_test: 0 passed, 1 failed"; fi
exit $fail
