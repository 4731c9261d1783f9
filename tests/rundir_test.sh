#!/usr/bin/env bash
# tests/rundir_test.sh — a run directory protects itself (issue 28), with the
# real jit-train on a tiny model. One section per failure the issue found,
# each a ctest entry of its own (rundir_<section>):
#   lock      a second trainer on the same run.out_dir (started later, or
#             together with the first) stops at start naming the other's pid
#             and host; a lock left by a killed trainer is named and taken over;
#   reuse     a new run in a directory with another run's checkpoints is
#             refused unless told what to do (--resume auto, --overwrite);
#             pruning keeps checkpoints newer than the ones it keeps and
#             checkpoints of other runs;
#   diverge   optim.lr=100: no checkpoint while steps are skipped, exit 3
#             naming the last checkpoint that preceded a good step, still on
#             disk; resuming from it with the original lr trains on;
#   metrics   a cut last line of metrics.jsonl is dropped on resume, with a
#             notice;
#   watchdog  a stalled rank (an injected stall; SIGSTOP on one of two MPI
#             ranks) ends the job with a message naming the rank and the step.
#   usage: rundir_test.sh SOURCE_DIR BUILD_DIR SECTION
set -uo pipefail
. "$(dirname "$0")/lib.sh" rundir_test
section=$3
t_work "$1" "$2" "rundir-test/$section"
cd "$work"
py=/usr/bin/python3
export OMP_NUM_THREADS=1

"$build/jit-prep" --synthetic 64 --out data --size 16 --channels 1 --classes 4 --seed 3 >/dev/null || exit 1
cat >tiny.yaml <<YAML
run: {name: rundir, seed: 5}
model: {name: jit-tiny, img_size: 16, patch: 4, depth: 1, hidden: 32, heads: 2, bottleneck: 8,
        in_context_len: 0, num_classes: 4, use_sla2: false}
