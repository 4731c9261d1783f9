#!/usr/bin/env bash
# tests/gpu/probe_test.sh SOURCE_DIR BUILD_DIR — the GPU check cannot trip
# on set-up, shown without a GPU: with a fake driver (a libcuda.so.1 whose
# cuDriverGetVersion answers an older CUDA), cuda_probe fails with exit 3 and
# both version numbers; run_gpu_checks.sh stops at its first step with that
# message and reports every later step as not run for that reason (not as
# "no GPU"); a program of the CUDA backend says the same once instead of
# quietly finding no device; a fake driver of the runtime's own version but
# no device fails with exit 5; and with no driver at all (where this machine
# has none) exit 4. Each check prints what it saw when it fails.
set -uo pipefail
src=$1 build=$2
probe=$build/tests/gpu/cuda_probe
[[ -x $probe ]] || { echo "probe_test: $probe not built"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/probe-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
bad=0
fail() { echo "probe_test: FAIL: $*"; bad=1; }
# fake_driver VERSION: a folder holding a libcuda.so.1 of that version that finds no device
fake_driver() {
  local d=$work/driver-$1
  mkdir -p "$d"
  printf 'int cuDriverGetVersion(int *v) { *v = %d; return 0; }\nint cuInit(unsigned f) { return 100; }\n' "$1" >"$d/f.c"
  ${CC:-cc} -shared -fPIC -o "$d/libcuda.so.1" "$d/f.c" || { echo "probe_test: cannot build a fake driver"; exit 1; }
  echo "$d"
}

# 1. a driver older than the runtime: exit 3, both numbers
old=$(fake_driver 12080)
out=$(LD_LIBRARY_PATH=$old "$probe" 2>&1)
rc=$?
rt=$(sed -n -E 's/.*runtime=([0-9]+).*/\1/p' <<<"$out" | head -1)
[[ $rc == 3 ]] || fail "old driver: exit $rc, not 3: $out"
[[ $out == *"(12080)"* && -n $rt && $out == *"($rt)"* ]] || fail "old driver: the message lacks both versions: $out"
echo "probe_test: old driver -> exit $rc: $(grep FAIL <<<"$out")"

# 2. the whole check stops there, loudly
mkdir -p "$work/bin"
cp "$probe" "$work/bin/"
out=$(cd "$src" && LD_LIBRARY_PATH=$old tests/gpu/run_gpu_checks.sh --bin "$work/bin" --budget 120 --out "$work/out" 2>&1)
rc=$?
((rc >= 1)) || fail "run_gpu_checks.sh exited $rc with an old driver"
grep -qE '^a0 cuda_probe +FAIL .*CUDA 12\.8 \(12080\) is older than the runtime' <<<"$out" ||
  fail "run_gpu_checks.sh: no FAIL row for a0 naming the versions"
n_not_run=$(grep -cE '^[a-g][0-9]* [a-z_]+ +skipped +0 +not run: the CUDA probe failed' <<<"$out")
((n_not_run == 9)) || fail "run_gpu_checks.sh: $n_not_run later steps say 'not run: the CUDA probe failed', not 9"
grep -qE 'no GPU|no CUDA device' <<<"$(grep -E '^[a-g][0-9]* ' <<<"$out")" && fail "run_gpu_checks.sh blames 'no GPU'"
((bad)) && echo "$out" | tail -16
echo "probe_test: run_gpu_checks.sh -> exit $rc, a0 FAIL, $n_not_run steps not run"

# 3. a program of the CUDA backend names the cause instead of finding no device
out=$(LD_LIBRARY_PATH=$old "$build/tests/bench/bench_perf_model" --config "$src/configs/fmnist-tiny-full.yaml" \
  --max-n 256 --measure 2>&1 >/dev/null)
rc=$?
[[ $rc == 77 && $out == *"driver supports CUDA 12.8 but this program's runtime is CUDA"* ]] ||
  fail "bench_perf_model --measure with an old driver: exit $rc, stderr: $out"

# 4. a driver of the runtime's version that finds no device: exit 5
same=$(fake_driver "$rt")
out=$(LD_LIBRARY_PATH=$same "$probe" 2>&1)
rc=$?
[[ $rc == 5 && $out == *"no usable CUDA device"* ]] || fail "driver $rt without a device: exit $rc: $out"

# 5. no driver at all (only where this machine has none)
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
  out=$(env -u LD_LIBRARY_PATH "$probe" 2>&1)
  rc=$?
  [[ $rc == 4 && $out == *"no CUDA driver"* ]] || fail "no driver: exit $rc: $out"
else
  echo "probe_test: this machine has a CUDA driver: the no-driver case not checked"
fi
((bad)) && exit 1
echo "probe_test: ok"
