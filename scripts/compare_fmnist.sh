#!/usr/bin/env bash
# scripts/compare_fmnist.sh [STEPS] — what SLA2 costs in sample quality: trains
# configs/fmnist-tiny-full.yaml (full attention) and configs/fmnist-tiny.yaml
# (SLA2) for the same number of steps from the same seed, evaluates both with
# jit-eval (same classifier, same real data, same sampler noise), and writes
# runs/compare-STEPS/comparison.md: Fréchet distance, conditional accuracy,
# final loss, sparsity and images/s per run, plus the real-data floor.
#
#   scripts/compare_fmnist.sh 1500      # the README comparison (2 cores: 2 x 15-25 min training + 2 x ~9 min jit-eval)
#   PER_CLASS=4 EVAL_STEPS=3 scripts/compare_fmnist.sh 20     # a quick smoke run
#
# Environment (defaults in brackets):
#   PER_CLASS   samples per class for jit-eval [100]
#   EVAL_STEPS  sampler steps for jit-eval [the configs' sampling.steps, 30]
#   SEED        run.seed of both runs and the sampler seed [0]
#   BUILD       build folder with the programs [build]
#   DATA        training shards [data/fmnist]; TEST_DATA test shards [data/fmnist-test]
#   CLASSIFIER  evaluation classifier [models/fmnist-classifier.h5]
#   OUT         output folder [runs/compare-STEPS]
#   TRAIN_SET   extra jit-train settings for both runs, space-separated KEY=VALUE
#               (e.g. "data.batch_size=8" for a smoke run) [none]
# Missing pieces are made: shards by jit-prep, the classifier by jit-classify
# (configs/eval/fmnist-classifier.yaml). Re-running skips what is done: a run
# whose metrics end with train_end at STEPS is not trained again, an eval.json
# newer than the run's latest checkpoint is kept; an interrupted run resumes
# from its last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-1500}
case "$steps" in '' | *[!0-9]*) echo "usage: $0 [STEPS]   (STEPS: a positive integer)" >&2; exit 2 ;; esac
per_class=${PER_CLASS:-100}
seed=${SEED:-0}
build=${BUILD:-build}
data=${DATA:-data/fmnist}
test_data=${TEST_DATA:-data/fmnist-test}
classifier=${CLASSIFIER:-models/fmnist-classifier.h5}
out=${OUT:-runs/compare-$steps}
eval_args=(--per-class "$per_class" --seed "$seed")
train_set=()
for kv in ${TRAIN_SET:-}; do train_set+=(--set "$kv"); done
if [ -n "${EVAL_STEPS:-}" ]; then eval_args+=(--steps "$EVAL_STEPS"); fi

for prog in jit-prep jit-train jit-eval jit-classify; do
  if [ ! -x "$build/$prog" ]; then
    cmake -S . -B "$build" >/dev/null
    cmake --build "$build" -j"$(nproc)" --target jit-prep jit-train jit-eval jit-classify
    break
  fi
done
fmnist=/usr/share/datasets/fashion-mnist
if [ ! -e "$data" ]; then "$build/jit-prep" --fmnist "$fmnist" --out "$data" --split train --canvas 32; fi
if [ ! -e "$test_data" ]; then "$build/jit-prep" --fmnist "$fmnist" --out "$test_data" --split test --canvas 32; fi
if [ ! -f "$classifier" ]; then
  "$build/jit-classify" train --config configs/eval/fmnist-classifier.yaml --set data.train="$data" \
    --set data.test="$test_data" --out "$classifier"
fi

mkdir -p "$out"
for run in fmnist-tiny-full fmnist-tiny; do
  echo "== $run: $steps steps, seed $seed"
  ckpt=$(printf '%s/%s/ckpt/ckpt-%08d.h5' "$out" "$run" "$steps")
  if [ -f "$ckpt" ] && grep -q "\"event\": \"train_end\", \"step\": $steps[,}]" "$out/$run/metrics.jsonl" 2>/dev/null; then
    echo "$run: trained to step $steps already ($ckpt)"
  else
    "$build/jit-train" --config "configs/$run.yaml" --set data.train="$data" --set run.out_dir="$out/$run" \
      --set run.seed="$seed" --set train.steps="$steps" --set train.sample_every=0 --set train.checkpoint_every=250 \
      --set logging.progress=false "${train_set[@]}" --resume auto
  fi
  if [ -f "$out/$run/eval.json" ] && [ "$out/$run/eval.json" -nt "$ckpt" ]; then
    echo "$run: $out/$run/eval.json is newer than the checkpoint: kept"
  else
    "$build/jit-eval" --checkpoint "$out/$run/ckpt" --classifier "$classifier" --real "$test_data" \
      "${eval_args[@]}" --out "$out/$run/eval.json"
  fi
