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
  DIR/jit_sla2_tiny_fixture.h5
                           the same layout for jit-tiny with SLA2 in blocks
                           1..5 (block 0 full attention), sla2 block_q 16,
                           block_k 20, topk_ratio 0.5, softmax feature map,
                           hard selection; root attributes as above plus
                           use_sla2, sla2_layers (int64 array), sla2_block_q,
                           sla2_block_k, sla2_topk_ratio, sla2_feature_map,
                           sla2_mode (config_name stays "jit-tiny").  Seed 4321.
  DIR/sla2_op_fixture.h5   the SLA2 op alone (sla2_ref.sla2_attention), one
                           group per case (case_00, ...; root attribute
                           n_cases); see write_sla2_op_fixture for the layout.
  DIR/param_counts.h5      root attribute per named config ('/' -> '_'), int64
                           exact trainable parameter count.
Output is deterministic (torch.manual_seed(1234) for jit_tiny_fixture.h5,
4321 for jit_sla2_tiny_fixture.h5, 2600 + case index for each SLA2 op case;
no HDF5 timestamps).

Fixture parameters are NOT the real initialisation (zero adaLN would zero most
gradients).  In named_parameters() order, each tensor is drawn in float32 as
randn(shape) * std (+1 for norm weights) from the global generator:
  RMSNorm weights             1 + N(0, 0.1)
  biases                      N(0, 0.1)
  class table, in_context_posemb  N(0, 0.5)
  adaLN linear weights        N(0, 0.5/sqrt(D))
  final_layer.linear.weight   N(0, 1/sqrt(D))
  every other weight matrix   N(0, 1/sqrt(fan_in)), fan_in = shape[1]
SLA2 parameters (JiT-SLA2 fixture only), also in parameter order:
  attn.sla2.proj_q, attn.sla2.proj_k   I + N(0, 0.3/sqrt(hd))
  attn.sla2.alpha_logit                N(2, 0.5)
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
import sla2_ref  # noqa: E402
from jit_ref import JiT, JiTConfig, named_config, vloss, NAMED_CONFIGS  # noqa: E402

GENERATOR = "tests/reference/make_fixture.py"
SEED = 1234
SLA2_JIT_SEED = 4321
SLA2_OP_SEED = 2600

# the JiT-SLA2 fixture model: jit-tiny, SLA2 in blocks 1..5 (hybrid)
SLA2_TINY = dict(use_sla2=True, sla2_layers=[1, 2, 3, 4, 5], sla2_block_q=16,
                 sla2_block_k=20, sla2_topk_ratio=0.5, sla2_feature_map="softmax",
                 sla2_mode="hard")


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
        shape = tuple(p.shape)
        if name.endswith(("sla2.proj_q", "sla2.proj_k")):
            n = shape[0]
            out[name] = (torch.randn(shape, dtype=torch.float32) * (0.3 / math.sqrt(n))
                         + torch.eye(n, dtype=torch.float32))
            continue
        if name.endswith("sla2.alpha_logit"):
            out[name] = torch.randn(shape, dtype=torch.float32) * 0.5 + 2.0
            continue
        std, off = fixture_std(name, shape, D)
        out[name] = torch.randn(shape, dtype=torch.float32) * std + off
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


def write_tiny_fixture(path, batch=3, cfg=None, seed=SEED):
    """jit-tiny (or cfg, a jit-tiny variant such as JiT-SLA2) at batch 3."""
    import h5py
    if cfg is None:
        cfg = named_config("jit-tiny")
    assert batch == 3
    torch.manual_seed(seed)
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
        for k, v in cfg.base_dict().items():
            f.attrs[k] = v
        f.attrs["mlp_hidden"] = cfg.mlp_hidden
        f.attrs["batch"] = batch
        f.attrs["config_name"] = "jit-tiny"
        f.attrs["generator"] = GENERATOR
        if cfg.use_sla2:
            f.attrs["use_sla2"] = np.int64(1)
            f.attrs["sla2_layers"] = np.asarray(cfg.sla2_blocks(), dtype=np.int64)
            f.attrs["sla2_block_q"] = np.int64(cfg.sla2_block_q)
            f.attrs["sla2_block_k"] = np.int64(cfg.sla2_block_k)
            f.attrs["sla2_topk_ratio"] = np.float64(cfg.sla2_topk_ratio)
            f.attrs["sla2_feature_map"] = cfg.sla2_feature_map
            f.attrs["sla2_mode"] = cfg.sla2_mode
        for name, _ in model.named_parameters():
            _ds(f, "params/" + name, params[name].numpy())
        _ds(f, "inputs/x", x.numpy())
        _ds(f, "inputs/z", z.numpy())
        _ds(f, "inputs/t", t.numpy())
        _ds(f, "inputs/y", y.numpy())
        _ds(f, "output/x_hat", x_hat.detach().numpy())
        _ds(f, "loss", np.float64(loss.item()))
        for name, p in model.named_parameters():
            g = p.grad
            if g is None and cfg.sla2_mode == "hard" and name.endswith(("sla2.proj_q", "sla2.proj_k")):
                g = torch.zeros_like(p)      # the hard mask has no gradient: stored as zeros
            assert g is not None and g.dtype == torch.float64, name
            _ds(f, "grads/" + name, g.numpy())
    return loss.item()


