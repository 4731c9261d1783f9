#!/usr/bin/env bash
# tests/fid_test.sh — FID and IS end to end through jit-eval (docs/eval.md
# "FID and IS"), small sizes:
#   1. parity: FID and IS of random features (jit-eval fid-features) equal
#      tests/reference/fid_ref.py, written from torch-fidelity's definitions
#      in numpy: d 64 (n 500 > d) to 1e-10 relative, d 512 with n 300 (a
#      singular covariance) to 1e-7 relative; IS to 1e-12 relative; the
#      reference statistics from np.savez and np.savez_compressed files;
#   2. real images (Fashion-MNIST test shards, a small classifier as the
#      extractor): statistics of a set summed in chunks of 100 and of 64
#      are at FID 0 to rounding; two disjoint
#      sets of the same classes are at a small positive FID; numpy reads the
#      .npz jit-eval writes;
#   3. ranks: jit-eval fid of 2 x 2 settings (CFG 1 and 2, EMA 0 and raw) on
#      1 and 2 ranks gives the same FID, IS and image hashes to the bit;
#      PNGs optional (one per image and row); jit-sample --num-images on
#      3 ranks writes the PNGs of exactly the images jit-eval scored;
#   4. resume: stopped after 3 chunks on 1 rank and continued on 3 ranks ==
#      uninterrupted on 1 (so 3 ranks too, to the bit); a SIGKILLed run
#      continued == uninterrupted; a state of
#      another evaluation, and a damaged one, are refused by name;
#   5. the sweep's JSON and Markdown have a row per setting;
#   6. online evaluation (eval.every) on 2 ranks: FID and IS in metrics.jsonl
#      and on the progress line;
#   7. the same with torch-fidelity's Inception (random weights, 1/16 width,
#      75x75 input): real-image sanity and 1 vs 2 ranks bit for bit.
#   usage: fid_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh" fid_test
t_work "$1" "$2" fid-test
py=/usr/bin/python3
export OMP_NUM_THREADS=1
eval_=$build/jit-eval
expect_error() { # NAME PATTERN COMMAND...: exit 1 and PATTERN in the output
  local name=$1 pat=$2 rc=0
  shift 2
  "$@" >"$work/err.txt" 2>&1 || rc=$?
  if [ "$rc" = 1 ] && grep -q -- "$pat" "$work/err.txt"; then ok "$name"; else
    bad "$name (exit $rc, expected 1 and '$pat')"; cat "$work/err.txt"; fi
}

# 1. parity with the numpy reference
parity() { # N D L SEED REL_FID
  local d=$work/p$2
  mkdir -p "$d"
  $py tests/reference/fid_ref.py make "$d" "$1" "$2" "$3" "$4" &&
    $py tests/reference/fid_ref.py score "$d" >"$d/ref.json" &&
    "$eval_" fid-features --feats "$d/feats.npz" --ref "$d/ref.npz" --out "$d/c.json" >/dev/null &&
    "$eval_" fid-features --feats "$d/feats.npz" --ref "$d/ref_z.npz" --out "$d/cz.json" >/dev/null || return 1
  $py - "$d/ref.json" "$d/c.json" "$d/cz.json" "$5" <<'PY'
import json, sys
r, c, z = (json.load(open(p)) for p in sys.argv[1:4])
tol = float(sys.argv[4])
assert c == z, ("savez and savez_compressed statistics differ", c, z)
assert abs(c["fid"] - r["fid"]) <= tol * abs(r["fid"]), ("FID", c["fid"], r["fid"])
assert abs(c["is_mean"] - r["is_mean"]) <= 1e-12 * r["is_mean"], ("IS", c["is_mean"], r["is_mean"])
assert abs(c["is_std"] - r["is_std"]) <= 1e-12 * r["is_mean"], ("IS std", c["is_std"], r["is_std"])
print(f"  FID {c['fid']:.12g} (numpy {r['fid']:.12g}), IS {c['is_mean']:.12g} ± {c['is_std']:.6g}")
PY
}
check "parity: d 64, n 500: FID to 1e-10, IS to 1e-12 (np.savez and savez_compressed)" parity 500 64 20 1 1e-10
check "parity: d 512, n 300 (singular covariance): FID to 1e-7, IS to 1e-12" parity 300 512 50 2 1e-7
expect_error "fid-features: a reference without 'mu' is named with its file" "feats.npz: no key 'mu'" \
  "$eval_" fid-features --feats "$work/p64/feats.npz" --ref "$work/p64/feats.npz"

