#!/usr/bin/env bash
# tests/sweep_test.sh — jit-sweep end to end on a tiny model (CPU, seconds):
#   1. plan lists a 2-run grid (top-k 0.25, 0.5) and checks both configurations;
#   2. run trains both (each ends with a train_end event, 20 step records);
#   3. run again skips both (metrics untouched);
#   4. summary writes summary.md (2 rows with numbers; more sparsity at the
#      lower top-k), summary.csv and a well-formed summary.svg (2 points);
#   5. a malformed sweep file is an error naming FILE:LINE:COL (YAML syntax
#      and a wrong value), an invalid override names the run;
#   6. SIGUSR1 to jit-sweep reaches jit-train: checkpoint, exit 75 passed
#      through; the summary says "preempted" and "-" for a run not started;
#   7. slurm prints the sbatch array command;
#   8. an eval: section: run evaluates finished runs with jit-eval (once),
#      the summary reads eval.json (Fréchet distance is the plot's y axis),
#      bad eval: values name FILE:LINE:COL, a failing jit-eval is reported;
#   9. seeds: every run once per seed (names ",seed=S", run.seed=S, "{seed}"
#      in a run's overrides replaced), the summary's over-seeds table and
#      summary_seeds.csv (mean and sd per group), the plot's error bars; a
#      repeated seed is a located error.
#  10. the sparsity study's sweep file at a reduced size (see there).
#   usage: sweep_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh" sweep_test
t_work "$1" "$2" sweep-test
cd "$work"
py=/usr/bin/python3
sweep=$build/jit-sweep

"$build/jit-prep" --synthetic 256 --out "$work/data" --size 16 --channels 1 --classes 4 --seed 3 >/dev/null || exit 1
cat >base.yaml <<YAML
run: {name: sweep-base, seed: 7}
model: {name: jit-tiny, img_size: 16, patch: 4, depth: 2, hidden: 64, heads: 2, bottleneck: 16,
        in_context_len: 4, in_context_start: 1, num_classes: 4, use_sla2: true,
        sla2_compression_ratio: 4, sla2_topk_ratio: 0.5}
data: {train: $work/data, batch_size: 8, prefetch: 2}
optim: {lr: 1.0e-3, warmup_steps: 5, ema: [0.99]}
train: {steps: 20, log_every: 10}
sampling: {steps: 2, per_class: 1}
logging: {progress: false}
callbacks:
  - {type: RouterParameterScheduler, start_ratio: 1.0, warmup_steps: 10}   # target: model.sla2_topk_ratio
  - {type: QuantizedAttentionMonitor, every: 5}
YAML
cat >sweep.yaml <<'YAML'
name: tiny-sparsity
base: base.yaml
out_dir: runs/tiny
set: ["train.log_every=5"]
grid:
  model.sla2_topk_ratio: [0.25, 0.5]
YAML
r0=runs/tiny/sla2_topk_ratio=0.25
r1=runs/tiny/sla2_topk_ratio=0.5

# 1. plan
if "$sweep" plan sweep.yaml >plan.log 2>&1 && grep -q "^\[0\] sla2_topk_ratio=0.25 " plan.log &&
  grep -q "^\[1\] sla2_topk_ratio=0.5 " plan.log && grep -q "all 2 configurations are valid" plan.log &&
  grep -q -- "--set model.sla2_topk_ratio=0.25 --set run.name=sla2_topk_ratio=0.25" plan.log; then
  ok "plan: 2 runs, overrides listed, configurations valid"
else bad "plan (see $work/plan.log)"; fi

# 2. run
"$sweep" run sweep.yaml >run.log 2>&1
code=$?
n0=$(grep -c '"loss"' "$r0/metrics.jsonl" 2>/dev/null)
n1=$(grep -c '"loss"' "$r1/metrics.jsonl" 2>/dev/null)
if [ $code -eq 0 ] && grep -q '"event": "train_end"' "$r0/metrics.jsonl" && grep -q '"event": "train_end"' "$r1/metrics.jsonl" &&
  [ "$n0" = 20 ] && [ "$n1" = 20 ]; then
  ok "run: both runs finished (train_end, 20 step records each)"
