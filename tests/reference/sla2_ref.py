"""SLA2 sparse-linear attention in plain PyTorch: the numerical reference for
the C op.  Implements docs/sla2.md (the contract) to the letter, as a dense
masked formulation: clarity over speed, meant to be run in float64.

Run with Debian's interpreter (/usr/bin/python3: torch 1.13, numpy, h5py).
No CLI; make_fixture.py writes the fixtures and runs selftest() below.

Per (b, h), scale = 1/sqrt(d):
  K'      = K - mean_n K                                   (pooling only)
  Qbar_i  = mean of q over query block i, Kbar_j = mean of K' over key block j
            (a partial last block divides by its real token count)
  Pc      = softmax_j( ((Qbar proj_q^T) (Kbar proj_k^T)^T) * scale )   [nq, nk]
  k_sel   = min(nk, max(1, round_half_away_from_zero(topk_ratio * nk)))
  M       = hard: 1 on the k_sel largest Pc of each row (ties -> lower index),
                  0 elsewhere, no gradient;
            soft: sigmoid(Pc / tau + lambda_i), lambda_i by bisection so that
                  each row sums to k_sel; M = 1 exactly when k_sel == nk;
                  gradient by implicit differentiation (SoftTopk).
  w_ab    = M[a // block_q, b // block_k]
  O_s,a   = sum_b w_ab e_ab v_b / sum_b w_ab e_ab,  e_ab = exp(s_ab - max_b s_ab),
            s = q K^T * scale (the original K)
  O_l,a   = sum_b (1-w_ab) A_ab v_b / (sum_b (1-w_ab) A_ab + 1e-6),
            A_ab = phi(q_a) . phi(k_b)  (the original K)
  out     = alpha_h O_s + (1 - alpha_h) O_l,  alpha_h = sigmoid(alpha_logit_h)
returned with heads merged: out[b, n, h*d + c].
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

TAU = 0.1
LIN_EPS = 1e-6
BISECT_STEPS = 100
BISECT_MARGIN = 40.0     # sigmoid(-40) = 4.2e-18, sigmoid(40) == 1.0 in double

FEATURE_MAPS = ("softmax", "elu", "relu")
MODES = ("hard", "soft")


# ----------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------

def num_blocks(N: int, bs: int) -> int:
    return (N + bs - 1) // bs


def round_half_away(x: float) -> int:
    """C's round() for a finite float (round half away from zero)."""
    r = math.floor(abs(x))
    if abs(x) - r >= 0.5:
        r += 1
    return int(r if x >= 0 else -r)


def k_select(topk_ratio: float, nk: int) -> int:
    """k_sel = max(1, round_half_away(topk_ratio * nk)), at most nk.
    topk_ratio * nk is one double multiplication."""
    return min(nk, max(1, round_half_away(float(topk_ratio) * nk)))


def block_index(N: int, bs: int, device=None) -> torch.Tensor:
    return torch.div(torch.arange(N, device=device), bs, rounding_mode="floor")


def block_mean(x: torch.Tensor, bs: int) -> torch.Tensor:
    """x [..., N, d] -> [..., nb, d]: per block, (sum of its rows) / (row count)."""
    N = x.shape[-2]
    nb = num_blocks(N, bs)
    means = []
    for i in range(nb):
        lo, hi = i * bs, min((i + 1) * bs, N)
        means.append(x[..., lo:hi, :].sum(dim=-2) / (hi - lo))
    return torch.stack(means, dim=-2)


