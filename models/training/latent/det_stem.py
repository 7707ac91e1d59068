"""The latent detection stem: y^ sampled onto the detector's 26x26 letterbox grid (193
channels, det_common.sample_letterbox) to YOLOX-Nano's three backbone outputs.

    x -> (x - mean) * inv_std                             per-channel normalisation (fixed)
      -> 1x1 193->128, BN, ReLU6 -> 3 x inverted residual (128 -> 256 -> dw3x3 -> 128)
      trunk (26x26, stride 16)
        dark4: inverted residual 128, 1x1 128->128               (26x26)
        dark3: 2x2 transposed conv stride 2 128->64, BN, ReLU6,
               2 x inverted residual (64 -> 128 -> 64), 1x1 64->64  (52x52)
        dark5: dw3x3 stride 2, BN, ReLU6, 1x1 128->192, BN, ReLU6,
               2 x inverted residual (192 -> 384 -> 192), 1x1 192->256 (13x13)

About 0.40 G multiply-adds at 26x26 and 0.77 M parameters; the outputs are named dark3, dark4 and
dark5 and have the teacher's shapes (det_common.CUT_CHANNELS at strides 8, 16, 32). The
blocks are those of the DCT stem (models/training/dct/stem.py).
"""
from __future__ import annotations

import torch
import torch.nn as nn

import latent_common  # noqa: F401  (puts models/training/dct on sys.path)
from stem import BN_EPS, InvertedResidual, conv_bn  # models/training/dct/stem.py

from det_common import CUT_CHANNELS, IN_CHANNELS

WIDTH, TRUNK, D3, D5 = 128, 3, 64, 192

__all__ = ["DetStem", "macs", "WIDTH"]


class DetStem(nn.Module):
    def __init__(self, channels: int = IN_CHANNELS):
        super().__init__()
        c3, c4, c5 = CUT_CHANNELS
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("inv_std", torch.ones(channels))
        self.inp = nn.Sequential(conv_bn(channels, WIDTH), nn.ReLU6())
        self.trunk = nn.Sequential(*[InvertedResidual(WIDTH, 2 * WIDTH) for _ in range(TRUNK)])
        self.d4 = nn.Sequential(InvertedResidual(WIDTH, 2 * WIDTH), nn.Conv2d(WIDTH, c4, 1))
        self.d3 = nn.Sequential(
            nn.ConvTranspose2d(WIDTH, D3, 2, stride=2, bias=False), nn.BatchNorm2d(D3, eps=BN_EPS),
            nn.ReLU6(),
            InvertedResidual(D3, 2 * D3), InvertedResidual(D3, 2 * D3), nn.Conv2d(D3, c3, 1),
        )
        self.d5 = nn.Sequential(
            nn.Conv2d(WIDTH, WIDTH, 3, stride=2, padding=1, groups=WIDTH, bias=False),
            nn.BatchNorm2d(WIDTH, eps=BN_EPS), nn.ReLU6(),
            conv_bn(WIDTH, D5), nn.ReLU6(),
            InvertedResidual(D5, 2 * D5), InvertedResidual(D5, 2 * D5), nn.Conv2d(D5, c5, 1),
        )

    def outputs(self):
        """The last convolution of each output (dark3, dark4, dark5)."""
        return self.d3[-1], self.d4[-1], self.d5[-1]

    def forward(self, x):
        x = (x - self.mean[None, :, None, None]) * self.inv_std[None, :, None, None]
        t = self.trunk(self.inp(x))
        return self.d3(t), self.d4(t), self.d5(t)


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
