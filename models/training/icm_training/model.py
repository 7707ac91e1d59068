"""The icm mean-scale hyperprior, exactly as the Rust decoder implements it.

Layers come from CompressAI 1.2.8.  N=96 hyper channels, M=192 latent channels,
synthesis widths (c1, c2, c3) = (128, 96, 64).

Differences from CompressAI's `MeanScaleHyperprior`:
  * z is quantised as z_hat = round(z) (no median offset), with a
    straight-through estimator in training; the entropy bottleneck still sees
    noisy z for the rate term.
  * y is quantised around the predicted mean: y_hat = means + round(y - means)
    (straight-through in training); the Gaussian rate term uses noise.
  * h_s ends with a 1x1 convolution to 2*M channels: the first M channels are
    the scales, the last M the means.
"""
import math
from typing import Dict, Tuple

import torch
import torch.nn as nn
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import GDN
from compressai.models.utils import conv, deconv


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """round(x) in the forward pass, identity gradient in the backward pass."""
    return x + (torch.round(x) - x).detach()


class IcmHyperprior(nn.Module):
    def __init__(self, N: int = 96, M: int = 192, gs: Tuple[int, int, int] = (128, 96, 64)):
        super().__init__()
        c1, c2, c3 = gs
        self.N, self.M, self.gs = N, M, tuple(gs)
        self.g_a = nn.Sequential(
            conv(3, 64, 5, 2), GDN(64),
            conv(64, 96, 5, 2), GDN(96),
            conv(96, 128, 5, 2), GDN(128),
            conv(128, M, 5, 2),
        )
        self.h_a = nn.Sequential(
            conv(M, N, 3, 1), nn.ReLU(inplace=True),
            conv(N, N, 5, 2), nn.ReLU(inplace=True),
            conv(N, N, 5, 2),
        )
        self.h_s = nn.Sequential(
            deconv(N, N, 5, 2), nn.ReLU(inplace=True),
            deconv(N, N, 5, 2), nn.ReLU(inplace=True),
            conv(N, 2 * M, 1, 1),
        )
        self.g_s = nn.Sequential(
            deconv(M, c1, 5, 2), GDN(c1, inverse=True),
            deconv(c1, c2, 5, 2), GDN(c2, inverse=True),
            deconv(c2, c3, 5, 2), GDN(c3, inverse=True),
            deconv(c3, 3, 5, 2),
        )
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(None)

    def forward(self, x: torch.Tensor) -> Dict[str, object]:
        """Training forward (noise for the rates, straight-through rounding for
        the reconstruction).  In eval mode (`model.eval()`) it is the codec's
        forward: hard rounding, likelihoods of the rounded values."""
        if not self.training:
            return self.forward_eval(x)
        y = self.g_a(x)
        z = self.h_a(y)
        _, z_lik = self.entropy_bottleneck(z, training=True)
        z_hat = ste_round(z)
        scales, means = self.h_s(z_hat).chunk(2, 1)
        _, y_lik = self.gaussian_conditional(y, scales, means=means, training=True)
        y_hat = ste_round(y - means) + means
        x_hat = self.g_s(y_hat)
        return {"x_hat": x_hat, "likelihoods": {"y": y_lik, "z": z_lik}}

    @torch.no_grad()
    def forward_eval(self, x: torch.Tensor) -> Dict[str, object]:
        """What the codec does: z_hat = round(z), y_hat = means + round(y - means);
        likelihoods are the probabilities of the coded integers."""
        y = self.g_a(x)
        z = self.h_a(y)
        z_hat = torch.round(z)
        z_lik = self.z_likelihood(z_hat)
        scales, means = self.h_s(z_hat).chunk(2, 1)
        y_hat = torch.round(y - means) + means
        y_lik = self.gaussian_conditional._likelihood(y_hat, scales, means)
        y_lik = self.gaussian_conditional.likelihood_lower_bound(y_lik)
        x_hat = self.g_s(y_hat)
        return {"x_hat": x_hat, "likelihoods": {"y": y_lik, "z": z_lik}, "z_hat": z_hat}

    def z_likelihood(self, z_hat: torch.Tensor) -> torch.Tensor:
        """Probability of integer z_hat [B,N,H,W] under the entropy bottleneck's density."""
        eb = self.entropy_bottleneck
        B, C, H, W = z_hat.shape
        v = z_hat.permute(1, 0, 2, 3).reshape(C, 1, -1)
        lik, _, _ = eb._likelihood(v)
        lik = eb.likelihood_lower_bound(lik)
        return lik.reshape(C, B, H, W).permute(1, 0, 2, 3)

    @torch.no_grad()
    def z_pmf(self, vmin: int = -64, vmax: int = 64) -> torch.Tensor:
        """[N, vmax-vmin+1] float64 pmf of z_hat = v for every hyper channel,
        CDF(v+0.5) - CDF(v-0.5), computed in float64 with the sign trick."""
        import copy

        eb = copy.deepcopy(self.entropy_bottleneck).double().cpu()
        v = torch.arange(vmin, vmax + 1, dtype=torch.float64)
        v = v.view(1, 1, -1).expand(eb.channels, 1, -1)
        lower = eb._logits_cumulative(v - 0.5, stop_gradient=True)
        upper = eb._logits_cumulative(v + 0.5, stop_gradient=True)
        sign = -torch.sign(lower + upper)
        pmf = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        return pmf[:, 0, :]


def rd_loss(out: Dict[str, object], x: torch.Tensor, lmbda: float) -> Dict[str, torch.Tensor]:
    """CompressAI RateDistortionLoss convention: bpp + lambda * 255^2 * MSE."""
    N, _, H, W = x.shape
    num_pixels = N * H * W
    lik = out["likelihoods"]
    bpp = sum(torch.log(l).sum() for l in lik.values()) / (-math.log(2) * num_pixels)
    mse = torch.mean((out["x_hat"] - x) ** 2)
    loss = bpp + lmbda * 255.0 ** 2 * mse
    return {"loss": loss, "bpp": bpp, "mse": mse}
