#!/usr/bin/env bash
# tests/bench/run_bench_attn.sh — GPU attention in one command: our
# flash-style attention and SLA2 (bench_cuda_attn, FP32 and BF16 modes) beside
# PyTorch SDPA (bench_sdpa.py: flash in bf16, memory-efficient in fp32) at
# N = 256 ... 16384, d = 64. Prints every raw line, then a table of
# forward+backward ms and the ratios SDPA / ours (above 1: we are faster)
# and full / SLA2 (SLA2's speed-up over our own full attention).
#   usage: tests/bench/run_bench_attn.sh [BUILD_DIR] [ITERS] [MAX_N]
# Exit 77 (and a message) where there is no GPU; without PyTorch the SDPA
# columns are '-'.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
iters=${2:-10}
max_n=${3:-16384}
bench="$build/tests/bench/bench_cuda_attn"
py=${JIT_PYTHON:-/usr/bin/python3}
if [[ ! -x $bench ]]; then
    echo "run_bench_attn: $bench not found (configure with CUDA: nvcc on PATH, then build bench_cuda_attn)" >&2
    exit 1
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
run() { # append a program's lines; 77 = no GPU: stop here with its message
    "$@" >>"$out"
    local rc=$?
    if [[ $rc == 77 ]]; then echo "run_bench_attn: no GPU here: nothing measured" >&2; exit 77; fi
    if [[ $rc != 0 ]]; then echo "run_bench_attn: '$*' failed (exit $rc)" >&2; exit "$rc"; fi
}
run "$bench" --iters "$iters" --max-n "$max_n" --prec fp32
run "$bench" --iters "$iters" --max-n "$max_n" --prec bf16 --no-sla2
# SDPA is optional: without torch (or a GPU torch can use) the table shows '-'.
sdpa() {
    "$py" "$here/bench_sdpa.py" --iters "$iters" --max-n "$max_n" --dtype "$1" >>"$out"
    local rc=$?
    if [[ $rc == 77 ]]; then echo "run_bench_attn: SDPA $1 not measured (message above)" >&2; return 0; fi
    if [[ $rc != 0 ]]; then echo "run_bench_attn: bench_sdpa.py --dtype $1 failed (exit $rc)" >&2; exit "$rc"; fi
}
sdpa bf16
sdpa fp32
cat "$out"
echo
# total_ms of (kind, prec) at each N -> the table
awk '
    /^(attn|sdpa|sla2) / {
        n = ""; p = ""; t = "";
        for (i = 2; i <= NF; i++) {
            split($i, kv, "=");
            if (kv[1] == "N") n = kv[2]; else if (kv[1] == "prec") p = kv[2]; else if (kv[1] == "total_ms") t = kv[2];
        }
        ms[$1 "/" p "/" n] = t; if (!(n in seen)) { seen[n] = 1; order[++cnt] = n }
    }
    function r(a, b) { return (a != "" && b != "" && b + 0 > 0) ? sprintf("%.2f", a / b) : "-" }
    function v(x) { return x != "" ? x : "-" }
    END {
        printf "| N | ours fp32 ms | ours bf16 ms | SDPA fp32 (efficient) ms | SDPA bf16 (flash) ms | SDPA/ours fp32 | SDPA/ours bf16 | SLA2 0.15 fp32 ms | full/SLA2 |\n";
        printf "|---|---|---|---|---|---|---|---|---|\n";
        for (i = 1; i <= cnt; i++) {
            n = order[i];
            af = ms["attn/fp32/" n]; ab = ms["attn/bf16/" n]; sf = ms["sdpa/fp32/" n]; sb = ms["sdpa/bf16/" n]; l = ms["sla2/fp32/" n];
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", n, v(af), v(ab), v(sf), v(sb), r(sf, af), r(sb, ab), v(l), r(af, l);
        }
    }' "$out"
