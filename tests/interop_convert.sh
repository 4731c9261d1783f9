#!/usr/bin/env bash
# tests/interop_convert.sh — docs/interop.md's command sequence end to end on a
# small JiT: a random jit-tiny written in the official checkpoint format by
# the PyTorch reference (tests/reference/official_jit.py) is imported with its
# 0.9999 EMA as the weights, sampled and evaluated as imported, resumed, converted
# to SLA2 with the two-stage recipe (configs/fmnist-tiny-convert.yaml, steps
# shortened), sampled and evaluated again, and exported back to the official
# format (SLA2 dropped with a warning; the official layout loads it strictly).
# Along the way: jit-sample --labels draws chosen classes only, and
# jit-train --resume CHECKPOINT without --config continues with the
# configuration the checkpoint holds; their errors are checked by message.
#   usage: interop_convert.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh" interop_convert
t_work "$1" "$2" interop-convert
py=/usr/bin/python3
fail=0
check() { # check NAME COMMAND...
  if "${@:2}"; then echo "interop_convert: ok   $1"; else echo "interop_convert: FAIL $1"; fail=1; fi
}
refused() { # refused NAME TEXT COMMAND...: the command fails by itself (exit 1..127) saying TEXT
  local out rc=0
  out=$("${@:3}" 2>&1) || rc=$?
  if [ "$rc" -ge 1 ] && [ "$rc" -lt 128 ] && grep -qF -- "$2" <<<"$out"; then
    echo "interop_convert: ok   $1"
  else
    echo "interop_convert: FAIL $1 (exit $rc, wanted a message containing '$2'):"
    echo "$out"
    fail=1
  fi
}
run() { # run LOG COMMAND...: the command's output goes to LOG, shown when it fails
  local log=$1
  shift
  if ! "$@" >"$log" 2>&1; then
    echo "interop_convert: FAIL $*:"
    cat "$log"
    exit 1
  fi
}

"$build/jit-prep" --fmnist /usr/share/datasets/fashion-mnist --out "$work/data" --split test --canvas 32 \
  --per-shard 1000 >/dev/null
