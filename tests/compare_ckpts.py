# tests/compare_ckpts.py — two runs' checkpoints parameter by parameter: the
# largest over parameters of max|a - b| / max|a| (each tensor against its own
# scale), printed, and the exit status 1 above the tolerance. Used by the
# rank-equivalence checks (dist_test.sh on CPU ranks, cuda_emu/nccl_test.sh
# on emulated GPUs).
#   usage: compare_ckpts.py A B TOLERANCE LABEL
#   (A, B: a checkpoint file or a run's ckpt/latest)
import os
import sys

import h5py
import numpy as np


def load(path):
    if os.path.basename(path) == "latest":
        path = os.path.join(os.path.dirname(path), open(path).read().strip())
    with h5py.File(path, "r") as f:
        return {k: f["params"][k][...] for k in f["params"]}


a, b = load(sys.argv[1]), load(sys.argv[2])
tol, label = float(sys.argv[3]), sys.argv[4]
if a.keys() != b.keys():
    sys.exit(f"{label}: the checkpoints hold different parameters")
worst = max(float(np.abs(a[k] - b[k]).max() / max(np.abs(a[k]).max(), 1e-6)) for k in a)
print(f"{label}: max over parameters of max|a - b| / max|a| = {worst:.2e} (tolerance {tol:g})")
sys.exit(0 if worst < tol else 1)
