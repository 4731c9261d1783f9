#!/usr/bin/env bash
# tests/dist_test.sh — data parallelism, checkpoints and faults with real
# processes: mpirun on CPU ranks, jit-train end to end.
#   1. 2 ranks x batch 4 == 1 rank x batch 8 after 20 steps (tolerance below);
#      the overlapped all-reduce gives bit-identical parameters to the
#      blocking one (dist.allreduce, the CPU default), small buckets too;
#   2. resume: 20 steps straight == 10 + resume + 10 (losses and parameters
#      bit-identical), for 1 and for 2 ranks; 2 ranks resumed on 1 rank runs on;
#   3. checkpoints read by name in h5py, EMA and optimiser groups alike;
#   4. a crash in the middle of a checkpoint write leaves the previous one
#      complete and loadable;
#   5. SIGUSR1 to one rank: every rank checkpoints, exit code 75, resumable;
#   6. a rank killed mid-run ends the job within 60 s with a non-zero code.
#   usage: dist_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh" dist_test
t_work "$1" "$2" dist-test
py=/usr/bin/python3

"$build/jit-prep" --synthetic 512 --out "$work/data" --size 16 --channels 1 --classes 4 --seed 3 >/dev/null || exit 1
cat >"$work/small.yaml" <<YAML
run: {name: dist, seed: 11}
model: {name: jit-tiny, img_size: 16, patch: 4, depth: 2, hidden: 64, heads: 2, bottleneck: 16,
        in_context_len: 4, in_context_start: 1, num_classes: 4, use_sla2: true,
        sla2_compression_ratio: 4, sla2_topk_ratio: 0.5}
data: {train: $work/data, batch_size: 8, prefetch: 2}
optim: {lr: 1.0e-3, warmup_steps: 5, ema: [0.99]}
train: {steps: 20, log_every: 10, checkpoint_every: 10, keep_last: 5}
sampling: {steps: 2, per_class: 1}
logging: {progress: false}
callbacks:
  - {type: RouterParameterScheduler, start_ratio: 1.0, target_ratio: 0.5, warmup_steps: 10}
YAML
train() { # ranks out_dir batch [extra jit-train args...]
  local np=$1 out=$2 b=$3
  shift 3
  $mpirun -np "$np" "$build/jit-train" --config "$work/small.yaml" --set run.out_dir="$out" \
    --set data.batch_size="$b" "$@" >"$out.log" 2>&1
}
losses() { $py -c "import json,sys; print(' '.join(repr(json.loads(l)['loss']) for l in open(sys.argv[1]) if '\"loss\"' in l))" "$1"; }

# 1. rank equivalence
train 1 "$work/np1" 8 && train 2 "$work/np2" 4 || { bad "training runs (see $work/*.log)"; }
$py tests/compare_ckpts.py "$work/np1/ckpt/latest" "$work/np2/ckpt/latest" 5e-5 "dist_test: np1 vs np2" &&
  ok "2 ranks x 4 == 1 rank x 8 (20 steps)" || bad "rank equivalence"

# 1b. all-reduce modes: the same buckets reduced in the same order
train 2 "$work/np2ov" 4 --set dist.allreduce=overlap --set train.steps=10 &&
  train 2 "$work/np2bl" 4 --set dist.allreduce=blocking --set dist.bucket_mb=0.05 --set train.steps=10 &&
  train 2 "$work/np2bl4" 4 --set dist.allreduce=blocking --set train.steps=10 || bad "all-reduce mode runs (see $work/np2*.log)"
$py - "$work"/np2ov/ckpt/ckpt-00000010.h5 "$work"/np2bl4/ckpt/ckpt-00000010.h5 "$work"/np2bl/ckpt/ckpt-00000010.h5 <<'PY' && ok "overlapped == blocking all-reduce (bit-identical); 0.05 MB buckets within 1e-6" || bad "all-reduce modes differ"
import sys, h5py, numpy as np
a, b, c = (h5py.File(p, "r")["params"] for p in sys.argv[1:4])
for k in a:
    assert np.array_equal(a[k][...], b[k][...]), k
    scale = max(float(np.abs(a[k][...]).max()), 1e-6)
    assert float(np.abs(a[k][...] - c[k][...]).max()) <= 1e-6 * scale, k
PY

# 1c. recomputation under the overlapped all-reduce: a recomputed block's
# entry is the first use of its parameters (core/recompute.h), so a bucket
# launches only once the block's backward has run: bit-identical to none
# (0.05 MB buckets: many, launched as backward goes)
train 2 "$work/np2ov05" 4 --set dist.allreduce=overlap --set dist.bucket_mb=0.05 --set train.steps=10 &&
  train 2 "$work/np2ovrc" 4 --set dist.allreduce=overlap --set dist.bucket_mb=0.05 --set train.steps=10 \
    --set train.recompute=block || bad "recompute runs (see $work/np2ov05.log, np2ovrc.log)"
$py - "$work"/np2ov05/ckpt/ckpt-00000010.h5 "$work"/np2ovrc/ckpt/ckpt-00000010.h5 <<'PY' && ok "overlapped all-reduce with train.recompute block == none (bit-identical)" || bad "recompute changes the overlapped all-reduce's result"
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r")["params"] for p in sys.argv[1:3])
for k in a:
    assert np.array_equal(a[k][...], b[k][...]), k
PY

