#!/usr/bin/python3
"""tests/fuzz.py: hostile inputs are errors, never crashes or hangs.

  fuzz.py shards --bin BUILD --work DIR [--mutants 600] [--seed 1]
  fuzz.py config --bin BUILD --work DIR [--mutants 600] [--seed 1]
  fuzz.py rundir --bin BUILD --work DIR [--ops 12] [--seed 1]

A mutational driver. Each mutant is checked by the real program under a
10 s timeout and must exit 0 (the mutation changed nothing that matters) or
1 with a message naming the input; a signal (crash) or the timeout (hang)
fails the run, and the mutant is kept in DIR as failing-NNNN.* to become a
regression input (tests/fuzz_corpus/).

- shards: a small jit-prep --synthetic shard and a legacy one (variable-length
  string attributes, tests/fuzz_corpus/legacy-vlen-ok.h5), 1 to 4 bytes
  overwritten or the file cut short, checked with `jit-prep --check`; the
  corpus's legacy-vlen-heap-crash-*.h5 and -loop-*.h5 (they crashed libhdf5
  or made it loop) must be errors. Also: a crafted
  [1, 2^32, 2^32, 1] image shape (its product wraps to 0 in 64 bits) and a
  flipped byte inside an image (caught by the Fletcher-32 checksum).
- config: the seed corpus is configs/*.yaml plus tests/fuzz_corpus/*.yaml
  (inputs that once crashed); mutations flip bytes, cut, delete, duplicate
  or swap lines, and put extreme values (huge, negative, NaN, empty, lists,
  maps, deep nesting) in place of scalars; checked with
  `jit-train --config MUTANT --print-config` (load and validate, no training).
- rundir: not a mutational target but a random sequence of operations on one
  run directory (start, --overwrite, --resume auto, a resume with keep_last
  1..3, a trainer killed at a random moment, two trainers at once), each
  followed by the invariants: "latest" names the current run's newest
  checkpoint and it loads; nothing of the current run at or above it, and
  nothing of another run, was deleted; a finished trainer leaves no .tmp
  and an empty run.lock.

The test command runs 600 shard and 300 config mutants and 12 run-directory
operations; a longer run
is the same command with --mutants 1000000 --seconds 600 (docs/robustness.md).
"""

import argparse
import collections
import time
import os
import random
import shutil
import subprocess
import sys

import h5py
import numpy as np


def run_check(cmd, path):
    """Run cmd (which reads path); classify: ok, error (exit 1 naming path), signal, hang."""
    # A legacy shard's heap read runs in a child with a time limit (io/shards_legacy.c):
    # 3 s here, so a libhdf5 loop shows as the error it becomes, well within the 10 s.
    env = dict(os.environ, JIT_LEGACY_READ_SECONDS="3")
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                           timeout=10, env=env)
    except subprocess.TimeoutExpired:
        return "hang", ""
    if r.returncode < 0:
        return f"signal {-r.returncode}", r.stderr
    if r.returncode == 0:
        return "ok", ""
    if r.returncode == 1 and path in r.stderr:
        return "error", r.stderr
    return f"exit {r.returncode}", r.stderr


