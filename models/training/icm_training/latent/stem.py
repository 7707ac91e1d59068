"""The latent stems.

LatentStem, the classifier's: y^ (192 channels at stride 16, sampled at the crop's cells)
to the cut tensor of MobileNetV2 (64 channels at stride 16, stems.classifier.LATENT_CUT): a
stems.blocks.ConvStem of width 192, 96 middle channels, three inverted residuals of
expansion 2. At 14x14: 35 M multiply-adds, 180 k parameters; it replaces MobileNetV2 from
its input to the first stride-16 projection (the first conv and seven inverted-residual
blocks, which run at 112x112 down to 14x14).

DetStem, the detector's: y^ sampled onto the detector's 26x26 letterbox grid (193 channels,
inputs.sample_letterbox) to YOLOX-Nano's three backbone outputs:

    x -> (x - mean) * inv_std                             per-channel normalisation (fixed)
      -> 1x1 193->128, BN, ReLU6 -> 3 x inverted residual (128 -> 256 -> dw3x3 -> 128)
      trunk (26x26, stride 16)
        dark4: inverted residual 128, 1x1 128->128               (26x26)
        dark3: 2x2 transposed conv stride 2 128->64, BN, ReLU6,
               2 x inverted residual (64 -> 128 -> 64), 1x1 64->64  (52x52)
        dark5: dw3x3 stride 2, BN, ReLU6, 1x1 128->192, BN, ReLU6,
               2 x inverted residual (192 -> 384 -> 192), 1x1 192->256 (13x13)

About 0.40 G multiply-adds at 26x26 and 0.77 M parameters; the outputs have the teacher's
shapes (stems.detector.CUT_CHANNELS at strides 8, 16, 32).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..stems.blocks import BN_EPS, ConvStem, InvertedResidual, conv_bn
from ..stems.classifier import LATENT_CUT
from ..stems.detector import CUT_CHANNELS
from .inputs import DET_CHANNELS, LATENT_CHANNELS


class LatentStem(ConvStem):
    WIDTH, MID, EXPAND, BLOCKS = 192, 96, 2, 3

    def __init__(self, channels: int = LATENT_CHANNELS):
        super().__init__(channels, self.WIDTH, self.MID, self.EXPAND, self.BLOCKS, LATENT_CUT.channels)


class DetStem(nn.Module):
    WIDTH, TRUNK, D3, D5 = 128, 3, 64, 192

    def __init__(self, channels: int = DET_CHANNELS):
        super().__init__()
        w, d3, d5 = self.WIDTH, self.D3, self.D5
        c3, c4, c5 = CUT_CHANNELS
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("inv_std", torch.ones(channels))
        self.inp = nn.Sequential(conv_bn(channels, w), nn.ReLU6())
        self.trunk = nn.Sequential(*[InvertedResidual(w, 2 * w) for _ in range(self.TRUNK)])
        self.d4 = nn.Sequential(InvertedResidual(w, 2 * w), nn.Conv2d(w, c4, 1))
        self.d3 = nn.Sequential(
            nn.ConvTranspose2d(w, d3, 2, stride=2, bias=False), nn.BatchNorm2d(d3, eps=BN_EPS),
            nn.ReLU6(),
            InvertedResidual(d3, 2 * d3), InvertedResidual(d3, 2 * d3), nn.Conv2d(d3, c3, 1),
        )
        self.d5 = nn.Sequential(
            nn.Conv2d(w, w, 3, stride=2, padding=1, groups=w, bias=False),
            nn.BatchNorm2d(w, eps=BN_EPS), nn.ReLU6(),
            conv_bn(w, d5), nn.ReLU6(),
            InvertedResidual(d5, 2 * d5), InvertedResidual(d5, 2 * d5), nn.Conv2d(d5, c5, 1),
        )

    def outputs(self):
        """The last convolution of each output (dark3, dark4, dark5)."""
        return self.d3[-1], self.d4[-1], self.d5[-1]

    def forward(self, x):
        x = (x - self.mean[None, :, None, None]) * self.inv_std[None, :, None, None]
        t = self.trunk(self.inp(x))
        return self.d3(t), self.d4(t), self.d5(t)
