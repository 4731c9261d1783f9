#!/usr/bin/env bash
# tests/cuda_emu/run_emu.sh — checks the logic of the CUDA attention and SLA2
# kernels without a GPU: compiles kernels/cuda/{attention,sla2*}.cu for the
# CPU emulator (emu_rt.h; launches rewritten by transform.py) together with
# the CPU reference, and runs emu_attn (FP32 and BF16 cases against the CPU).
# Indexing, tiling and barrier errors show; speed and the GPU's last bits do
# not. Minutes on one core (all cases), so not a ctest test; run it after
# changing those kernels on a machine without a GPU.
#   usage: tests/cuda_emu/run_emu.sh [WORK_DIR] [CASE] [ORDER]
#   (CASE: one case index, -1 = all; ORDER: 0 forward, 1 reverse, 2 random)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
work=${1:-/tmp/cuda_emu}
mkdir -p "$work/gen"
cf=(-O1 -ffp-contract=off -I"$here/shadow" -I"$here" -I"$src")
for f in attention sla2 sla2_router sla2_sparse sla2_qat sla2_linear; do
    python3 "$here/transform.py" "$src/kernels/cuda/$f.cu" "$work/gen/$f.cc"
    g++ -std=c++17 "${cf[@]}" -w -c "$work/gen/$f.cc" -o "$work/gen/$f.o"
done
g++ -std=c++17 "${cf[@]}" -c "$here/emu_rt.cc" -o "$work/emu_rt.o"
g++ -std=c++17 "${cf[@]}" -c "$here/emu_attn.cc" -o "$work/emu_attn.o"
blas_cflags=$(pkg-config --cflags openblas)
for f in kernels/cpu/attention kernels/cpu/sla2 kernels/cpu/sla2_router kernels/cpu/sla2_qat kernels/cpu/quant \
         kernels/cpu/elementwise core/check core/rng; do
    gcc -O2 -ffp-contract=off -fopenmp -I"$src" $blas_cflags -c "$src/$f.c" -o "$work/cpu_$(basename "$f").o"
done
g++ -fopenmp -o "$work/emu_attn" "$work/emu_attn.o" "$work/emu_rt.o" "$work"/gen/*.o "$work"/cpu_*.o -lopenblas -lm
OMP_NUM_THREADS=1 "$work/emu_attn" "${2:--1}" "${3:-2}"