def fuzz_shards(a):
    a.prep = os.path.join(a.bin, "jit-prep")
    subprocess.run([a.prep, "--synthetic", "24", "--out", os.path.join(a.work, "src"), "--size", "8",
                    "--channels", "1", "--classes", "3", "--per-shard", "24"], check=True, capture_output=True)
    src = open(os.path.join(a.work, "src", "synthetic-00000.h5"), "rb").read()
    # Shards written before the fixed-length attributes (variable-length
    # strings in the global heap, read in a child process): half the mutants
    # come from one, and the corpus holds the ones that crashed libhdf5.
    corpus = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz_corpus")
    legacy = open(os.path.join(corpus, "legacy-vlen-ok.h5"), "rb").read()
    corpus_ok = True
    for name in sorted(n for n in os.listdir(corpus) if n.endswith(".h5")):
        entry = os.path.join(corpus, name)
        kind, err = run_check([a.prep, "--check", entry], entry)
        want = "ok" if name.endswith("-ok.h5") else "error"
        print(f"shard_fuzz: {'ok  ' if kind == want else 'FAIL'} corpus {name}: {kind}, expected {want}")
        corpus_ok &= kind == want
    # A killed check must not leave its reading child looping in libhdf5.
    loop = os.path.join(a.work, "loop.h5")
    shutil.copy(os.path.join(corpus, "legacy-vlen-heap-loop-1.h5"), loop)
    try:
        subprocess.run([a.prep, "--check", loop], capture_output=True, timeout=1,
                       env=dict(os.environ, JIT_LEGACY_READ_SECONDS="30"))
    except subprocess.TimeoutExpired:
        pass
    time.sleep(1.5)
    def cmdline(pid):
        try:
            return open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:   # gone meanwhile
            return b""
    left = [p for p in os.listdir("/proc") if p.isdigit() and loop.encode() in cmdline(p)]
    print(f"shard_fuzz: {'ok  ' if not left else 'FAIL'} a killed check leaves no process behind ({len(left)} left)")
    corpus_ok &= not left
    rng = random.Random(a.seed)
    outcomes = collections.Counter()
    bad = []
    path = os.path.join(a.work, "mutant.h5")
    t_end = time.time() + a.seconds if a.seconds else None
    for i in range(a.mutants):
        if t_end and time.time() > t_end:
            a.mutants = i
            break
        data = bytearray(src if i % 2 == 0 else legacy)
        if i % 10 == 9:
            data = data[: rng.randrange(1, len(data))]          # cut short
        else:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        open(path, "wb").write(data)
        kind, err = run_check([a.prep, "--check", path], path)
        outcomes[kind] += 1
        if kind not in ("ok", "error"):
            keep = os.path.join(a.work, f"failing-{i:04d}.h5")
            shutil.copy(path, keep)
            bad.append((i, kind, keep, err.strip().splitlines()[-1:] if err else ""))
    print(f"shard_fuzz: {a.mutants} mutants of a {len(src)}-byte shard and a {len(legacy)}-byte legacy one: " +
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
    kind, err = run_check([a.prep, "--check", flipped], flipped)
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
    kind, err = run_check([a.prep, "--check", crafted], crafted)
    shape_ok = kind == "error" and "implausible image shape" in err
    print(f"shard_fuzz: {'ok  ' if shape_ok else 'FAIL'} a [1, 2^32, 2^32, 1] image shape is an error ({kind}: "
          f"{err.strip().splitlines()[-1] if err.strip() else ''})")
    return 1 if bad or not shape_ok or not flip_ok or not corpus_ok else 0


VALUES = ["0", "-1", "-2147483648", "2147483647", "4294967296", "1e309", "-1e309", "1e-50", ".nan", ".inf",
          "''", "[]", "{}", "[1, 2, 3]", "{a: 1}", "null", "true", "~", "'\\x00'", "[[[[[[[[[[1]]]]]]]]]]",
          "0x7fffffff", "65536", "-0.0", "3.4e38", "&a 1", "*a", "!!binary AAAA"]


def mutate_text(text, rng):
    lines = text.split("\n")
    op = rng.randrange(7)
    if op == 0:                                   # flip bytes
        b = bytearray(text.encode())
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if op == 1:                                   # cut short
        return text.encode()[: rng.randrange(len(text))]
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    if op == 2:
        del lines[i]
    elif op == 3:
        lines.insert(i, lines[j])
    elif op == 4:
        lines[i], lines[j] = lines[j], lines[i]
    else:                                         # an extreme value for a scalar
        for _ in range(rng.randint(1, 3)):
            k = rng.randrange(len(lines))
            if ":" in lines[k]:
                key = lines[k].split(":", 1)[0]
                lines[k] = f"{key}: {rng.choice(VALUES)}"
    return "\n".join(lines).encode()


def fuzz_config(a):
    train = os.path.join(a.bin, "jit-train")
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    seeds = sorted(os.path.join(root, "configs", n) for n in os.listdir(os.path.join(root, "configs"))
                   if n.endswith(".yaml"))
    corpus = os.path.join(here, "fuzz_corpus")
    seeds += sorted(os.path.join(corpus, n) for n in os.listdir(corpus) if n.endswith(".yaml"))
    texts = [open(p, errors="replace").read() for p in seeds]
    rng = random.Random(a.seed)
    outcomes = collections.Counter()
    bad = []
    path = os.path.join(a.work, "mutant.yaml")
    inputs = [(p, t.encode()) for p, t in zip(seeds, texts)]   # the corpus itself first
    t_end = time.time() + a.seconds if a.seconds else None
    n_seed = len(inputs)

    def stream():
        yield from inputs
        for _ in range(a.mutants):
            if t_end and time.time() > t_end:
                return
            yield None, mutate_text(rng.choice(texts), rng)
    done = 0
    for i, (origin, data) in enumerate(stream()):
        done = i + 1
        open(path, "wb").write(data)
        kind, err = run_check([train, "--config", path, "--print-config"], path)
        if origin:   # configs/ must load; the regression corpus must be refused
            want = "error" if "fuzz_corpus" in origin else "ok"
            if kind != want:
                kind = f"seed {os.path.basename(origin)}: {kind}, expected {want}"
        if kind == "error" and not err.strip():
            kind = "error without a message"
        outcomes[kind] += 1
        if kind not in ("ok", "error"):
            keep = os.path.join(a.work, f"failing-{i:04d}.yaml")
            open(keep, "wb").write(data)
            bad.append((i, kind, keep, err.strip().splitlines()[-1:] if err else ""))
    print(f"config_fuzz: {len(seeds)} seeds, {done - n_seed} mutants: " +
          ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    for i, kind, keep, err in bad:
        print(f"config_fuzz: FAIL input {i}: {kind} (kept as {keep}) {err}")
    return 1 if bad else 0


RUNDIR_YAML = """run: {{name: fuzz, seed: 5}}
model: {{name: jit-tiny, img_size: 16, patch: 4, depth: 1, hidden: 32, heads: 2, bottleneck: 8,
        in_context_len: 0, num_classes: 4, use_sla2: false}}
data: {{train: {data}, batch_size: 8, prefetch: 2}}
optim: {{lr: 2.0e-3, warmup_steps: 2, ema: [0.99]}}
train: {{steps: 10, log_every: 1000, checkpoint_every: 2, keep_last: 2}}
sampling: {{steps: 1, per_class: 0}}
logging: {{progress: false}}
"""


def ckpt_files(ckdir):
    """{step: run_id} of the ckpt-*.h5 in ckdir (run_id None when the file does not open)."""
    out = {}
    for n in sorted(os.listdir(ckdir)) if os.path.isdir(ckdir) else []:
        if not (n.startswith("ckpt-") and n.endswith(".h5")):
            continue
        try:
            with h5py.File(os.path.join(ckdir, n), "r") as f:
                rid = f.attrs.get("run_id", b"")
                out[int(n[5:-3])] = rid.decode() if isinstance(rid, bytes) else str(rid)
        except (OSError, ValueError):
            out[int(n[5:-3])] = None
    return out


def ckpt_loads(path):
    """Every tensor read back through its checksum, and the step the file says."""
    with h5py.File(path, "r") as f:
        def read(name, obj):
            if isinstance(obj, h5py.Dataset):
                obj[...]
        f.visititems(read)
        return int(f.attrs["step"])


def fuzz_rundir(a):
    """Random sequences of start, kill, resume, prune and concurrent starts on
    one run directory; after each: the checkpoint "latest" names is the newest
    of the current run and loads; no checkpoint of the current run newer than
    it, and none of another run, went missing; no .tmp is left by a finished
    trainer; a finished trainer leaves run.lock empty."""
    subprocess.run([os.path.join(a.bin, "jit-prep"), "--synthetic", "64", "--out", os.path.join(a.work, "data"),
                    "--size", "16", "--channels", "1", "--classes", "4", "--seed", "3"], check=True,
                   capture_output=True)
    cfg = os.path.join(a.work, "tiny.yaml")
    open(cfg, "w").write(RUNDIR_YAML.format(data=os.path.join(a.work, "data")))
    out = os.path.join(a.work, "run")
    ckdir = os.path.join(out, "ckpt")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    rng = random.Random(a.seed)

    def cmd(*extra):
        return [os.path.join(a.bin, "jit-train"), "--config", cfg, "--set", f"run.out_dir={out}", *extra]

    def run(*extra):
        r = subprocess.run(cmd(*extra), capture_output=True, text=True, errors="replace", timeout=120, env=env)
        return r.returncode, r.stdout + r.stderr

    def latest():
        try:
            name = open(os.path.join(ckdir, "latest")).read().strip()
        except OSError:
            return None
        return int(name[5:-3])

    failures = []
    current = None          # the current run's id
    counts = collections.Counter()
    for i in range(a.ops):
        before = ckpt_files(ckdir)
        cur = latest() or 0
        op = rng.choice(["start", "overwrite", "resume", "resume", "kill", "kill", "prune", "concurrent"])
        counts[op] += 1
        k = rng.randint(1, 5)
        note, expect_new_run = "", False
        if op == "start":
            used = bool(before) or latest() is not None   # before the run, which makes a latest of its own
            rc, log = run("--set", f"train.steps={k}")
            if used:
                ok = rc == 1 and "--overwrite" in log and ckpt_files(ckdir) == before
                note = "refused" if ok else f"a start on a used directory: exit {rc}"
            else:
                ok, expect_new_run = rc == 0, True
                note = "fresh" if ok else f"fresh start: exit {rc}: {log.strip().splitlines()[-1:]}"
        elif op == "overwrite":
            rc, log = run("--set", f"train.steps={k}", "--overwrite")
            ok, expect_new_run = rc == 0 and latest() == k, True
            note = "" if ok else f"--overwrite: exit {rc}, latest {latest()}"
        elif op in ("resume", "prune"):
            extra = ["--set", f"train.steps={cur + k}", "--resume", "auto"]
            keep = rng.randint(1, 3)
            if op == "prune":
                extra += ["--set", "train.checkpoint_every=1", "--set", f"train.keep_last={keep}"]
            rc, log = run(*extra)
            ok = rc == 0 and latest() == cur + k
            note = "" if ok else f"{op}: exit {rc}, latest {latest()}, want {cur + k}: {log.strip().splitlines()[-1:]}"
            if ok and op == "prune":
                mine = [s for s, rid in ckpt_files(ckdir).items() if rid == current and s <= cur + k]
                if len(mine) > keep + 1:   # keep_last, and the newest known-good one
                    ok, note = False, f"prune: keep_last {keep} left {sorted(mine)}"
        elif op == "kill":
            p = subprocess.Popen(cmd("--set", "train.steps=1000000", "--set", "train.checkpoint_every=1",
                                     "--resume", "auto"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            time.sleep(rng.uniform(0.2, 3.0))
            p.kill()
            p.wait()
            ok = True
            expect_new_run = not before
        else:   # concurrent: two --resume auto at once; one trains, the other stops naming it (or runs after it)
            ps = [subprocess.Popen(cmd("--set", f"train.steps={cur + k}", "--resume", "auto"), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace", env=env) for _ in range(2)]
            res = [(q.wait(timeout=120), q.stdout.read()) for q in ps]
            codes = sorted(r for r, _ in res)
            named = any(r == 1 and f"pid {ps[1 - j].pid}" in log for j, (r, log) in enumerate(res))
            ok = (codes == [0, 1] and named) or codes == [0, 0]
            ok = ok and latest() == cur + k
            note = ("one stopped, naming the other" if named else "one after the other") if ok else \
                f"concurrent: exits {[r for r, _ in res]}, other named {named}, latest {latest()}; " + \
                "; ".join(f"[{r}] {log.strip().splitlines()[-1:] if log.strip() else ''}" for r, log in res if r != 0)
            expect_new_run = not before
        # The invariants, whatever the operation did.
        after = ckpt_files(ckdir)
        L = latest()
        if L is not None:
            if L not in after:
                ok, note = False, note + f" latest names a missing ckpt-{L:08d}.h5"
            else:
                try:
                    step = ckpt_loads(os.path.join(ckdir, f"ckpt-{L:08d}.h5"))
                    if step != L:
                        ok, note = False, note + f" ckpt-{L} says step {step}"
                except Exception as e:   # noqa: BLE001 — any failure to read is the finding
                    ok, note = False, note + f" latest ckpt-{L} does not load: {e}"
                rid = after[L]
                if expect_new_run and rid == current and op != "kill":
                    ok, note = False, note + " a fresh start kept the old run id"
                if op in ("resume", "prune") and current and rid != current:
                    ok, note = False, note + f" a resume changed the run id {current} -> {rid}"
                newer = [s for s, r in after.items() if r == rid and s > L]
                if newer and op != "kill":
                    ok, note = False, note + f" files of the run newer than latest: {newer}"
                current = rid
        for s, rid in before.items():
            if s in after or op == "overwrite":
                continue
            if rid != current:
                ok, note = False, note + f" ckpt-{s} of another run ({rid}) was deleted"
            elif L is None or s >= L:
                ok, note = False, note + f" ckpt-{s} of this run, not older than latest ({L}), was deleted"
        if op != "kill":
            tmp = [n for n in os.listdir(ckdir) if n.endswith(".tmp")] if os.path.isdir(ckdir) else []
            if tmp:
                ok, note = False, note + f" left {tmp}"
            lock = os.path.join(out, "run.lock")
            if os.path.exists(lock) and os.path.getsize(lock) and op != "start":
                ok, note = False, note + " run.lock not emptied by a finished trainer"
        line = f"rundir_fuzz: {'ok  ' if ok else 'FAIL'} {i:3d} {op:<10} latest {L} run {current} {note}".rstrip()
        print(line, flush=True)
        if not ok:
            failures.append(line)
    print(f"rundir_fuzz: {a.ops} operations (" + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) +
          f"): {len(failures)} failed")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target", choices=("shards", "config", "rundir"))
    ap.add_argument("--bin", required=True, help="the build directory (jit-prep, jit-train)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--mutants", type=int, default=600)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=0, help="stop making mutants after this long (0: no limit)")
    ap.add_argument("--ops", type=int, default=12, help="rundir: operations in the sequence")
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    if a.target == "rundir":
        return fuzz_rundir(a)
    return fuzz_shards(a) if a.target == "shards" else fuzz_config(a)


if __name__ == "__main__":
    sys.exit(main())
