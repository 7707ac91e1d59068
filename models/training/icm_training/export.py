"""Checkpoint -> float export file (format "icm-float-1") read by `icm model build`.

A safetensors file, every tensor float32 and contiguous:
  <seq>.<i>.weight / .bias   every Conv2d ([out,in,k,k]) and ConvTranspose2d ([in,out,k,k])
  <seq>.<i>.beta  [C]        GDN/IGDN effective beta  (after CompressAI's reparametrisation)
  <seq>.<i>.gamma [C,C]      GDN/IGDN effective gamma: gamma[i,j] weights x_j^2 in the
                             normaliser of output i: GDN y_i = x_i / sqrt(beta_i + sum_j gamma[i,j] x_j^2),
                             IGDN y_i = x_i * sqrt(beta_i + sum_j gamma[i,j] x_j^2)
  z_pmf [N,129]              P(z_hat = v), v = -64..64, per hyper channel (float64 -> float32)
  h_s.calibration [3]        [0] 99.999th percentile of |z_hat|, [1] 99.99th percentile of the
                             h_s.1 (ReLU) output, [2] the same for h_s.3, over random training crops
  entropy_bottleneck.*       the EntropyBottleneck's floating-point state_dict tensors (for resuming;
                             its empty integer CDF buffers are left out)
metadata: format, N, M, gs, quality, lambda, steps, data.

Usage:
  python -m icm_training.export --ckpt out/ckpt_q6.pt --data .train_data/train --out out/q6.safetensors
"""
import argparse
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compressai.layers import GDN
from safetensors.torch import load_file, save_file

from .model import IcmHyperprior
from .train import CropSampler, load_ckpt, load_images

DATA_DESC = "shared/data/train (bsds500+imagenet-sample), 256x256 crops"


@torch.no_grad()
def calibrate(model, data, n_crops, crop, seed):
    imgs = load_images(data, torch.device("cpu"), crop)
    sampler = CropSampler(imgs, crop, seed)
    zs, h1s, h2s = [], [], []
    left = n_crops
    while left > 0:
        b = min(20, left)
        left -= b
        x = sampler.batch(b)
        z_hat = torch.round(model.h_a(model.g_a(x)))
        h1 = model.h_s[1](model.h_s[0](z_hat))
        h2 = model.h_s[3](model.h_s[2](h1))
        zs.append(z_hat.abs().flatten())
        h1s.append(h1.flatten())
        h2s.append(h2.flatten())
    z = torch.cat(zs).numpy().astype(np.float64)
    h1 = torch.cat(h1s).numpy().astype(np.float64)
    h2 = torch.cat(h2s).numpy().astype(np.float64)
    cal = [np.percentile(z, 99.999), np.percentile(h1, 99.99), np.percentile(h2, 99.99)]
    info = {"z_abs_max": float(z.max()), "h1_max": float(h1.max()), "h2_max": float(h2.max())}
    return cal, info


def gdn_check(layer: GDN, beta: torch.Tensor, gamma: torch.Tensor):
    """The exported effective parameters reproduce the layer's output."""
    x = torch.randn(2, beta.numel(), 5, 5)
    norm = F.conv2d(x ** 2, gamma.view(*gamma.shape, 1, 1), beta)
    ref = x * torch.sqrt(norm) if layer.inverse else x * torch.rsqrt(norm)
    err = (layer(x) - ref).abs().max().item()
    assert err < 1e-4, f"GDN reproduction error {err}"


