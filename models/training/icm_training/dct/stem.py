"""The DCT input stem: frequency channels of spec Annex B (C channels at stride 8) to the
cut tensor of MobileNetV2 (32 channels at stride 8, stems.classifier.DCT_CUT): a
stems.blocks.ConvStem of width 96, 64 middle channels, two inverted residuals of expansion 2.

At 28x28: 48 M multiply-adds with 192 input channels, 36 M with 24 (the layers of
MobileNetV2 it replaces take about 90 M on a 224x224 picture); 64 k / 48 k parameters.
Sized for CPU training in about an hour per stem (width 128 and expansion 3 cost 1.5x).

The gate (Xu et al., "Learning in the Frequency Domain", CVPR 2020, section 3.2): from the
input's per-channel mean and mean magnitude, two linear layers give one logit per channel;
training samples a hard on/off gate per channel and picture with the Gumbel trick (straight
through), and the loss adds a penalty on the expected number of open gates.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..stems.blocks import ConvStem
from ..stems.classifier import DCT_CUT

WIDTH, MID, EXPAND, BLOCKS = 96, 64, 2, 2


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


class Stem(ConvStem):
    """The stem on the Annex B channels `channels` (in input order), gated or not."""

    def __init__(self, channels: list[int], gate: bool = False):
        c = len(channels)
        super().__init__(c, WIDTH, MID, EXPAND, BLOCKS, DCT_CUT.channels, Gate(c) if gate else None)
        self.channels = list(channels)

    def open_probabilities(self, x):
        """Gate-open probability of every channel of every sample of the raw input x."""
        return torch.sigmoid(self.gate.logits(self.normalise(x)))
