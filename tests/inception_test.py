#!/usr/bin/python3
"""inception_test.py: the FID Inception-v3 (train/eval/inception.c) against
PyTorch, through the public weight format.

1. scripts/inception_weights.py --random writes random weights in the public
   file's format (a state_dict .pth) and converts them: at full width and
   at 1/8 width. The converted keys must be exactly the state_dict keys of
   tests/reference/inception_ref.py's network (written from torch-fidelity's
   definitions); damaged copies (a key missing, a shape wrong, a negative
   BatchNorm variance, another network's file) must be refused naming the
   file and the key, and the C loader must refuse a converted file with a
   tensor removed, naming the file and the dataset.
2. The reference, in float64 from the float32 weights: 2048-d pool features
   and 1008 logits of random uint8 images (every image is resized to
   299x299 first, so the input size only changes the resize): full width,
   1 image of 64x64; 1/8 width, 2 images of 64x64 and 1 of 320x300
   (downsampled, not square). Also, for the 1/8-width 64x64 images, the same
   with the wrong normalisation (x - 127.5) / 127.5: the C side must be far
   from it. PyTorch's own float32 is measured against the float64 reference
   at full width (about 4e-7), the scale of the bound.
   And TensorFlow's bilinear resize alone, in float32 as torch-fidelity runs
   it, to compare bit for bit.
3. The C side (tests/test_inception with JIT_INCEPTION_DIR) must reproduce
   it: features and logits to a max relative error of 1e-5 (relative to the
   largest magnitude of the vector set), the resize exactly.

usage: inception_test.py --bin BUILD_DIR --work DIR
"""

import argparse
import contextlib
import io
import os
import subprocess
import sys
import types

import h5py
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
import inception_ref  # noqa: E402
import inception_weights  # noqa: E402
from checks import Checks  # noqa: E402

T = Checks("inception_test")
check = T.check


