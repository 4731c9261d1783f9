#!/usr/bin/env bash
# tests/suite_cores_test.sh — every test says how many cores it keeps busy:
# the suite runs two tests at a time (scripts/test.sh: ctest -j2), and a test
# that shares the machine without having declared it can (label one_core, or
# a cuda_emu test of the emulator build; tests/CMakeLists.txt:
# jit_test_cores) would run its two OpenMP threads or two MPI ranks beside
# another test's. A CMakeLists.txt that adds tests without calling
# jit_test_cores() leaves them at ctest's default of one core: found here.
set -euo pipefail
build=$1
check=$(cat <<'PY'
import json, sys
bad = []
tests = json.load(sys.stdin)["tests"]
for t in tests:
    name = t["name"]
    props = {p["name"]: p["value"] for p in t.get("properties", [])}
    labels = props.get("LABELS", [])
    cores = int(props.get("PROCESSORS", 1))
    env = props.get("ENVIRONMENT_MODIFICATION", [])
    pinned = "OMP_NUM_THREADS=set:1" in env
    one = "one_core" in labels or ("cuda_emu" in labels and "mpi" not in labels and pinned)
    if one and (cores != 1 or not pinned):
        bad.append(f"{name}: labelled for one core but PROCESSORS={cores}, environment {env}")
    if not one and cores != 2:
        bad.append(f"{name}: PROCESSORS={cores} without the one_core label (is jit_test_cores() called in its CMakeLists.txt?)")
for b in bad:
    print("suite_cores_test: FAIL", b)
print(f"suite_cores_test: {len(tests)} tests, {len(bad)} undeclared")
sys.exit(1 if bad else 0)
PY
)
ctest --test-dir "$build" -N --show-only=json-v1 | python3 -c "$check"
