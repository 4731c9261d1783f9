#!/usr/bin/python3
"""Write the JiT reference fixtures for the C side, or run the reference's self-test.

    /usr/bin/python3 tests/reference/make_fixture.py --out DIR
    /usr/bin/python3 tests/reference/make_fixture.py --selftest

--out DIR writes
  DIR/jit_tiny_fixture.h5  jit-tiny, batch 3: params/<name> (float32, the exact
                           inputs of the float64 computation), inputs/{x,z,t,y},
                           output/x_hat (float64), loss (float64 scalar),
                           grads/<name> (float64); root attributes = every
                           JiTConfig field + mlp_hidden + batch + config_name +
                           generator.
  DIR/param_counts.h5      root attribute per named config ('/' -> '_'), int64
                           exact trainable parameter count.
Output is deterministic (torch.manual_seed(1234), no HDF5 timestamps).

Fixture parameters are NOT the real initialisation (zero adaLN would zero most
gradients).  In named_parameters() order, each tensor is drawn in float32 as
randn(shape) * std (+1 for norm weights) from the global generator:
  RMSNorm weights             1 + N(0, 0.1)
  biases                      N(0, 0.1)
  class table, in_context_posemb  N(0, 0.5)
  adaLN linear weights        N(0, 0.5/sqrt(D))
  final_layer.linear.weight   N(0, 1/sqrt(D))
  every other weight matrix   N(0, 1/sqrt(fan_in)), fan_in = shape[1]
(N(0, s) means standard deviation s.)  Then inputs: x = 2*rand-1, e = randn,
t = [0.15, 0.6, 0.97], z = t*x + (1-t)*e in float32, y = [3, 10, 7]
(10 = null class).
"""

import argparse
import math
import os
import sys
import time

import numpy as np
import torch

sys.dont_write_bytecode = True   # keep tests/reference free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jit_ref  # noqa: E402
from jit_ref import JiT, JiTConfig, named_config, vloss, NAMED_CONFIGS  # noqa: E402

GENERATOR = "tests/reference/make_fixture.py"
SEED = 1234


# ----------------------------------------------------------------------------
# fixture parameter draw
# ----------------------------------------------------------------------------

def _is_norm_weight(name):
    return name.endswith(("norm1.weight", "norm2.weight", "q_norm.weight",
                          "k_norm.weight", "norm_final.weight"))


def fixture_std(name, shape, D):
    """(std, offset) for one parameter of the fixture draw."""
    if _is_norm_weight(name):
        return 0.1, 1.0
    if name.endswith(".bias"):
        return 0.1, 0.0
    if name in ("y_embedder.embedding_table.weight", "in_context_posemb"):
        return 0.5, 0.0
    if "adaLN_modulation" in name:
        return 0.5 / math.sqrt(D), 0.0
    if name == "final_layer.linear.weight":
        return 1.0 / math.sqrt(D), 0.0
    assert len(shape) == 2, name
    return 1.0 / math.sqrt(shape[1]), 0.0


def draw_fixture_params(model, D):
    """Draws float32 tensors from the global generator, in parameter order."""
    out = {}
    for name, p in model.named_parameters():
        std, off = fixture_std(name, tuple(p.shape), D)
        out[name] = torch.randn(tuple(p.shape), dtype=torch.float32) * std + off
    return out


@torch.no_grad()
def load_params(model, params):
    for name, p in model.named_parameters():
        p.copy_(params[name].to(p.dtype))


# ----------------------------------------------------------------------------
# fixture writing
# ----------------------------------------------------------------------------

def _ds(h5, name, arr):
    h5.create_dataset(name, data=arr, track_times=False)


