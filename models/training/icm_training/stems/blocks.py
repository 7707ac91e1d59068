"""The layers of the stems: MobileNetV2's inverted residual, the classifier stems' network
(ConvStem), batch-norm folding (what the ONNX files hold, and how they load back) and
multiply-add counts.

ConvStem, the DCT and latent classifier stems (the domains choose the widths):

    x -> (x - mean) * inv_std                      per-channel normalisation (fixed)
      [-> x * gate(x)]                             optional channel gates (the DCT selection)
      -> 1x1 C->width, BN, ReLU6 -> dw3x3 width, BN, ReLU6 -> 1x1 width->mid, BN
      -> blocks x inverted residual (mid -> expand*mid -> dw3x3 -> mid, + skip)
      -> 1x1 mid->out (+bias)
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

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


class ConvStem(nn.Module):
    """The classifier stems' network (module docstring). `gate`: a module mapping the
    normalised input to (gated input, open probabilities), or None."""

    def __init__(self, channels: int, width: int, mid: int, expand: int, blocks: int, out: int,
                 gate: nn.Module | None = None):
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("inv_std", torch.ones(channels))
        self.gate = gate
        self.inp = nn.Sequential(
            conv_bn(channels, width), nn.ReLU6(),
            conv_bn(width, width, 3, groups=width), nn.ReLU6(),
            conv_bn(width, mid),
        )
        self.blocks = nn.Sequential(*[InvertedResidual(mid, mid * expand) for _ in range(blocks)])
        self.out = nn.Conv2d(mid, out, 1, bias=True)

    def normalise(self, x):
        return (x - self.mean[None, :, None, None]) * self.inv_std[None, :, None, None]

    def gated(self, x):
        """(output, gate-open probabilities or None)."""
        x, probs = self.normalise(x), None
        if self.gate is not None:
            x, probs = self.gate(x)
        return self.out(self.blocks(self.inp(x))), probs

    def forward(self, x):
        return self.gated(x)[0]


def fold(conv: nn.Conv2d, bn: nn.BatchNorm2d | None):
    """(weight, bias) of conv followed by bn in eval mode."""
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    if bn is not None:
        s = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
        w = w * s[:, None, None, None]
        b = (b - bn.running_mean.double()) * s + bn.bias.detach().double()
    return w.float().numpy(), b.float().numpy()


def _convs(stem: ConvStem):
    """(name, conv, batch norm or None, relu6, residual) of every layer of `stem`, where
    residual marks the start ('save') and end ('add') of a skip connection."""
    seq = stem.inp
    out = [("in_expand", *seq[0], True, None), ("in_dw", *seq[2], True, None),
           ("in_project", *seq[4], False, None)]
    for k, blk in enumerate(stem.blocks):
        out += [(f"b{k}_expand", *blk.expand, True, "save"), (f"b{k}_dw", *blk.dw, True, None),
                (f"b{k}_project", *blk.project, False, "add")]
    return out + [("out", stem.out, None, False, None)]


def layers(stem: ConvStem):
    """The stem as a list of folded layers: (name, weight, bias, groups, relu6, residual)."""
    return [(name, *fold(conv, bn), conv.groups, relu6, res) for name, conv, bn, relu6, res in _convs(stem)]


def load_folded(stem: ConvStem, folded: dict[str, tuple[np.ndarray, np.ndarray]]):
    """Loads folded (weight, bias) pairs (from an exported stem) into `stem`: each conv gets
    the weight, its batch norm becomes the identity plus the bias."""
    for name, conv, bn, _, _ in _convs(stem):
        w, b = folded[name]
        conv.weight.data.copy_(torch.tensor(w))
        if bn is None:
            conv.bias.data.copy_(torch.tensor(b))
            continue
        bn.weight.data.fill_(1.0)
        bn.bias.data.copy_(torch.tensor(b))
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)


def macs(stem: nn.Module, rows: int, cols: int) -> int:
    """Multiply-adds of the stem's (transposed) convolutions for a rows x cols input."""
    total = 0

    def hook(m, inp, out):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1]
        if isinstance(m, nn.ConvTranspose2d):
            total += m.in_channels * m.out_channels * k * inp[0].shape[2] * inp[0].shape[3]
        else:
            total += m.out_channels * (m.in_channels // m.groups) * k * out.shape[2] * out.shape[3]

    hs = [m.register_forward_hook(hook) for m in stem.modules()
          if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    was_training = stem.training
    stem.eval()  # a forward in training mode would move the batch norms' running statistics
    with torch.no_grad():
        stem(torch.zeros(1, stem.mean.shape[0], rows, cols))
    stem.train(was_training)
    for h in hs:
        h.remove()
    return total
