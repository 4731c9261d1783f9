#!/usr/bin/env bash
# tests/pixelgen_train_test.sh — PixelGen's losses in jit-train, end to
# end, with random frozen networks at 1/16 width (losses.frozen_random_div).
# LPIPS alone:
#   1. the term is logged on every step record and falls over 80 steps;
#   2. resume: 20 steps straight == 10 + resume + 10 (loss and lpips bit-identical);
#   3. 2 ranks x batch 4 == 1 rank x batch 8 (lpips and loss per step, to
#      rounding: the same global gated mean, summed in another order);
#   4. errors before any step: LPIPS without weight files, a missing file
#      (named with its config key), a one-channel model.
# All three (REPA, LPIPS, P-DINO) with the adaptive weight every 5 steps
# (configs/jit-tiny-pixelgen.yaml):
#   5. each term and lambda logged; each term falls over 80 steps;
#   6. resume bit for bit, lambda included (checkpointed at an adaptive step);
#   7. 2 ranks x batch 4 == 1 rank x batch 8 for every term and lambda;
#   8. measuring lambda (a second replay of the tape) leaves the update as it
#      is: at step 1 (lambda still 1) the gradient norm and the next step's
#      loss and terms are the unmeasured run's;
#   9. P-DINO per_sample gating runs and differs from the released reduction;
#  10. errors before any step: REPA without DINOv2 weights, align_layer
#      beyond the model, a missing DINOv2 file named with its key;
#  11. the DINOv2 target cache (dino_cache_mb): no hits in the first epoch,
#      all hits in the second, the terms as without it (to 1e-5), and a run
#      resumed with an empty cache continues bit for bit;
#  12. lambda's value after one measured step, 0.8 + 0.2 |g_fm| / (|g_p| + 1e-4):
#      doubling both perceptual weights halves the ratio, and REPA (which
#      does not reach final_layer.linear) leaves it;
#  13. the SLA2 conversion's stage 1 (router distillation, no PixelGen terms)
#      leaves lambda at 1 although it is due every step; stage 2 measures it.
#   usage: pixelgen_train_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh" pixelgen_train_test
t_work "$1" "$2" pixelgen-train-test
cd "$work"
py=/usr/bin/python3

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
if [ $? -ne 0 ] && echo "$out" | grep -q "losses.vgg_weights = $work/none.h5: cannot open the weights file: No such file or directory" &&
  [ ! -e e2/metrics.jsonl ]; then
  ok "a missing weight file, named with its key, before any step"
else bad "missing weight file: '$out'"; fi
out=$(train --set run.out_dir=e3 --set model.in_channels=1 2>&1)
if [ $? -ne 0 ] && echo "$out" | grep -q "LPIPS compares RGB images"; then
  ok "LPIPS on a one-channel model: refused"
else bad "one-channel model: '$out'"; fi

# --- all three losses ---
# the shipped tiny configuration, on this test's data
sed -e "s|train: data/rgb16|train: $work/data|" "$src/configs/jit-tiny-pixelgen.yaml" >all.yaml
grep -q "train: $work/data" all.yaml || bad "configs/jit-tiny-pixelgen.yaml: no data.train to point at the test data"
train3() { "$build/jit-train" --config all.yaml "$@"; }
cat >rows.py <<'PY'
import json, sys
KEYS = ("loss", "lpips", "repa", "pdino", "lambda")
def rows(p):
    return {r["step"]: tuple(r[k] for k in KEYS) for r in map(json.loads, open(p)) if "loss" in r}
PY

# 5. logged and falling
train3 --set run.out_dir=fall3 --set train.steps=80 >fall3.log 2>&1
$py - fall3/metrics.jsonl <<'PY' && ok "REPA, LPIPS, P-DINO and lambda on every step record; each term falls over 80 steps" || bad "three terms logged and falling (see $work/fall3.log)"
import sys
sys.path.insert(0, ".")
from rows import rows
r = rows(sys.argv[1])
assert sorted(r) == list(range(1, 81)), sorted(r)
for i, k in ((1, "lpips"), (2, "repa"), (3, "pdino")):
    v = [r[s][i] for s in sorted(r)]
    first, last = sum(v[:10]) / 10, sum(v[-10:]) / 10
    print(f"{k}: first 10 steps {first:.4f}, last 10 {last:.4f}")
    assert last < 0.98 * first, (k, first, last)
lam = [r[s][4] for s in sorted(r)]
print(f"lambda: {lam[0]:.4f} after step 1, {lam[5]:.4f} after step 6, {lam[-1]:.4f} at the end")
assert lam[0] != 1.0 and lam[1] == lam[0] and lam[5] != lam[4] and 0.0 < min(lam) and max(lam) <= 100.0, lam[:12]
PY

