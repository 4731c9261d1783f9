#!/usr/bin/env bash
# tests/gpu/run_gpu_checks.sh [OUT_DIR] — the checks of the CUDA backend on a
# GPU machine, from the bundle that scripts/gpu_bundle.sh made (.gpu/):
#   1. every CUDA op test (test_cuda_*) against the CPU reference;
#   2. the same under compute-sanitizer memcheck and racecheck (when the tool
#      is there and the device supports it);
#   3. the benchmarks (bench_cuda_*), and PyTorch SDPA beside the attention one.
# Logs go to OUT_DIR (default: $OUT when set, else gpu-checks/). Exit code: the
# number of failed steps (0 = all passed).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-${OUT:-gpu-checks}}
mkdir -p "$out"
export LD_LIBRARY_PATH="$PWD/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="/usr/local/cuda/bin:$PATH"
[ -d .gpu/bin ] || { echo "run_gpu_checks: no .gpu/bin: run scripts/gpu_bundle.sh first and carry .gpu" >&2; exit 100; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
failed=0
step() { # step NAME COMMAND...: run, log to OUT/NAME.log, report
  local name=$1
  shift
  local t0=$SECONDS
  if "$@" >"$out/$name.log" 2>&1; then echo "run_gpu_checks: ok   $name ($((SECONDS - t0)) s)"
  else echo "run_gpu_checks: FAIL $name (exit $?, $((SECONDS - t0)) s): tail of $out/$name.log:"; tail -20 "$out/$name.log"; failed=$((failed + 1)); fi
}
for t in .gpu/bin/test_cuda_*; do step "$(basename "$t")" "$t" --jobs 1; done
if command -v compute-sanitizer >/dev/null; then
  for t in .gpu/bin/test_cuda_*; do
    for tool in memcheck racecheck; do
      step "$(basename "$t").$tool" compute-sanitizer --tool "$tool" --error-exitcode 1 "$t" --jobs 1 --no-early-exit
    done
  done
else echo "run_gpu_checks: compute-sanitizer not found: sanitizer runs skipped"; fi
for b in .gpu/bin/bench_cuda_*; do step "$(basename "$b")" "$b"; done
if [ -f tests/bench/bench_sdpa.py ]; then step bench_sdpa python3 tests/bench/bench_sdpa.py; fi
echo "run_gpu_checks: $failed step(s) failed; logs in $out"
exit $failed
