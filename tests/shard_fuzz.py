#!/usr/bin/python3
"""tests/shard_fuzz.py: corrupted shards are errors, never crashes or hangs.

  shard_fuzz.py --prep BUILD/jit-prep --work DIR [--mutants 400] [--seed 1]

A small shard (jit-prep --synthetic) is mutated byte-wise (1 to 4 random
bytes overwritten, or the file cut short) into --mutants files, each
checked with `jit-prep --check` under a 10 s timeout. Every run must exit 0
(the mutation hit nothing that matters) or 1 with a message naming the file;
a signal (crash) or the timeout (hang) fails the test. Also checks the
crafted shard whose image shape [1, 2^32, 2^32, 1] multiplies to 0 in 64 bits,
and that a flipped byte inside an image is caught by its Fletcher-32 checksum.
"""

import argparse
import collections
import os
import random
import shutil
import subprocess
import sys

import h5py
import numpy as np


def run_check(prep, path):
    try:
        r = subprocess.run([prep, "--check", path], capture_output=True, text=True, errors="replace", timeout=10)
    except subprocess.TimeoutExpired:
        return "hang", ""
    if r.returncode < 0:
        return f"signal {-r.returncode}", r.stderr
    if r.returncode == 0:
        return "ok", ""
    if r.returncode == 1 and path in r.stderr:
        return "error", r.stderr
    return f"exit {r.returncode}", r.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prep", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--mutants", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    subprocess.run([a.prep, "--synthetic", "24", "--out", os.path.join(a.work, "src"), "--size", "8",
                    "--channels", "1", "--classes", "3", "--per-shard", "24"], check=True, capture_output=True)
    src = open(os.path.join(a.work, "src", "synthetic-00000.h5"), "rb").read()
    rng = random.Random(a.seed)
    outcomes = collections.Counter()
    bad = []
    path = os.path.join(a.work, "mutant.h5")
    for i in range(a.mutants):
        data = bytearray(src)
        if i % 10 == 9:
            data = data[: rng.randrange(1, len(data))]          # cut short
        else:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        open(path, "wb").write(data)
        kind, err = run_check(a.prep, path)
        outcomes[kind] += 1
        if kind not in ("ok", "error"):
            keep = os.path.join(a.work, f"failing-{i:04d}.h5")
            shutil.copy(path, keep)
            bad.append((i, kind, keep, err.strip().splitlines()[-1:] if err else ""))
    print(f"shard_fuzz: {a.mutants} mutants of a {len(src)}-byte shard: " +
          ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    for i, kind, keep, err in bad:
        print(f"shard_fuzz: FAIL mutant {i}: {kind} (kept as {keep}) {err}")

    # a flipped byte in an image's stored bytes: caught by the checksum
    flipped = os.path.join(a.work, "flipped.h5")
    shutil.copy(os.path.join(a.work, "src", "synthetic-00000.h5"), flipped)
    with h5py.File(flipped, "r") as f:
        off = f["images"].id.get_chunk_info(5).byte_offset + 17
    data = bytearray(open(flipped, "rb").read())
    data[off] ^= 0x40
    open(flipped, "wb").write(data)
    kind, err = run_check(a.prep, flipped)
    flip_ok = kind == "error" and "images 0..23 cannot be read" in err
    print(f"shard_fuzz: {'ok  ' if flip_ok else 'FAIL'} a flipped pixel byte is an error ({kind})")

    # the crafted shape: 2^32 x 2^32 x 1 wraps to 0 in a 64-bit product
    crafted = os.path.join(a.work, "crafted.h5")
    shutil.copy(os.path.join(a.work, "src", "synthetic-00000.h5"), crafted)
    with h5py.File(crafted, "r+") as f:
        del f["images"]
        f.create_dataset("images", shape=(1, 2 ** 32, 2 ** 32, 1), dtype=np.uint8, chunks=(1, 1, 64, 1))
        del f["labels"]
        f["labels"] = np.zeros(1, np.int32)
    kind, err = run_check(a.prep, crafted)
    shape_ok = kind == "error" and "implausible image shape" in err
    print(f"shard_fuzz: {'ok  ' if shape_ok else 'FAIL'} a [1, 2^32, 2^32, 1] image shape is an error ({kind}: "
          f"{err.strip().splitlines()[-1] if err.strip() else ''})")
    return 1 if bad or not shape_ok or not flip_ok else 0


if __name__ == "__main__":
    sys.exit(main())
