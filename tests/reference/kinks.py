"""kinks.py: the LPIPS gradient's reference in float64, and the directions in
which a correct float32 implementation may still differ from it.

A ReLU's gradient jumps at 0 and max pooling's where two values of a window
are equal. A pre-activation that float64 puts at +4e-8 may come out of a
float32 product at -1e-8, and which it does depends on the BLAS kernel and
the thread count, not on the code's correctness (seen: OpenBLAS's SSE3
kernels flip two of VGG16's 1.1 M pre-activations at 64 px, moving the
gradient by 4e-3 in relative L2; its AVX2 and AVX-512 kernels none). Such a
flip adds or removes one path, so the float32 gradient differs from the
float64 one by a sum of these vectors:
  - a ReLU whose float64 pre-activation z lies within T of 0:
    g * dz/dx, with g the gradient reaching its output (the pooled
    window's gradient when the output feeds a max-pool window whose largest
    value is itself within T of 0, since a flipped value would be the max);
  - a max-pool window whose two largest (positive) values are within T:
    g * (dp_a/dx - dp_b/dx).
T is KINK times the largest difference between PyTorch's float32 forward and
the float64 one at that layer (float32 rounding, measured on the same
inputs); a kernel's rounding is of the same order, and KINK leaves a wide
margin (the flips seen sit below 0.1 T). The C test (tests/test_pixelgen.c)
removes the projection of its error on these vectors and holds the rest to a
tight bound. So everything but the kinks is checked as tightly as smooth
code, and a real bug (a mask dropped, a window's gradient misplaced) moves
the gradient in directions these few vectors do not span.
"""

import torch

KINK = 16.0  # T in units of the measured float32 deviation


def _windows(p):
    """[B, C, H, W] -> [B, C, H/2, W/2, 4]: 2x2 windows, row-major inside."""
    B, C, H, W = p.shape
    return p.view(B, C, H // 2, 2, W // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(B, C, H // 2, W // 2, 4)


def _window_member(b, c, i, j, k):
    """Index into the pooled layer's input of member k of window (i, j)."""
    return (b, c, 2 * i + k // 2, 2 * j + k % 2)


def reference(vgg32, shift, scale, lins, xh, x, taps_at, with_kinks=True):
    """LPIPS(xh, x) per sample in float64, its gradient with respect to xh,
    the tapped features, and the kink directions [n, xh.numel()] with a
    count per kind. Without with_kinks only the forward: LPIPS and the
    features (the gradient None, no kinks). vgg32: torchvision's VGG16 in
    float32 (its float64 copy is made here)."""
    import copy
    feats64 = copy.deepcopy(vgg32.features[:30]).double()  # not the classifier: 124 M weights LPIPS never uses
    xh64 = xh.detach().double().requires_grad_(with_kinks)
    h = (xh64 - shift.double()) / scale.double()
    h32 = (xh.detach() - shift) / scale
    relus, pools, taps, dev = [], [], [], 0.0
    for i, (l64, l32) in enumerate(zip(feats64, vgg32.features[:30])):
        if not with_kinks:  # the forward alone: no float32 twin, no retained gradients
            with torch.no_grad():
                h = l64(h)
        elif isinstance(l64, torch.nn.ReLU):
            dev = (h32.double() - h).abs().max().item()
            a = torch.relu(h)
            a.retain_grad()
            relus.append((h, a, KINK * dev))
            h = a
        elif isinstance(l64, torch.nn.MaxPool2d):
            out = l64(h)
            out.retain_grad()
            pools.append((h, out, relus[-1][2], len(relus) - 1))
            h = out
        else:
            h = l64(h)
        if with_kinks:
            with torch.no_grad():
                h32 = l32(h32)
        if i in taps_at:
            taps.append(h)
    with torch.no_grad():
        hb = (x.double() - shift.double()) / scale.double()
        taps_b = []
        for i, l64 in enumerate(feats64):
            hb = l64(hb)
            if i in taps_at:
                taps_b.append(hb)
    total = 0
    for l, (u, v) in enumerate(zip(taps, taps_b)):
        u = u / (u.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        v = v / (v.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        total = total + ((u - v) ** 2 * lins[l].double().view(1, -1, 1, 1)).sum(1).mean((1, 2))
    if not with_kinks:
        return total.detach(), None, [t.detach() for t in taps], None, 0, 0
    total.sum().backward(retain_graph=True)
    grad = xh64.grad.detach().clone()

    # Which pool follows each ReLU (its output feeds that window directly).
    pool_after = {r: (p, out, t) for (p, out, t, r) in pools}
    dirs, n_relu, n_pool = [], 0, 0

    def direction(t, seed):
        return torch.autograd.grad(t, xh64, grad_outputs=seed, retain_graph=True)[0].reshape(-1)

    for r, (z, a, t) in enumerate(relus):
        for idx in (z.abs() < t).nonzero().tolist():
            idx = tuple(idx)
            g = a.grad[idx].item()
            if g == 0.0 and r in pool_after:
                p, out, _ = pool_after[r]
                b, c, y, xx = idx
                w = (b, c, y // 2, xx // 2)
                if _windows(p)[w].max().item() < t:
                    g = out.grad[w].item()
            if g == 0.0:
                continue  # a flip here changes nothing downstream
            seed = torch.zeros_like(z)
            seed[idx] = g
            dirs.append(direction(z, seed))
            n_relu += 1
    for (p, out, t, _) in pools:
        top = _windows(p).detach().topk(2, dim=-1)
        near = (top.values[..., 0] > t) & (top.values[..., 0] - top.values[..., 1] < t)
        for w in near.nonzero().tolist():
            b, c, i, j = w
            ka, kb = top.indices[b, c, i, j].tolist()
            seed = torch.zeros_like(p)
            g = out.grad[b, c, i, j].item()
            seed[_window_member(b, c, i, j, ka)] = g
            seed[_window_member(b, c, i, j, kb)] = -g
            dirs.append(direction(p, seed))
            n_pool += 1
    kinks = torch.stack(dirs) if dirs else torch.zeros(0, xh.numel(), dtype=torch.float64)
    return total.detach(), grad, [t.detach() for t in taps], kinks, n_relu, n_pool
