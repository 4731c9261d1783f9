#!/usr/bin/env bash
# tests/slurm_lines_test.sh — the SLURM scripts' multi-node path, by the
# command lines they generate: slurm/train.sbatch and slurm/sweep.sbatch run
# outside SLURM with the environment SLURM gives a batch step of a 2-node job
# with 8 GPUs and 8 tasks per node (SLURM_NNODES, SLURM_NTASKS,
# SLURM_TASKS_PER_NODE, SLURM_GPUS_ON_NODE, ...), and with srun, mpirun,
# jit-train and jit-sweep replaced by stand-ins that record their argv and
# environment. Checked: the launch line for srun (PMIx) and for mpirun (one
# rank per task: -np 16), the thread count per rank, the warning when a node
# has more GPUs than ranks (a forgotten --ntasks-per-node), and the launcher
# jit-sweep is handed. (tests/slurm_test.sh runs the scripts on a real
# one-node cluster; this covers what a one-node cluster cannot show.)
#   usage: slurm_lines_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh" slurm_lines_test
t_work "$1" "$2" slurm-lines-test
mkdir -p "$work/bin" "$work/jit"

# Stand-ins: each records "name argv..." and its OMP/SRUN variables, then exits 0.
for tool in srun mpirun jit-train jit-sweep; do
    dir=$work/bin
    case $tool in jit-*) dir=$work/jit ;; esac
    cat >"$dir/$tool" <<EOF
#!/usr/bin/env bash
if [ "$tool" = srun ] && [ "\${1:-}" = --mpi=list ]; then printf 'MPI plugin types are...\n\tnone\n\tpmix\n'; exit 0; fi
echo "$tool \$*" >>"$work/argv"
echo "OMP_NUM_THREADS=\${OMP_NUM_THREADS:-} SRUN_CPUS_PER_TASK=\${SRUN_CPUS_PER_TASK:-}" >>"$work/env"
EOF
    chmod +x "$dir/$tool"
done

# job ENV... -- SCRIPT ARGS...: run a batch script as a 2-node, 16-task job would.
job() {
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    rm -f "$work/argv" "$work/env"
    env PATH="$work/bin:$PATH" JIT_BIN="$work/jit" SLURM_JOB_ID=4242 SLURM_JOB_NODELIST="gpu[01-02]" \
        SLURM_NNODES=2 SLURM_NTASKS=16 SLURM_TASKS_PER_NODE="8(x2)" SLURM_NTASKS_PER_NODE=8 SLURM_GPUS_ON_NODE=8 \
        SLURM_CPUS_PER_TASK=8 "${envs[@]}" bash "$@" >"$work/out" 2>&1
}
root=""
[ "$(id -u)" -eq 0 ] && root=" --allow-run-as-root"
expect_argv() { # label, wanted line
    local got
    got=$(cat "$work/argv" 2>/dev/null)
    if [ "$got" = "$2" ]; then ok "$1: $got"; else bad "$1: got [$got], wanted [$2]; output: $(cat "$work/out")"; fi
}

cfg=configs/jit-b16.yaml
job -- slurm/train.sbatch $cfg --set run.device=cuda
expect_argv "train.sbatch, 2 nodes x 8 tasks, srun" \
    "srun --mpi=pmix --kill-on-bad-exit=1 $work/jit/jit-train --config $cfg --set run.device=cuda --resume auto"
if grep -q "OMP_NUM_THREADS=8 SRUN_CPUS_PER_TASK=8" "$work/env" && ! grep -q warning "$work/out"; then
    ok "8 threads per rank (SRUN_CPUS_PER_TASK for srun), no GPU warning with 8 ranks per node"
else bad "environment $(cat "$work/env"), output $(cat "$work/out")"; fi

job LAUNCHER=mpirun -- slurm/train.sbatch $cfg --set run.device=cuda
expect_argv "train.sbatch, 2 nodes x 8 tasks, mpirun" \
    "mpirun -np 16 --bind-to none$root $work/jit/jit-train --config $cfg --set run.device=cuda --resume auto"

# 2 nodes with 8 GPUs each but one task per node: 14 GPUs would idle.
job SLURM_NTASKS=2 SLURM_TASKS_PER_NODE="1(x2)" SLURM_NTASKS_PER_NODE= -- slurm/train.sbatch $cfg
if grep -q "warning: 8 GPUs on this node but 1 rank(s) here" "$work/out"; then
    ok "a node with more GPUs than ranks is warned about: $(grep warning "$work/out")"
else bad "no warning for 8 GPUs and 1 rank per node: $(cat "$work/out")"; fi

job SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_JOB_ID=4240 -- slurm/sweep.sbatch configs/sweeps/fmnist-sparsity.yaml
expect_argv "sweep.sbatch, 2 nodes x 8 tasks" \
    "jit-sweep run configs/sweeps/fmnist-sparsity.yaml --index 1 --launcher srun --mpi=pmix --kill-on-bad-exit=1"
t_done