def write_tiny_fixture(path, batch=3):
    import h5py
    cfg = named_config("jit-tiny")
    assert batch == 3
    torch.manual_seed(SEED)
    model = JiT(cfg)
    jit_ref.check_param_names(model)
    params = draw_fixture_params(model, cfg.hidden)

    B, C, S = batch, cfg.in_channels, cfg.img_size
    x = torch.rand(B, C, S, S, dtype=torch.float32) * 2 - 1
    e = torch.randn(B, C, S, S, dtype=torch.float32)
    t = torch.tensor([0.15, 0.6, 0.97], dtype=torch.float32)
    tb = t[:, None, None, None]
    z = tb * x + (1 - tb) * e
    y = torch.tensor([3, 10, 7], dtype=torch.int32)

    model = model.double().eval()
    load_params(model, params)
    model.zero_grad(set_to_none=True)
    x_hat = model(z.double(), t.double(), y)
    loss = vloss(x_hat, x.double(), z.double(), t.double())
    loss.backward()

    with h5py.File(path, "w", libver="earliest") as f:
        for k, v in cfg.as_dict().items():
            f.attrs[k] = v
        f.attrs["mlp_hidden"] = cfg.mlp_hidden
        f.attrs["batch"] = batch
        f.attrs["config_name"] = "jit-tiny"
        f.attrs["generator"] = GENERATOR
        for name, _ in model.named_parameters():
            _ds(f, "params/" + name, params[name].numpy())
        _ds(f, "inputs/x", x.numpy())
        _ds(f, "inputs/z", z.numpy())
        _ds(f, "inputs/t", t.numpy())
        _ds(f, "inputs/y", y.numpy())
        _ds(f, "output/x_hat", x_hat.detach().numpy())
        _ds(f, "loss", np.float64(loss.item()))
        for name, p in model.named_parameters():
            assert p.grad is not None and p.grad.dtype == torch.float64, name
            _ds(f, "grads/" + name, p.grad.numpy())
    return loss.item()


def write_param_counts(path):
    import h5py
    counts = {}
    for name in NAMED_CONFIGS:
        counts[name] = jit_ref.param_count(named_config(name))
    with h5py.File(path, "w", libver="earliest") as f:
        for name, n in counts.items():
            f.attrs[name.replace("/", "_")] = np.int64(n)
    return counts


# ----------------------------------------------------------------------------
# self-test
# ----------------------------------------------------------------------------

