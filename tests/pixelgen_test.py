#!/usr/bin/python3
"""pixelgen_test.py: PixelGen's frozen networks against PyTorch, through the
public weight formats.

1. torchvision's VGG16 with random weights and LPIPS heads with random
   non-negative weights are saved as the public files are
   (vgg16-397923af.pth: torchvision's state_dict; vgg.pth: the legacy
   pickle of lin0..lin4.model.1.weight), then converted by
   scripts/pixelgen_weights.py; damaged copies (a key missing, a shape
   wrong, a negative head, the wrong file) must fail naming file and key.
2. The LPIPS of docs/pixelgen.md ("PixelGen's definitions"), in float64 on
   torchvision's VGG16 (tests/reference/kinks.py: scaling layer,
   features[0:30] tapped at relu1_2 .. relu5_3, unit normalisation with the
   eps outside the root, the heads, spatial means, the sum over layers) gives the tapped features of x_hat, LPIPS(x_hat, x)
   per sample and, at 64 px (one sample) and 32 px (three), its gradient
   with respect to x_hat with the directions in which a correct float32
   gradient may differ from it (ReLUs and max-pool windows within float32
   rounding of a kink; see kinks.py); features and LPIPS also at 256 px.
   And PyTorch's bicubic interpolate (DINOv2's input 256 -> 224, its
   position table 37 -> 16 by scale factor 16.1/37, an upsampling) with the
   gradient of a random projection of it.
3. DINOv2 ViT-B/14 (tests/reference/dinov2_ref.py, full width, random
   weights) saved under the public key names and converted; at 256 px
   (one sample) and 64 px (two): Phi of the clean image and of x_hat, the
   P-DINO loss 1 - mean cos and its gradient with respect to x_hat, and
   REPA through a PixelGen projector (64 -> 64 -> 64 -> 768, PyTorch's
   default init) on random tokens h: 1 - mean cos(P(h), Phi(x)) and its
   gradient with respect to h and to the projector's first weight.
4. The C side (tests/test_pixelgen with JIT_PIXELGEN_DIR) loads the converted
   files and must reproduce all of it (max relative error 1e-4; LPIPS's
   gradient in relative L2 once its kink directions are projected out).

usage: pixelgen_test.py --bin BUILD_DIR --work DIR
"""

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import torch
import torchvision

from checks import Checks

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "..", "scripts", "pixelgen_weights.py")
SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
TAPS = [3, 8, 15, 22, 29]  # features index of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3

T = Checks("pixelgen_test")
check = T.check


def run_tool(args):
    return subprocess.run([sys.executable, TOOL] + args, capture_output=True, text=True)


