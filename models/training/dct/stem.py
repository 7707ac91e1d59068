"""The DCT input stem: frequency channels of spec Annex B (C channels at stride 8) to the
cut tensor of MobileNetV2 (32 channels at stride 8, see onnx_torch.CUT_SUFFIX).

    x -> (x - mean) * inv_std                      per-channel normalisation (fixed)
      [-> x * gate(x)]                             channel gates, selection phase only
      -> 1x1 C->96, BN, ReLU6 -> dw3x3 96, BN, ReLU6 -> 1x1 96->64, BN
      -> 2 x inverted residual (64 -> 128 -> dw3x3 -> 64, + skip)
      -> 1x1 64->32 (+bias)

At 28x28: 48 M multiply-adds with 192 input channels, 36 M with 24 (the layers of
MobileNetV2 it replaces take about 90 M on a 224x224 picture); 64 k / 48 k parameters.
Sized for CPU training in about an hour per stem (width 128 and expansion 3 cost 1.5x).

The gate (Xu et al., "Learning in the Frequency Domain", CVPR 2020, section 3.2): from the
input's per-channel mean and mean magnitude, two linear layers give one logit per channel;
training samples a hard on/off gate per channel and picture with the Gumbel trick (straight
through), and the loss adds a penalty on the expected number of open gates.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

WIDTH, MID, EXPAND, BLOCKS, OUT = 96, 64, 2, 2, 32
BN_EPS = 1e-3


def conv_bn(i, o, k=1, groups=1):
    return nn.Sequential(
        nn.Conv2d(i, o, k, padding=k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(o, eps=BN_EPS),
    )


class InvertedResidual(nn.Module):
    def __init__(self, c, e):
        super().__init__()
        self.expand = conv_bn(c, e)
        self.dw = conv_bn(e, e, 3, groups=e)
        self.project = conv_bn(e, c)
        self.act = nn.ReLU6()

    def forward(self, x):
        y = self.act(self.expand(x))
        y = self.act(self.dw(y))
        return x + self.project(y)


class Gate(nn.Module):
    def __init__(self, c, hidden=64, tau=2.0 / 3.0):
        super().__init__()
        self.fc1 = nn.Linear(2 * c, hidden)
        self.fc2 = nn.Linear(hidden, c)
        nn.init.zeros_(self.fc2.weight)
        nn.init.constant_(self.fc2.bias, 3.0)  # start open
        self.tau = tau

    def logits(self, x):
        s = torch.cat([x.mean(dim=(2, 3)), x.abs().mean(dim=(2, 3))], 1)
        return self.fc2(torch.relu(self.fc1(s)))

    def forward(self, x):
        lg = self.logits(x)
        if self.training:
            u = torch.rand_like(lg).clamp(1e-6, 1 - 1e-6)
            soft = torch.sigmoid((lg + torch.log(u) - torch.log1p(-u)) / self.tau)
            hard = (soft > 0.5).float()
            g = hard + soft - soft.detach()
        else:
            g = (lg > 0).float()
        return x * g[:, :, None, None], torch.sigmoid(lg)


class Stem(nn.Module):
    def __init__(self, channels: list[int], gate: bool = False):
        super().__init__()
        c = len(channels)
        self.channels = list(channels)
        self.register_buffer("mean", torch.zeros(c))
        self.register_buffer("inv_std", torch.ones(c))
        self.gate = Gate(c) if gate else None
        self.inp = nn.Sequential(
            conv_bn(c, WIDTH), nn.ReLU6(),
            conv_bn(WIDTH, WIDTH, 3, groups=WIDTH), nn.ReLU6(),
            conv_bn(WIDTH, MID),
        )
        self.blocks = nn.Sequential(*[InvertedResidual(MID, MID * EXPAND) for _ in range(BLOCKS)])
        self.out = nn.Conv2d(MID, OUT, 1, bias=True)

    def forward(self, x):
        x = (x - self.mean[None, :, None, None]) * self.inv_std[None, :, None, None]
        probs = None
        if self.gate is not None:
            x, probs = self.gate(x)
        y = self.out(self.blocks(self.inp(x)))
        return y, probs


def fold(conv: nn.Conv2d, bn: nn.BatchNorm2d | None):
    """(weight, bias) of conv followed by bn in eval mode."""
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    if bn is not None:
        s = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
        w = w * s[:, None, None, None]
        b = (b - bn.running_mean.double()) * s + bn.bias.detach().double()
    return w.float().numpy(), b.float().numpy()


def layers(stem: Stem):
    """The stem as a list of folded layers: (name, weight, bias, groups, relu6, residual),
    where residual marks the start ('save') and end ('add') of a skip connection."""
    out = []
    seq = stem.inp
    out.append(("in_expand", *fold(seq[0][0], seq[0][1]), 1, True, None))
    out.append(("in_dw", *fold(seq[2][0], seq[2][1]), WIDTH, True, None))
    out.append(("in_project", *fold(seq[4][0], seq[4][1]), 1, False, None))
    for k, blk in enumerate(stem.blocks):
        out.append((f"b{k}_expand", *fold(blk.expand[0], blk.expand[1]), 1, True, "save"))
        out.append((f"b{k}_dw", *fold(blk.dw[0], blk.dw[1]), blk.dw[0].groups, True, None))
        out.append((f"b{k}_project", *fold(blk.project[0], blk.project[1]), 1, False, "add"))
    out.append(("out", *fold(stem.out, None), 1, False, None))
    return out


def load_folded(stem: Stem, folded: dict[str, tuple[np.ndarray, np.ndarray]]):
    """Loads folded (weight, bias) pairs (from an exported stem) into `stem`: each conv gets
    the weight, its batch norm becomes the identity plus the bias."""
    def put(conv, bn, wb):
        w, b = wb
        conv.weight.data.copy_(torch.from_numpy(w))
        if bn is None:
            conv.bias.data.copy_(torch.from_numpy(b))
            return
        bn.weight.data.fill_(1.0)
        bn.bias.data.copy_(torch.from_numpy(b))
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)

    seq = stem.inp
    put(seq[0][0], seq[0][1], folded["in_expand"])
    put(seq[2][0], seq[2][1], folded["in_dw"])
    put(seq[4][0], seq[4][1], folded["in_project"])
    for k, blk in enumerate(stem.blocks):
        put(blk.expand[0], blk.expand[1], folded[f"b{k}_expand"])
        put(blk.dw[0], blk.dw[1], folded[f"b{k}_dw"])
        put(blk.project[0], blk.project[1], folded[f"b{k}_project"])
    put(stem.out, None, folded["out"])