else bad "run: exit $code, step records $n0 and $n1 (see $work/run.log)"; fi

# 3. run again: both skipped
sum_before=$(cat "$r0/metrics.jsonl" "$r1/metrics.jsonl" | md5sum)
"$sweep" run sweep.yaml >rerun.log 2>&1
code=$?
sum_after=$(cat "$r0/metrics.jsonl" "$r1/metrics.jsonl" | md5sum)
if [ $code -eq 0 ] && [ "$(grep -c 'skipped' rerun.log)" = 2 ] && ! grep -q "training " rerun.log &&
  [ "$sum_before" = "$sum_after" ]; then
  ok "run again: both finished runs skipped, metrics untouched"
else bad "run again: exit $code (see $work/rerun.log)"; fi

# 4. summary
if "$sweep" summary sweep.yaml >summary.log 2>&1; then ok "summary: exit 0"; else bad "summary (see $work/summary.log)"; fi
cat summary.log
$py - runs/tiny/summary.md <<'PY' && ok "summary.md: 2 rows with numbers (attention error too), more sparsity at top-k 0.25" || bad "summary.md"
import sys
rows = [l for l in open(sys.argv[1]) if l.startswith("|")]
head = [c.strip() for c in rows[0].strip("|\n").split("|")]
assert head[:8] == ["run", "status", "steps done", "final loss", "sparsity", "attention error", "QAT", "images/s"], head
assert set(rows[1].strip("|\n").replace("|", "")) <= set(":- "), "no separator row"
body = [[c.strip() for c in r.strip("|\n").split("|")] for r in rows[2:]]
assert len(body) == 2, f"{len(body)} rows"
assert [b[0] for b in body] == ["sla2_topk_ratio=0.25", "sla2_topk_ratio=0.5"], [b[0] for b in body]
for b in body:
    assert b[1] == "done" and int(b[2]) == 20 and b[6] == "off", b
    loss, sparsity, err, speed = float(b[3]), float(b[4]), float(b[5]), float(b[7])
    assert 0 < loss < 10 and 0 < sparsity < 1 and 0 < err < 10 and speed > 0, b
assert float(body[0][4]) > float(body[1][4]), "top-k 0.25 should be sparser than 0.5"
PY
$py - runs/tiny/summary.csv <<'PY' && ok "summary.csv: header and 2 numeric rows" || bad "summary.csv"
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 2, len(rows)
for r in rows:
    assert r["status"] == "done" and r["steps"] == "20", r
    for k in ("final_loss", "sparsity", "qat", "images_per_s"):
        assert math.isfinite(float(r[k])), (k, r)
PY
$py - runs/tiny/summary.svg <<'PY' && ok "summary.svg: well-formed XML, 2 labelled points, axis titles" || bad "summary.svg"
import sys, xml.dom.minidom
doc = xml.dom.minidom.parse(sys.argv[1])
svg = doc.documentElement
assert svg.tagName == "svg", svg.tagName
points = [c for c in svg.getElementsByTagName("circle") if c.getElementsByTagName("title")]
assert len(points) == 2, f"{len(points)} points"
texts = [t.firstChild.data for t in svg.getElementsByTagName("text") if t.firstChild]
assert "sla2_topk_ratio=0.25" in texts and "sla2_topk_ratio=0.5" in texts, texts
assert any(t.startswith("sparsity") for t in texts) and any(t.startswith("final loss") for t in texts), texts
PY

# 5. errors name the place
printf 'name: broken\nbase: base.yaml\ngrid:\n  model.sla2_topk_ratio: [0.25, 0.5\nruns: []\n' >broken.yaml
out=$("$sweep" plan broken.yaml 2>&1)
code=$?
if [ $code -ne 0 ] && echo "$out" | grep -Eq "broken\.yaml:[0-9]+:[0-9]+: YAML syntax error"; then
  ok "malformed YAML: $out"