# 6. resume bit for bit (the checkpoint at step 10 follows an adaptive step)
train3 --set run.out_dir=straight3 >straight3.log 2>&1
train3 --set run.out_dir=split3 --set train.steps=10 >split3a.log 2>&1
train3 --set run.out_dir=split3 --resume auto >split3b.log 2>&1
$py - straight3/metrics.jsonl split3/metrics.jsonl <<'PY' && ok "resume with all three: steps 11-20 equal bit for bit (loss, lpips, repa, pdino, lambda)" || bad "resume with all three (see $work/split3b.log)"
import sys
sys.path.insert(0, ".")
from rows import rows
a, b = rows(sys.argv[1]), rows(sys.argv[2])
for s in range(11, 21):
    assert a[s] == b[s], (s, a[s], b[s])
PY

# 7. 2 ranks == 1 rank with twice the batch (lambda measured every 2 steps)
train3 --set run.out_dir=one3 --set train.steps=6 --set losses.adaptive_every=2 >one3.log 2>&1
$mpirun -np 2 "$build/jit-train" --config all.yaml --set run.out_dir=two3 --set train.steps=6 --set data.batch_size=4 \
  --set losses.adaptive_every=2 >two3.log 2>&1
$py - one3/metrics.jsonl two3/metrics.jsonl <<'PY' && ok "2 ranks x batch 4 == 1 rank x batch 8 (every term and lambda, 6 steps)" || bad "2 ranks with all three (see $work/two3.log)"
import sys
sys.path.insert(0, ".")
from rows import rows
a, b = rows(sys.argv[1]), rows(sys.argv[2])
assert sorted(a) == sorted(b) == list(range(1, 7)), (a, b)
for s in a:
    for x, y in zip(a[s], b[s]):
        assert abs(x - y) <= 1e-4 * abs(x), (s, a[s], b[s])
PY

# 8. the measurement replays do not change the update
train3 --set run.out_dir=meas --set train.steps=2 --set losses.adaptive_every=1000 >meas.log 2>&1
train3 --set run.out_dir=nomeas --set train.steps=2 --set losses.adaptive_start=-1 >nomeas.log 2>&1
$py - meas/metrics.jsonl nomeas/metrics.jsonl <<'PY' && ok "a step that measures lambda updates as one that does not (its gradient norm and the next step's terms equal to 1e-5)" || bad "measuring lambda changed the update"
import json, sys
def rows(p):
    return {r["step"]: r for r in map(json.loads, open(p)) if "loss" in r}
a, b = rows(sys.argv[1]), rows(sys.argv[2])
assert "lambda" in a[1] and "lambda" not in b[1] and a[1]["lambda"] != 1.0, (a[1], b[1])
for k in ("loss", "lpips", "repa", "pdino"):
    assert abs(a[2][k] - b[2][k]) <= 1e-5 * abs(b[2][k]), (k, a[2][k], b[2][k])
assert abs(a[1]["grad_norm"] - b[1]["grad_norm"]) <= 1e-5 * b[1]["grad_norm"], (a[1], b[1])
PY

# 9. P-DINO over the gated samples only
train3 --set run.out_dir=persample --set train.steps=5 --set losses.pdino_gating=per_sample >persample.log 2>&1
$py - persample/metrics.jsonl straight3/metrics.jsonl <<'PY' && ok "pdino_gating per_sample runs and differs from released" || bad "pdino_gating per_sample (see $work/persample.log)"
import json, sys
def rows(p):
    return {r["step"]: r for r in map(json.loads, open(p)) if "loss" in r}
a, b = rows(sys.argv[1]), rows(sys.argv[2])
assert sorted(a) == list(range(1, 6)) and all(0 < a[s]["pdino"] < 2 for s in a), a
assert a[1]["pdino"] != b[1]["pdino"] and a[1]["lpips"] == b[1]["lpips"], (a[1], b[1])
PY

# 10. errors before any step
out=$(train3 --set run.out_dir=e4 --set losses.frozen_random_div=0 --set losses.lpips_weight=0 2>&1)
if [ $? -ne 0 ] && echo "$out" | grep -q "losses.repa_weight: REPA and P-DINO need losses.dino_weights"; then
  ok "REPA without DINOv2 weights: $out"
else bad "REPA without DINOv2 weights: '$out'"; fi
out=$(train3 --set run.out_dir=e5 --set losses.align_layer=2 2>&1)
if [ $? -ne 0 ] && echo "$out" | grep -q "losses.align_layer: REPA aligns the tokens entering a block: 2 is not a block"; then
  ok "align_layer beyond the model: refused"