def sla2_tiny_config():
    return JiTConfig(**{**named_config("jit-tiny").as_dict(), **SLA2_TINY})


def write_sla2_tiny_fixture(path):
    return write_tiny_fixture(path, cfg=sla2_tiny_config(), seed=SLA2_JIT_SEED)


def sla2_op_cases():
    """[(B, H, N, d, block_q, block_k, topk_ratio, feature_map, mode)]."""
    cases = []
    for r in (0.2, 0.5, 1.0):
        for mode in ("hard", "soft"):
            for fm in ("softmax", "elu", "relu"):
                cases.append((2, 2, 29, 8, 8, 6, r, fm, mode))
    cases.append((1, 2, 288, 16, 32, 32, 0.25, "softmax", "hard"))
    cases.append((2, 2, 40, 8, 7, 9, 0.35, "elu", "soft"))
    return cases


def write_sla2_op_fixture(path):
    """Group case_XX per case.  Attributes: B, H, N, d, block_q, block_k, nq,
    nk, k_sel (int64), topk_ratio, tau (float64), feature_map, mode (strings).
    Inputs (float32, drawn after torch.manual_seed(2600 + case index) in this
    order; the computation uses exactly these values cast to float64):
      q, k, v [B,H,N,d] ~ N(0,1); proj_q, proj_k [d,d] = I + N(0,1)*0.3/sqrt(d);
      alpha_logit [H] ~ N(2, 0.5); dout [B,N,H*d] ~ N(0,1).
    Outputs (float64): out [B,N,H*d]; mask [B,H,nq,nk] (0/1 hard, soft weights);
      pc [B,H,nq,nk] router scores; o_s, o_l [B,H,N,d] the two branches;
      dq, dk, dv, dproj_q, dproj_k, dalpha_logit: gradients of
      L = sum(out * dout) (dproj_* are zero in hard mode)."""
    import h5py
    cases = sla2_op_cases()
    with h5py.File(path, "w", libver="earliest") as f:
        f.attrs["n_cases"] = np.int64(len(cases))
        f.attrs["generator"] = GENERATOR
        for ci, (B, H, N, d, bq, bk, r, fm, mode) in enumerate(cases):
            torch.manual_seed(SLA2_OP_SEED + ci)
            f32 = torch.float32
            q = torch.randn(B, H, N, d, dtype=f32)
            k = torch.randn(B, H, N, d, dtype=f32)
            v = torch.randn(B, H, N, d, dtype=f32)
            pq = torch.eye(d, dtype=f32) + torch.randn(d, d, dtype=f32) * (0.3 / math.sqrt(d))
            pk = torch.eye(d, dtype=f32) + torch.randn(d, d, dtype=f32) * (0.3 / math.sqrt(d))
            al = torch.randn(H, dtype=f32) * 0.5 + 2.0
            dout = torch.randn(B, N, H * d, dtype=f32)
            ins = [t.double().requires_grad_(True) for t in (q, k, v, pq, pk, al)]
            out, aux = sla2_ref.sla2_attention(*ins, bq, bk, r, fm, mode, return_aux=True)
            (out * dout.double()).sum().backward()
            g = f.create_group(f"case_{ci:02d}")
            nq, nk = sla2_ref.num_blocks(N, bq), sla2_ref.num_blocks(N, bk)
            for name, val in (("B", B), ("H", H), ("N", N), ("d", d), ("block_q", bq),
                              ("block_k", bk), ("nq", nq), ("nk", nk), ("k_sel", aux["k_sel"])):
                g.attrs[name] = np.int64(val)
            g.attrs["topk_ratio"] = np.float64(r)
            g.attrs["tau"] = np.float64(sla2_ref.TAU)
            g.attrs["feature_map"] = fm
            g.attrs["mode"] = mode
            for name, t in (("q", q), ("k", k), ("v", v), ("proj_q", pq), ("proj_k", pk),
                            ("alpha_logit", al), ("dout", dout)):
                _ds(g, name, t.numpy())
            _ds(g, "out", out.detach().numpy())
            _ds(g, "mask", aux["M"].detach().numpy())
            _ds(g, "pc", aux["Pc"].detach().numpy())
            _ds(g, "o_s", aux["O_s"].detach().numpy())
            _ds(g, "o_l", aux["O_l"].detach().numpy())
            for name, t in zip(("dq", "dk", "dv", "dproj_q", "dproj_k", "dalpha_logit"), ins):
                gr = t.grad if t.grad is not None else torch.zeros_like(t)
                assert gr.dtype == torch.float64
                _ds(g, name, gr.numpy())
    return cases


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

    # 9. SLA2 op (sla2_ref): special cases, soft top-k, gradchecks
    sla2_ref.selftest(quick=quick)

    # 10. JiT-SLA2: parameter names/order/shapes, init, counts
    scfg = sla2_tiny_config()
    sm = JiT(scfg)
    jit_ref.check_param_names(sm)
    snames = [n for n, _ in sm.named_parameters()]
    i = snames.index("blocks.1.attn.proj.bias")
    assert snames[i + 1:i + 5] == ["blocks.1.attn.sla2.proj_q", "blocks.1.attn.sla2.proj_k",
                                   "blocks.1.attn.sla2.alpha_logit", "blocks.1.norm2.weight"]
    assert not any(n.startswith("blocks.0.attn.sla2") for n in snames)
    assert sum(".sla2." in n for n in snames) == 15
    hd, H = scfg.head_dim, scfg.heads
    assert jit_ref.param_count(scfg) == jit_ref.param_count(named_config("jit-tiny")) + 5 * (2 * hd * hd + H)
    allcfg = JiTConfig(**{**named_config("JiT-B/16").as_dict(), "use_sla2": True})
    assert jit_ref.param_count(allcfg) == 131_123_712 + 12 * (2 * 64 * 64 + 12)
    assert "blocks.1.attn.sla2.proj_q" in sm.state_dict()
    jit_ref.init_weights(sm, torch.Generator().manual_seed(0))
    assert torch.equal(sm.blocks[3].attn.sla2.proj_k, torch.eye(hd))
    assert torch.allclose(torch.sigmoid(sm.blocks[3].attn.sla2.alpha_logit.double()),
                          torch.full((H,), 0.9, dtype=torch.float64), atol=1e-7)
    print("ok  JiT-SLA2 parameter names/order/shapes (blocks.i.attn.sla2.* after attn.proj.bias), "
          "counts, init")

    # 11. JiT-SLA2 with every block selected and alpha == 1 is the plain model
    hyb = dict(use_sla2=True, sla2_layers=[1], sla2_block_q=4, sla2_block_k=3,
               sla2_topk_ratio=1.0, sla2_feature_map="relu", sla2_mode="soft")
    hcfg = JiTConfig(**{**small.as_dict(), **hyb})
    hm = JiT(hcfg, dtype=torch.float64)
    hp = draw_fixture_params(hm, hcfg.hidden)
    load_params(hm, hp)
    with torch.no_grad():
        hm.blocks[1].attn.sla2.alpha_logit.fill_(40.0)
    base = JiT(small, dtype=torch.float64)
    load_params(base, {n: v for n, v in hp.items() if ".sla2." not in n})
    with torch.no_grad():
        assert (hm(z, t, y) - base(z, t, y)).abs().max() < 1e-12
    print("ok  JiT-SLA2 with topk_ratio 1 and alpha 1 == the full-attention model")

    # 12. gradient check of the v-loss of a hybrid JiT-SLA2 (soft selection)
    hcfg = JiTConfig(**{**small.as_dict(), **hyb, "sla2_topk_ratio": 0.5})
    hm = JiT(hcfg, dtype=torch.float64)
    load_params(hm, draw_fixture_params(hm, hcfg.hidden))
    hnames = [n for n, _ in hm.named_parameters()]

    def fh(zz, *ps):
        xh = functional_call(hm, dict(zip(hnames, ps)), (zz, t, y))
        return vloss(xh, x, zz, t)

    ps = [p.detach().clone().requires_grad_(True) for p in hm.parameters()]
    zz = z.clone().requires_grad_(True)
    t1 = time.time()
    assert torch.autograd.gradcheck(fh, (zz, *ps), eps=1e-6, atol=1e-6, rtol=1e-5, fast_mode=True)
    if not quick:     # full Jacobian w.r.t. the SLA2 parameters
        sidx = [j for j, n in enumerate(hnames) if ".sla2." in n]

        def fs(*sp):
            qs = list(ps)
            for j, v in zip(sidx, sp):
                qs[j] = v
            return fh(zz, *qs)
        assert torch.autograd.gradcheck(fs, tuple(ps[j] for j in sidx), eps=1e-6, atol=1e-6,
                                        rtol=1e-5)
    print(f"ok  gradcheck of the v-loss of a hybrid JiT-SLA2 (SLA2 in block 1, soft, blocks 4/3"
          f"{'' if quick else '; full Jacobian for the sla2 parameters'}) ({time.time() - t1:.1f}s)")
    print(f"selftest passed in {time.time() - t0:.1f}s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="output directory for the fixtures")
    ap.add_argument("--selftest", action="store_true",
                    help="run the reference self-test (full gradcheck, about 1.5 minutes)")
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
        loss = write_sla2_tiny_fixture(os.path.join(args.out, "jit_sla2_tiny_fixture.h5"))
        print(f"jit_sla2_tiny_fixture.h5: loss = {loss:.17g}")
        cases = write_sla2_op_fixture(os.path.join(args.out, "sla2_op_fixture.h5"))
        print(f"sla2_op_fixture.h5: {len(cases)} cases")
        counts = write_param_counts(os.path.join(args.out, "param_counts.h5"))
        for name, n in counts.items():
            print(f"params {name:10s} {n:>13,d}")
        print(f"wrote {args.out} in {time.time() - t0:.2f}s")


if __name__ == "__main__":
    main()
