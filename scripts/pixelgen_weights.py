#!/usr/bin/python3
"""pixelgen_weights.py: the frozen networks of PixelGen's losses, from their
public weight files to the HDF5 files the trainer loads.

  pixelgen_weights.py [--vgg16 vgg16-397923af.pth] [--lpips vgg.pth]
                      [--dinov2 dinov2_vitb14_pretrain.pth] --out-dir DIR
                      [--width-div N]

  --vgg16   torchvision's VGG16 ImageNet weights
            (https://download.pytorch.org/models/vgg16-397923af.pth)
            -> DIR/vgg16.h5, group vgg16/: the 26 features.* tensors LPIPS
            uses (the classifier.* tensors are left out)
  --lpips   LPIPS v0.1's heads (lpips/weights/v0.1/vgg.pth in the lpips
            package) -> DIR/lpips_vgg.h5, group lpips_lin/: lin0..lin4
  --dinov2  DINOv2 ViT-B/14 (https://dl.fbaipublicfiles.com/dinov2/
            dinov2_vitb14/dinov2_vitb14_pretrain.pth) -> DIR/dinov2_vitb14.h5,
            group dinov2/: every tensor of the model (strict, as torch.hub
            loads it)

Every expected key must be there with the shape docs/pixelgen.md lists
("PixelGen's definitions"; keys the networks do not use are reported and
left out; DINOv2 has none); any mismatch stops with the file and the key.
Dataset names are the public key names; each file records its source file
and that file's SHA-256. --width-div N (a power of two) expects VGG16 with
every channel count divided by N, and DINOv2 with its width 768 divided by
N (12 heads and 12 blocks kept): the reduced networks of the tests.

The configuration keys losses.vgg_weights, losses.lpips_weights and
losses.dino_weights name these files (docs/pixelgen.md). Run with Debian's
interpreter (/usr/bin/python3: python3-torch, python3-h5py).
"""

import argparse
import hashlib
import os
import sys

FORMAT = "jit-pixelgen-weights-v1"

VGG_CONVS = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256),
             (14, 256, 256), (17, 256, 512), (19, 512, 512), (21, 512, 512), (24, 512, 512), (26, 512, 512),
             (28, 512, 512)]
LPIPS_CH = [64, 128, 256, 512, 512]


class ConvertError(Exception):
    pass