else bad "align_layer beyond the model: '$out'"; fi
out=$(train3 --set run.out_dir=e6 --set losses.frozen_random_div=0 --set losses.lpips_weight=0 \
  --set losses.dino_weights=$work/none.h5 2>&1)
if [ $? -ne 0 ] && echo "$out" | grep -q "losses.dino_weights = $work/none.h5: cannot open the weights file: No such file or directory" &&
  [ ! -e e6/metrics.jsonl ]; then
  ok "a missing DINOv2 file, named with its key, before any step"
else bad "missing DINOv2 file: '$out'"; fi

# 11. the target cache: 256 images, 32 steps per epoch
train3 --set run.out_dir=nocache --set train.steps=40 >nocache.log 2>&1
train3 --set run.out_dir=cache --set train.steps=40 --set losses.dino_cache_mb=1 >cache.log 2>&1
train3 --set run.out_dir=cachesplit --set train.steps=34 --set losses.dino_cache_mb=1 >cachesplit1.log 2>&1
train3 --set run.out_dir=cachesplit --set train.steps=40 --set losses.dino_cache_mb=1 --resume auto >cachesplit2.log 2>&1
$py - nocache/metrics.jsonl cache/metrics.jsonl cachesplit/metrics.jsonl <<'PY' && ok "DINOv2 target cache: first epoch misses, second hits, terms as without it, resume bit for bit" || bad "DINOv2 target cache (see $work/cache.log)"
import json, sys
def rows(p):
    return {r["step"]: r for r in map(json.loads, open(p)) if "loss" in r}
a, b, c = (rows(p) for p in sys.argv[1:])
hits = [b[s]["dino_cached"] for s in range(1, 41)]
print("cached fraction per step:", hits[:3], "...", hits[31:35], "...")
assert all(h == 0.0 for h in hits[:32]) and all(h == 1.0 for h in hits[32:]), hits
for s in range(1, 41):
    for k in ("loss", "repa", "pdino", "lpips", "lambda"):
        assert abs(a[s][k] - b[s][k]) <= 1e-5 * abs(a[s][k]), (s, k, a[s][k], b[s][k])
for s in range(1, 41):
    for k in ("loss", "repa", "pdino", "lpips", "lambda"):
        assert b[s][k] == c[s][k], (s, k, b[s][k], c[s][k])
assert c[40]["dino_cached"] == 0.0, c[40]  # resumed at 34 (its final checkpoint): the cache starts empty
PY

# 12. lambda's formula, through its inputs
one() { train3 --set run.out_dir="$1" --set train.steps=1 --set losses.adaptive_every=1000 "${@:2}" >"$1.log" 2>&1; }
one lam
one lam2 --set losses.lpips_weight=10 --set losses.pdino_weight=2
one lam0 --set losses.repa_weight=0
$py - lam/metrics.jsonl lam2/metrics.jsonl lam0/metrics.jsonl <<'PY' && ok "lambda: doubling the perceptual weights halves its ratio; REPA does not enter it" || bad "lambda's formula"
import json, sys
lam = [next(json.loads(l) for l in open(p) if '"loss"' in l)["lambda"] for p in sys.argv[1:]]
r = [(x - 0.8) / 0.2 for x in lam]
print(f"ratio |g_fm| / (|g_p| + 1e-4): {r[0]:.6f}; doubled perceptual weights {r[1]:.6f}; without REPA {r[2]:.6f}")
assert 0 < r[0] < 100 and abs(r[1] - r[0] / 2) <= 1e-3 * r[0], r
assert abs(r[2] - r[0]) <= 1e-5 * r[0], r
PY

# 13. lambda through the SLA2 conversion: stage 1 runs no terms
cat all.yaml >conv.yaml
cat >>conv.yaml <<YAML
callbacks:
  - {type: SLA2Conversion, from: $work/straight3/ckpt, stage1_steps: 3}
YAML
"$build/jit-train" --config conv.yaml --set run.out_dir=conv --set train.steps=5 --set losses.adaptive_every=1 \
  --set model.use_sla2=true --set model.sla2_compression_ratio=4 --set model.sla2_topk_ratio=0.5 >conv.log 2>&1
$py - conv/metrics.jsonl <<'PY' && ok "SLA2 conversion: lambda stays 1 through stage 1 and is measured in stage 2" || bad "lambda through the SLA2 conversion (see $work/conv.log)"
import json, sys
r = {x["step"]: x for x in map(json.loads, open(sys.argv[1])) if "loss" in x}
lam = [r[s]["lambda"] for s in sorted(r)]
print("lambda per step:", lam)
assert sorted(r) == [1, 2, 3, 4, 5] and lam[:3] == [1.0, 1.0, 1.0] and lam[3] != 1.0, lam
PY

t_done