def run_tool_here(args):
    """The converter's main() in this process: the same checks and messages as
    run_tool without a new interpreter importing torch (about 2 s each)."""
    sys.path.insert(0, os.path.dirname(TOOL))
    import pixelgen_weights
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = pixelgen_weights.main(args)
    return subprocess.CompletedProcess(args, code, "", err.getvalue())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="the build directory (tests/test_pixelgen)")
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    # 1. the public formats, and the converter
    vgg = torchvision.models.vgg16(weights=None).eval()
    for p in vgg.parameters():
        p.requires_grad_(False)
    vgg_pth = os.path.join(a.work, "vgg16-397923af.pth")
    torch.save(vgg.state_dict(), vgg_pth)
    lins = [torch.rand(c) * (2.0 / c) for c in (64, 128, 256, 512, 512)]
    lin_sd = {f"lin{k}.model.1.weight": w.view(1, -1, 1, 1).clone() for k, w in enumerate(lins)}
    lin_pth = os.path.join(a.work, "vgg.pth")
    torch.save(lin_sd, lin_pth, _use_new_zipfile_serialization=False)  # the legacy format of LPIPS's file
    out = os.path.join(a.work, "weights")
    r = run_tool(["--vgg16", vgg_pth, "--lpips", lin_pth, "--out-dir", out])
    check(r.returncode == 0 and os.path.exists(os.path.join(out, "vgg16.h5")) and
          os.path.exists(os.path.join(out, "lpips_vgg.h5")), f"converter: exit {r.returncode} {r.stderr.strip()}")
    with h5py.File(os.path.join(out, "vgg16.h5"), "r") as f:
        check(sorted(f["vgg16"].keys()) == sorted(k for k in vgg.state_dict() if k.startswith("features.")) and
              f.attrs["format"] == "jit-pixelgen-weights-v1",
              "vgg16.h5: the 26 features.* tensors under their public names")
        check(np.array_equal(f["vgg16/features.28.weight"][...], vgg.state_dict()["features.28.weight"].numpy()),
              "vgg16.h5: values as in the .pth")

    # The first refusal through the command line (exit code 1), the others
    # through main() in this process.
    def damaged(name, sd, flag, want, tool=run_tool_here):
        path = os.path.join(a.work, name)
        torch.save(sd, path)
        r = tool([flag, path, "--out-dir", os.path.join(a.work, "bad")])
        check(r.returncode == 1 and path in r.stderr and want in r.stderr, f"converter refuses {name}: {r.stderr.strip()}")

    # The damaged VGG16 files leave out classifier.* (494 MB the converter
    # never reads: the file above holds them).
    features_sd = {k: v for k, v in vgg.state_dict().items() if k.startswith("features.")}
    sd = dict(features_sd)
    del sd["features.12.bias"]
    damaged("vgg16-missing.pth", sd, "--vgg16", "key 'features.12.bias' is missing", tool=run_tool)
    sd = dict(features_sd)
    sd["features.5.weight"] = torch.zeros(128, 64, 5, 5)
    damaged("vgg16-shape.pth", sd, "--vgg16", "key 'features.5.weight' has shape [128, 64, 5, 5], expected [128, 64, 3, 3]")
    sd = dict(lin_sd)
    sd["lin3.model.1.weight"] = -sd["lin3.model.1.weight"]
    damaged("vgg-negative.pth", sd, "--lpips", "key 'lin3.model.1.weight' has a negative weight")
    damaged("vgg-as-dinov2.pth", lin_sd, "--dinov2", "key 'cls_token' is missing")
    damaged("lpips-as-vgg16.pth", lin_sd, "--vgg16", "key 'features.0.weight' is missing")

    # 2. the reference at 256 px (1 sample), 64 px (1) and 32 px (3), in
    # float64 (tests/reference/kinks.py), with the directions in which the
    # float32 gradient may differ at ReLU and max-pool kinks
    sys.path.insert(0, os.path.join(HERE, "reference"))
    import kinks
    with h5py.File(os.path.join(a.work, "lpips_ref.h5"), "w") as f:
        for name, B, S in (("s256", 1, 256), ("s64", 1, 64), ("s32", 3, 32)):
            xh = torch.rand(B, 3, S, S) * 2.2 - 1.1  # x_hat: unclamped, a little outside [-1, 1]
            x = torch.rand(B, 3, S, S) * 2 - 1
            # The gradient at 256 px is not compared: about 600 of its 17 M
            # pre-activations lie within the kink bound there (each a
            # float64 backward to find its direction), and the backward
            # code is the same at every size.
            grad_too = S <= 64
            d, grad, fa, kdirs, n_relu, n_pool = kinks.reference(vgg, SHIFT, SCALE, lins, xh, x, TAPS, grad_too)
            g = f.create_group(name)
            g["x_hat"], g["x"] = xh.numpy(), x.numpy()
            g["lpips"] = d.numpy()
            if grad_too:
                g["grad"], g["grad_kinks"] = grad.numpy(), kdirs.numpy()
                g.attrs["relu_kinks"], g.attrs["pool_ties"] = n_relu, n_pool
            for l, t in enumerate(fa):  # channels last, as the C side keeps them
                g[f"tap{l}"] = t.permute(0, 2, 3, 1).contiguous().numpy()
            print(f"pixelgen_test: reference {name}: LPIPS {d.numpy()}" +
                  (f", {n_relu} ReLU kinks and {n_pool} max-pool near-ties within the bound" if grad_too else ""))

    # 2b. PyTorch's bicubic interpolate (DINOv2's input 256 -> 224, and its
    # position table 37 -> 16 by scale factor 16.1 / 37: source step 37 / 16.1)
    # and its gradient, for op_resize_bicubic
    import torch.nn.functional as F
    with h5py.File(os.path.join(a.work, "lpips_ref.h5"), "a") as f:
        for name, shape, kw in (("to224", (2, 3, 256, 256), dict(size=(224, 224))),
                                ("pos16", (1, 5, 37, 37), dict(scale_factor=16.1 / 37)),
                                ("up", (1, 2, 7, 9), dict(size=(13, 20)))):
            x = (torch.randn(*shape)).requires_grad_(True)
            y = F.interpolate(x, mode="bicubic", align_corners=False, **kw)
            r = torch.randn_like(y)
            (y * r).sum().backward()
            g = f.create_group("bicubic/" + name)
            g["x"], g["y"], g["r"], g["grad"] = x.detach().numpy(), y.detach().double().numpy(), r.numpy(), x.grad.double().numpy()
            g.attrs["ry"] = shape[2] / y.shape[2] if "size" in kw else 1 / kw["scale_factor"]
            g.attrs["rx"] = shape[3] / y.shape[3] if "size" in kw else 1 / kw["scale_factor"]

    # 3. DINOv2, P-DINO and REPA
    import dinov2_ref
    dino = dinov2_ref.random_model(768, seed=1)
    dino_pth = os.path.join(a.work, "dinov2_vitb14_pretrain.pth")
    torch.save(dino.state_dict(), dino_pth)
    r = run_tool(["--dinov2", dino_pth, "--out-dir", out])
    check(r.returncode == 0 and os.path.exists(os.path.join(out, "dinov2_vitb14.h5")),
          f"converter (DINOv2): exit {r.returncode} {r.stderr.strip()}")
    with h5py.File(os.path.join(out, "dinov2_vitb14.h5"), "r") as f:
        check(sorted(f["dinov2"].keys()) == sorted(dino.state_dict().keys()) and len(f["dinov2"]) == 3 + 2 + 14 * 12 + 2,
              "dinov2_vitb14.h5: every tensor of the model under its public name")
    sd = dict(dino.state_dict())
    del sd["blocks.7.ls2.gamma"]
    damaged("dinov2-missing.pth", sd, "--dinov2", "key 'blocks.7.ls2.gamma' is missing")
    sd = dict(dino.state_dict())
    sd["pos_embed"] = torch.zeros(1, 257, 768)
    damaged("dinov2-shape.pth", sd, "--dinov2", "key 'pos_embed' has shape [1, 257, 768], expected [1, 1370, 768]")
    sd = dict(dino.state_dict())
    sd["register_tokens"] = torch.zeros(1, 4, 768)
    damaged("dinov2-reg4.pth", sd, "--dinov2", "unexpected key 'register_tokens'")
    with h5py.File(os.path.join(a.work, "dino_ref.h5"), "w") as f:
        for name, B, S in (("s256", 1, 256), ("s64", 2, 64)):
            grid = S // 16
            xh = (torch.rand(B, 3, S, S) * 2.2 - 1.1).requires_grad_(True)
            x = torch.rand(B, 3, S, S) * 2 - 1
            y = dino((x + 1) / 2, grid)
            yh = dino((xh + 1) / 2, grid)
            pd = 1 - F.cosine_similarity(yh, y, dim=-1, eps=1e-8).mean()
            pd.backward()
            proj = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.SiLU(), torch.nn.Linear(64, 64),
                                       torch.nn.SiLU(), torch.nn.Linear(64, 768))
            h = torch.randn(B, grid * grid, 64).requires_grad_(True)
            repa = 1 - F.cosine_similarity(proj(h), y, dim=-1, eps=1e-8).mean()
            repa.backward()
            g = f.create_group(name)
            g["x_hat"], g["x"] = xh.detach().numpy(), x.numpy()
            g["phi_x"], g["phi_x_hat"] = y.double().numpy(), yh.detach().double().numpy()
            g["pdino"], g["pdino_grad"] = np.array([pd.item()]), xh.grad.double().numpy()
            g["h"], g["repa"], g["repa_grad_h"] = h.detach().numpy(), np.array([repa.item()]), h.grad.double().numpy()
            g["repa_grad_w0"] = proj[0].weight.grad.double().numpy()
            for i in (0, 2, 4):  # PixelGen's names without diffusion_trainer.proj.0.
                g[f"proj/{i}.weight"], g[f"proj/{i}.bias"] = proj[i].weight.detach().numpy(), proj[i].bias.detach().numpy()
            print(f"pixelgen_test: DINOv2 reference {name}: P-DINO {pd.item():.6f}, REPA {repa.item():.6f}")

    # 4. the C side
    r = subprocess.run([os.path.join(a.bin, "tests", "test_pixelgen"), "--jobs", "1"],
                       env=dict(os.environ, JIT_PIXELGEN_DIR=a.work), capture_output=True, text=True)
    sys.stdout.write(r.stdout + r.stderr)
    check(r.returncode == 0, "test_pixelgen: the C LPIPS and DINOv2 on the converted files equal PyTorch")

    # 5. jit-train with converted files: a half-width DINOv2 trains P-DINO;
    # the wrong file, and a width the REPA projector cannot align to, stop
    # it before any step naming the key
    half = dinov2_ref.random_model(384, seed=2)
    half_pth = os.path.join(a.work, "dinov2-half.pth")
    torch.save(half.state_dict(), half_pth)
    half_dir = os.path.join(a.work, "half")
    r = run_tool(["--dinov2", half_pth, "--out-dir", half_dir, "--width-div", "2"])
    check(r.returncode == 0, f"converter (DINOv2 at half width): exit {r.returncode} {r.stderr.strip()}")
    half_h5 = os.path.join(half_dir, "dinov2_vitb14.h5")
    data = os.path.join(a.work, "rgb16")
    subprocess.run([os.path.join(a.bin, "jit-prep"), "--synthetic", "64", "--out", data, "--size", "16",
                    "--channels", "3", "--classes", "4"], check=True, capture_output=True)
    cfg = os.path.join(a.work, "train.yaml")
    with open(cfg, "w") as f:
        f.write(f"run: {{name: pg, out_dir: {a.work}/run, seed: 1}}\n"
                "model: {name: jit-tiny, img_size: 16, in_channels: 3, patch: 4, depth: 2, hidden: 64, heads: 2,\n"
                "        bottleneck: 16, in_context_len: 4, in_context_start: 1, num_classes: 4}\n"
                f"data: {{train: {data}, batch_size: 4}}\n"
                "train: {steps: 3, log_every: 1}\nsampling: {per_class: 0}\nlogging: {progress: false}\n")

    def jit_train(out, *sets):
        shutil.rmtree(os.path.join(a.work, out), ignore_errors=True)  # a fresh run each time the test runs
        args = [os.path.join(a.bin, "jit-train"), "--config", cfg, "--set", f"run.out_dir={a.work}/{out}"]
        for kv in sets:
            args += ["--set", kv]
        return subprocess.run(args, capture_output=True, text=True)

    r = jit_train("pdino", "losses.pdino_weight=1", f"losses.dino_weights={half_h5}")
    recs = [l for l in open(os.path.join(a.work, "pdino", "metrics.jsonl"))] if r.returncode == 0 else []
    check(r.returncode == 0 and len(recs) >= 3 and all('"pdino"' in l for l in recs if '"loss"' in l),
          f"jit-train: P-DINO with a converted DINOv2 file (exit {r.returncode})")
    vgg_h5 = os.path.join(out, "vgg16.h5")
    r = jit_train("wrong", "losses.repa_weight=0.5", "losses.align_layer=1", f"losses.dino_weights={vgg_h5}")
    check(r.returncode != 0 and f"losses.dino_weights = {vgg_h5}: dataset dinov2/cls_token is missing" in r.stderr
          and not os.path.exists(os.path.join(a.work, "wrong", "metrics.jsonl")),
          f"jit-train: a VGG16 file as losses.dino_weights stops before any step: {r.stderr.strip()[:300]}")
    r = jit_train("width", "losses.repa_weight=0.5", "losses.align_layer=1", f"losses.dino_weights={half_h5}")
    check(r.returncode != 0 and "DINOv2 of width 384, but the REPA projector aligns to 768" in r.stderr,
          f"jit-train: a half-width DINOv2 for REPA is refused: {r.stderr.strip()[:300]}")
    return T.done()


if __name__ == "__main__":
    sys.exit(main())
