#!/usr/bin/env bash
# tests/manifest_test.sh — a prepared data set says when it is complete
# (issue 28, item 7: a jit-prep killed between shards left 2 of 6 shards,
# `jit-prep --check` passed and jit-train trained on 400 of 1200 images,
# all of class 0). jit-prep writes OUT/<prefix>.manifest.json last; the
# loader (jit-train) and `jit-prep --check` refuse:
#   1. a set with a shard deleted after prep, naming the missing shard;
#   2. a set whose manifest is missing (jit-prep killed before the end);
#   3. a stray shard from another run in the directory;
#   4. a shard whose bytes changed (--check: its CRC-32);
# and accept a set made before manifests (no "manifest" attribute, no
# manifest file) with a notice, a complete set silently, one shard by
# name, and a directory of links to some shards of a set (a selection,
# each checked against the manifest beside the file it points at).
#   usage: manifest_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
. "$(dirname "$0")/lib.sh" manifest_test
t_work "$1" "$2" manifest-test
py=/usr/bin/python3
# expect NAME WANT_RC NEEDLE CMD...: exit code WANT_RC ("nonzero" for any
# failure) and NEEDLE in the output.
expect() {
  local name=$1 want=$2 needle=$3 rc=0
  shift 3
  timeout -k 2 60 "$@" >"$work/out.log" 2>&1 </dev/null || rc=$?
  local ok=1
  if [ "$want" = nonzero ]; then [ "$rc" != 0 ] && [ "$rc" != 124 ] || ok=0; else [ "$rc" = "$want" ] || ok=0; fi
  grep -qF -- "$needle" "$work/out.log" || ok=0
  if [ $ok = 1 ]; then
    ok "$name (exit $rc: $(grep -F -- "$needle" "$work/out.log" | head -1 | cut -c1-200))"
  else
    bad "$name (exit $rc, wanted $want and '$needle'):"
    tail -5 "$work/out.log"
  fi
}
prep() { "$build/jit-prep" --synthetic 1200 --out "$1" --size 8 --channels 1 --classes 2 --per-shard 200 >/dev/null; }
# jit-train for one step; data.train is added by each call
train=("$build/jit-train" --config configs/fmnist-tiny.yaml --set run.out_dir="$work/run" --set model.img_size=8
       --set model.patch=4 --set model.num_classes=2 --set train.steps=1 --set data.batch_size=4
       --set train.sample_every=0 --set sampling.per_class=1 --set sampling.steps=1 --set logging.progress=false)

prep "$work/full"
expect "a complete set: --check passes" 0 "6 shards, 1200 images" "$build/jit-prep" --check "$work/full"
expect "the manifest is there" 0 '"file": "synthetic-00005.h5"' cat "$work/full/synthetic.manifest.json"

prep "$work/gap"
rm "$work/gap/synthetic-00001.h5"
expect "a deleted shard: --check refuses, naming it" nonzero "shard synthetic-00001.h5, listed in the manifest" \
  "$build/jit-prep" --check "$work/gap"
expect "a deleted shard: jit-train refuses, naming it" nonzero "shard synthetic-00001.h5, listed in the manifest" \
  "${train[@]}" --set data.train="$work/gap"

prep "$work/killed"
rm "$work/killed/synthetic.manifest.json" "$work/killed"/synthetic-0000[2-5].h5
expect "no manifest (killed prep): --check refuses" nonzero "which is missing: the set was not finished" \
  "$build/jit-prep" --check "$work/killed"
expect "no manifest (killed prep): jit-train refuses" nonzero "which is missing: the set was not finished" \
  "${train[@]}" --set data.train="$work/killed"

prep "$work/stray"
cp "$work/full/synthetic-00000.h5" "$work/stray/synthetic-00009.h5"
expect "a stray shard: --check refuses, naming it" nonzero "synthetic-00009.h5 is not listed in its manifest" \
  "$build/jit-prep" --check "$work/stray"

prep "$work/resized"
"$py" - "$work/resized/synthetic-00003.h5" <<'PY'
import h5py, sys
with h5py.File(sys.argv[1], "r+") as f:   # rewritten metadata: HDF5's own checksums still hold
    f.attrs["height"] = f.attrs["height"]
PY
expect "a rewritten shard: jit-train refuses by its size" nonzero "synthetic-00003.h5 is"  \
  "${train[@]}" --set data.train="$work/resized"
# A byte change that keeps the size and HDF5's checksums is hard to make on
# purpose: the manifest's CRC-32 is changed instead, to the same effect.
prep "$work/changed"
sed -i '/synthetic-00003.h5/s/"crc32": [0-9]*/"crc32": 12345/' "$work/changed/synthetic.manifest.json"
expect "a changed shard: --check refuses by its CRC-32" nonzero "synthetic-00003.h5: CRC-32 of the file is" \
  "$build/jit-prep" --check "$work/changed"
expect "a changed shard: jit-train does not read every byte (opens as before)" 0 "step 1" \
  "${train[@]}" --set data.train="$work/changed"

prep "$work/legacy"
rm "$work/legacy/synthetic.manifest.json"
"$py" - "$work"/legacy/*.h5 <<'PY'
import h5py, sys
for p in sys.argv[1:]:
    with h5py.File(p, "r+") as f:
        del f.attrs["manifest"]
PY
expect "a set made before manifests: --check accepts with a notice" 0 "made before jit-prep wrote manifests" \
  "$build/jit-prep" --check "$work/legacy"
expect "one shard by name: accepted" 0 "1 shard, 200 images" "$build/jit-prep" --check "$work/full/synthetic-00002.h5"

mkdir -p "$work/links"
ln -s "$work/full/synthetic-00001.h5" "$work/full/synthetic-00004.h5" "$work/links/"
expect "a directory of links to 2 shards of a set: accepted, checked against their manifest" 0 "2 shards, 400 images" \
  "$build/jit-prep" --check "$work/links"

t_done
