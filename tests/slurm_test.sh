#!/usr/bin/env bash
# tests/slurm_test.sh — the SLURM scripts on a real one-node SLURM cluster
# started on this machine (Debian: slurm-wlm + munge, installed with apt-get
# when missing):
#   A. sbatch slurm/train.sbatch with 2 tasks (srun + PMIx): exit 0,
#      ckpt/latest and the last step in metrics.jsonl; A2 the same with
#      LAUNCHER=mpirun;
#   B. a long run gets the time-limit warning (scancel -s USR1 --batch, what
#      --signal=B:USR1@120 does): the ranks checkpoint, the script requeues the
#      job (exit 75 -> scontrol requeue), the job restarts and resumes past the
#      checkpoint; scancel then ends it for good (no requeue, nothing left);
#   C. slurm/sweep.sbatch as a job array over a 2-run sweep (jit-sweep run
#      starting jit-train with srun); C2 an array task preempted, requeued and
#      resumed through jit-sweep;
#   D. Slurm's own --signal=B:USR1@100 on a 2-minute job: checkpoint + requeue.
# The cluster is private to the test: its own munged (own key and socket),
# slurmctld and slurmd on free ports, state in a temporary directory, all
# stopped at exit. Not root, no apt, or daemons that do not start: SKIP.
#   usage: slurm_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
. "$(dirname "$0")/lib.sh" slurm_test
work=$build/slurm-test
t_begin=$(date +%s)
skip() { echo "slurm_test: SKIP $*"; exit 0; }
say() { echo "slurm_test: [$(($(date +%s) - t_begin)) s] $*"; }
# wait_for SECONDS COMMAND...: poll every 0.5 s; 1 on timeout.
wait_for() {
    local end=$(($(date +%s) + $1))
    shift
    while ! "$@"; do
        [ "$(date +%s)" -ge $end ] && return 1
        sleep 0.5
    done
}

[ "$(id -u)" -eq 0 ] || skip "not root: installing and running slurmctld/slurmd needs root"
for b in jit-train jit-prep; do
    [ -x "$build/$b" ] || { echo "slurm_test: FAIL $build/$b missing (build first)"; exit 1; }
done

# --- packages ----------------------------------------------------------------
need=()
for p in slurmctld slurmd slurm-client munge; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || skip "no apt-get to install ${need[*]}"
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 180 apt-get update -qq >/dev/null 2>&1
    # The packages' own start-up scripts may try to start the system's
    # daemons (denied in containers): harmless, the test starts its own.
    timeout 300 apt-get install -y -qq --no-install-recommends "${need[@]}" >"$build/slurm-test-apt.log" 2>&1 ||
        skip "apt-get install ${need[*]} failed (see $build/slurm-test-apt.log)"
fi
for c in munged slurmctld slurmd sbatch srun scontrol squeue sinfo scancel; do
    command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] || skip "$c not found after installing"
done
export PATH=$PATH:/usr/sbin

rm -rf "$work"
mkdir -p "$work"
# Short path: the munge socket path must fit in a sockaddr_un.
tmp=$(mktemp -d /tmp/jit-slurm.XXXXXX)
chmod 711 "$tmp"
mkdir -p "$tmp/state" "$tmp/spool"
export SLURM_CONF=$tmp/slurm.conf
pids=()