data: {train: $work/data, batch_size: 8, prefetch: 2}
optim: {lr: 2.0e-3, warmup_steps: 2, ema: [0.99]}
train: {steps: 10, log_every: 1000, checkpoint_every: 5, keep_last: 2}
sampling: {steps: 1, per_class: 0}
logging: {progress: false}
YAML
# train OUT LOG [args...]: jit-train in the foreground (60 s at most); its exit code
train() {
  local out=$1 log=$2
  shift 2
  timeout -k 5 60 "$build/jit-train" --config tiny.yaml --set run.out_dir="$out" "$@" >"$log" 2>&1
}
# start OUT LOG [args...]: jit-train in the background, endless; pid in $!
start() {
  local out=$1 log=$2
  shift 2
  "$build/jit-train" --config tiny.yaml --set run.out_dir="$out" --set train.steps=1000000 "$@" >"$log" 2>&1 &
}
# wait_step FILE N: until metrics FILE has a record of step N (20 s at most)
wait_step() {
  for _ in $(seq 1 200); do grep -q "\"step\": $2," "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
steps_of() { ls "$1"/ckpt/ 2>/dev/null | sed -n 's/^ckpt-0*\([0-9][0-9]*\)\.h5$/\1/p' | sort -n | tr '\n' ' '; }
latest_of() { cat "$1/ckpt/latest" 2>/dev/null; }

case $section in
lock)
  # 1. A trains; B (--resume auto, then fresh) on the same directory stops at once naming A.
  start a a.log --set train.checkpoint_every=3
  apid=$!
  wait_step a/metrics.jsonl 4 || bad "A did not start (see $work/a.log)"
  rc=0
  train a b.log --resume auto || rc=$?
  if [ $rc = 1 ] && grep -q "pid $apid" b.log && grep -q "$(hostname)" b.log; then
    ok "a second trainer (--resume auto) stops, naming pid $apid and the host"
  else bad "second trainer: exit $rc, no pid $apid in its message: $(tail -n 3 b.log)"; fi
  rc=0
  train a b2.log || rc=$?
  if [ $rc = 1 ] && grep -q "pid $apid" b2.log; then ok "a second trainer (fresh) stops, naming pid $apid"
  else bad "second fresh trainer: exit $rc: $(tail -n 3 b2.log)"; fi
  if kill -0 $apid 2>/dev/null && ! grep -q "did not finish" a.log b.log b2.log; then
    ok "the first trainer runs on; nobody removed its checkpoint writes"
  else bad "the first trainer was disturbed (see $work/a.log)"; fi
  # 2. A killed: its lock file stays behind, is named, and does not block.
  kill -KILL $apid
  wait $apid 2>/dev/null
  [ -s a/run.lock ] && ok "a killed trainer leaves its lock file (pid $apid)" || bad "no a/run.lock after kill -9"
  n=$(latest_of a | sed 's/ckpt-0*\([0-9]*\)\.h5/\1/')
  rc=0
  train a c.log --resume auto --set train.steps=$((n + 2)) || rc=$?
  if [ $rc = 0 ] && grep -q "pid $apid" c.log && grep -qi "no longer running" c.log; then
    ok "a stale lock (pid $apid, dead) is named and taken over; resumed at step $n"
  else bad "stale lock: exit $rc: $(tail -n 3 c.log)"; fi
  [ ! -s a/run.lock ] && ok "a normal end leaves the lock file empty" || bad "a/run.lock after a normal end: $(cat a/run.lock)"
  # 3. Two started together on a fresh directory: exactly one trains.
  "$build/jit-train" --config tiny.yaml --set run.out_dir=t --set train.steps=30 >t1.log 2>&1 &
  p1=$!
  "$build/jit-train" --config tiny.yaml --set run.out_dir=t --set train.steps=30 >t2.log 2>&1 &
  p2=$!
  r1=0 r2=0
  wait $p1 || r1=$?
  wait $p2 || r2=$?
  if { [ $r1 = 0 ] && [ $r2 = 1 ] && grep -q "pid $p1" t2.log; } || { [ $r2 = 0 ] && [ $r1 = 1 ] && grep -q "pid $p2" t1.log; }; then
    ok "two trainers started together: one trains (exit 0), the other stops naming it"
  else bad "two together: exits $r1 and $r2 (see $work/t1.log, t2.log)"; fi
  ;;
reuse)
  # 1. An earlier run's checkpoints (steps 15, 20) and a new run without --resume.
  train d a.log --set train.steps=20 || bad "run A (see $work/a.log)"
  before=$(steps_of d)
  rc=0
  train d b.log --set train.steps=10 || rc=$?
  if [ $rc = 1 ] && grep -q -- "--resume auto" b.log && grep -q -- "--overwrite" b.log && grep -q "d/ckpt" b.log &&
    [ "$(steps_of d)" = "$before" ] && [ "$(latest_of d)" = ckpt-00000020.h5 ]; then
    ok "a new run in a used directory is refused, naming --resume auto and --overwrite; nothing touched"
  else bad "new run in a used directory: exit $rc, checkpoints [$before] -> [$(steps_of d)], latest $(latest_of d): $(tail -n 2 b.log)"; fi
  # 2. --overwrite: the earlier run's checkpoints go; --resume auto then continues the new run.
  rc=0
  train d b2.log --set train.steps=10 --overwrite || rc=$?
  if [ $rc = 0 ] && [ "$(steps_of d)" = "5 10 " ] && [ "$(latest_of d)" = ckpt-00000010.h5 ]; then
    ok "--overwrite starts over: checkpoints [5 10], latest names step 10"
  else bad "--overwrite: exit $rc, checkpoints [$(steps_of d)], latest $(latest_of d)"; fi
  rc=0
  train d b3.log --set train.steps=12 --set train.checkpoint_every=1 --set train.keep_last=10 --resume auto || rc=$?
  if [ $rc = 0 ] && grep -q "resumed from .*ckpt-00000010.h5 at step 10" b3.log; then ok "--resume auto continues the new run"
  else bad "resume after --overwrite: exit $rc: $(grep resumed b3.log)"; fi
  # 3. Pruning: resumed from step 5 (steps 10..12 of the same run on disk) with
  # keep_last 1, a checkpoint of another run (step 30) and one of an older
  # version without a run id (named step 3) beside them: the newer ones of
  # this run and the other runs' stay, and so does 7, the newest checkpoint
  # a good step followed (8 has had none yet); 5 and 6 (this run, older) go.
  train e e.log --set train.steps=30 --set train.checkpoint_every=30 || bad "run E (see $work/e.log)"
  cp e/ckpt/ckpt-00000030.h5 d/ckpt/ckpt-00000030.h5
  cp d/ckpt/ckpt-00000005.h5 d/ckpt/ckpt-00000003.h5
  $py - d/ckpt/ckpt-00000003.h5 <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    if "run_id" in f.attrs:
        del f.attrs["run_id"]
