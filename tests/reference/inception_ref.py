"""inception_ref.py: the FID Inception-v3 in PyTorch, written from
torch-fidelity's definitions (its inception-v3-compat feature extractor and
its TensorFlow-1.x bilinear resize; docs/eval.md, "The FID Inception
network"), for tests/inception_test.py. Module and tensor names are the
public state_dict's, so the public file (or a random one saved in its
format) loads into it as it is. width_div divides every channel count but
the RGB input and the 1008 logits.

Deliberately plain: BatchNorm is a module (not folded), pools are F calls,
so the C side's folding and ops are checked against the definition, not
against a copy of themselves."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Conv(nn.Module):  # torch-fidelity's BasicConv2d
    def __init__(self, cin, cout, k, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class BlockA(nn.Module):
    def __init__(self, cin, pf, d):
        super().__init__()
        self.branch1x1 = Conv(cin, 64 // d, 1)
        self.branch5x5_1 = Conv(cin, 48 // d, 1)
        self.branch5x5_2 = Conv(48 // d, 64 // d, 5, padding=2)
        self.branch3x3dbl_1 = Conv(cin, 64 // d, 1)
        self.branch3x3dbl_2 = Conv(64 // d, 96 // d, 3, padding=1)
        self.branch3x3dbl_3 = Conv(96 // d, 96 // d, 3, padding=1)
        self.branch_pool = Conv(cin, pf // d, 1)

    def forward(self, x):
        p = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          self.branch_pool(p)], 1)


class BlockB(nn.Module):
    def __init__(self, cin, d):
        super().__init__()
        self.branch3x3 = Conv(cin, 384 // d, 3, stride=2)
        self.branch3x3dbl_1 = Conv(cin, 64 // d, 1)
        self.branch3x3dbl_2 = Conv(64 // d, 96 // d, 3, padding=1)
        self.branch3x3dbl_3 = Conv(96 // d, 96 // d, 3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch3x3(x), self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          F.max_pool2d(x, 3, stride=2)], 1)


class BlockC(nn.Module):
    def __init__(self, cin, c7, d):
        super().__init__()
        c7 //= d
        self.branch1x1 = Conv(cin, 192 // d, 1)
        self.branch7x7_1 = Conv(cin, c7, 1)
        self.branch7x7_2 = Conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = Conv(c7, 192 // d, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = Conv(cin, c7, 1)
        self.branch7x7dbl_2 = Conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = Conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = Conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = Conv(c7, 192 // d, (1, 7), padding=(0, 3))
        self.branch_pool = Conv(cin, 192 // d, 1)

    def forward(self, x):
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        t = x
        for m in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                  self.branch7x7dbl_5):
            t = m(t)
        p = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        return torch.cat([self.branch1x1(x), b, t, self.branch_pool(p)], 1)


class BlockD(nn.Module):
    def __init__(self, cin, d):
        super().__init__()
        self.branch3x3_1 = Conv(cin, 192 // d, 1)
        self.branch3x3_2 = Conv(192 // d, 320 // d, 3, stride=2)
        self.branch7x7x3_1 = Conv(cin, 192 // d, 1)
        self.branch7x7x3_2 = Conv(192 // d, 192 // d, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = Conv(192 // d, 192 // d, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = Conv(192 // d, 192 // d, 3, stride=2)

    def forward(self, x):
        t = x
        for m in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            t = m(t)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), t, F.max_pool2d(x, 3, stride=2)], 1)


class BlockE(nn.Module):
    def __init__(self, cin, d, max_pool):
        super().__init__()
        self.max_pool = max_pool  # torch-fidelity's InceptionE_2 (Mixed_7c): TensorFlow's graph has a max pool here
        self.branch1x1 = Conv(cin, 320 // d, 1)
        self.branch3x3_1 = Conv(cin, 384 // d, 1)
        self.branch3x3_2a = Conv(384 // d, 384 // d, (1, 3), padding=(0, 1))
        self.branch3x3_2b = Conv(384 // d, 384 // d, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = Conv(cin, 448 // d, 1)
        self.branch3x3dbl_2 = Conv(448 // d, 384 // d, 3, padding=1)
        self.branch3x3dbl_3a = Conv(384 // d, 384 // d, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = Conv(384 // d, 384 // d, (3, 1), padding=(1, 0))
        self.branch_pool = Conv(cin, 192 // d, 1)

    def forward(self, x):
        a = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(a), self.branch3x3_2b(a)], 1)
        t = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        t = torch.cat([self.branch3x3dbl_3a(t), self.branch3x3dbl_3b(t)], 1)
        if self.max_pool:
            p = F.max_pool2d(x, 3, stride=1, padding=1)
        else:
            p = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        return torch.cat([self.branch1x1(x), b, t, self.branch_pool(p)], 1)


def resize_tf1(x, size):
    """TensorFlow 1.x bilinear resize (align_corners False, no half-pixel
    offset, no antialias) as torch-fidelity defines it: source coordinate
    o * (in / out) in float32, lerp along x then along y."""
    def axis(n_in, n_out):
        u = torch.arange(n_out, dtype=torch.float32) * torch.tensor(n_in / n_out, dtype=torch.float32)
        lo = u.long()
        hi = (lo + 1).clamp_max(n_in - 1)
        return lo, hi, (u - lo.float()).to(x.dtype)
    ylo, yhi, fy = axis(x.shape[2], size)
    xlo, xhi, fx = axis(x.shape[3], size)
    top = x[:, :, ylo][:, :, :, xlo] + (x[:, :, ylo][:, :, :, xhi] - x[:, :, ylo][:, :, :, xlo]) * fx.view(1, 1, 1, -1)
    bot = x[:, :, yhi][:, :, :, xlo] + (x[:, :, yhi][:, :, :, xhi] - x[:, :, yhi][:, :, :, xlo]) * fx.view(1, 1, 1, -1)
    return top + (bot - top) * fy.view(1, 1, -1, 1)


class InceptionFID(nn.Module):
    def __init__(self, width_div=1):
        super().__init__()
        d = width_div
        self.Conv2d_1a_3x3 = Conv(3, 32 // d, 3, stride=2)
        self.Conv2d_2a_3x3 = Conv(32 // d, 32 // d, 3)
        self.Conv2d_2b_3x3 = Conv(32 // d, 64 // d, 3, padding=1)
        self.Conv2d_3b_1x1 = Conv(64 // d, 80 // d, 1)
        self.Conv2d_4a_3x3 = Conv(80 // d, 192 // d, 3)
        self.Mixed_5b = BlockA(192 // d, 32, d)
        self.Mixed_5c = BlockA(256 // d, 64, d)
        self.Mixed_5d = BlockA(288 // d, 64, d)
        self.Mixed_6a = BlockB(288 // d, d)
        self.Mixed_6b = BlockC(768 // d, 128, d)
        self.Mixed_6c = BlockC(768 // d, 160, d)
        self.Mixed_6d = BlockC(768 // d, 160, d)
        self.Mixed_6e = BlockC(768 // d, 192, d)
        self.Mixed_7a = BlockD(768 // d, d)
        self.Mixed_7b = BlockE(1280 // d, d, max_pool=False)
        self.Mixed_7c = BlockE(2048 // d, d, max_pool=True)
        self.fc = nn.Linear(2048 // d, 1008)

    def forward(self, images, side=299, norm=(128.0, 128.0)):
        """uint8 images [N, 3, H, W] -> (2048-d pool features, 1008 logits),
        in the module's dtype. norm = (shift, scale) of (x - shift) / scale:
        torch-fidelity's is (128, 128); tests pass wrong ones on purpose."""
        x = resize_tf1(images.to(self.fc.weight.dtype), side)
        x = (x - norm[0]) / norm[1]
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for m in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                  self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = m(x)
        pool = x.mean(dim=(2, 3))
        return pool, self.fc(pool)
