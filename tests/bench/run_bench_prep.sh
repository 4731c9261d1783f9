#!/usr/bin/env bash
# tests/bench/run_bench_prep.sh — jit-prep --image-dir throughput on
# ImageNet-sized JPEGs: N files of about 500x375 and 375x500 (quality 90,
# smooth random content, made with PIL) in 4 class folders, converted to
# 256 x 256 RGB by ADM's centre crop, serial (--threads 1), on all threads
# (--threads T), and as 2 MPI ranks of 1 thread. Two figures, from the
# fastest of REPS runs (page cache warm): files over the wall time of the
# whole command (with mpirun's start-up, ~0.35 s here, for the MPI row), and
# jit-prep's own figure (listing, decoding, resizing and writing the shards).
#   usage: tests/bench/run_bench_prep.sh [BUILD_DIR] [N] [REPS]
set -euo pipefail
build=${1:-build}
n=${2:-200}
reps=${3:-3}
threads=$(nproc)
work=$(mktemp -d /tmp/jit-bench-prep-XXXXXX)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$work/jpegs" "$n" <<'PY'
import os, sys
import numpy as np
from PIL import Image
out, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
for i in range(n):
    w, h = (500, 375) if i % 2 == 0 else (375, 500)
    w += int(rng.integers(-20, 21)); h += int(rng.integers(-20, 21))
    # smooth content: a random 8x6 colour field upsampled, plus mild noise
    base = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
    a = np.clip(np.asarray(base, np.float32) + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    d = os.path.join(out, f"n{i % 4:08d}")
    os.makedirs(d, exist_ok=True)
    Image.fromarray(a).save(os.path.join(d, f"img_{i:05d}.JPEG"), quality=90)
PY
best() { # label, command...: the fastest of $reps runs
  local label=$1 t b="" ips bips=""
  shift
  for _ in $(seq "$reps"); do
    rm -rf "$work/out"
    /usr/bin/time -f %e -o "$work/time" "$@" --out "$work/out" >"$work/log" 2>&1
    t=$(tail -1 "$work/time")
    # jit-prep's own figure: from the listing to the last shard, without the process and MPI start-up
    ips=$(sed -n 's/.* s, \([0-9.]*\) images\/s on .*/\1/p' "$work/log")
    if [ -z "$b" ] || awk -v t="$t" -v b="$b" 'BEGIN{exit !(t < b)}'; then b=$t; bips=$ips; fi
  done
  awk -v n="$n" -v t="$b" -v l="$label" -v i="$bips" \
    'BEGIN{printf "%-28s %6.2f s  %7.1f images/s (whole run)  %7.1f images/s (jit-prep'"'"'s own timing)\n", l, t, n / t, i}'
}
# 8 shards of 25: MPI ranks split the work by shards (ImageNet at 10000 a shard makes 129)
args=(--image-dir "$work/jpegs" --size 256 --channels 3 --per-shard $(((n + 7) / 8)))
echo "jit-prep: $n JPEGs of ~500x375 -> 256x256 RGB (center-crop), best of $reps, $(nproc) CPUs"
best "serial (--threads 1)" "$build/jit-prep" "${args[@]}" --threads 1
best "--threads $threads" "$build/jit-prep" "${args[@]}" --threads "$threads"
if command -v mpirun >/dev/null; then
  best "mpirun -np 2, 1 thread each" mpirun --oversubscribe --allow-run-as-root --bind-to none -np 2 \
    "$build/jit-prep" "${args[@]}" --threads 1
fi