else bad "malformed YAML: exit $code, '$out'"; fi
printf 'name: wrong\nbase: base.yaml\ngrid:\n  model.sla2_topk_ratio: 0.25\n' >wrong.yaml
out=$("$sweep" plan wrong.yaml 2>&1)
code=$?
if [ $code -ne 0 ] && echo "$out" | grep -q "wrong.yaml:4:26: grid.model.sla2_topk_ratio: expected a non-empty list"; then
  ok "grid value not a list: $out"
else bad "grid value not a list: exit $code, '$out'"; fi
printf 'name: invalid\nbase: base.yaml\nruns:\n  - {name: ok}\n  - {name: typo, set: ["optim.lrr=1"]}\n' >invalid.yaml
out=$("$sweep" plan invalid.yaml 2>&1)
code=$?
if [ $code -ne 0 ] && echo "$out" | grep -q "error in run 1 'typo': override 'optim.lrr=1': unknown key 'optim.lrr'"; then
  ok "invalid override: named with its run"
else bad "invalid override: exit $code, '$out'"; fi

# 6. preemption: the signal reaches jit-train, 75 comes back, the summary says so
cat >long.yaml <<'YAML'
name: long
base: base.yaml
out_dir: runs/long
set: ["train.steps=100000", "train.log_every=1"]
runs:
  - {name: first}
  - {name: second}
YAML
"$sweep" run long.yaml >long.log 2>&1 &
sp=$!
for _ in $(seq 1 150); do grep -q '"step": 3,' runs/long/first/metrics.jsonl 2>/dev/null && break; sleep 0.2; done
kill -USR1 $sp
wait $sp
code=$?
if [ $code -eq 75 ] && grep -q '"event": "preempted"' runs/long/first/metrics.jsonl && [ -s runs/long/first/ckpt/latest ] &&
  [ ! -e runs/long/second ]; then
  ok "SIGUSR1 to jit-sweep: jit-train checkpointed, exit 75 passed through, next run not started"
else bad "preemption: exit $code (see $work/long.log)"; fi
"$sweep" summary long.yaml >long-summary.log 2>&1
if grep -Eq "^\| first +\| preempted +\| +[0-9]+ \|" long-summary.log && grep -Eq "^\| second +\| - +\| +- \|" long-summary.log; then
  ok "summary of a preempted and a not-started run"
else bad "summary of a preempted and a not-started run (see $work/long-summary.log)"; fi

# 7. slurm
out=$(cd "$src" && "$sweep" slurm "$work/sweep.yaml" --sbatch-args "--partition=cpu --time=01:00:00" 2>/dev/null)
if [ "$out" = "sbatch --array=0-1 --partition=cpu --time=01:00:00 slurm/sweep.sbatch $work/sweep.yaml" ]; then
  ok "slurm: $out"
else bad "slurm: '$out'"; fi

# 8. eval: jit-eval after each run (a small classifier for the 16x16 data)
"$build/jit-classify" train --config "$src/configs/eval/fmnist-classifier.yaml" --set data.train="$work/data" \
  --set data.test="$work/data" --set model.img_size=16 --set model.num_classes=4 --set model.depth=1 \
  --set train.steps=30 --set train.log_every=10 --out "$work/cls.h5" >cls.log 2>&1 || bad "jit-classify (see $work/cls.log)"
cat >ev.yaml <<YAML
name: tiny-sparsity
base: base.yaml
out_dir: runs/tiny            # the finished runs of 2.: only evaluated
set: ["train.log_every=5"]
grid:
  model.sla2_topk_ratio: [0.25, 0.5]
eval: {classifier: $work/cls.h5, real: $work/data, per_class: 2, steps: 2, seed: 1}
YAML
"$sweep" plan ev.yaml >evplan.log 2>&1
if grep -q "then .*jit-eval --checkpoint runs/tiny/sla2_topk_ratio=0.25/ckpt --classifier .*cls.h5 --real .* --per-class 2 --steps 2 --seed 1 --out runs/tiny/sla2_topk_ratio=0.25/eval.json" evplan.log; then
  ok "plan shows the jit-eval command"
