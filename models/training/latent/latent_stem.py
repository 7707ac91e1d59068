"""The latent stem: y^ (192 channels at stride 16, sampled at the crop's cells) to the cut
tensor of MobileNetV2 (64 channels at stride 16, latent_common.CUT_SUFFIX).

    y -> (y - mean) * inv_std                       per-channel normalisation (fixed)
      -> 1x1 192->192, BN, ReLU6 -> dw3x3 192, BN, ReLU6 -> 1x1 192->96, BN
      -> 3 x inverted residual (96 -> 192 -> dw3x3 -> 96, + skip)
      -> 1x1 96->64 (+bias)

At 14x14: 35 M multiply-adds, 180 k parameters. It replaces MobileNetV2 from its input to
the first stride-16 projection (the first conv and seven inverted-residual blocks, which
run at 112x112 down to 14x14). The building blocks (conv_bn, InvertedResidual, fold,
load_folded) are those of the DCT stem (models/training/dct/stem.py).
"""
from __future__ import annotations

import torch
import torch.nn as nn

import latent_common  # noqa: F401  (puts models/training/dct on sys.path)
from stem import InvertedResidual, conv_bn, fold, load_folded  # models/training/dct/stem.py

from latent_common import CUT_CHANNELS, LATENT_CHANNELS

WIDTH, MID, EXPAND, BLOCKS = 192, 96, 2, 3

__all__ = ["LatentStem", "layers", "load_folded", "WIDTH", "MID", "EXPAND", "BLOCKS"]


class LatentStem(nn.Module):
    def __init__(self, channels: int = LATENT_CHANNELS, out: int = CUT_CHANNELS):
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("inv_std", torch.ones(channels))
        self.inp = nn.Sequential(
            conv_bn(channels, WIDTH), nn.ReLU6(),
            conv_bn(WIDTH, WIDTH, 3, groups=WIDTH), nn.ReLU6(),
            conv_bn(WIDTH, MID),
        )
        self.blocks = nn.Sequential(*[InvertedResidual(MID, MID * EXPAND) for _ in range(BLOCKS)])
        self.out = nn.Conv2d(MID, out, 1, bias=True)

    def forward(self, y):
        x = (y - self.mean[None, :, None, None]) * self.inv_std[None, :, None, None]
        return self.out(self.blocks(self.inp(x)))


def layers(stem: LatentStem):
    """The stem as folded layers: (name, weight, bias, groups, relu6, residual), residual
    marking the start ('save') and end ('add') of a skip connection (the layout of
    models/training/dct/stem.layers, which load_folded reads back)."""
    out = []
    seq = stem.inp
    for name, k, relu in (("in_expand", 0, True), ("in_dw", 2, True), ("in_project", 4, False)):
        conv, bn = seq[k][0], seq[k][1]
        out.append((name, *fold(conv, bn), conv.groups, relu, None))
    for k, blk in enumerate(stem.blocks):
        out.append((f"b{k}_expand", *fold(blk.expand[0], blk.expand[1]), 1, True, "save"))
        out.append((f"b{k}_dw", *fold(blk.dw[0], blk.dw[1]), blk.dw[0].groups, True, None))
        out.append((f"b{k}_project", *fold(blk.project[0], blk.project[1]), 1, False, "add"))
    out.append(("out", *fold(stem.out, None), 1, False, None))
    return out


def macs(stem: LatentStem, rows: int, cols: int) -> int:
    """Multiply-adds of the stem's convolutions on a rows x cols grid."""
    total = 0
    for m in stem.modules():
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            total += m.out_channels * (m.in_channels // m.groups) * k * rows * cols
    return total
