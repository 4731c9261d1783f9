#!/usr/bin/env bash
# tests/bench/run_bench_blas.sh — what the OpenBLAS core is worth: the
# fmnist-tiny training step (SLA2 at step 600, bench_profile) and sgemm, per
# core, in alternating rounds so the machine's drift falls on all alike:
# Prescott (OpenBLAS's SSE3 fallback on CPUs it does not know), Haswell
# (AVX2), SkylakeX (AVX-512; what the programs choose over a fallback on an
# AVX-512 CPU, reached here through JIT_BLAS_CORE as the programs do), and
# OpenBLAS's own pick with no override. Cores the CPU cannot run are skipped.
#   usage: tests/bench/run_bench_blas.sh [BUILD_DIR] [ROUNDS] [THREADS]
set -euo pipefail
build=${1:-build}
rounds=${2:-2}
threads=${3:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/jit-prep" --synthetic 1024 --out "$work/data" --size 32 --channels 1 --classes 10 >/dev/null
flags=$(grep -m1 '^flags' /proc/cpuinfo)
modes=(Prescott)
[[ " $flags " == *" avx2 "* ]] && modes+=(Haswell)
[[ " $flags " == *" avx512bw "* ]] && modes+=(SkylakeX)
modes+=(own)
for r in $(seq "$rounds"); do
    for m in "${modes[@]}"; do
        case $m in
            own) env=(env -u OPENBLAS_CORETYPE JIT_BLAS_CORE=keep) ;;
            SkylakeX) env=(env -u OPENBLAS_CORETYPE JIT_BLAS_CORE=SkylakeX) ;;
            *) env=(env OPENBLAS_CORETYPE="$m") ;;
        esac
        out=$("${env[@]}" OMP_NUM_THREADS="$threads" "$build/tests/bench/bench_profile" --config configs/fmnist-tiny.yaml \
            --at-step 600 --steps 8 --warmup 3 --set data.train="$work/data" --set run.out_dir="$work/run-$m" 2>&1)
        printf 'round %s %-8s | %s | %s | %s\n' "$r" "$m" "$(grep '^blas:' <<<"$out")" "$(grep '^step' <<<"$out")" \
            "$(grep -m1 'sgemm on this machine' <<<"$out")"
    done
done