def vgg_expected(div):
    exp = {}
    for idx, cin, cout in VGG_CONVS:
        cin = cin if idx == 0 else cin // div
        exp[f"features.{idx}.weight"] = (cout // div, cin, 3, 3)
        exp[f"features.{idx}.bias"] = (cout // div,)
    return exp


def lpips_expected(div):
    return {f"lin{k}.model.1.weight": (1, c // div, 1, 1) for k, c in enumerate(LPIPS_CH)}


def dino_expected(div):
    D, depth = 768 // div, 12
    exp = {"cls_token": (1, 1, D), "pos_embed": (1, 1370, D), "mask_token": (1, D),
           "patch_embed.proj.weight": (D, 3, 14, 14), "patch_embed.proj.bias": (D,),
           "norm.weight": (D,), "norm.bias": (D,)}
    for i in range(depth):
        b = f"blocks.{i}."
        exp.update({b + "norm1.weight": (D,), b + "norm1.bias": (D,),
                    b + "attn.qkv.weight": (3 * D, D), b + "attn.qkv.bias": (3 * D,),
                    b + "attn.proj.weight": (D, D), b + "attn.proj.bias": (D,),
                    b + "ls1.gamma": (D,), b + "norm2.weight": (D,), b + "norm2.bias": (D,),
                    b + "mlp.fc1.weight": (4 * D, D), b + "mlp.fc1.bias": (4 * D,),
                    b + "mlp.fc2.weight": (D, 4 * D), b + "mlp.fc2.bias": (D,), b + "ls2.gamma": (D,)})
    return exp


def torch_load(path):
    import torch
    try:
        obj = torch.load(path, map_location="cpu")
    except Exception as e:  # a pickle, zip or torch error: say which file
        raise ConvertError(f"{path}: cannot read it as a PyTorch file: {e}")
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ConvertError(f"{path}: expected a state_dict (a dict of tensors), got {type(obj).__name__}")
    return obj


def select(path, sd, expected, unused_prefixes=(), aliases=()):
    """The expected tensors of sd as float32 numpy arrays, checked."""
    import torch
    for old, new in aliases:  # e.g. a live LPIPS module's lins.K.* for linK.*
        for k in list(sd):
            if k.startswith(old) and new + k[len(old):] not in sd:
                sd[new + k[len(old):]] = sd[k]
    out = {}
    for key, shape in expected.items():
        if key not in sd:
            raise ConvertError(f"{path}: key '{key}' is missing (expected shape {list(shape)})")
        t = sd[key]
        if not isinstance(t, torch.Tensor):
            raise ConvertError(f"{path}: key '{key}' is a {type(t).__name__}, not a tensor")
        if tuple(t.shape) != shape:
            raise ConvertError(f"{path}: key '{key}' has shape {list(t.shape)}, expected {list(shape)}")
        if not t.is_floating_point():
            raise ConvertError(f"{path}: key '{key}' is {t.dtype}, not a floating-point tensor")
        a = t.detach().to(torch.float32).contiguous().numpy()
        if not (abs(a) < float("inf")).all():
            raise ConvertError(f"{path}: key '{key}' holds a non-finite value")
        out[key] = a
    alias_keys = {k for old, _ in aliases for k in sd if k.startswith(old)}
    extra = sorted(k for k in sd if k not in expected and k not in alias_keys)
    unexpected = [k for k in extra if not any(k.startswith(p) for p in unused_prefixes)]
    if unexpected:
        raise ConvertError(f"{path}: unexpected key '{unexpected[0]}' ({len(unexpected)} unexpected in all): "
                           "is this the right file?")
    if extra:
        print(f"{path}: {len(extra)} tensors not used by the losses left out ({extra[0]}, ...)")
    return out


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write(out_path, group, arrays, source, attrs=None):
    import h5py
    tmp = out_path + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["source"] = os.path.basename(source)
        f.attrs["source_sha256"] = sha256(source)
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
        g = f.create_group(group)
        for k, a in arrays.items():
            g.create_dataset(k, data=a)
    os.replace(tmp, out_path)
    print(f"{out_path}: {group}/ with {len(arrays)} tensors from {source}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vgg16")
    ap.add_argument("--lpips")
    ap.add_argument("--dinov2")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--width-div", type=int, default=1)
    a = ap.parse_args(argv)
    if not (a.vgg16 or a.lpips or a.dinov2):
        ap.error("give at least one of --vgg16, --lpips, --dinov2")
    div = a.width_div
    if div < 1 or div > 64 or div & (div - 1):
        ap.error(f"--width-div {div}: a power of two in [1, 64]")
    try:
        os.makedirs(a.out_dir, exist_ok=True)
        if a.vgg16:
            arrays = select(a.vgg16, torch_load(a.vgg16), vgg_expected(div), unused_prefixes=("classifier.",))
            write(os.path.join(a.out_dir, "vgg16.h5"), "vgg16", arrays, a.vgg16, {"width_div": div})
        if a.lpips:
            arrays = select(a.lpips, torch_load(a.lpips), lpips_expected(div),
                            unused_prefixes=("scaling_layer.", "net."), aliases=(("lins.", "lin"),))
            for k, v in arrays.items():
                if (v < 0).any():
                    raise ConvertError(f"{a.lpips}: key '{k}' has a negative weight (LPIPS's heads are non-negative)")
            write(os.path.join(a.out_dir, "lpips_vgg.h5"), "lpips_lin", arrays, a.lpips, {"width_div": div})
        if a.dinov2:
            arrays = select(a.dinov2, torch_load(a.dinov2), dino_expected(div))
            write(os.path.join(a.out_dir, "dinov2_vitb14.h5"), "dinov2", arrays, a.dinov2, {"width_div": div})
    except (ConvertError, OSError) as e:
        print(f"pixelgen_weights: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