# 2. real images
"$build/jit-prep" --fmnist /usr/share/datasets/fashion-mnist --out "$work/data" --split test --canvas 32 \
  --per-shard 500 >/dev/null || exit 1
for s in a:00000 b:00001 ab:0000[01]; do
  mkdir -p "$work/${s%%:*}"
  ln -s "$work"/data/fmnist-test-${s#*:}.h5 "$work/${s%%:*}/"
done
"$build/jit-classify" train --config configs/eval/fmnist-classifier.yaml --set data.train="$work/ab" \
  --set data.test="$work/a" --set train.steps=2 --set model.depth=1 --set model.hidden=32 --set model.mlp_hidden=64 \
  --set model.heads=2 --set train.log_every=1 --out "$work/cls.h5" >/dev/null || exit 1
fx=classifier:$work/cls.h5
"$eval_" fid-ref --real "$work/a" --features "$fx" --out "$work/a.npz" --chunk 100 --quiet &&
  "$eval_" fid-ref --real "$work/a" --features "$fx" --out "$work/a3.npz" --chunk 64 --quiet &&
  "$eval_" fid-ref --real "$work/b" --features "$fx" --out "$work/b.npz" --quiet || bad "fid-ref runs"
check "real: a set against its own statistics (summed in other chunks): FID 0 to rounding" $py - "$work" "$eval_" <<'PY'
import numpy as np, subprocess, sys
w, ev = sys.argv[1:3]
fid = lambda a, b: float(subprocess.run([ev, "fid-stats", a, b], capture_output=True, text=True, check=True).stdout.split()[1])
a, b = np.load(f"{w}/a.npz"), np.load(f"{w}/b.npz")
tr = np.trace(a["sigma"])
same, other = fid(f"{w}/a.npz", f"{w}/a3.npz"), fid(f"{w}/a.npz", f"{w}/b.npz")
print(f"  tr(sigma) {tr:.6g}, FID(a, a in other chunks) {same:.3g}, FID(a, b) {other:.6g}")
assert a["mu"].shape == (32,) and a["sigma"].shape == (32, 32) and a["sigma"].dtype == np.float64
assert abs(same) < 1e-9 * tr, same
assert 0 < other < 0.05 * tr, other
PY

# 3. rank-count invariance (and the sweep rows)
cat >"$work/small.yaml" <<YAML
run: {name: fidt, seed: 5, out_dir: $work/run}
model: {name: jit-tiny, img_size: 32, patch: 4, depth: 1, hidden: 32, heads: 2, bottleneck: 16,
        in_context_len: 0, num_classes: 10, use_sla2: false}
data: {train: $work/ab, batch_size: 8}
optim: {lr: 1.0e-3, warmup_steps: 1, ema: [0.9]}
train: {steps: 4, log_every: 2, checkpoint_every: 4, sample_every: 0}
sampling: {steps: 2, per_class: 1, cfg: 2.0}
logging: {progress: false}
YAML
# trained on 2 ranks with online evaluation every 2 steps (both ranks evaluate together)
$mpirun -np 2 "$build/jit-train" --config "$work/small.yaml" --set data.batch_size=4 --set eval.every=2 \
  --set eval.images=40 --set eval.chunk=8 --set eval.features="$fx" --set eval.ref="$work/b.npz" \
  --set logging.progress=true >"$work/train.log" 2>&1 || { bad "training the tiny model"; cat "$work/train.log"; }
check "online eval: metrics.jsonl has FID and IS at steps 2 and 4, the progress line the last FID" $py - "$work" <<'PY'
import json, math, sys
ev = [json.loads(l) for l in open(f"{sys.argv[1]}/run/metrics.jsonl") if '"eval"' in l]
assert [e["step"] for e in ev] == [2, 4], ev
assert all(math.isfinite(e["fid"]) and e["fid"] > 0 and e["is_mean"] >= 1 and e["images"] == 40 for e in ev), ev
assert f"| fid {ev[0]['fid']:.3f}" in open(f"{sys.argv[1]}/train.log").read()
PY
fid=(fid --checkpoint "$work/run/ckpt" --features "$fx" --ref "$work/b.npz" --n 50 --chunk 8 --batch 4
  --cfg 1.0,2.0 --ema 0,-1)
"$eval_" "${fid[@]}" --json "$work/np1.json" --md "$work/np1.md" --quiet &&
  $mpirun -np 2 "$eval_" "${fid[@]}" --json "$work/np2.json" --png-dir "$work/png" --quiet || bad "jit-eval fid runs"
same_json() { $py - "$@" <<'PY'
import json, sys
rows = [[{k: v for k, v in r.items() if k != "seconds"} for r in json.load(open(p))["rows"]] for p in sys.argv[1:]]
assert all(r == rows[0] for r in rows), "results differ:\n" + "\n".join(map(str, rows))
PY
}
check "1 and 2 ranks: FID, IS and image hashes bit-identical (4 settings; 3 ranks below)" same_json "$work/np1.json" "$work/np2.json"
check "the settings give different images and scores" $py - "$work/np1.json" <<'PY'
import json, math, sys
rows = json.load(open(sys.argv[1]))["rows"]
assert len(rows) == 4 and len({r["image_hash"] for r in rows}) == 4, rows
assert all(math.isfinite(r["fid"]) and r["fid"] > 0 and r["is_mean"] >= 1 and r["images"] == 50 for r in rows), rows
PY
check "--png-dir: a PNG per image and setting" test "$(find "$work/png" -name '*.png' | wc -l)" = 200
check "Markdown: a row per setting" test "$(grep -c '^| cfg ' "$work/np1.md")" = 4

# 3b. jit-sample --num-images: the same image set as PNG files, on 3 ranks; they are the images jit-eval fid scored
$mpirun -np 3 "$build/jit-sample" --checkpoint "$work/run/ckpt" --num-images 50 --png-dir "$work/pngs" --chunk 8 \
  --batch 4 --cfg 1.0 --ema 0 >/dev/null || bad "jit-sample --num-images on 3 ranks"
check "jit-sample on 3 ranks: 50 PNGs whose pixels hash to jit-eval fid's image hash (cfg 1, EMA 0)" \
  $py - "$work/pngs" "$work/np1.json" <<'PY'
import json, sys
from PIL import Image
import numpy as np
h = 0xcbf29ce484222325
fnv = lambda h, b: [h := ((h ^ x) * 0x100000001b3) & 0xffffffffffffffff for x in b][-1]
for i in range(50):
    px = np.asarray(Image.open(f"{sys.argv[1]}/{i:05d}.png"))  # grey: [H, W] = NCHW of one channel
    h = fnv(h, fnv(0xcbf29ce484222325, px.tobytes()).to_bytes(8, "little"))
row = json.load(open(sys.argv[2]))["rows"][0]
assert row["cfg"] == 1 and row["ema"] == 0, row
assert f"{h:016x}" == row["image_hash"], (f"{h:016x}", row["image_hash"])
PY

# 4. resume
st=$work/state
"$eval_" "${fid[@]}" --state "$st" --max-chunks 3 --json "$work/part.json" --quiet &&
  $mpirun -np 3 "$eval_" "${fid[@]}" --state "$st" --json "$work/res.json" >"$work/res.log" 2>&1 ||
  bad "the stopped and continued runs"
check "stopped after 3 chunks on 1 rank, continued on 3 == uninterrupted (bit-identical)" same_json "$work/np1.json" "$work/res.json"
check "the continued run said where it resumed" grep -q "resuming from $st: row 1 of 4, chunk 3 of 7" "$work/res.log"
check "a stopped run writes no results" test ! -e "$work/part.json"
big=("${fid[@]:0:7}" --n 240 --chunk 8 --batch 4) # one setting, long enough to be killed in the middle
"$eval_" "${big[@]}" --json "$work/big.json" --quiet || bad "the uninterrupted 240-image run"
"$eval_" "${big[@]}" --state "$work/kst" --json "$work/killed.json" --quiet &
pid=$!
for _ in $(seq 600); do [ -s "$work/kst" ] && break; sleep 0.05; done
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
check "the killed run was killed before its end" test ! -e "$work/killed.json" -a -s "$work/kst"
"$eval_" "${big[@]}" --state "$work/kst" --json "$work/killed.json" >"$work/kres.log" 2>&1 ||
  bad "continuing the killed run"
check "SIGKILLed and continued == uninterrupted (bit-identical)" same_json "$work/big.json" "$work/killed.json"
check "the killed run's continuation resumed" grep -q "resuming from" "$work/kres.log"
expect_error "a state of another evaluation is refused by name" "$st: the state belongs to another evaluation" \
  "$eval_" "${fid[@]/1.0,2.0/1.0,3.0}" --state "$st"
head -c 100 "$st" >"$work/cut" && mv "$work/cut" "$st"
expect_error "a damaged state is refused by name" "$st: damaged evaluation state" "$eval_" "${fid[@]}" --state "$st"
expect_error "a missing reference is named" "nope.npz" "$eval_" fid --checkpoint "$work/run/ckpt" --features "$fx" \
  --ref "$work/nope.npz" --n 10

# 7. the Inception (torch-fidelity's, random weights at 1/16 width, images resized to 75 instead of 299)
if $py scripts/inception_weights.py --random 1 --out "$work/inc.h5" --width-div 16 >"$work/inc.log" 2>&1; then
  ix=(--features "inception:$work/inc.h5" --inception-side 75)
  "$eval_" fid-ref --real "$work/a" "${ix[@]}" --n 100 --chunk 25 --out "$work/ia.npz" --quiet &&
    "$eval_" fid-ref --real "$work/a" "${ix[@]}" --n 100 --chunk 16 --out "$work/ia2.npz" --quiet &&
    "$eval_" fid-ref --real "$work/b" "${ix[@]}" --n 100 --out "$work/ib.npz" --quiet || bad "fid-ref with the Inception"
  check "Inception: a set against itself (other chunks) FID 0 to rounding (< 1e-6 tr), against a disjoint set small and positive" \
    $py - "$work" "$eval_" <<'PY'
import numpy as np, subprocess, sys
w, ev = sys.argv[1:3]
fid = lambda a, b: float(subprocess.run([ev, "fid-stats", a, b], capture_output=True, text=True, check=True).stdout.split()[1])
tr = np.trace(np.load(f"{w}/ia.npz")["sigma"])
same, other = fid(f"{w}/ia.npz", f"{w}/ia2.npz"), fid(f"{w}/ia.npz", f"{w}/ib.npz")
print(f"  Inception/16: tr(sigma) {tr:.6g}, FID(a, a in other chunks) {same:.3g}, FID(a, b) {other:.6g}")
assert np.load(f"{w}/ia.npz")["mu"].shape == (128,)
# The random narrow network's covariance has eigenvalues down to ~1e-9 of its largest: the square
# roots of eigenvalues that small turn double round-off (1e-16) into about sqrt(1e-16) of tr (docs/eval.md).
assert abs(same) < 1e-6 * tr and 0 < other < 0.2 * tr, (same, other, tr)
PY
  ifid=(fid --checkpoint "$work/run/ckpt" "${ix[@]}" --ref "$work/ib.npz" --n 20 --chunk 8 --quiet)
  "$eval_" "${ifid[@]}" --json "$work/i1.json" && $mpirun -np 2 "$eval_" "${ifid[@]}" --json "$work/i2.json" ||
    bad "jit-eval fid with the Inception"
  check "Inception: 1 and 2 ranks bit-identical (FID, IS over 1008 logits, image hash)" same_json "$work/i1.json" "$work/i2.json"
else
  bad "scripts/inception_weights.py --random (see $work/inc.log)"
fi

# 5b. jit-sweep schedules jit-eval fid after a run
cat >"$work/sweep.yaml" <<YAML
name: fidsweep
base: $work/small.yaml
out_dir: $work/sweep
set: ["train.steps=2", "run.out_dir=unused"]
runs:
  - {name: a, set: []}
fid: {features: "$fx", ref: $work/b.npz, n: 24, chunk: 8, cfg: "1.0,2.0"}
YAML
"$build/jit-sweep" run "$work/sweep.yaml" >"$work/sweep.log" 2>&1 || bad "jit-sweep run with a fid: section"
check "jit-sweep: fid.json and fid.md after the run, a row per CFG scale" $py - "$work/sweep/a" <<'PY'
import json, sys
rows = json.load(open(f"{sys.argv[1]}/fid.json"))["rows"]
assert [r["cfg"] for r in rows] == [1, 2] and all(r["images"] == 24 for r in rows), rows
assert open(f"{sys.argv[1]}/fid.md").read().count("| cfg ") == 2
PY

t_done