dump_logs() {
    for f in "$tmp"/slurmctld.log "$tmp"/slurmd.log "$tmp"/munged.log "$tmp"/*.stderr "$work"/*.out; do
        [ -s "$f" ] || continue
        echo "----- $f (last 40 lines)"
        tail -n 40 "$f"
    done
}
cleanup() {
    local code=$?
    trap - EXIT INT TERM
    if [ -n "$(jobs_left)" ]; then
        # shellcheck disable=SC2046 # one id per word
        scancel $(jobs_left) 2>/dev/null
        wait_for 30 no_jobs_left || echo "slurm_test: jobs still there at exit: $(jobs_left)"
    fi
    # Kill the daemons we started (slurmd, slurmctld, munged, newest first).
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null; done
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        for _ in $(seq 1 40); do kill -0 "${pids[i]}" 2>/dev/null || break; sleep 0.25; done
        kill -KILL "${pids[i]}" 2>/dev/null
        wait "${pids[i]}" 2>/dev/null
    done
    # Anything of ours still running (a rank outliving its job) is a bug.
    local left
    left=$(pgrep -f "jit-train --config $work/" 2>/dev/null)
    if [ -n "$left" ]; then
        echo "slurm_test: FAIL processes left after the test: $left"
        # shellcheck disable=SC2086 # one pid per word
        kill -KILL $left 2>/dev/null
        code=1
    fi
    mkdir -p "$work/cluster"
    cp "$tmp"/*.log "$tmp"/slurm.conf "$work/cluster/" 2>/dev/null
    rm -rf "$tmp"
    exit $code
}
jobs_left() { squeue -h -o %i 2>/dev/null | tr '\n' ' ' | sed 's/ *$//'; }
no_jobs_left() { [ -z "$(jobs_left)" ]; }
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- a private one-node cluster ----------------------------------------------
node=$(hostname -s)
cpus=$(nproc)
[ "$cpus" -ge 2 ] || cpus=2
free_port() { # a port nothing listens on, from a range away from the defaults
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 30000))
        [ "$p" = "${1:-0}" ] && continue
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
    return 1
}
ctld_port=$(free_port) || skip "no free TCP port"
slurmd_port=$(free_port "$ctld_port") || skip "no free TCP port"

dd if=/dev/urandom of="$tmp/munge.key" bs=1024 count=1 2>/dev/null
chmod 600 "$tmp/munge.key"
munged -F -f --socket="$tmp/munge.sock" --key-file="$tmp/munge.key" --pid-file="$tmp/munged.pid" \
    --log-file="$tmp/munged.log" --seed-file="$tmp/munged.seed" >"$tmp/munged.stderr" 2>&1 &
pids+=($!)
wait_for 10 sh -c "munge -S '$tmp/munge.sock' -n | unmunge -S '$tmp/munge.sock' >/dev/null 2>&1" ||
    { dump_logs; skip "munged does not start"; }

# cred_expire also sets how long a requeued job waits before it may start
# again (default 120 s): 10 s keeps the test short. The scheduler looks at
# pending jobs every 2 s (default 60 s) so the requeued job starts promptly.
cat >"$SLURM_CONF" <<EOF
ClusterName=jittest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge.sock,cred_expire=10
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
# Use the CPU count and memory below even where the machine differs (a
# 1-core machine still gets the 2 slots the 2-rank jobs need).
SlurmdParameters=config_overrides
KillWait=10
MinJobAge=300
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -D -f "$SLURM_CONF" >"$tmp/slurmctld.stderr" 2>&1 &
pids+=($!)
wait_for 20 scontrol ping >/dev/null 2>&1 || { dump_logs; skip "slurmctld does not start"; }
slurmd -D -N "$node" -f "$SLURM_CONF" >"$tmp/slurmd.stderr" 2>&1 &
pids+=($!)
node_idle() { [ "$(sinfo -h -n "$node" -o %T 2>/dev/null)" = idle ]; }
wait_for 30 node_idle || { sinfo; dump_logs; skip "slurmd does not start (node not idle)"; }
say "cluster up: node $node, $cpus CPUs, slurmctld :$ctld_port, slurmd :$slurmd_port ($(sinfo -V))"

# --- data and a tiny configuration (as tests/dist_test.sh) ---------------------
"$build/jit-prep" --synthetic 256 --out "$work/data" --size 16 --channels 1 --classes 4 --seed 3 >/dev/null || exit 1
cat >"$work/tiny.yaml" <<YAML
run: {name: slurm, seed: 11}
model: {name: jit-tiny, img_size: 16, patch: 4, depth: 2, hidden: 64, heads: 2, bottleneck: 16,
        in_context_len: 4, in_context_start: 1, num_classes: 4, use_sla2: true,
        sla2_compression_ratio: 4, sla2_topk_ratio: 0.5}
data: {train: $work/data, batch_size: 4, prefetch: 2}
optim: {lr: 1.0e-3, warmup_steps: 5, ema: [0.99]}
train: {steps: 30, log_every: 10, checkpoint_every: 10, keep_last: 5}
sampling: {steps: 2, per_class: 1}
logging: {progress: false}
YAML
export JIT_BIN=$build
cd "$src" || exit 1
# Submit as a user would: 2 tasks of 1 CPU on this 2-CPU node.
sub=(--ntasks 2 --cpus-per-task 1 --time 10)
in_file() { grep -q -- "$2" "$1" 2>/dev/null; }
# job_gone JOBID: the job (each task of an array: one line apiece) is neither
# pending, running nor completing.
job_gone() {
    ! squeue -h -j "$1" -t all -o %T 2>/dev/null | grep -qE '^(PENDING|RUNNING|COMPLETING|CONFIGURING|REQUEUE.*|SUSPENDED)$'
}
# wait_job SECONDS JOBID: wait until the job (every task of an array) has
# ended, then 0 only if each record says COMPLETED with exit code 0:0. Our own
# 0.5 s poll, not `sbatch --wait`: its poll interval grows from 2 s to 10 s
# (Slurm's sbatch.c), so a 3-second job took 10 s. MinJobAge=300 keeps the
# records for scontrol.
wait_job() {
    wait_for "$1" job_gone "$2" || return 1
    local recs
    recs=$(scontrol -o show job "$2" 2>/dev/null)
    [ -n "$recs" ] && ! grep -v 'JobState=COMPLETED .*ExitCode=0:0' <<<"$recs" | grep -q .
}
job_end() { scontrol -o show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z]*\|ExitCode=[0-9:]*' | tr '\n' ' '; }
has_step() { grep -q "\"step\": $2[,}]" "$1" 2>/dev/null; }
last_step() { grep -o '"step": [0-9]*' "$1" 2>/dev/null | tail -n 1 | grep -o '[0-9]*$'; }

# --- A: a short run to the end, srun (auto) and mpirun ---------------------------
for launcher in auto mpirun; do
    name=A-$launcher
    t0=$(date +%s)
    jid=$(LAUNCHER=$launcher sbatch --parsable "${sub[@]}" -J "jit-$name" -o "$work/$name.out" \
        slurm/train.sbatch "$work/tiny.yaml" --set run.out_dir="$work/run$name")
    jid=${jid%%;*}
    wait_job 120 "$jid"
    code=$?
    used=$(grep -o 'launcher [a-z]*' "$work/$name.out" 2>/dev/null | head -n 1)
    if [ $code -eq 0 ] && [ -s "$work/run$name/ckpt/latest" ] && has_step "$work/run$name/metrics.jsonl" 30 &&
        grep -q "2 rank(s)" "$work/$name.out"; then
        ok "$name: job exit 0 in $(($(date +%s) - t0)) s, 2 ranks ($used), step 30 logged, ckpt/latest = $(cat "$work/run$name/ckpt/latest")"
    else
        bad "$name: job $jid: $(job_end "$jid")($used), latest '$(cat "$work/run$name/ckpt/latest" 2>/dev/null)', last step $(last_step "$work/run$name/metrics.jsonl")"
        dump_logs
    fi
done

# --- B: warning -> checkpoint -> requeue -> resume; then scancel ------------------
name=B
out=$work/$name.out
run=$work/run$name
jid=$(sbatch --parsable "${sub[@]}" -J jit-$name -o "$out" slurm/train.sbatch "$work/tiny.yaml" \
    --set run.out_dir="$run" --set train.steps=100000 --set train.checkpoint_every=0 --set train.log_every=1)
jid=${jid%%;*}
say "B: job $jid submitted"
if ! wait_for 60 has_step "$run/metrics.jsonl" 3; then
    bad "B: job $jid logged no step 3 within 60 s (state $(squeue -h -j "$jid" -o %T))"
    dump_logs
else
    say "B: step $(last_step "$run/metrics.jsonl") logged; sending the time-limit warning (USR1 to the batch shell)"
    scancel --signal=USR1 --batch "$jid"
    if wait_for 60 in_file "$out" "requeueing job" && grep -q '"event": "preempted"' "$run/metrics.jsonl" && [ -s "$run/ckpt/latest" ]; then
        ck=$(cat "$run/ckpt/latest")
        ck_step=$(echo "$ck" | sed -n 's/^ckpt-0*\([0-9][0-9]*\)\.h5$/\1/p')
        ck_step=${ck_step:--1}
        ok "B: USR1 -> every rank checkpointed ($ck), exit 75 -> scontrol requeue"
    else
        bad "B: no checkpoint + requeue within 60 s of the USR1"
        dump_logs
        ck_step=-1
    fi
    if [ "$ck_step" -ge 0 ] && wait_for 60 in_file "$out" "resumed from"; then
        restarts=$(scontrol show job "$jid" | grep -o 'Restarts=[0-9]*')
        resumed_step() { [ "$(last_step "$run/metrics.jsonl")" -gt $((ck_step + 2)) ] 2>/dev/null; }
        if wait_for 60 resumed_step && grep -q "resumed from .*at step $ck_step " "$out" &&
            grep -q '"event": "resume"' "$run/metrics.jsonl"; then
            ok "B: job requeued ($restarts) and resumed at step $ck_step; now at step $(last_step "$run/metrics.jsonl")"
        else
            bad "B: resumed but the steps do not continue past $ck_step (last $(last_step "$run/metrics.jsonl"))"
            dump_logs
        fi
    else
        bad "B: the requeued job did not restart and resume within 60 s (state $(squeue -h -j "$jid" -o '%T %r'))"
        dump_logs
    fi
    # A plain scancel: Slurm sends TERM to everything; the ranks checkpoint
    # and exit 75, and the script must NOT requeue a cancelled job.
    scancel "$jid"
    # A requeue by the script would come before its shell ends, so before
    # job_gone; a requeued job is PENDING at once. 3 s more cover the
    # controller's bookkeeping.
    if wait_for 60 job_gone "$jid" && sleep 3 && job_gone "$jid" && [ -z "$(pgrep -f "jit-train --config $work/tiny.yaml --set run.out_dir=$run")" ]; then
        ok "B: scancel ends it for good: $(scontrol show job "$jid" | grep -o 'JobState=[A-Z]*'), not requeued 3 s later, no process left"
    else
        bad "B: after scancel: state '$(squeue -h -j "$jid" -o '%T %r')', processes '$(pgrep -f "run.out_dir=$run")'"
        dump_logs
    fi
fi

# --- B2: the same warning with LAUNCHER=mpirun (mpirun must pass USR1 on) ------------
name=B2
out=$work/$name.out
run=$work/run$name
jid=$(LAUNCHER=mpirun sbatch --parsable "${sub[@]}" -J jit-$name -o "$out" slurm/train.sbatch "$work/tiny.yaml" \
    --set run.out_dir="$run" --set train.steps=100000 --set train.checkpoint_every=0 --set train.log_every=1)
jid=${jid%%;*}
if wait_for 60 has_step "$run/metrics.jsonl" 3 && scancel --signal=USR1 --batch "$jid" && wait_for 60 in_file "$out" "requeueing job" &&
    grep -q "launcher mpirun" "$out" && grep -q '"event": "preempted"' "$run/metrics.jsonl" && [ -s "$run/ckpt/latest" ]; then
    ok "B2: mpirun: USR1 -> checkpoint $(cat "$run/ckpt/latest") -> requeue"
else
    bad "B2: mpirun: no checkpoint + requeue after USR1 (state $(squeue -h -j "$jid" -o '%T %r'))"
    dump_logs
fi
scancel "$jid"
wait_for 30 job_gone "$jid" || bad "B2: job $jid still there 30 s after scancel"

# --- C: a sweep as a job array ---------------------------------------------------
# slurm/sweep.sbatch: array task i runs `jit-sweep run SWEEP --index i`, which
# starts jit-train (through srun when the task has 2 ranks).
if [ -x "$build/jit-sweep" ]; then
    cat >"$work/sweep.yaml" <<YAML
name: slurmtest
base: $work/tiny.yaml
out_dir: $work/sweep
set: ["train.steps=20", "train.checkpoint_every=0"]
runs:
  - {name: a, set: ["run.seed=1"]}
  - {name: b, set: ["run.seed=2", "model.sla2_topk_ratio=1.0"]}
YAML
    t0=$(date +%s)
    jid=$(sbatch --parsable --array=0-1 "${sub[@]}" -J jit-C -o "$work/C_%a.out" slurm/sweep.sbatch "$work/sweep.yaml")
    jid=${jid%%;*}
    wait_job 120 "$jid"
    code=$?
    if [ $code -eq 0 ] && has_step "$work/sweep/a/metrics.jsonl" 20 && has_step "$work/sweep/b/metrics.jsonl" 20 &&
        grep -q -- "--index 1 --launcher srun" "$work/C_1.out"; then
        ok "C: sweep array 0-1 (2 ranks each, srun): both runs finished (20 steps) in $(($(date +%s) - t0)) s"
    else
        bad "C: sweep array: job $jid: $(job_end "$jid"), last steps $(last_step "$work/sweep/a/metrics.jsonl") / $(last_step "$work/sweep/b/metrics.jsonl")"
        dump_logs
    fi

    # C2: an array task (1 rank: jit-sweep starts jit-train itself) gets the
    # warning: jit-sweep passes it on, exits 75, the task is requeued and resumes.
    cat >"$work/sweep2.yaml" <<YAML
name: slurmtest2
base: $work/tiny.yaml
out_dir: $work/sweep2
set: ["train.steps=100000", "train.checkpoint_every=0", "train.log_every=1"]
runs:
  - {name: long, set: []}
YAML
    out=$work/C2_0.out
    run=$work/sweep2/long
    jid=$(sbatch --parsable --array=0-0 --ntasks 1 --cpus-per-task 1 --time 10 -J jit-C2 -o "$work/C2_%a.out" \
        slurm/sweep.sbatch "$work/sweep2.yaml")
    jid=${jid%%;*}_0
    if wait_for 60 has_step "$run/metrics.jsonl" 3 && scancel --signal=USR1 --batch "$jid" && wait_for 60 in_file "$out" "requeueing job" &&
        grep -q '"event": "preempted"' "$run/metrics.jsonl" && wait_for 60 in_file "$out" "resumed from"; then
        ok "C2: array task $jid: USR1 -> jit-sweep -> checkpoint, exit 75 -> requeued -> $(grep -o 'resumed from .* at step [0-9]*' "$out" | sed 's|.*/||')"
    else
        bad "C2: array task $jid: no checkpoint/requeue/resume after USR1 (state $(squeue -h -j "$jid" -o '%T %r'))"
        dump_logs
    fi
    scancel "$jid"
    wait_for 30 job_gone "$jid" || bad "C2: job $jid still there 30 s after scancel"
else
    bad "C: $build/jit-sweep missing (build it)"
    bad "C2: $build/jit-sweep missing"
fi

# --- D: the real time-limit warning --------------------------------------------------
# A 2-minute limit with --signal=B:USR1@100: Slurm itself sends the warning
# some 20 s in (its time-limit check runs periodically, so anywhere from a few
# seconds to ~50 s); the job must checkpoint and requeue itself as in B.
# Then scancel.
name=D
out=$work/$name.out
run=$work/run$name
t0=$(date +%s)
jid=$(sbatch --parsable --ntasks 1 --cpus-per-task 1 --time 2 --signal=B:USR1@100 -J jit-$name -o "$out" \
    slurm/train.sbatch "$work/tiny.yaml" --set run.out_dir="$run" --set train.steps=100000 --set train.checkpoint_every=0)
jid=${jid%%;*}
say "D: job $jid submitted with --time 2 --signal=B:USR1@100"
if wait_for 100 in_file "$out" "requeueing job" && grep -q "received SIGUSR1" "$out" && grep -q '"event": "preempted"' "$run/metrics.jsonl" &&
    [ -s "$run/ckpt/latest" ]; then
    ok "D: Slurm's own warning $(($(date +%s) - t0)) s after submission -> checkpoint $(cat "$run/ckpt/latest") -> requeued"
else
    bad "D: no warning/checkpoint/requeue within 100 s (state $(squeue -h -j "$jid" -o '%T %r'))"
    dump_logs
fi
scancel "$jid"
wait_for 60 job_gone "$jid" || bad "D: job $jid still there 60 s after scancel"

# Every check above reports once; fewer reports means the script went wrong.
checks=9
[ $((pass + fail)) -eq $checks ] || bad "$((pass + fail)) of $checks checks reported"
say "done"
t_done
