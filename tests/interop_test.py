#!/usr/bin/python3
"""tests/interop_test.py: scripts/jit_interop.py against official-format files.

  interop_test.py --bin BUILD_DIR --work DIR

1. A jit-tiny-sized model with the official layout (reference/official_jit.py),
   random weights, three AdamW steps with the official grouping and weight
   decay, two EMA copies: saved as checkpoint-last.pth; imported.
2. The C side (test_interop, with JIT_INTEROP_DIR): the forward of the
   imported weights and EMAs equals PyTorch (1e-5 relative), and one AdamW
   step equals torch.optim.AdamW's next step (1e-6).
3. Exported again: a fresh official model loads it with strict=True, its
   output is unchanged, every tensor and AdamW moment round-trips exactly, and
   the official optimizer loads its state.
4. A PixelGen-format checkpoint imports, with the projector under its names.
5. Clear errors: another model size, a truncated file, a missing key, files
   that are not JiT checkpoints, an SLA2 configuration.
6. EMA copies whose pos_embed drifted as the official code's does (10^4
   official float32 EMA updates of the frozen table) import, with the weights
   and EMAs otherwise the file's; a drifted table in the raw model, and a
   wrong table (rows and columns swapped, another hidden size, garbage) in an
   EMA, are refused naming the file and the key.
"""

import argparse
import copy
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "reference"))
import jit_ref  # noqa: E402
import official_jit  # noqa: E402
from checks import Checks  # noqa: E402

TOOL = os.path.join(ROOT, "scripts", "jit_interop.py")
CONFIG = os.path.join(ROOT, "configs", "fmnist-tiny-full.yaml")
# Three channels, so that the patch embedding's (channel, row, column) order matters.
SETS = ["model.in_channels=3", "optim.ema=[0.9999, 0.9996]", "optim.weight_decay=0.05", "optim.official_decay_set=true"]
BETAS, EPS, LR = (0.9, 0.95), 1e-8, 1e-3
# Updates of the official EMA applied to the fixture's pos_embed: past the
# fixed point the 0.9999 EMA's rounded update reaches (update 2,757 on a
# 16x16 grid: 1.6e-4 from the table, docs/interop.md).
DRIFT_UPDATES = 10000
T = Checks("interop_test")
check = T.check


def tool(args, jit_train, expect_fail=None):
    """Run the interop script; with expect_fail, it must exit 1 with that text."""
    r = subprocess.run([sys.executable, TOOL] + args + ["--jit-train", jit_train], capture_output=True, text=True)
    if expect_fail is None:
        if r.returncode != 0:
            print(r.stdout, r.stderr)
        check(r.returncode == 0, f"jit_interop.py {args[0]} succeeds")
        return r
    msg = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
    check(r.returncode == 1 and expect_fail in msg and "Traceback" not in r.stderr,
          f"{args[0]} {os.path.basename(args[1])}: error containing {expect_fail!r} (got: {msg!r})")
    return r


def import_args(ckpt, out, extra=()):
    a = ["import-official", ckpt, "--out", out, "--config", CONFIG]
    for s in list(SETS) + list(extra):
        a += ["--set", s]
    return a


def ours(name):
    return name[len("net."):]


def flat(name, t):
    """Official tensor -> this framework's shape."""
    n = ours(name)
    if n in ("x_embedder.proj1.weight", "x_embedder.proj2.weight"):
        return t.reshape(t.shape[0], -1)
    if n == "in_context_posemb":
        return t.reshape(t.shape[1:])
    return t


def make_official(cfg, path):
    return official_jit.make_random_checkpoint(cfg, path, lr=LR, betas=BETAS, eps=EPS, weight_decay=0.05)


@torch.no_grad()
def forward64(model, z, t, y):
    m = copy.deepcopy(model).double()
    return m(z.double(), t.double(), y).numpy()