@torch.no_grad()
def export(ckpt_path, out_path, data, n_crops=200, crop=256, seed=1234):
    model = IcmHyperprior()
    ck = load_ckpt(ckpt_path, model)
    model.eval()
    t = {}
    for seq_name in ("g_a", "h_a", "h_s", "g_s"):
        seq = getattr(model, seq_name)
        for i, layer in enumerate(seq):
            key = f"{seq_name}.{i}"
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                t[f"{key}.weight"] = layer.weight.detach().float()
                t[f"{key}.bias"] = layer.bias.detach().float()
            elif isinstance(layer, GDN):
                beta = layer.beta_reparam(layer.beta).detach().float()
                gamma = layer.gamma_reparam(layer.gamma).detach().float()
                C = beta.numel()
                gamma = gamma.reshape(C, C)
                gdn_check(layer, beta, gamma)
                t[f"{key}.beta"] = beta
                t[f"{key}.gamma"] = gamma

    pmf = model.z_pmf(-64, 64)
    sums = pmf.sum(1)
    print(f"z_pmf: row sums min {sums.min().item():.9f} max {sums.max().item():.9f}")
    assert (sums - 1).abs().max() < 1e-3, "z_pmf rows do not sum to ~1: density too wide for -64..64"
    t["z_pmf"] = pmf.float()

    cal, info = calibrate(model, data, n_crops, crop, seed)
    print(f"calibration: |z_hat| p99.999 {cal[0]:.3f} (max {info['z_abs_max']:.0f}), "
          f"h_s.1 p99.99 {cal[1]:.4f} (max {info['h1_max']:.4f}), h_s.3 p99.99 {cal[2]:.4f} (max {info['h2_max']:.4f})")
    t["h_s.calibration"] = torch.tensor(cal, dtype=torch.float32)

    for k, v in model.entropy_bottleneck.state_dict().items():
        if v.is_floating_point():
            t[f"entropy_bottleneck.{k}"] = v.detach().float()

    t = {k: v.contiguous() for k, v in t.items()}
    meta = {
        "format": "icm-float-1",
        "N": str(model.N),
        "M": str(model.M),
        "gs": ",".join(str(c) for c in model.gs),
        "quality": str(ck["quality"]),
        "lambda": str(ck["lambda"]),
        "steps": str(ck["steps"]),
        "data": DATA_DESC,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    save_file(t, out_path, metadata=meta)
    back = load_file(out_path)
    assert all(torch.equal(back[k], t[k]) for k in t)
    print(f"wrote {out_path}: {len(t)} tensors, {os.path.getsize(out_path) / 2**20:.1f} MiB, metadata {meta}")


def forward_from_export(t, x):
    """Codec forward in float from the exported tensors alone (no CompressAI):
    returns x_hat and the bits of y_hat and z_hat.  A reference for readers of
    the format."""
    def conv(k, v, s, transposed=False):
        w, b = t[f"{k}.weight"], t[f"{k}.bias"]
        if transposed:
            return F.conv_transpose2d(v, w, b, stride=2, padding=2, output_padding=1)
        return F.conv2d(v, w, b, stride=s, padding=w.shape[-1] // 2)

    def gdn(k, v, inverse):
        g = t[f"{k}.gamma"]
        norm = F.conv2d(v * v, g.view(*g.shape, 1, 1), t[f"{k}.beta"])
        return v * torch.sqrt(norm) if inverse else v / torch.sqrt(norm)

    v = x
    for i in (0, 2, 4):
        v = gdn(f"g_a.{i + 1}", conv(f"g_a.{i}", v, 2), False)
    y = conv("g_a.6", v, 2)
    z = conv("h_a.4", F.relu(conv("h_a.2", F.relu(conv("h_a.0", y, 1)), 2)), 2)
    z_hat = torch.round(z)
    h = F.relu(conv("h_s.0", z_hat, 2, True))
    h = F.relu(conv("h_s.2", h, 2, True))
    h = conv("h_s.4", h, 1)
    M = h.shape[1] // 2
    scales, means = h[:, :M], h[:, M:]
    q = torch.round(y - means)
    s = scales.clamp_min(0.11)
    cdf = lambda u: 0.5 * torch.erfc(-u / math.sqrt(2))
    p_y = (cdf((0.5 - q.abs()) / s) - cdf((-0.5 - q.abs()) / s)).clamp_min(1e-9)
    pmf = t["z_pmf"]
    zi = (z_hat.clamp(-64, 64) + 64).long()
    p_z = torch.gather(pmf, 1, zi.permute(1, 0, 2, 3).reshape(pmf.shape[0], -1)).clamp_min(1e-9)
    v = q + means
    for i in (0, 2, 4):
        v = gdn(f"g_s.{i + 1}", conv(f"g_s.{i}", v, 2, True), True)
    x_hat = conv("g_s.6", v, 2, True)
    bits = -(torch.log2(p_y).sum() + torch.log2(p_z).sum())
    return x_hat, bits


@torch.no_grad()
def verify(ckpt_path, out_path, data, crop=256, seed=99):
    """Compare the export-only forward with the model's codec forward."""
    model = IcmHyperprior()
    load_ckpt(ckpt_path, model)
    model.eval()
    t = load_file(out_path)
    x = CropSampler(load_images(data, torch.device("cpu"), crop, max_images=50), crop, seed).batch(2)
    ref = model.forward_eval(x)
    ref_bits = -sum(torch.log2(l).sum() for l in ref["likelihoods"].values())
    x_hat, bits = forward_from_export(t, x)
    err = (x_hat - ref["x_hat"]).abs().max().item()
    print(f"verify: max |x_hat diff| {err:.2e}, bits {bits.item():.1f} vs {ref_bits.item():.1f}")
    assert err < 1e-3 and abs(bits.item() - ref_bits.item()) < 1e-3 * ref_bits.item() + 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default=".train_data/train", help="training images for the calibration")
    ap.add_argument("--crops", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--no-verify", action="store_true", help="skip the export-only forward check")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    export(args.ckpt, args.out, args.data, args.crops, seed=args.seed)
    if not args.no_verify:
        verify(args.ckpt, args.out, args.data)


if __name__ == "__main__":
    main()