def feature_map(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "softmax":
        return torch.softmax(x, dim=-1)           # over the d channels of a token
    if kind == "elu":
        return F.elu(x) + 1.0
    if kind == "relu":
        return torch.relu(x)
    raise ValueError(f"unknown feature map {kind!r}; known: {FEATURE_MAPS}")


def merge_heads(o: torch.Tensor) -> torch.Tensor:
    """[B, H, N, d] -> [B, N, H*d], out[b, n, h*d + c] = o[b, h, n, c]."""
    B, H, N, d = o.shape
    return o.transpose(1, 2).reshape(B, N, H * d)


# ----------------------------------------------------------------------------
# router
# ----------------------------------------------------------------------------

def router_scores(q, k, proj_q, proj_k, block_q, block_k):
    """Pc [B, H, nq, nk] (steps 1-3 of docs/sla2.md)."""
    d = q.shape[-1]
    scale = 1.0 / math.sqrt(d)
    k_smooth = k - k.mean(dim=-2, keepdim=True)              # K' (per b, h, channel)
    qbar = block_mean(q, block_q)                            # [B,H,nq,d]
    kbar = block_mean(k_smooth, block_k)                     # [B,H,nk,d]
    qr = qbar @ proj_q.transpose(0, 1)                       # proj(x) = x W^T
    kr = kbar @ proj_k.transpose(0, 1)
    logits = (qr @ kr.transpose(-2, -1)) * scale
    return torch.softmax(logits, dim=-1)


def hard_topk(pc: torch.Tensor, k_sel: int) -> torch.Tensor:
    """0/1 mask, 1 on the k_sel largest entries of each row; equal values are
    taken in increasing index order (stable sort of -pc).  No gradient."""
    nk = pc.shape[-1]
    assert 1 <= k_sel <= nk
    with torch.no_grad():
        order = torch.sort(-pc, dim=-1, stable=True).indices[..., :k_sel]
        m = torch.zeros_like(pc)
        m.scatter_(-1, order, 1.0)
    return m


def soft_topk_lambda(x: torch.Tensor, k_sel: int) -> torch.Tensor:
    """lambda [..., 1] with sum_j sigmoid(x_j + lambda) = k_sel per row, x float64.
    Bracket lo = -max_j x_j - 40 (row sum < nk * 4.3e-18 < 1e-9),
            hi = -min_j x_j + 40 (every sigmoid == 1.0 in double: sum = nk);
    100 halvings: mid = (lo + hi) / 2; sum(mid) < k_sel -> lo = mid, else hi = mid;
    lambda = (lo + hi) / 2 of the final bracket."""
    assert x.dtype == torch.float64
    nk = x.shape[-1]
    lo = -x.amax(dim=-1, keepdim=True) - BISECT_MARGIN
    hi = -x.amin(dim=-1, keepdim=True) + BISECT_MARGIN
    assert (torch.sigmoid(x + lo).sum(-1) < 1e-9).all()
    assert (torch.sigmoid(x + hi).sum(-1) > nk - 1e-9).all()
    for _ in range(BISECT_STEPS):
        mid = 0.5 * (lo + hi)
        below = torch.sigmoid(x + mid).sum(dim=-1, keepdim=True) < k_sel
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    return 0.5 * (lo + hi)


class SoftTopk(torch.autograd.Function):
    """M = sigmoid(pc / tau + lambda), rows summing to k_sel (float64 inside).
    Backward (implicit differentiation, x = pc / tau, s = M (1 - M), g = dL/dM):
        dL/dx_l = s_l g_l - s_l (sum_j s_j g_j) / (sum_j s_j),  dL/dpc = dL/dx / tau.
    When k_sel == nk, M = 1 exactly and the gradient is 0."""

    @staticmethod
    def forward(ctx, pc, k_sel, tau):
        nk = pc.shape[-1]
        assert 1 <= k_sel <= nk
        ctx.tau = tau
        ctx.full = (k_sel == nk)
        if ctx.full:
            m = torch.ones_like(pc, dtype=torch.float64)
        else:
            x = pc.double() / tau
            lam = soft_topk_lambda(x, k_sel)
            m = torch.sigmoid(x + lam)
        ctx.save_for_backward(m)
        return m.to(pc.dtype)

    @staticmethod
    def backward(ctx, g):
        (m,) = ctx.saved_tensors
        if ctx.full:
            return torch.zeros_like(g), None, None
        g = g.double()
        s = m * (1.0 - m)
        ssum = s.sum(dim=-1, keepdim=True)
        sg = (s * g).sum(dim=-1, keepdim=True)
        gx = s * g - s * sg / torch.where(ssum > 0, ssum, torch.ones_like(ssum))
        return (gx / ctx.tau).to(g.dtype), None, None


def soft_topk(pc, k_sel, tau=TAU):
    return SoftTopk.apply(pc, k_sel, tau)


# ----------------------------------------------------------------------------
# the op
# ----------------------------------------------------------------------------

def sla2_attention(q, k, v, proj_q, proj_k, alpha_logit, block_q, block_k,
                   topk_ratio, feature_map_kind, mode, tau=TAU, return_aux=False):
    """q, k, v [B, H, N, d]; proj_q, proj_k [d, d]; alpha_logit [H].
    Returns out [B, N, H*d] (and, with return_aux, a dict with M [B,H,nq,nk],
    Pc [B,H,nq,nk], O_s, O_l [B,H,N,d], k_sel, alpha [H])."""
    B, H, N, d = q.shape
    assert k.shape == q.shape and v.shape == q.shape
    assert proj_q.shape == (d, d) and proj_k.shape == (d, d) and alpha_logit.shape == (H,)
    assert block_q >= 1 and block_k >= 1 and 0.0 < topk_ratio <= 1.0
    assert feature_map_kind in FEATURE_MAPS, feature_map_kind
    assert mode in MODES, mode
    nq, nk = num_blocks(N, block_q), num_blocks(N, block_k)
    k_sel = k_select(topk_ratio, nk)
    scale = 1.0 / math.sqrt(d)

    # router + selection
    if mode == "hard":
        with torch.no_grad():
            pc = router_scores(q, k, proj_q, proj_k, block_q, block_k)
            m = hard_topk(pc, k_sel)
    else:
        pc = router_scores(q, k, proj_q, proj_k, block_q, block_k)
        m = soft_topk(pc, k_sel, tau)

    # token-level weights
    qb = block_index(N, block_q, q.device)
    kb = block_index(N, block_k, q.device)
    w = m[:, :, qb, :][:, :, :, kb]                          # [B,H,N,N]

    # sparse branch: weighted softmax over the original K
    s = (q @ k.transpose(-2, -1)) * scale
    smax = s.detach().amax(dim=-1, keepdim=True)             # cancels exactly
    e = w * torch.exp(s - smax)
    o_s = (e @ v) / e.sum(dim=-1, keepdim=True)

    # linear branch over the complement
    fq = feature_map(q, feature_map_kind)
    fk = feature_map(k, feature_map_kind)
    a = (1.0 - w) * (fq @ fk.transpose(-2, -1))
    o_l = (a @ v) / (a.sum(dim=-1, keepdim=True) + LIN_EPS)

    alpha = torch.sigmoid(alpha_logit)
    al = alpha[None, :, None, None]
    out = merge_heads(al * o_s + (1.0 - al) * o_l)
    if not return_aux:
        return out
    return out, dict(M=m, Pc=pc, O_s=o_s, O_l=o_l, k_sel=k_sel, alpha=alpha)


def full_attention(q, k, v):
    """Exact softmax attention, heads merged: [B, N, H*d]."""
    d = q.shape[-1]
    a = torch.softmax((q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d)), dim=-1)
    return merge_heads(a @ v)