done

/usr/bin/python3 - "$out" "$steps" "$seed" "$per_class" <<'PY'
import json, math, statistics, sys
out, steps, seed, per_class = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

def run_stats(d):
    """final loss: mean of the last 10% of step losses (at least 1); images/s: median
    without the first 5 records; sparsity: 1 - the last QuantizedAttentionMonitor's
    mean exact fraction, else 1 - the scheduled top-k, else 0 (as jit-sweep's summary)."""
    recs = []
    for line in open(f"{out}/{d}/metrics.jsonl"):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if "event" not in r and "loss" in r:
            recs.append(r)
    losses = [r["loss"] for r in recs if isinstance(r.get("loss"), (int, float))]
    k = max(1, len(losses) // 10)
    final = sum(losses[-k:]) / k if losses else float("nan")
    speeds = [r["images_per_s"] for r in recs[5 if len(recs) > 5 else 0:] if isinstance(r.get("images_per_s"), (int, float))]
    speed = statistics.median(speeds) if speeds else float("nan")
    sparsity, source = 0.0, "full attention"
    for r in reversed(recs):
        if "sla2" in r:
            fr = [h["exact_fraction"] for layer in r["sla2"] for h in layer["heads"]]
            sparsity, source = 1.0 - sum(fr) / len(fr), "measured (QuantizedAttentionMonitor, step %d)" % r["step"]
            break
    else:
        for r in reversed(recs):
            if "topk" in r:
                sparsity, source = 1.0 - r["topk"], "scheduled (1 - top-k)"
                break
    return final, speed, sparsity, source, (recs[-1]["step"] if recs else 0)

def f(x, nd):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"

rows, notes, ev = [], [], None
for d, label in (("fmnist-tiny-full", "full attention"), ("fmnist-tiny", "SLA2")):
    ev = json.load(open(f"{out}/{d}/eval.json"))
    final, speed, sparsity, source, last = run_stats(d)
    rows.append(f"| {d} ({label}) | {last} | {f(ev['frechet_distance'], 3)} | {f(ev['conditional_accuracy'], 4)} | "
                f"{f(final, 4)} | {f(sparsity, 3)} | {f(speed, 1)} |")
    notes.append(f"- {d}: sparsity {source}; checkpoint {ev['checkpoint']}")
s = ev["settings"]
rows.append(f"| real test images (floor) | - | {f(ev['real_frechet_distance'], 3)} (halves); "
            f"{f(ev['real_frechet_distance_matched'], 3)} (n = {ev['n_samples']}) | "
            f"{f(ev['real_conditional_accuracy'], 4)} | - | - | - |")
text = f"""# Full attention vs SLA2 on Fashion-MNIST ({steps} steps, seed {seed})

Made by `scripts/compare_fmnist.sh {steps}`: both runs train jit-tiny for {steps} steps from seed {seed}
on the same data; jit-eval samples {per_class} images per class from each run's EMA weights
({s['steps']} sampler steps, CFG {s['cfg']:g} in ({s['interval'][0]:g}, {s['interval'][1]:g}), sampler seed {s['seed']}) and
measures them with the evaluation classifier `{ev['classifier']}` against the {ev['n_real']} real test images
of `{ev['real']}`. Lower Fréchet distance is better; conditional accuracy is the share of samples
of class c that the classifier labels c.

| run | steps | Fréchet distance | conditional accuracy | final loss | sparsity | images/s |
|---|---|---|---|---|---|---|
""" + "\n".join(rows) + f"""

- final loss: mean v-loss of the last 10% of the steps; images/s: median training throughput
  (first 5 steps left out); sparsity: share of key blocks SLA2 skips.
- floor: FD between the even and odd halves of the real test set, and FD of
  {ev['n_samples']} class-balanced real images against the odd half (what a perfect generator
  would score at the samples' n: FD is biased upwards at small n); accuracy = the classifier's
  test accuracy ({f(ev['classifier_test_accuracy'], 4)}).
""" + "\n".join(notes) + "\n"
open(f"{out}/comparison.md", "w").write(text)
print(text)
PY
echo "compare_fmnist: wrote $out/comparison.md"