def run_tool(args):
    """The converter in this process (importing torch once saves seconds a call)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = inception_weights.main(args)
    return types.SimpleNamespace(returncode=rc, stderr=err.getvalue())


def reference(pth, div, images, norm=(128.0, 128.0)):
    net = inception_ref.InceptionFID(div)
    missing, unexpected = net.load_state_dict(torch.load(pth), strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    net = net.double().eval()
    with torch.no_grad():
        pool, logits = net(torch.from_numpy(images), norm=norm)
    return pool.numpy(), logits.numpy(), net


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="the build directory (tests/test_inception)")
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    rng = np.random.default_rng(0)

    # 1. the converter, on random weights in the public format
    files = {}
    for div, seed in ((1, 1), (8, 2)):
        out = os.path.join(a.work, f"inception_div{div}.h5")
        r = run_tool(["--random", str(seed), "--width-div", str(div), "--out", out])
        check(r.returncode == 0 and os.path.exists(out), f"converter (1/{div} width): exit {r.returncode} {r.stderr.strip()}")
        files[div] = out
        want = {k for k in inception_ref.InceptionFID(div).state_dict() if not k.endswith("num_batches_tracked")}
        with h5py.File(out, "r") as f:
            got = set(f["inception"].keys())
            check(got == want and len(got) == 94 * 5 + 2 and f.attrs["format"] == "jit-inception-weights-v1",
                  f"1/{div} width: the {len(want)} tensors of the reference network under their public names")
    pth = os.path.splitext(files[8])[0] + ".pth"
    sd = torch.load(pth)

    def damaged(name, sd, want):
        path = os.path.join(a.work, name)
        torch.save(sd, path)
        r = run_tool(["--pth", path, "--width-div", "8", "--out", os.path.join(a.work, "bad.h5")])
        check(r.returncode == 1 and path in r.stderr and want in r.stderr, f"converter refuses {name}: {r.stderr.strip()}")

    d = dict(sd)
    del d["Mixed_6c.branch7x7dbl_4.bn.running_mean"]
    damaged("missing.pth", d, "key 'Mixed_6c.branch7x7dbl_4.bn.running_mean' is missing")
    d = dict(sd)
    d["Mixed_7b.branch3x3_2a.conv.weight"] = torch.zeros(48, 48, 3, 1)
    damaged("shape.pth", d, "key 'Mixed_7b.branch3x3_2a.conv.weight' has shape [48, 48, 3, 1], expected [48, 48, 1, 3]")
    d = dict(sd)
    d["Conv2d_4a_3x3.bn.running_var"] = -d["Conv2d_4a_3x3.bn.running_var"]
    damaged("negative.pth", d, "key 'Conv2d_4a_3x3.bn.running_var' has a negative variance")
    damaged("vgg.pth", {"features.0.weight": torch.zeros(64, 3, 3, 3)}, "key 'Conv2d_1a_3x3.conv.weight' is missing")
    bad = os.path.join(a.work, "no_fc_bias.h5")
    with h5py.File(files[8], "r") as src, h5py.File(bad, "w") as dst:
        src.copy("inception", dst)
        del dst["inception/Mixed_6b.branch7x7_2.bn.running_var"]
    r = subprocess.run([os.path.join(a.bin, "tests", "test_inception"), "--jobs", "1", "--filter", "inception/load"],
                       env=dict(os.environ, JIT_INCEPTION_WEIGHTS=bad), capture_output=True, text=True)
    check(r.returncode != 0 and
          f"Inception weights = {bad}: dataset inception/Mixed_6b.branch7x7_2.bn.running_var is missing" in r.stderr,
          f"the C loader refuses a file with a tensor removed: {r.stderr.strip()[-300:]}")

    # 2. the reference
    with h5py.File(os.path.join(a.work, "inception_ref.h5"), "w") as f:
        for name, div, n, h, w in (("full", 1, 1, 64, 64), ("reduced", 8, 2, 64, 64), ("reduced_rect", 8, 1, 320, 300)):
            images = rng.integers(0, 256, size=(n, 3, h, w), dtype=np.uint8)
            pool, logits, net = reference(os.path.splitext(files[div])[0] + ".pth", div, images)
            g = f.create_group(name)
            g["images"], g["pool"], g["logits"] = images, pool, logits
            g.attrs["weights"] = os.path.basename(files[div])
            msg = f"reference {name}: pool |max| {np.abs(pool).max():.3g}, logits |max| {np.abs(logits).max():.3g}"
            if name == "reduced":
                g["pool_norm127"], g["logits_norm127"] = reference(os.path.splitext(files[div])[0] + ".pth", div,
                                                                   images, norm=(127.5, 127.5))[:2]
            if name == "full":
                with torch.no_grad():  # how far PyTorch's own float32 is from float64 here: the scale of the bound
                    p32, l32 = net.float()(torch.from_numpy(images))
                e = max(np.abs(p32.numpy() - pool).max() / np.abs(pool).max(),
                        np.abs(l32.numpy() - logits).max() / np.abs(logits).max())
                msg += f"; PyTorch float32 against it: max relative error {e:.2e}"
            print("inception_test: " + msg)
        for name, shape in (("resize_up", (2, 3, 37, 53)), ("resize_down", (1, 3, 400, 333))):
            x = rng.integers(0, 256, size=shape, dtype=np.uint8)
            g = f.create_group(name)
            g["x"] = x
            g["y"] = inception_ref.resize_tf1(torch.from_numpy(x).float(), 299).numpy()

    # 3. the C side
    r = subprocess.run([os.path.join(a.bin, "tests", "test_inception"), "--jobs", "1", "--filter", "parity/*"],
                       env=dict(os.environ, JIT_INCEPTION_DIR=a.work), capture_output=True, text=True)
    sys.stdout.write(r.stdout + r.stderr)
    check(r.returncode == 0, "test_inception: the C Inception on the converted files equals PyTorch")
    return T.done()


if __name__ == "__main__":
    sys.exit(main())