PY
  rc=0
  train d b4.log --set train.steps=8 --set train.checkpoint_every=1 --set train.keep_last=1 \
    --resume "$work/d/ckpt/ckpt-00000005.h5" || rc=$?
  if [ $rc = 0 ] && [ "$(steps_of d)" = "3 7 8 10 11 12 30 " ] && [ "$(latest_of d)" = ckpt-00000008.h5 ]; then
    ok "keep_last 1 from a resumed step 5: [3 7 8 10 11 12 30] kept (7: the newest a good step followed; newer ones of this run; other runs' files)"
  else bad "pruning: exit $rc, checkpoints [$(steps_of d)] (want [3 7 8 10 11 12 30]), latest $(latest_of d)"; fi
  # 4. An explicit checkpoint of another run into a used directory is refused too.
  rc=0
  train d b5.log --set train.steps=31 --resume "$work/e/ckpt/ckpt-00000030.h5" || rc=$?
  if [ $rc = 1 ] && grep -q -- "--overwrite" b5.log; then ok "resuming another run's checkpoint into a used directory is refused"
  else bad "explicit foreign resume: exit $rc: $(tail -n 2 b5.log)"; fi
  ;;
diverge)
  # lr 100: the loss turns NaN after a few steps; a checkpoint every step, keep 2.
  rc=0
  train v v.log --set optim.lr=100 --set train.steps=40 --set train.checkpoint_every=1 --set train.keep_last=2 \
    --set train.max_bad_steps=5 || rc=$?
  first_bad=$($py -c "import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r.get('skipped'): print(r['step'] - 1); break" v/metrics.jsonl)
  named=$(sed -n 's/.*resume from \([^ ]*ckpt-[0-9]*\.h5\).*/\1/p' v.log | head -n 1)
  newest=$(steps_of v | awk '{print $NF}')
  echo "rundir_test: first skipped step $first_bad, checkpoints [$(steps_of v)], named '$named'"
  if [ $rc = 3 ] && [ -n "$first_bad" ] && [ -n "$newest" ] && [ "$newest" -le "$first_bad" ]; then
    ok "exit 3; no checkpoint after the first skipped step ($first_bad)"
  else bad "divergence: exit $rc, first skipped step '$first_bad', newest checkpoint '$newest' (see $work/v.log)"; fi
  if [ -n "$named" ] && [ -f "$named" ]; then ok "the message names $named, which is still there"
  else bad "no existing checkpoint named in the message: $(grep -i diverged v.log)"; fi
  n=$(echo "$named" | sed 's/.*ckpt-0*\([0-9]*\)\.h5/\1/')
  rc=0
  [ -n "$named" ] && train v v2.log --resume "$named" --set train.steps=$((n + 10)) --set train.checkpoint_every=5 || rc=$?
  skipped=$(tail -n 10 v/metrics.jsonl | grep -c '"skipped"')
  if [ -n "$named" ] && [ $rc = 0 ] && [ "$skipped" = 0 ] && [ "$(latest_of v)" = "$(printf 'ckpt-%08d.h5' $((n + 10)))" ]; then
    ok "resumed from it with the original lr: 10 good steps, exit 0"
  else bad "resume with the original lr: exit $rc, $skipped skipped (see $work/v2.log)"; fi
  ;;