# ----------------------------------------------------------------------------
# an independent loop form of the hard forward (the C op's algorithm)
# ----------------------------------------------------------------------------

def _phi_np(x, kind):
    if kind == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if kind == "elu":
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0))) + 1.0
    return np.maximum(x, 0.0)


def sla2_hard_loop_np(q, k, v, proj_q, proj_k, alpha_logit, block_q, block_k,
                      topk_ratio, kind):
    """numpy float64, per (b, h, query block): selection by explicit ranking,
    sparse branch as an online softmax over the selected key blocks, linear
    branch as phi(q) (H_tot - sum_sel h_j) / (phi(q).(Z_tot - sum_sel z_j) + eps)."""
    B, H, N, d = q.shape
    nq, nk = num_blocks(N, block_q), num_blocks(N, block_k)
    ksel = k_select(topk_ratio, nk)
    scale = 1.0 / math.sqrt(d)
    out = np.zeros((B, N, H * d))
    masks = np.zeros((B, H, nq, nk))
    kr = lambda j: (j * block_k, min((j + 1) * block_k, N))  # noqa: E731
    for b in range(B):
        for h in range(H):
            Q, K, V = q[b, h], k[b, h], v[b, h]
            Ks = K - K.mean(axis=0)
            qbar = np.stack([Q[i * block_q:min((i + 1) * block_q, N)].mean(0) for i in range(nq)])
            kbar = np.stack([Ks[slice(*kr(j))].mean(0) for j in range(nk)])
            lg = (qbar @ proj_q.T) @ (kbar @ proj_k.T).T * scale
            pc = np.exp(lg - lg.max(1, keepdims=True))
            pc /= pc.sum(1, keepdims=True)
            fq, fk = _phi_np(Q, kind), _phi_np(K, kind)
            hj = [fk[slice(*kr(j))].T @ V[slice(*kr(j))] for j in range(nk)]
            zj = [fk[slice(*kr(j))].sum(0) for j in range(nk)]
            Htot, Ztot = sum(hj), sum(zj)
            alpha = 1.0 / (1.0 + math.exp(-alpha_logit[h]))
            for i in range(nq):
                row = list(pc[i])
                sel = []
                for _ in range(ksel):           # repeatedly take the first maximum
                    best = max((j for j in range(nk) if j not in sel), key=lambda j: (row[j], -j))
                    sel.append(best)
                sel.sort()
                masks[b, h, i, sel] = 1.0
                Hi = Htot - sum(hj[j] for j in sel)
                Zi = Ztot - sum(zj[j] for j in sel)
                for a in range(i * block_q, min((i + 1) * block_q, N)):
                    mrun, l, acc = -np.inf, 0.0, np.zeros(d)
                    for j in sel:
                        lo, hi = kr(j)
                        sc = K[lo:hi] @ Q[a] * scale
                        mnew = max(mrun, sc.max())
                        p = np.exp(sc - mnew)
                        corr = math.exp(mrun - mnew) if np.isfinite(mrun) else 0.0
                        l = l * corr + p.sum()
                        acc = acc * corr + p @ V[lo:hi]
                        mrun = mnew
                    os_ = acc / l
                    ol = (fq[a] @ Hi) / (fq[a] @ Zi + LIN_EPS)
                    out[b, a, h * d:(h + 1) * d] = alpha * os_ + (1 - alpha) * ol
    return out, masks