def write_expectations(path, cfg, model, ema1, ema2, opt):
    g = torch.Generator().manual_seed(99)
    B = 3
    z = torch.randn(B, cfg.in_channels, cfg.img_size, cfg.img_size, generator=g)
    t = torch.rand(B, generator=g)
    y = torch.tensor([1, 7, cfg.num_classes])          # the null class too
    with h5py.File(path, "w") as f:
        f.attrs["batch"] = B
        f.attrs["lr"] = LR
        f["inputs/z"], f["inputs/t"], f["inputs/y"] = z.numpy(), t.numpy(), y.numpy().astype(np.int32)
        for k, m in (("params", model), ("ema0", ema1), ("ema1", ema2)):
            f[f"out/{k}"] = forward64(m, z, t, y)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        f.attrs["adam_step"] = int(opt.state[named[0][1]]["step"])
        for n, p in named:
            p.grad = torch.randn(p.shape, generator=g) * 0.1
            f[f"grads/{ours(n)}"] = flat(n, p.grad).numpy()
        opt.step()
        for n, p in named:
            f[f"after/{ours(n)}"] = flat(n, p.detach()).double().numpy()
            f[f"m/{ours(n)}"] = flat(n, opt.state[p]["exp_avg"]).double().numpy()
            f[f"v/{ours(n)}"] = flat(n, opt.state[p]["exp_avg_sq"]).double().numpy()


def check_export(work, jit_train, cfg, model, ema1, ema2, src):
    out = os.path.join(work, "exported.pth")
    tool(["export-official", os.path.join(work, "imported"), "--out", out], jit_train)
    ck = torch.load(out, map_location="cpu")
    orig = torch.load(src, map_location="cpu")
    for key, m in (("model", model), ("model_ema1", ema1), ("model_ema2", ema2)):
        fresh = official_jit.Denoiser(cfg)
        try:
            fresh.load_state_dict(ck[key], strict=True)
            loaded = True
        except RuntimeError as e:
            print(e)
            loaded = False
        check(loaded, f"exported {key} loads with load_state_dict(strict=True)")
        same = all(torch.equal(ck[key][k], orig[key][k]) for k in orig[key])
        check(same, f"exported {key}: every tensor equals the original file's")
        g = torch.Generator().manual_seed(5)
        z, t, y = torch.randn(2, cfg.in_channels, cfg.img_size, cfg.img_size, generator=g), torch.rand(2), \
            torch.tensor([0, 3])
        with torch.no_grad():
            check(torch.equal(fresh(z, t, y), m(z, t, y)), f"exported {key}: the output is unchanged")
    fresh = official_jit.Denoiser(cfg)
    fresh.load_state_dict(ck["model"], strict=True)
    opt = torch.optim.AdamW(official_jit.official_param_groups(fresh, 0.05), lr=LR, betas=BETAS, eps=EPS)
    opt.load_state_dict(ck["optimizer"])
    so, sn = orig["optimizer"]["state"], ck["optimizer"]["state"]
    same = so.keys() == sn.keys() and all(
        torch.equal(so[i][k], sn[i][k]) for i in so for k in ("exp_avg", "exp_avg_sq")) and \
        all(float(so[i]["step"]) == float(sn[i]["step"]) for i in so)
    check(same, "exported optimizer: the official AdamW loads it; moments and step equal the original's")
    check(ck["epoch"] == orig["epoch"], f"exported epoch {ck['epoch']} equals the original's {orig['epoch']}")