metrics)
  train m m1.log --set train.steps=5 || bad "first run (see $work/m1.log)"
  printf '{"step": 6, "loss": 0.12' >>m/metrics.jsonl # a write cut by a full disk or a kill
  rc=0
  train m m2.log --set train.steps=8 --resume auto || rc=$?
  if [ $rc = 0 ] && grep -q "metrics.jsonl" m2.log && grep -qi "dropped" m2.log &&
    $py -c "import json,sys; [json.loads(l) for l in open(sys.argv[1])]" m/metrics.jsonl; then
    ok "a cut last line is dropped with a notice; every line of metrics.jsonl is JSON"
  else bad "metrics repair: exit $rc; $(grep -i metrics m2.log | head -n 2); lines: $(tail -n 3 m/metrics.jsonl)"; fi
  ;;
watchdog)
  # 1. One process whose step loop stalls (test hook): the watchdog ends it.
  rc=0
  t0=$(date +%s)
  JIT_TEST_STALL_AT_STEP=3 timeout -k 5 40 "$build/jit-train" --config tiny.yaml --set run.out_dir=w \
    --set train.steps=20 --set run.watchdog_s=4 >w.log 2>&1 || rc=$?
  t=$(($(date +%s) - t0))
  if [ $rc != 0 ] && [ $rc != 124 ] && [ $rc != 137 ] && grep -q "rank 0 of 1 is stuck in step 4" w.log; then
    ok "an injected stall ends the run after ${t} s (exit $rc): $(grep -m1 "watchdog:" w.log)"
  else bad "injected stall: exit $rc after ${t} s: $(tail -n 2 w.log)"; fi
  # 2. SIGSTOP on one of two MPI ranks.
  $mpirun -np 2 "$build/jit-train" --config tiny.yaml --set run.out_dir=s --set train.steps=1000000 \
    --set data.batch_size=4 --set run.watchdog_s=5 --set train.log_every=1 >s.log 2>&1 &
  mp=$!
  wait_step s/metrics.jsonl 3 || bad "the 2-rank job did not start (see $work/s.log)"
  victim=$(pgrep -f "jit-train --config tiny.yaml --set run.out_dir=s" | tail -n 1)
  kill -STOP "$victim"
  t0=$(date +%s)
  for _ in $(seq 1 300); do kill -0 $mp 2>/dev/null || break; sleep 0.1; done
  t=$(($(date +%s) - t0))
  if kill -0 $mp 2>/dev/null; then
    bad "SIGSTOP on a rank: the job still runs after ${t} s"
    kill -CONT "$victim" 2>/dev/null
    kill -KILL $mp "$victim" 2>/dev/null
  else
    rc=0
    wait $mp || rc=$?
    # rank 0 speaks (the stopped rank cannot) and names rank 1 as the silent one
    if [ $rc != 0 ] && grep -q "watchdog: rank 0 of 2 is stuck in step [0-9]" s.log && grep -q "rank 1 (pid $victim" s.log; then
      ok "SIGSTOP on one of two ranks: the job ended after ${t} s (exit $rc): $(grep -m1 "watchdog:" s.log)"
    else bad "SIGSTOP: exit $rc after ${t} s: $(tail -n 3 s.log)"; fi
  fi
  kill -CONT "$victim" 2>/dev/null
  kill -KILL "$victim" 2>/dev/null
  ;;
*)
  echo "rundir_test: unknown section '$section'"
  exit 2
  ;;
esac
t_done