# 2. resume, 1 and 2 ranks
for np_ in 1 2; do
  b=$((8 / np_))
  train "$np_" "$work/straight$np_" "$b"
  train "$np_" "$work/resumed$np_" "$b" --set train.steps=10
  train "$np_" "$work/resumed$np_" "$b" --resume auto
  s=$(losses "$work/straight$np_/metrics.jsonl")
  r=$(losses "$work/resumed$np_/metrics.jsonl")
  if [ -n "$s" ] && [ "$s" = "$r" ]; then ok "resume on $np_ rank(s): 20 losses bit-identical"; else bad "resume on $np_ rank(s): losses differ: straight [$s] resumed [$r]"; fi
  $py - "$work/straight$np_/ckpt/ckpt-00000020.h5" "$work/resumed$np_/ckpt/ckpt-00000020.h5" <<'PY' && ok "resume on $np_ rank(s): parameters identical" || bad "resume on $np_ rank(s): parameters differ"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
for g in ("params", "ema/0", "optim/m", "optim/v"):
    for k in a[g]:
        assert np.array_equal(a[g][k][...], b[g][k][...]), f"{g}/{k}"
PY
done
train 2 "$work/move" 4 --set train.steps=10
if train 1 "$work/move" 8 --resume auto && grep -q "now 1: the loader re-partitions" "$work/move.log"; then
  ok "2 ranks stopped, resumed on 1 rank (says so, finishes)"
else bad "2 -> 1 rank resume (see $work/move.log)"; fi

# 3. checkpoint layout in h5py
$py - "$work/np2/ckpt/ckpt-00000020.h5" <<'PY' && ok "checkpoint readable by name in h5py" || bad "checkpoint layout"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
text = lambda v: v.decode() if isinstance(v, bytes) else v   # fixed-length string attributes read as bytes
assert text(f.attrs["format"]) == "jit-ckpt-v1" and int(f.attrs["step"]) == 20 and int(f.attrs["world_size"]) == 2
p = f["params"]
assert p["blocks.0.attn.qkv.weight"].shape == (192, 64)
assert p["blocks.1.attn.sla2.proj_q"].shape == (32, 32) and p["blocks.1.attn.sla2.alpha_logit"].shape == (2,)
for g in ("ema/0", "optim/m", "optim/v"):
    assert set(f[g]) == set(p) and all(f[g][k].shape == p[k].shape for k in p), g
assert "model:" in text(f.attrs["config"])
print(f"dist_test: {len(p)} parameters by name, EMA and optimiser groups match")
PY

# 4. a crash while writing a checkpoint
JIT_TEST_CRASH_IN_CHECKPOINT=20 train 1 "$work/crash" 8
code=$?
latest=$(cat "$work/crash/ckpt/latest" 2>/dev/null)
if [ $code -ne 0 ] && [ "$latest" = "ckpt-00000010.h5" ] && [ ! -e "$work/crash/ckpt/ckpt-00000020.h5" ] &&
  "$build/jit-sample" --checkpoint "$work/crash/ckpt" --steps 1 --per-class 1 --out "$work/crash.png" >/dev/null 2>&1; then
  ok "crash mid-write (exit $code): 'latest' still names step 10, which loads"
else bad "crash mid-write: exit $code, latest '$latest'"; fi

# 5. SIGUSR1 to one rank: all ranks checkpoint and exit 75
$mpirun -np 2 "$build/jit-train" --config "$work/small.yaml" --set run.out_dir="$work/sig" --set data.batch_size=4 \
  --set train.steps=100000 --set train.checkpoint_every=0 >"$work/sig.log" 2>&1 &
mp=$!
for _ in $(seq 1 100); do grep -q '"step": 3,' "$work/sig/metrics.jsonl" 2>/dev/null && break; sleep 0.2; done
kill -USR1 "$(pgrep -f "jit-train --config $work/small.yaml --set run.out_dir=$work/sig" | tail -n 1)"
wait $mp
code=$?
if [ $code -eq 75 ] && grep -q '"event": "preempted"' "$work/sig/metrics.jsonl" && [ -s "$work/sig/ckpt/latest" ]; then
  ok "SIGUSR1: checkpoint at $(cat "$work/sig/ckpt/latest"), exit 75"
else bad "SIGUSR1: exit $code (see $work/sig.log)"; fi

# 6. a rank killed mid-run
$mpirun -np 2 "$build/jit-train" --config "$work/small.yaml" --set run.out_dir="$work/kill" --set data.batch_size=4 \
  --set train.steps=100000 --set train.checkpoint_every=0 >"$work/kill.log" 2>&1 &
mp=$!
for _ in $(seq 1 100); do grep -q '"step": 3,' "$work/kill/metrics.jsonl" 2>/dev/null && break; sleep 0.2; done
kill -KILL "$(pgrep -f "jit-train --config $work/small.yaml --set run.out_dir=$work/kill" | tail -n 1)"
t0=$(date +%s)
for _ in $(seq 1 600); do kill -0 $mp 2>/dev/null || break; sleep 0.1; done
if kill -0 $mp 2>/dev/null; then
  kill -KILL $mp
  bad "killed rank: the job still runs after 60 s"
else
  wait $mp
  code=$?
  t=$(($(date +%s) - t0))
  if [ $code -ne 0 ]; then ok "killed rank: the job ended after ${t} s with code $code"; else bad "killed rank: exit code 0"; fi
fi

t_done
