#!/usr/bin/env bash
# tests/cuda_emu/nccl_test.sh — data parallelism on the CUDA device through
# NCCL, on the CPU emulator (JIT_CUDA=EMU build; NCCL is the stand-in over
# MPI): jit-train with run.device cuda, 2 ranks x batch 4 give the same
# parameters as 1 rank x batch 8 after 3 steps (fp32 matrix products;
# tolerance 5e-5 relative to each tensor's largest value, as dist_test's on
# the CPU), with buckets small enough that several are all-reduced on the
# communication stream while backward runs (each ordered by an event after
# the kernels that produce it: without it the stream reduces gradients not
# yet computed and the comparison fails); the optimizer state sharded over
# the 2 ranks (NCCL reduce and broadcast) gives the same bits; and the
# 2-rank run's checkpoint resumes; in BF16 mode with the state sharded the
# bf16 weight mirror stays current (below).
#   usage: nccl_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
. "$(dirname "$0")/../lib.sh" nccl_test
t_work "$1" "$2" nccl-test
py=/usr/bin/python3
# LeakSanitizer does not survive Open MPI's teardown in the ASan build; the
# emulator's own memory checks are on regardless.
mpirun="mpirun --allow-run-as-root --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -x ASAN_OPTIONS=detect_leaks=0"
"$build/jit-prep" --synthetic 64 --out "$work/data" --size 16 --channels 1 --classes 4 --seed 3 >/dev/null || exit 1
cat >"$work/small.yaml" <<YAML
run: {name: nccl, seed: 11, device: cuda, precision: fp32}
model: {name: jit-tiny, img_size: 16, patch: 4, depth: 1, hidden: 32, heads: 2, bottleneck: 8,
        in_context_len: 2, in_context_start: 0, num_classes: 4, use_sla2: true,
        sla2_compression_ratio: 4, sla2_topk_ratio: 0.5}
data: {train: $work/data, batch_size: 8, prefetch: 1}
optim: {lr: 1.0e-3, warmup_steps: 2, ema: [0.99]}
train: {steps: 3, log_every: 1, checkpoint_every: 3}
sampling: {steps: 1, per_class: 1}
logging: {progress: false}
YAML
train() { # ranks out_dir batch [extra args]
  local np=$1 out=$2 b=$3
  shift 3
  $mpirun -np "$np" "$build/jit-train" --config "$work/small.yaml" --set run.out_dir="$out" \
    --set data.batch_size="$b" "$@" >"$out.log" 2>&1
}
fail=0
if train 1 "$work/np1" 8 && train 2 "$work/np2" 4 --set dist.bucket_mb=0.01; then
  grep -h "device:" "$work/np2.log" | head -1
  $py tests/compare_ckpts.py "$work/np1/ckpt/latest" "$work/np2/ckpt/latest" 5e-5 \
    "nccl_test: 2 ranks x 4 vs 1 rank x 8 on the emulated GPU" || fail=1
else
  echo "nccl_test: FAIL training runs"; tail -20 "$work"/np*.log; fail=1
fi
if [ $fail = 0 ]; then
  if train 2 "$work/np2s" 4 --set dist.bucket_mb=0.01 --set dist.shard_optimizer=true &&
    grep -q "overlapped with backward, optimizer state sharded" "$work/np2s.log" &&
    $py - "$work/np2/ckpt/latest" "$work/np2s/ckpt/latest" <<'PY'; then
import os, sys, h5py, numpy as np
f = [h5py.File(os.path.join(os.path.dirname(p), open(p).read().strip()), "r") for p in sys.argv[1:]]
for g in ("params", "ema/0", "optim/m", "optim/v"):
    for k in f[0][g]:
        assert np.array_equal(f[0][g][k][...], f[1][g][k][...]), f"{g}/{k}"
PY
    echo "nccl_test: sharded optimizer state on 2 ranks == unsharded (weights, EMA, moments bit-identical)"
  else
    echo "nccl_test: FAIL sharded != unsharded"; tail -20 "$work/np2s.log"; fail=1
  fi
fi
# BF16 mode, sharded: each rank's AdamW writes the bf16 weight mirror of
# its range only; the all-gather must mark the rest stale (Backend.written),
# or the emulator's mirror check stops the next step's first product.
if [ $fail = 0 ]; then
  if train 2 "$work/np2b" 4 --set dist.shard_optimizer=true --set run.precision=bf16 --set train.checkpoint_every=0; then
    echo "nccl_test: bf16 with the optimizer state sharded: every product's bf16 weights current after the all-gather"
  else
    echo "nccl_test: FAIL bf16 sharded"; tail -20 "$work/np2b.log"; fail=1
  fi
fi
if [ $fail = 0 ]; then
  if train 2 "$work/np2" 4 --set train.steps=4 --resume auto && grep -q "resumed from" "$work/np2.log"; then
    echo "nccl_test: the 2-rank GPU checkpoint resumes"
  else
    echo "nccl_test: FAIL resume"; tail -20 "$work/np2.log"; fail=1
  fi
fi
[ $fail = 0 ] && echo "nccl_test: PASS" || echo "nccl_test: FAIL"
exit $fail
