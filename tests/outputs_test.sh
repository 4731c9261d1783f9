#!/usr/bin/env bash
# tests/outputs_test.sh — outputs are written under a temporary name and
# renamed when complete (issue 28, item 8: jit-sample's PNG and HDF5 files
# were written in place, so a SIGTERM or a full disk left a 0-byte or
# partial file under the final name). A write is made to fail by a file
# size limit (ulimit -f, with SIGXFSZ ignored so write() returns EFBIG, as
# on a full disk), which works without root:
#   1. jit-sample's PNG cannot be written: exit 1 naming it, no file under
#      the final name, no temporary file left;
#   2. the PNG fits but the HDF5 samples do not: the PNG is complete, the
#      HDF5 file absent, nothing temporary left;
#   3. jit-prep's shard cannot be written: no shard under its final name,
#      no temporary file, no manifest;
#   4. successful runs leave the outputs and no temporary file.
#   usage: outputs_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh" outputs_test
t_work "$1" "$2" outputs-test
mkdir -p "$work/out"
py=/usr/bin/python3
no_tmp() { [ -z "$(find "$1" -name '*.tmp*')" ]; }
# limited KB CMD...: run CMD with files limited to KB kilobytes; its exit code
limited() {
  local kb=$1 rc=0
  shift
  (trap '' XFSZ; ulimit -f "$kb"; exec timeout 120 "$@") >"$work/log" 2>&1 </dev/null || rc=$?
  return $rc
}

"$build/jit-prep" --synthetic 32 --out "$work/data" --size 32 --channels 1 --classes 10 >/dev/null || exit 1
"$build/jit-train" --config configs/fmnist-tiny-full.yaml --set data.train="$work/data" --set run.out_dir="$work/run" \
  --set train.steps=1 --set data.batch_size=4 --set sampling.per_class=1 --set sampling.steps=1 \
  --set logging.progress=false >"$work/train.log" 2>&1 || { cat "$work/train.log"; exit 1; }
sample=("$build/jit-sample" --checkpoint "$work/run/ckpt" --steps 1 --per-class 8 --out "$work/out/s.png")

# 1. the PNG (about 40 KB of noise) does not fit in 8 KB
rc=0; limited 8 "${sample[@]}" || rc=$?
check "PNG write fails: exit 1 naming the file" bash -c "[ $rc = 1 ] && grep -q 's.png' '$work/log'"
check "PNG write fails: nothing under the final name" [ ! -e "$work/out/s.png" ]
check "PNG write fails: no temporary file left" no_tmp "$work/out"

# 2. the PNG fits in 200 KB, the HDF5 samples (80 x 32 x 32 floats, 320 KB) do not
rc=0; limited 200 "${sample[@]}" --h5 "$work/out/s.h5" || rc=$?
check "HDF5 write fails: exit 1 naming the file" bash -c "[ $rc = 1 ] && grep -q 's.h5' '$work/log'"
check "HDF5 write fails: nothing under the final name" [ ! -e "$work/out/s.h5" ]
check "HDF5 write fails: the PNG before it is complete" "$py" -c "
from PIL import Image; import sys; Image.open(sys.argv[1]).load()" "$work/out/s.png"
check "HDF5 write fails: no temporary file left" no_tmp "$work/out"

# 3. jit-prep: shards of 400 images of 32 x 32 (~420 KB) do not fit in 300 KB: the first fails
rc=0; limited 300 "$build/jit-prep" --synthetic 1000 --out "$work/prep" --size 32 --channels 1 --classes 4 \
  --per-shard 400 || rc=$?
# Not always 1: libhdf5 can crash at exit closing a shard whose write failed
# (docs/robustness.md, known limits); what matters here is what is left.
check "shard write fails: exits non-zero ($rc)" [ "$rc" != 0 ]
check "shard write fails: no shard under its final name" bash -c "! ls '$work/prep'/*.h5 2>/dev/null | grep -q ."
check "shard write fails: no manifest" bash -c "! ls '$work/prep'/*.manifest.json 2>/dev/null | grep -q ."
check "shard write fails: no temporary file left" no_tmp "$work/prep"

# 4. success
rc=0; "${sample[@]}" --h5 "$work/out/s.h5" >"$work/log" 2>&1 || rc=$?
check "success: exit 0, PNG and HDF5 written" bash -c "[ $rc = 0 ] && [ -s '$work/out/s.png' ] && [ -s '$work/out/s.h5' ]"
check "success: no temporary file left (samples, run, data)" bash -c \
  "[ -z \"\$(find '$work/out' '$work/run' '$work/data' -name '*.tmp*')\" ]"

t_done
