#!/usr/bin/python3
"""inception_weights.py: the FID Inception-v3's weights, from the public
PyTorch file to the HDF5 file train/eval/inception.c loads.

  inception_weights.py --pth weights-inception-2015-12-05-6726825d.pth --out FILE.h5
  inception_weights.py --random SEED --out FILE.h5 [--width-div N]

  --pth     torch-fidelity's inception-v3-compat weights
            (https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/
            weights-inception-2015-12-05-6726825d.pth: the TensorFlow graph of
            the original FID code, converted) -> group inception/ with every
            tensor of its state_dict under its public name (94 convolutions,
            each with its BatchNorm's weight, bias, running_mean and
            running_var, and fc.weight [1008, 2048], fc.bias [1008]);
            num_batches_tracked counters, if present, are left out.
  --random  random weights (tests): the state_dict is first saved as
            FILE.pth, in the public file's format, then converted like a
            downloaded file. --width-div N (1, 2, 4, 8 or 16) divides every
            channel count but the RGB input and the 1008 logits by N.

Every expected key must be there with its shape (docs/eval.md, "The FID
Inception network"); a missing key, a wrong shape, an unexpected key or a
negative BatchNorm variance stops with the file and the key. The file
records its source and the source's SHA-256 (6726825d... is the start of the
public file's). Run with Debian's interpreter (/usr/bin/python3:
python3-torch, python3-h5py).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pixelgen_weights import ConvertError, select, torch_load, write  # noqa: E402

FORMAT = "jit-inception-weights-v1"


def convs(div=1):
    """(name, in, out, kh, kw) of every BasicConv2d, in the forward's order,
    at width 1/div (torch-fidelity's FeatureExtractorInceptionV3)."""
    out = []

    def c(name, cin, cout, kh, kw=None):
        out.append((name, cin, cout // div, kh, kh if kw is None else kw))
        return cout // div

    x = c("Conv2d_1a_3x3", 3, 32, 3)
    x = c("Conv2d_2a_3x3", x, 32, 3)
    x = c("Conv2d_2b_3x3", x, 64, 3)
    x = c("Conv2d_3b_1x1", x, 80, 1)
    x = c("Conv2d_4a_3x3", x, 192, 3)
    for name, pf in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
        a = c(f"{name}.branch1x1", x, 64, 1)
        t = c(f"{name}.branch5x5_1", x, 48, 1)
        b = c(f"{name}.branch5x5_2", t, 64, 5)
        t = c(f"{name}.branch3x3dbl_1", x, 64, 1)
        t = c(f"{name}.branch3x3dbl_2", t, 96, 3)
        d = c(f"{name}.branch3x3dbl_3", t, 96, 3)
        e = c(f"{name}.branch_pool", x, pf, 1)
        x = a + b + d + e
    a = c("Mixed_6a.branch3x3", x, 384, 3)
    t = c("Mixed_6a.branch3x3dbl_1", x, 64, 1)
    t = c("Mixed_6a.branch3x3dbl_2", t, 96, 3)
    b = c("Mixed_6a.branch3x3dbl_3", t, 96, 3)
    x = a + b + x
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        a = c(f"{name}.branch1x1", x, 192, 1)
        t = c(f"{name}.branch7x7_1", x, c7, 1)
        t = c(f"{name}.branch7x7_2", t, c7, 1, 7)
        b = c(f"{name}.branch7x7_3", t, 192, 7, 1)
        t = c(f"{name}.branch7x7dbl_1", x, c7, 1)
        t = c(f"{name}.branch7x7dbl_2", t, c7, 7, 1)
        t = c(f"{name}.branch7x7dbl_3", t, c7, 1, 7)
        t = c(f"{name}.branch7x7dbl_4", t, c7, 7, 1)
        d = c(f"{name}.branch7x7dbl_5", t, 192, 1, 7)
        e = c(f"{name}.branch_pool", x, 192, 1)
        x = a + b + d + e
    t = c("Mixed_7a.branch3x3_1", x, 192, 1)
    a = c("Mixed_7a.branch3x3_2", t, 320, 3)
    t = c("Mixed_7a.branch7x7x3_1", x, 192, 1)
    t = c("Mixed_7a.branch7x7x3_2", t, 192, 1, 7)
    t = c("Mixed_7a.branch7x7x3_3", t, 192, 7, 1)
    b = c("Mixed_7a.branch7x7x3_4", t, 192, 3)
    x = a + b + x
    for name in ("Mixed_7b", "Mixed_7c"):
        a = c(f"{name}.branch1x1", x, 320, 1)
        t = c(f"{name}.branch3x3_1", x, 384, 1)
        b = c(f"{name}.branch3x3_2a", t, 384, 1, 3) + c(f"{name}.branch3x3_2b", t, 384, 3, 1)
        t = c(f"{name}.branch3x3dbl_1", x, 448, 1)
        t = c(f"{name}.branch3x3dbl_2", t, 384, 3)
        d = c(f"{name}.branch3x3dbl_3a", t, 384, 1, 3) + c(f"{name}.branch3x3dbl_3b", t, 384, 3, 1)
        e = c(f"{name}.branch_pool", x, 192, 1)
        x = a + b + d + e
    assert x == 2048 // div and len(out) == 94
    return out


def expected(div=1):
    exp = {}
    for name, cin, cout, kh, kw in convs(div):
        exp[f"{name}.conv.weight"] = (cout, cin, kh, kw)
        for p in ("weight", "bias", "running_mean", "running_var"):
            exp[f"{name}.bn.{p}"] = (cout,)
    exp["fc.weight"] = (1008, 2048 // div)
    exp["fc.bias"] = (1008,)
    return exp


def random_state_dict(seed, div):
    """He-initialised convolutions and BatchNorm statistics near the identity,
    so the activations stay of order 1 through the 94 layers."""
    import torch
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in expected(div).items():
        if key.endswith("conv.weight"):
            fan_in = shape[1] * shape[2] * shape[3]
            t = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif key.endswith(("bn.weight", "bn.running_var")):
            t = 0.5 + torch.rand(shape, generator=g)
        elif key == "fc.weight":
            t = torch.randn(shape, generator=g) / shape[1] ** 0.5
        else:  # bn.bias, bn.running_mean, fc.bias
            t = 0.1 * torch.randn(shape, generator=g)
        sd[key] = t
    return sd


def convert(pth, out, div):
    sd = dict(torch_load(pth))
    counters = [k for k in sd if k.endswith(".num_batches_tracked")]
    for k in counters:
        del sd[k]
    arrays = select(pth, sd, expected(div))
    for k, v in arrays.items():
        if k.endswith("running_var") and (v < 0).any():
            raise ConvertError(f"{pth}: key '{k}' has a negative variance")
    write(out, "inception", arrays, pth, {"format": FORMAT, "width_div": div})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pth")
    ap.add_argument("--random", type=int, metavar="SEED")
    ap.add_argument("--out", required=True)
    ap.add_argument("--width-div", type=int, default=1)
    a = ap.parse_args(argv)
    if (a.pth is None) == (a.random is None):
        ap.error("give one of --pth, --random")
    div = a.width_div
    if div not in (1, 2, 4, 8, 16):
        ap.error(f"--width-div {div}: one of 1, 2, 4, 8, 16")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        pth = a.pth
        if a.random is not None:
            import torch
            pth = os.path.splitext(a.out)[0] + ".pth"
            torch.save(random_state_dict(a.random, div), pth)
        convert(pth, a.out, div)
    except (ConvertError, OSError) as e:
        print(f"inception_weights: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