else bad "plan with eval: (see $work/evplan.log)"; fi
"$sweep" run ev.yaml >evrun.log 2>&1
code=$?
if [ $code -eq 0 ] && [ "$(grep -c 'skipped' evrun.log)" = 2 ] && [ -s "$r0/eval.json" ] && [ -s "$r1/eval.json" ]; then
  ok "run: finished runs not retrained, both evaluated (eval.json)"
else bad "run with eval: exit $code (see $work/evrun.log)"; fi
sum_before=$(cat "$r0/eval.json" "$r1/eval.json" | md5sum)
"$sweep" run ev.yaml >evrerun.log 2>&1
if [ $? -eq 0 ] && [ "$(grep -c 'not evaluated again' evrerun.log)" = 2 ] &&
  [ "$sum_before" = "$(cat "$r0/eval.json" "$r1/eval.json" | md5sum)" ]; then
  ok "run again: existing eval.json kept"
else bad "run again with eval: (see $work/evrerun.log)"; fi
"$sweep" summary ev.yaml >evsummary.log 2>&1
$py - runs/tiny/summary.csv runs/tiny/summary.svg "$r0/eval.json" <<'PY' && ok "summary: Fréchet distance and accuracy from eval.json, FD on the plot" || bad "summary with eval.json (see $work/evsummary.log)"
import csv, json, math, sys, xml.dom.minidom
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 2, rows
ev = json.load(open(sys.argv[3]))
r0 = [r for r in rows if r["run"] == "sla2_topk_ratio=0.25"][0]
assert abs(float(r0["frechet_distance"]) - ev["frechet_distance"]) <= 1e-3 * max(1, abs(ev["frechet_distance"])), (r0, ev)
assert abs(float(r0["conditional_accuracy"]) - ev["conditional_accuracy"]) < 1e-4, (r0, ev)
texts = [t.firstChild.data for t in xml.dom.minidom.parse(sys.argv[2]).getElementsByTagName("text") if t.firstChild]
assert any(t.startswith("Fréchet distance") for t in texts), texts
PY
printf 'name: e\nbase: base.yaml\ngrid:\n  model.sla2_topk_ratio: [0.5]\neval:\n  classifier: c.h5\n  real: d\n  per_class: two\n' >evbad.yaml
out=$("$sweep" plan evbad.yaml 2>&1)
if [ $? -ne 0 ] && echo "$out" | grep -q "evbad.yaml:8:14: eval.per_class: expected an integer, got 'two'"; then
  ok "bad eval value: $out"
else bad "bad eval value: '$out'"; fi
printf 'name: e\nbase: base.yaml\nfoo: 1\nruns:\n  - {name: a, sett: []}\n' >unknown.yaml
out=$("$sweep" plan unknown.yaml 2>&1)
if [ $? -ne 0 ] && echo "$out" | grep -q "unknown.yaml:3:1: unknown key 'foo' (known in a sweep file: name, base, out_dir, set, grid, runs, seeds, eval, fid)"; then
  ok "unknown key, listed from the schema table: $out"
else bad "unknown key: '$out'"; fi
sed -i '/^foo: 1$/d' unknown.yaml
out=$("$sweep" plan unknown.yaml 2>&1)
if [ $? -ne 0 ] && echo "$out" | grep -q "unknown.yaml:4:15: unknown key 'runs\[0\].sett' (known under runs\[\]: name, set)"; then
  ok "unknown key in a run: $out"
else bad "unknown key in a run: '$out'"; fi
printf 'name: e\nbase: base.yaml\ngrid:\n  model.sla2_topk_ratio: [0.5]\neval: {classifier: c.h5}\n' >evmiss.yaml
out=$("$sweep" plan evmiss.yaml 2>&1)
if [ $? -ne 0 ] && echo "$out" | grep -q "evmiss.yaml:5:7: eval.real: missing"; then
  ok "eval without real: $out"