def check_pixelgen(work, jit_train, cfg, model, ema1):
    """state_dict: denoiser.* (no net.), ema_denoiser.*, the REPA projector."""
    sd = {}
    for n, t in model.state_dict().items():
        sd["denoiser." + ours(n)] = t
    for n, t in ema1.state_dict().items():
        sd["ema_denoiser." + ours(n)] = t
    D = cfg.hidden
    g = torch.Generator().manual_seed(3)
    proj = {}
    for i, (o, k) in zip((0, 2, 4), ((D, D), (D, D), (768, D))):
        proj[f"diffusion_trainer.proj.0.{i}.weight"] = torch.randn(o, k, generator=g)
        proj[f"diffusion_trainer.proj.0.{i}.bias"] = torch.randn(o, generator=g)
    sd.update(proj)
    path = os.path.join(work, "pixelgen.ckpt")
    torch.save({"state_dict": sd, "global_step": 1234, "epoch": 2, "optimizer_states": []}, path)
    out = os.path.join(work, "pixelgen")
    tool(["import-pixelgen", path, "--out", out, "--config", CONFIG, "--set", "optim.ema=[0.9999]",
          "--set", "model.in_channels=3"], jit_train)
    with h5py.File(os.path.join(out, open(os.path.join(out, "latest")).read().strip()), "r") as f:
        check(all(np.array_equal(f["extra"][k][...], v.numpy()) for k, v in proj.items()) and
              len(f["extra"]) == len(proj), "PixelGen import: the projector's tensors are in /extra by name")
        check(all(np.array_equal(f["params"][ours(n)][...], flat(n, p).numpy())
                  for n, p in model.state_dict().items() if ours(n) != "pos_embed") and
              all(np.array_equal(f["ema/0"][ours(n)][...], flat(n, p).numpy())
                  for n, p in ema1.state_dict().items() if ours(n) != "pos_embed"),
              "PixelGen import: denoiser and ema_denoiser tensors equal the file's")
        check(list(f.attrs["ema_decays"]) == [np.float32(0.9999)], "PixelGen import: one EMA, decay 0.9999")
    # with REPA on, the projector becomes the model's repa_proj.* (weights and every EMA copy)
    out = os.path.join(work, "pixelgen-repa")
    repa = ["--set", "losses.repa_weight=0.5", "--set", "losses.frozen_random_div=1", "--set", "losses.align_layer=1"]
    tool(["import-pixelgen", path, "--out", out, "--config", CONFIG, "--set", "optim.ema=[0.9999]",
          "--set", "model.in_channels=3"] + repa, jit_train)
    with h5py.File(os.path.join(out, open(os.path.join(out, "latest")).read().strip()), "r") as f:
        same = all(np.array_equal(f[g][f"repa_proj.{i}.{w}"][...], proj[f"diffusion_trainer.proj.0.{i}.{w}"].numpy())
                   for g in ("params", "ema/0") for i in (0, 2, 4) for w in ("weight", "bias"))
        check(same and "extra" not in f, "PixelGen import with REPA: the projector is repa_proj.{0,2,4}.* in the "
                                          "weights and the EMA copy")
    bad = dict(sd)
    bad["diffusion_trainer.proj.0.4.weight"] = torch.zeros(512, D)
    torch.save({"state_dict": bad, "global_step": 1, "epoch": 0}, path + ".bad")
    tool(["import-pixelgen", path + ".bad", "--out", os.path.join(work, "pixelgen-bad"), "--config", CONFIG,
          "--set", "optim.ema=[0.9999]", "--set", "model.in_channels=3"] + repa, jit_train,
         expect_fail="'diffusion_trainer.proj.0.4.weight' has shape [512, %d], the configuration's projector "
                     "[768, %d]" % (D, D))