def _pos_direct(D, g):
    out = np.zeros((g * g, D))
    q = D // 4
    for r in range(g):
        for c in range(g):
            tok = r * g + c
            for half, pos in ((0, c), (1, r)):
                for k in range(q):
                    w = 10000.0 ** (-k / q)
                    out[tok, half * (D // 2) + k] = math.sin(pos * w)
                    out[tok, half * (D // 2) + q + k] = math.cos(pos * w)
    return out


def _rope_direct(x, g, n_prefix):
    """x: [N, hd] float64 numpy; per-element loop of the spec's RoPE."""
    N, hd = x.shape
    out = x.copy()
    q = hd // 4
    for n in range(n_prefix, N):
        tok = n - n_prefix
        r, c = tok // g, tok % g
        for pi in range(hd // 2):
            if pi < q:
                ang = r * 10000.0 ** (-2.0 * pi / (hd / 2))
            else:
                ang = c * 10000.0 ** (-2.0 * (pi - q) / (hd / 2))
            a, b = x[n, 2 * pi], x[n, 2 * pi + 1]
            out[n, 2 * pi] = a * math.cos(ang) - b * math.sin(ang)
            out[n, 2 * pi + 1] = b * math.cos(ang) + a * math.sin(ang)
    return out


def selftest(quick=False):
    from torch.nn.utils.stateless import functional_call
    t0 = time.time()
    torch.manual_seed(0)

    # 1. parameter names / order / shapes for every named config (meta device)
    for name in NAMED_CONFIGS:
        m = JiT(named_config(name), device=torch.device("meta"))
        jit_ref.check_param_names(m)
        assert all(not n.startswith("pos_embed") for n, _ in m.named_parameters())
    tiny = JiT(named_config("jit-tiny"))
    jit_ref.check_param_names(tiny)
    names = [n for n, _ in tiny.named_parameters()]
    assert names[0] == "x_embedder.proj1.weight" and names[-1] == "final_layer.linear.bias"
    assert len(names) == 8 + 1 + 14 * 6 + 5
    assert "pos_embed" not in tiny.state_dict()
    print("ok  parameter names/order/shapes (all named configs + jit-tiny)")

    # B/16 hand count
    assert jit_ref.param_count(named_config("JiT-B/16")) == 131_123_712
    print("ok  JiT-B/16 count == 131,123,712")

    # 2. position table vs direct formula
    for D, g in ((16, 4), (192, 8), (32, 5)):
        direct = _pos_direct(D, g)
        assert np.abs(jit_ref.pos_table_2d(D, g) - direct).max() < 1e-12, (D, g)
    cfg_t = named_config("jit-tiny")
    assert np.abs(tiny.pos_embed.numpy() - _pos_direct(cfg_t.hidden, cfg_t.grid)).max() < 1e-12
    assert tiny.pos_embed.dtype == torch.float64
    print("ok  2D sin-cos position table vs direct formula")

    # 3. RoPE vs per-element loop, with and without in-context prefix
    hd, g = 16, 3
    for npre in (0, 4):
        ang = jit_ref.rope_angles(hd, g, npre)
        xs = np.random.RandomState(1).randn(npre + g * g, hd)
        got = jit_ref.apply_rope(torch.from_numpy(xs)[None, None],
                                 torch.from_numpy(np.cos(ang)), torch.from_numpy(np.sin(ang)))[0, 0].numpy()
        assert np.abs(got - _rope_direct(xs, g, npre)).max() < 1e-12, npre
    print("ok  2D RoPE vs direct formula (identity on in-context tokens)")

    # 4. timestep features and patchify / unpatchify
    tt = torch.tensor([0.3], dtype=torch.float64)
    feat = jit_ref.timestep_features(tt)[0]
    j = 5
    fj = math.exp(-math.log(10000.0) * j / 128)
    assert abs(feat[j].item() - math.cos(0.3 * fj)) < 1e-14
    assert abs(feat[128 + j].item() - math.sin(0.3 * fj)) < 1e-14
    img = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    pt = jit_ref.patchify(img, 4)
    # token 3 = row 1, col 1; element (ch 2, r 1, c 3)
    assert pt[1, 3, 2 * 16 + 1 * 4 + 3] == img[1, 2, 4 + 1, 4 + 3]
    # unpatchify ordering: (row-in-patch, col-in-patch, channel)
    tok = torch.randn(2, 4, 4 * 4 * 3, dtype=torch.float64)
    im = jit_ref.unpatchify(tok, 4, 3)
    assert im[1, 2, 4 + 1, 3] == tok[1, 2, (1 * 4 + 3) * 3 + 2]   # token 2 = row 1, col 0
    print("ok  timestep features, patchify/unpatchify layouts")

    # 5. in-context model output shape, and in-context tokens really matter
    small = JiTConfig(img_size=8, in_channels=2, patch=2, depth=2, hidden=16, heads=2,
                      bottleneck=4, in_context_len=3, in_context_start=1, num_classes=5, dropout=0.0)
    m = JiT(small, dtype=torch.float64)
    jit_ref.check_param_names(m)
    load_params(m, draw_fixture_params(m, small.hidden))
    B = 2
    z = torch.randn(B, 2, 8, 8, dtype=torch.float64)
    t = torch.tensor([0.2, 0.98], dtype=torch.float64)
    y = torch.tensor([1, 5])
    out = m(z, t, y)
    assert out.shape == (B, 2, 8, 8), out.shape
    assert torch.isfinite(out).all()
    out_tiny = tiny(torch.randn(3, 1, 32, 32), torch.rand(3), torch.tensor([0, 10, 4]))
    assert out_tiny.shape == (3, 1, 32, 32)
    with torch.no_grad():
        m.in_context_posemb.add_(1.0)
        assert (m(z, t, y) - out).abs().max() > 1e-6
        m.in_context_posemb.sub_(1.0)
    print("ok  in-context model output shapes")

    # 6. dropout: active only in training with dropout > 0, in the middle blocks
    dcfg = JiTConfig(**{**small.as_dict(), "depth": 4, "dropout": 0.5})
    dm = JiT(dcfg, dtype=torch.float64)
    load_params(dm, draw_fixture_params(dm, dcfg.hidden))
    rates = [(blk.attn.proj_drop.p, blk.mlp.drop.p) for blk in dm.blocks]
    assert rates == [(0.0, 0.0), (0.5, 0.5), (0.5, 0.5), (0.0, 0.0)], rates
    dm.eval()
    a1, a2 = dm(z, t, y), dm(z, t, y)
    assert torch.equal(a1, a2)
    dm.train()
    assert not torch.equal(dm(z, t, y), a1)
    print("ok  dropout placement (blocks depth/4 <= i < 3*depth/4, train only)")

    # 7. init_weights
    g_ = torch.Generator().manual_seed(0)
    jit_ref.init_weights(m, g_)
    assert m.final_layer.linear.weight.abs().max() == 0
    assert all(b.adaLN_modulation[1].weight.abs().max() == 0 for b in m.blocks)
    assert m.blocks[0].attn.qkv.weight.abs().max() <= math.sqrt(6 / (16 + 48)) + 1e-12
    assert m.blocks[0].norm1.weight.eq(1).all()
    assert torch.equal(m(z, t, y), torch.zeros_like(z))   # adaLN-Zero: output is exactly 0
    print("ok  init_weights")

    # 8. finite differences of the full loss w.r.t. every parameter and z
    load_params(m, draw_fixture_params(m, small.hidden))
    names = [n for n, _ in m.named_parameters()]
    x = torch.rand(B, 2, 8, 8, dtype=torch.float64) * 2 - 1

    def f(zz, *ps):
        xh = functional_call(m, dict(zip(names, ps)), (zz, t, y))
        return vloss(xh, x, zz, t)

    ps = [p.detach().clone().requires_grad_(True) for p in m.parameters()]
    zz = z.clone().requires_grad_(True)
    nparam = sum(p.numel() for p in ps)
    t1 = time.time()
    assert torch.autograd.gradcheck(f, (zz, *ps), eps=1e-6, atol=1e-6, rtol=1e-5,
                                    fast_mode=quick)
    print(f"ok  {'fast-mode ' if quick else ''}gradcheck (float64 finite differences) of the v-loss w.r.t. "
          f"{nparam} parameters + z, config img8 p2 depth2 D16 H2 d'4 ic3@1 "
          f"({time.time() - t1:.1f}s)")
    print(f"selftest passed in {time.time() - t0:.1f}s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="output directory for the fixtures")
    ap.add_argument("--selftest", action="store_true",
                    help="run the reference self-test (full gradcheck, about a minute)")
    ap.add_argument("--quick", action="store_true",
                    help="with --selftest: gradcheck in fast_mode (random projections, seconds)")
    args = ap.parse_args()
    if not args.out and not args.selftest:
        ap.error("give --out DIR and/or --selftest")
    torch.set_num_threads(1)          # determinism of float reductions
    if args.selftest:
        selftest(quick=args.quick)
    if args.out:
        t0 = time.time()
        os.makedirs(args.out, exist_ok=True)
        loss = write_tiny_fixture(os.path.join(args.out, "jit_tiny_fixture.h5"))
        print(f"jit_tiny_fixture.h5: loss = {loss:.17g}")
        counts = write_param_counts(os.path.join(args.out, "param_counts.h5"))
        for name, n in counts.items():
            print(f"params {name:10s} {n:>13,d}")
        print(f"wrote {args.out} in {time.time() - t0:.2f}s")


if __name__ == "__main__":
    main()