else bad "eval without real: '$out'"; fi
sed "s#classifier: $work/cls.h5#classifier: $work/missing.h5#" ev.yaml | sed 's#out_dir: runs/tiny #out_dir: runs/tiny2 #' >evfail.yaml
cp -r runs/tiny runs/tiny2 && rm -f runs/tiny2/*/eval.json
"$sweep" run evfail.yaml >evfail.log 2>&1
code=$?
if [ $code -eq 1 ] && grep -q "missing.h5" evfail.log && grep -q "jit-eval failed with exit code 1" evfail.log; then
  ok "a failing jit-eval stops the sweep with its exit code and says why"
else bad "failing jit-eval: exit $code (see $work/evfail.log)"; fi

# 9. seeds
cat >seeds.yaml <<'YAML'
name: tiny-seeds
base: base.yaml
out_dir: runs/seeds
set: ["train.steps=10", "train.log_every=5"]
grid:
  model.sla2_topk_ratio: [0.25]
runs:
  - {name: other, set: ["model.sla2_topk_ratio=0.5", "sampling.steps={seed}"]}
seeds: [1, 2]
YAML
if "$sweep" plan seeds.yaml >seplan.log 2>&1 && grep -q "^\[0\] sla2_topk_ratio=0.25,seed=1 " seplan.log &&
  grep -q "^\[3\] other,seed=2 " seplan.log && grep -q -- "--set sampling.steps=2 --set run.seed=2 " seplan.log &&
  grep -q "all 4 configurations are valid" seplan.log; then
  ok "seeds: 2 runs x 2 seeds planned, run.seed and {seed} set"
else bad "seeds plan (see $work/seplan.log)"; fi
"$sweep" run seeds.yaml >serun.log 2>&1 && "$sweep" summary seeds.yaml >sesum.log 2>&1
code=$?
if [ $code -eq 0 ] && grep -q "## Over seeds" runs/seeds/summary.md && grep -q "| other " sesum.log &&
  $py - runs/seeds/summary_seeds.csv runs/seeds/summary.svg <<'PY'; then
import csv, sys, xml.dom.minidom
rows = list(csv.DictReader(open(sys.argv[1])))
assert [r["run"] for r in rows] == ["sla2_topk_ratio=0.25", "other"], rows
for r in rows:
    assert r["seeds"] == "2" and r["runs"] == "2", r
    assert float(r["final_loss_sd"]) > 0, r  # two seeds, two losses
    assert 0 <= float(r["sparsity_mean"]) <= 1, r
svg = xml.dom.minidom.parse(sys.argv[2])
points = [c for c in svg.getElementsByTagName("circle") if c.getElementsByTagName("title")]
assert len(points) == 2, "one point per group (legend markers have no title)"
bars = [l for l in svg.getElementsByTagName("line") if l.getAttribute("stroke") == "#333"]
assert len(bars) == 2 * 3, "an error bar (3 lines) per group"
PY
  ok "seeds: summary over seeds (mean and sd), CSV, error bars on the plot"
else bad "seeds summary: exit $code (see $work/serun.log, $work/sesum.log)"; fi
printf 'name: s\nbase: base.yaml\ngrid:\n  model.sla2_topk_ratio: [0.5]\nseeds: [3, 3]\n' >sebad.yaml
out=$("$sweep" plan sebad.yaml 2>&1)
if [ $? -ne 0 ] && echo "$out" | grep -q "sebad.yaml:5:12: seeds\[1\]: the seed 3 repeats seeds\[0\]"; then
  ok "repeated seed: $out"
else bad "repeated seed: '$out'"; fi

# 10. the sparsity study (configs/sweeps/fmnist-sparsity-study.yaml) at a
#     reduced size: the same runs, seeds and conversions, a few steps each on
#     the 16x16 data; the summary has the attention error, the over-seeds
#     table and a plot with error bars and the converted runs' own marker.
cat >study-base.yaml <<YAML
run: {name: study-base, seed: 0}
model: {name: jit-tiny, img_size: 16, patch: 4, depth: 1, hidden: 32, heads: 2, bottleneck: 8,
        in_context_len: 8, in_context_start: 0, num_classes: 4, use_sla2: true,
        sla2_compression_ratio: 4, sla2_topk_ratio: 0.5}
data: {train: $work/data, batch_size: 4, prefetch: 2}
optim: {lr: 1.0e-3, warmup_steps: 2, ema: [0.99]}
train: {steps: 20, log_every: 1, checkpoint_every: 0}
sampling: {steps: 2, per_class: 0}
logging: {progress: false}
callbacks:
  - {type: RouterParameterScheduler, start_ratio: 1.0, target_ratio: 0.5, warmup_steps: 3}
  - {type: SLA2QATCallback, enable_step: 4}
  - {type: QuantizedAttentionMonitor, every: 2}
YAML
study=$src/configs/sweeps/fmnist-sparsity-study.yaml
# Each substitution must change the file: a study file edited out of this
# shape fails here rather than running at full size.
subs=("s#^base: configs/fmnist-demo.yaml#base: study-base.yaml#"
      "s#train.steps=400#train.steps=6#" "s#train.steps=250#train.steps=5#g" "s#stage1_steps: 100#stage1_steps: 2#g"
      "s#train.checkpoint_every=200#train.checkpoint_every=3#" "s#callbacks\[1\].enable_step=300#callbacks[1].enable_step=3#"
      "s#classifier: models/fmnist-classifier.h5#classifier: $work/cls.h5#" "s#real: data/fmnist-test#real: $work/data#"
      "s#per_class: 20#per_class: 2#" "s#callbacks\[2\].every=50#callbacks[2].every=2#" "s#every: 50}#every: 2}#g")
cp "$study" study.yaml
for e in "${subs[@]}"; do
  sed "$e" study.yaml >study.tmp
  cmp -s study.yaml study.tmp && bad "study file: '$e' changed nothing"
  mv study.tmp study.yaml
done
"$sweep" plan study.yaml >stplan.log 2>&1
code=$?
if [ $code -eq 0 ] && grep -q "30 runs" stplan.log && grep -q "all 30 configurations are valid" stplan.log &&
  grep -q "from: '\\\\''runs/sweeps/fmnist-sparsity-study/full,seed=2/ckpt'\\\\''" stplan.log; then
  ok "study: 30 runs planned and valid, each conversion from its own seed's full-attention run"
else bad "study plan: exit $code (see $work/stplan.log)"; fi
"$sweep" run study.yaml >strun.log 2>&1 && "$sweep" summary study.yaml >stsum.log 2>&1
code=$?
if [ $code -eq 0 ] && grep -q "attention error" runs/sweeps/fmnist-sparsity-study/summary.md &&
  $py - runs/sweeps/fmnist-sparsity-study/summary_seeds.csv runs/sweeps/fmnist-sparsity-study/summary.svg <<'PY'; then
import csv, sys, xml.dom.minidom
rows = {r["run"]: r for r in csv.DictReader(open(sys.argv[1]))}
want = ["full", "scratch-0.5", "scratch-0.25", "scratch-0.125", "scratch-1blk", "qat-0.25",
        "convert-0.5", "convert-0.25", "convert-0.125", "convert-1blk"]
assert list(rows) == want, list(rows)
for r in rows.values():
    assert r["seeds"] == "3" and r["runs"] == "3", r
    assert r["frechet_distance_mean"] and r["conditional_accuracy_mean"], r
assert float(rows["full"]["sparsity_mean"]) == 0 and rows["full"]["attention_rel_err_mean"] == "", rows["full"]
for k in want[1:]:
    assert float(rows[k]["attention_rel_err_mean"]) > 0, rows[k]
# more sparsity at fewer key blocks (16 + 8 tokens in blocks of 8: 3 key blocks)
assert float(rows["scratch-1blk"]["sparsity_mean"]) > float(rows["scratch-0.5"]["sparsity_mean"]), rows
svg = xml.dom.minidom.parse(sys.argv[2])
points = [c for c in svg.getElementsByTagName("circle") if c.getElementsByTagName("title")]
assert len(points) == 10, len(points)
assert sum(c.getAttribute("fill") == "#2ca02c" for c in points) == 4, "the converted runs' marker"
texts = [t.firstChild.data for t in svg.getElementsByTagName("text") if t.firstChild]
assert "SLA2 converted from full attention" in texts, texts
PY
  ok "study: summary over 3 seeds per arm with attention error, converted runs marked on the plot"
else bad "study run and summary: exit $code (see $work/strun.log, $work/stsum.log)"; fi

t_done