data=$work/data1 # one shard of 1,000 images: training data and the evaluation's real set
mkdir -p "$data"
ln -s "$work"/data/*-00000.h5 "$data/"
classifier=$src/models/fmnist-classifier.h5
# What the user's config says about the run (here: this test's data and sizes).
sets=(--set "data.train=$data" --set "optim.ema=[0.9999, 0.9996]" --set data.batch_size=8
      --set logging.progress=false --set train.sample_every=0 --set train.log_every=1
      --set sampling.per_class=1 --set sampling.steps=2)

# 1. an official-format checkpoint (random weights, three AdamW steps, epoch 41)
run "$work/make.log" "$py" tests/reference/official_jit.py --out "$work/checkpoint-last.pth"
# 2. import: the 0.9999 EMA becomes the weights
run "$work/import.log" "$py" scripts/jit_interop.py import-official "$work/checkpoint-last.pth" \
  --out "$work/imported" --config configs/fmnist-tiny-full.yaml "${sets[@]}" --params-from model_ema1 \
  --jit-train "$build/jit-train"
check "import names its source and step" grep -q "AdamW step 3) .* from 'model_ema1'" "$work/import.log"
# 3. jit-sample and jit-eval read the import
run "$work/sample0.log" "$build/jit-sample" --checkpoint "$work/imported" --per-class 1 --steps 2 \
  --out "$work/sample0.png"
# 3b. --labels: only the classes named, in that order, --per-class of each
run "$work/sample-labels.log" "$build/jit-sample" --checkpoint "$work/imported" --labels 7,2 --per-class 2 \
  --steps 2 --out "$work/sample-labels.png" --h5 "$work/sample-labels.h5"
check "jit-sample --labels 7,2 --per-class 2 draws classes 7, 7, 2, 2" "$py" - "$work/sample-labels.h5" <<'PY'
import h5py, sys
f = h5py.File(sys.argv[1], "r")
assert list(f["labels"][...]) == [7, 7, 2, 2], f["labels"][...]
assert f["samples"].shape == (4, 1, 32, 32), f["samples"].shape
PY
check "jit-sample --labels wrote the grid" test -s "$work/sample-labels.png"
for bad in "3,10|class 10 is out of range: the model of $work/imported/ckpt-00000003.h5 has classes 0 to 9" \
           "-1|class -1 is out of range" "3,x|'x' is not a class number" "3,,4|entry 2 is empty"; do
  refused "jit-sample --labels ${bad%%|*} is refused" "${bad#*|}" \
    "$build/jit-sample" --checkpoint "$work/imported" --labels "${bad%%|*}" --steps 1 --out "$work/bad.png"
done
run "$work/eval0.log" "$build/jit-eval" --checkpoint "$work/imported" --classifier "$classifier" --real "$data" \
  --per-class 2 --steps 2 --out "$work/eval0.json" --quiet
# 4. training resumes from it: the AdamW step and the epoch continue
run "$work/resume.log" "$build/jit-train" --config configs/fmnist-tiny-full.yaml "${sets[@]}" \
  --set run.out_dir="$work/resumed" --set train.steps=5 --set train.checkpoint_every=5 --resume "$work/imported"
check "resume continues at step 3 and ends at step 5" "$py" - "$work/resumed" <<'PY'
import json, sys
steps = [json.loads(l)["step"] for l in open(sys.argv[1] + "/metrics.jsonl") if '"loss"' in l]
assert steps == [4, 5], steps  # a step is logged with the count after its update
PY
# 4b. --resume without --config: the configuration saved in the checkpoint
# (step 4's run, so it continues in $work/resumed), --set applied on top
run "$work/resume2.log" "$build/jit-train" --resume "$work/resumed/ckpt" --set train.steps=7 \
  --set train.checkpoint_every=7
check "resume without --config reads the checkpoint's configuration" grep -qF \
  "the configuration saved in $work/resumed/ckpt/ckpt-00000005.h5 (run.out_dir: $work/resumed)" "$work/resume2.log"
check "it continues at step 5 up to the overridden train.steps 7" "$py" - "$work/resumed" <<'PY'
import json, sys
steps = [json.loads(l)["step"] for l in open(sys.argv[1] + "/metrics.jsonl") if '"loss"' in l]
assert steps == [4, 5, 6, 7], steps
assert open(sys.argv[1] + "/ckpt/latest").read().strip() == "ckpt-00000007.h5"
PY
"$py" - "$work/resumed/ckpt/ckpt-00000007.h5" "$work/noconfig.h5" <<'PY'
import shutil, sys, h5py
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "a") as f:
    del f.attrs["config"]
PY
refused "--resume of a checkpoint without a configuration, no --config: refused naming it" \
  "$work/noconfig.h5 holds no saved configuration" "$build/jit-train" --resume "$work/noconfig.h5"
refused "--resume auto without --config: refused" "--resume auto looks in the configuration's run.out_dir" \
  "$build/jit-train" --resume auto
refused "neither --config nor --resume: refused" "no configuration: pass --config FILE, or --resume" "$build/jit-train"
# 5. the two-stage conversion to SLA2 (stage 1: 3 steps, stage 2: 3 steps)
run "$work/convert.log" "$build/jit-train" --config configs/fmnist-tiny-convert.yaml "${sets[@]}" \
  --set run.out_dir="$work/converted" --set train.steps=6 --set train.checkpoint_every=6 \
  --set "callbacks[0].from=$work/imported" --set "callbacks[0].stage1_steps=3"
check "conversion loads the import and adds 18 SLA2 tensors" grep -q \
  "SLA2Conversion: loaded $work/imported/ckpt-00000003.h5; 18 SLA2 parameters" "$work/convert.log"
check "conversion reaches stage 2" grep -q "SLA2Conversion: stage 2 from step 3" "$work/convert.log"
check "stage 1 starts from the imported EMA weights" "$py" - "$work" <<'PY'
import h5py, sys, numpy as np
w = sys.argv[1]
imp = h5py.File(w + "/imported/ckpt-00000003.h5", "r")
conv = h5py.File(w + "/converted/ckpt/ckpt-00000006.h5", "r")
# stage 1 trains only the SLA2 tensors; stage 2 moved the rest: compare the
# stage-2-frozen routers' existence and that the import was the EMA, not raw
assert not np.array_equal(imp["params/blocks.0.attn.qkv.weight"][...], imp["ema/1/blocks.0.attn.qkv.weight"][...])
assert np.array_equal(imp["params/blocks.0.attn.qkv.weight"][...], imp["ema/0/blocks.0.attn.qkv.weight"][...])
assert "blocks.5.attn.sla2.proj_q" in conv["params"]
PY
# 6. the converted model samples and evaluates
run "$work/eval1.log" "$build/jit-eval" --checkpoint "$work/converted/ckpt" --classifier "$classifier" \
  --real "$data" --per-class 2 --steps 2 --out "$work/eval1.json" --quiet
check "both evaluations wrote a finite Frechet distance" "$py" -c "
import json, math, sys
for p in sys.argv[1:]:
    assert math.isfinite(json.load(open(p))['frechet_distance']), p" "$work/eval0.json" "$work/eval1.json"
# 7. export the converted model: SLA2 dropped with a warning; loads strictly
run "$work/export.log" "$py" scripts/jit_interop.py export-official "$work/converted/ckpt" \
  --out "$work/exported.pth" --jit-train "$build/jit-train"
check "export warns that SLA2 is dropped" grep -q "18 SLA2 tensors dropped" "$work/export.log"
check "the exported file loads strictly into the official layout" "$py" - "$work/exported.pth" <<'PY'
import sys, torch
sys.path.insert(0, "tests/reference")
import jit_ref, official_jit
ck = torch.load(sys.argv[1], map_location="cpu")
for k in ("model", "model_ema1", "model_ema2"):
    official_jit.Denoiser(jit_ref.named_config("jit-tiny")).load_state_dict(ck[k], strict=True)
PY
[ "$fail" = 0 ] && echo "interop_convert: all ok"
exit "$fail"