# ----------------------------------------------------------------------------
# self-test (called by make_fixture.py --selftest)
# ----------------------------------------------------------------------------

def _rand_case(B, H, N, d, gen, alpha_logit=None):
    dt = torch.float64
    q = torch.randn(B, H, N, d, generator=gen, dtype=dt)
    k = torch.randn(B, H, N, d, generator=gen, dtype=dt)
    v = torch.randn(B, H, N, d, generator=gen, dtype=dt)
    pq = torch.eye(d, dtype=dt) + torch.randn(d, d, generator=gen, dtype=dt) * 0.3 / math.sqrt(d)
    pk = torch.eye(d, dtype=dt) + torch.randn(d, d, generator=gen, dtype=dt) * 0.3 / math.sqrt(d)
    if alpha_logit is None:
        al = torch.randn(H, generator=gen, dtype=dt) * 0.5 + 2.0
    else:
        al = torch.full((H,), float(alpha_logit), dtype=dt)
    return q, k, v, pq, pk, al


def selftest(quick=False, log=print):
    import time
    gen = torch.Generator().manual_seed(7)

    # k_sel and rounding
    assert [round_half_away(x) for x in (0.5, 1.5, 2.5, 2.49999, -0.5, 0.0)] == [1, 2, 3, 2, -1, 0]
    assert k_select(0.2, 5) == 1 and k_select(0.5, 5) == 3 and k_select(1.0, 5) == 5
    assert k_select(0.01, 5) == 1 and k_select(0.25, 9) == 2 and k_select(0.35, 5) == 2
    assert block_mean(torch.arange(10.0).reshape(5, 2), 2).tolist() == [[1, 2], [5, 6], [8, 9]]
    log("ok  sla2: k_sel rounding (half away from zero, >= 1, <= nk), partial-block means")

    # hard top-k tie rule
    pc = torch.tensor([[0.3, 0.2, 0.3, 0.2], [0.1, 0.4, 0.1, 0.4]], dtype=torch.float64)
    assert hard_topk(pc, 1).tolist() == [[1, 0, 0, 0], [0, 1, 0, 0]]
    assert hard_topk(pc, 3).tolist() == [[1, 1, 1, 0], [1, 1, 0, 1]]
    assert hard_topk(torch.full((1, 5), 0.2, dtype=torch.float64), 2).tolist() == [[1, 1, 0, 0, 0]]
    log("ok  sla2: hard top-k ties go to the lower block index")

    # full attention is the special case (hard and soft, topk 1, alpha == 1)
    for (N, d, bq, bk) in ((29, 8, 8, 6), (17, 4, 5, 17), (12, 4, 1, 1)):
        q, k, v, pq, pk, _ = _rand_case(2, 3, N, d, gen)
        al = torch.full((3,), 40.0, dtype=torch.float64)
        assert torch.sigmoid(al).eq(1.0).all()
        ref = full_attention(q, k, v)
        for mode in MODES:
            for fm in FEATURE_MAPS:
                out, aux = sla2_attention(q, k, v, pq, pk, al, bq, bk, 1.0, fm, mode, return_aux=True)
                assert aux["M"].eq(1.0).all()
                assert aux["O_l"].abs().max() == 0.0
                err = (out - ref).abs().max().item()
                assert err < 1e-13, (N, mode, fm, err)
    log("ok  sla2: topk_ratio 1 + alpha 1 == full attention (hard and soft, all feature maps)")

    # soft top-k rows sum to k_sel
    for nk, ks in ((5, 1), (5, 2), (5, 3), (9, 2), (64, 10), (3, 3)):
        pc = torch.softmax(torch.randn(4, 7, nk, generator=gen, dtype=torch.float64) * 2, -1)
        m = soft_topk(pc, ks)
        assert ((m.sum(-1) - ks).abs() < 1e-9).all(), (nk, ks, (m.sum(-1) - ks).abs().max())
        assert ((m > 0) & (m <= 1)).all()
        hm = hard_topk(pc, ks)
        # the soft mask orders like pc; its k_sel largest are the hard mask's
        assert torch.equal(hard_topk(m, ks), hm)
    assert soft_topk(pc, pc.shape[-1]).eq(1.0).all()
    log("ok  sla2: soft top-k rows sum to k_sel within 1e-9 (M == 1 when k_sel == nk)")

    # gradcheck of the SoftTopk Function (implicit-differentiation backward)
    t0 = time.time()
    for nk, ks in ((5, 1), (5, 2), (5, 3), (4, 4), (9, 2)):
        pc = torch.softmax(torch.randn(2, 3, nk, generator=gen, dtype=torch.float64), -1)
        pc.requires_grad_(True)
        assert torch.autograd.gradcheck(lambda p: soft_topk(p, ks), (pc,), eps=1e-6,
                                        atol=1e-7, rtol=1e-5)
    # also on rows not summing to one (the Function does not assume a softmax input)
    x = (torch.rand(3, 6, generator=gen, dtype=torch.float64) * 3).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: soft_topk(p, 2), (x,), eps=1e-6, atol=1e-7, rtol=1e-5)
    log(f"ok  sla2: gradcheck of SoftTopk's implicit backward ({time.time() - t0:.1f}s)")

    # dense masked form == loop form (online softmax over selected blocks, H_i = total - selected)
    for (B, H, N, d, bq, bk, r, fm) in ((2, 2, 29, 8, 8, 6, 0.5, "softmax"),
                                       (1, 2, 29, 8, 8, 6, 0.2, "relu"),
                                       (1, 1, 40, 8, 7, 9, 0.35, "elu")):
        q, k, v, pq, pk, al = _rand_case(B, H, N, d, gen)
        out, aux = sla2_attention(q, k, v, pq, pk, al, bq, bk, r, fm, "hard", return_aux=True)
        lo, lm = sla2_hard_loop_np(q.numpy(), k.numpy(), v.numpy(), pq.numpy(), pk.numpy(),
                                   al.numpy(), bq, bk, r, fm)
        assert np.array_equal(aux["M"].numpy(), lm)
        err = np.abs(out.numpy() - lo).max()
        assert err < 1e-12, (fm, err)
    log("ok  sla2: dense masked form == per-block loop form (hard)")

    # gradcheck of the whole op
    t0 = time.time()
    B, H, N, d, bq, bk, r = 1, 2, 7, 4, 3, 2, 0.5
    for fm in FEATURE_MAPS:
        q, k, v, pq, pk, al = _rand_case(B, H, N, d, gen)
        ins = [t.clone().requires_grad_(True) for t in (q, k, v, pq, pk, al)]
        f = lambda q_, k_, v_, pq_, pk_, al_: sla2_attention(  # noqa: E731
            q_, k_, v_, pq_, pk_, al_, bq, bk, r, fm, "soft")
        assert torch.autograd.gradcheck(f, tuple(ins), eps=1e-6, atol=1e-6, rtol=1e-5,
                                        fast_mode=quick)
        # the router really gets a gradient in soft mode
        out = f(*ins)
        gq = torch.autograd.grad((out * torch.randn(out.shape, generator=gen, dtype=out.dtype)).sum(),
                                 (ins[3], ins[4]))
        assert gq[0].abs().max() > 0 and gq[1].abs().max() > 0
    for fm in FEATURE_MAPS:
        q, k, v, pq, pk, al = _rand_case(B, H, N, d, gen)
        ins = [t.clone().requires_grad_(True) for t in (q, k, v, al)]
        f = lambda q_, k_, v_, al_: sla2_attention(  # noqa: E731
            q_, k_, v_, pq, pk, al_, bq, bk, r, fm, "hard")
        assert torch.autograd.gradcheck(f, tuple(ins), eps=1e-6, atol=1e-6, rtol=1e-5,
                                        fast_mode=quick)
        # the hard mask has no gradient: proj_q, proj_k get none
        pq2, pk2 = pq.clone().requires_grad_(True), pk.clone().requires_grad_(True)
        out = sla2_attention(ins[0], ins[1], ins[2], pq2, pk2, ins[3], bq, bk, r, fm, "hard")
        assert out.grad_fn is not None
        g = torch.autograd.grad(out.sum(), (pq2, pk2), allow_unused=True)
        assert g[0] is None and g[1] is None
    log(f"ok  sla2: {'fast-mode ' if quick else ''}gradcheck of sla2_attention, soft "
        f"(q,k,v,proj_q,proj_k,alpha) and hard (q,k,v,alpha), N7 d4 blocks 3/2, "
        f"all feature maps ({time.time() - t0:.1f}s)")