def check_errors(work, jit_train, src):
    bad = os.path.join(work, "bad")
    os.makedirs(bad, exist_ok=True)
    # another size: a deeper, wider model against jit-tiny's configuration
    big = jit_ref.named_config("jit-tiny")
    big.in_channels = 3
    big.depth, big.hidden, big.heads = 8, 256, 4
    torch.manual_seed(1)
    m = official_jit.Denoiser(big)
    opt = torch.optim.AdamW(official_jit.official_param_groups(m, 0.05))
    p = os.path.join(bad, "other-size.pth")
    official_jit.save_official(p, m, m, m, opt, 0, "JiT-B/16")
    tool(import_args(p, os.path.join(bad, "o1")), jit_train, expect_fail="import it with the configuration of its size")
    # truncated
    p = os.path.join(bad, "truncated.pth")
    data = open(src, "rb").read()
    open(p, "wb").write(data[: len(data) // 2])
    tool(import_args(p, os.path.join(bad, "o2")), jit_train, expect_fail="cannot be read as a PyTorch checkpoint")
    # a missing key
    ck = torch.load(src, map_location="cpu")
    del ck["model"]["net.blocks.2.attn.qkv.bias"]
    p = os.path.join(bad, "missing.pth")
    torch.save(ck, p)
    tool(import_args(p, os.path.join(bad, "o3")), jit_train, expect_fail="has no tensor 'net.blocks.2.attn.qkv.bias'")
    # not JiT: another dict, random bytes
    p = os.path.join(bad, "other.pth")
    torch.save({"state": {"w": torch.zeros(3)}}, p)
    tool(import_args(p, os.path.join(bad, "o4")), jit_train, expect_fail="not an official JiT checkpoint")
    p = os.path.join(bad, "random.pth")
    open(p, "wb").write(np.random.default_rng(0).bytes(4096))
    tool(import_args(p, os.path.join(bad, "o5")), jit_train, expect_fail="cannot be read as a PyTorch checkpoint")
    # an SLA2 configuration
    tool(import_args(src, os.path.join(bad, "o6"), ["model.use_sla2=true"]), jit_train,
         expect_fail="SLA2Conversion")
    # EMA decays the file does not have
    tool(["import-official", src, "--out", os.path.join(bad, "o7"), "--config", CONFIG,
          "--set", "model.in_channels=3"], jit_train, expect_fail="optim.ema")


def drift_pos_embed(ck, updates):
    """The EMAs' net.pos_embed after `updates` official EMA updates of the
    frozen table (official_jit.update_ema, float32, decays 0.9999 and
    0.9996), from the exact table as the official init_ema starts them. Only
    pos_embed is updated, to keep it fast: the other tensors stay the file's.
    Returns the largest drift of each EMA from the float64 table."""
    p = ck["model"]["net.pos_embed"]
    table = torch.from_numpy(jit_ref.pos_table_2d(p.shape[2], int(round(p.shape[1] ** 0.5))))[None]
    drift = {}
    for key, d in (("model_ema1", 0.9999), ("model_ema2", 0.9996)):
        e = p.clone()
        for _ in range(updates):
            official_jit.update_ema([e], [p], d)
        ck[key]["net.pos_embed"] = e
        drift[key] = float((e.double() - table).abs().max())
    return drift


def check_drifted_pos_embed(work, jit_train, cfg, src):
    """Real official checkpoints: the EMAs average the frozen pos_embed too."""
    d = os.path.join(work, "drift")
    os.makedirs(d, exist_ok=True)
    ck = torch.load(src, map_location="cpu")
    drift = drift_pos_embed(ck, DRIFT_UPDATES)
    print(f"pos_embed drift after {DRIFT_UPDATES} official EMA updates: " +
          ", ".join(f"{k} {v:.3g}" for k, v in drift.items()))
    check(drift["model_ema1"] > 1e-5 and drift["model_ema2"] > 1e-6,
          "the fixture's EMA tables drifted past the raw table's 1e-6 (what a real checkpoint holds)")
    path = os.path.join(d, "drifted.pth")
    torch.save(ck, path)
    out = os.path.join(d, "imported")
    r = tool(import_args(path, out), jit_train)
    if r.returncode != 0:
        return
    check("pos_embed" in r.stdout and "drift" in r.stdout, "the import says how far the EMA tables drifted")
    with h5py.File(os.path.join(out, open(os.path.join(out, "latest")).read().strip()), "r") as f:
        same = all(np.array_equal(f[g][ours(n)][...], flat(n, t).numpy())
                   for g, key in (("params", "model"), ("ema/0", "model_ema1"), ("ema/1", "model_ema2"))
                   for n, t in ck[key].items() if ours(n) != "pos_embed")
        check(same, "drifted import: the weights and both EMAs equal the file's")
    # What dropping the drift changes: the official EMA model's output with its
    # drifted table against the exact one (the C side computes the latter).
    m_drift, m_exact = official_jit.Denoiser(cfg), official_jit.Denoiser(cfg)
    m_drift.load_state_dict(ck["model_ema1"], strict=True)
    m_exact.load_state_dict(dict(ck["model_ema1"], **{"net.pos_embed": ck["model"]["net.pos_embed"]}), strict=True)
    g = torch.Generator().manual_seed(11)
    z, t, y = torch.randn(3, cfg.in_channels, cfg.img_size, cfg.img_size, generator=g), torch.rand(3, generator=g), \
        torch.tensor([0, 4, 9])
    a, b = forward64(m_drift, z, t, y), forward64(m_exact, z, t, y)
    rel = float(np.linalg.norm(a - b) / np.linalg.norm(a))
    check(rel < 1e-3, f"model_ema1 with the exact table instead of its drifted one: output relative L2 {rel:.2g} "
                      f"(bound 1e-3)")
    tool(import_args(path, os.path.join(d, "from-ema1"), []) + ["--params-from", "model_ema1"], jit_train)
    # refused: the raw model's table drifted (it is never averaged: held to 1e-6)
    bad = copy.deepcopy(ck)
    bad["model"]["net.pos_embed"] = ck["model_ema1"]["net.pos_embed"].clone()
    p = os.path.join(d, "raw-drifted.pth")
    torch.save(bad, p)
    tool(import_args(p, os.path.join(d, "o1")), jit_train,
         expect_fail="raw-drifted.pth: model['net.pos_embed'] is not the fixed sin-cos table")
    # refused: wrong tables in an EMA
    D, gr = cfg.hidden, cfg.img_size // cfg.patch
    exact = torch.from_numpy(jit_ref.pos_table_2d(D, gr)).float()[None]
    wrong = {
        # the column and row halves swapped (a row-major/column-major mix-up)
        "swapped": torch.cat([exact[..., D // 2:], exact[..., :D // 2]], dim=-1),
        # the table of another hidden size (same grid)
        "hidden": torch.from_numpy(jit_ref.pos_table_2d(D + 64, gr)).float()[None],
        "garbage": torch.randn(exact.shape, generator=g),
    }
    for name, table in wrong.items():
        bad = copy.deepcopy(ck)
        bad["model_ema2"]["net.pos_embed"] = table
        p = os.path.join(d, f"ema-{name}.pth")
        torch.save(bad, p)
        tool(import_args(p, os.path.join(d, f"o-{name}")), jit_train,
             expect_fail=f"ema-{name}.pth: model_ema2['net.pos_embed'] is not the fixed sin-cos table")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="the build directory (jit-train, tests/test_interop)")
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    jit_train = os.path.join(a.bin, "jit-train")
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    torch.set_num_threads(2)
    cfg = jit_ref.named_config("jit-tiny")
    cfg.in_channels = 3
    src = os.path.join(a.work, "checkpoint-last.pth")
    model, ema1, ema2, opt = make_official(cfg, src)
    if tool(import_args(src, os.path.join(a.work, "imported")), jit_train).returncode != 0:
        return 1
    write_expectations(os.path.join(a.work, "expect.h5"), cfg, model, ema1, ema2, opt)
    r = subprocess.run([os.path.join(a.bin, "tests", "test_interop"), "--jobs", "1"],
                       env=dict(os.environ, JIT_INTEROP_DIR=a.work), capture_output=True, text=True)
    print(r.stdout + r.stderr)
    check(r.returncode == 0, "test_interop: C forward and AdamW step of the import equal PyTorch")
    # the step above changed model/opt: reload the saved originals for the export check
    model, ema1, ema2 = (official_jit.Denoiser(cfg) for _ in range(3))
    orig = torch.load(src, map_location="cpu")
    for m, k in ((model, "model"), (ema1, "model_ema1"), (ema2, "model_ema2")):
        m.load_state_dict(orig[k], strict=True)
    check_export(a.work, jit_train, cfg, model, ema1, ema2, src)
    check_pixelgen(a.work, jit_train, cfg, model, ema1)
    check_errors(a.work, jit_train, src)
    check_drifted_pos_embed(a.work, jit_train, cfg, src)
    return T.done()


if __name__ == "__main__":
    sys.exit(main())
