"""Float-model estimate on Kodak (evaluation only, never used for training).

For each checkpoint: the codec's forward in float (z_hat = round(z),
y_hat = means + round(y - means)), bpp = -sum(log2 likelihoods) / pixels
(an estimate of the coded size: no headers, ideal entropy coding), PSNR on the
8-bit-rounded RGB reconstruction, both averaged per image (CompressAI's
convention).  Images whose sides are not multiples of 64 are padded
(replicate) for coding and cropped back.

Usage:
  python -m icm_training.eval_kodak --kodak ../shared/data/kodak out/ckpt_q*.pt
"""
import argparse
import glob
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .model import IcmHyperprior
from .train import load_ckpt


@torch.no_grad()
def evaluate(ckpt, files, device):
    model = IcmHyperprior().to(device)
    ck = load_ckpt(ckpt, model)
    model.to(device).eval()
    bpps, psnrs = [], []
    for f in files:
        x = torch.from_numpy(np.asarray(Image.open(f).convert("RGB")).copy()).permute(2, 0, 1)
        x = x.float().div(255).unsqueeze(0).to(device)
        H, W = x.shape[-2:]
        ph, pw = (-H) % 64, (-W) % 64
        xp = F.pad(x, (0, pw, 0, ph), mode="replicate") if (ph or pw) else x
        out = model.forward_eval(xp)
        bits = sum(-torch.log2(l).sum().item() for l in out["likelihoods"].values())
        x_hat = out["x_hat"][..., :H, :W].clamp(0, 1).mul(255).round()
        mse = torch.mean((x_hat - x.mul(255).round()) ** 2).item()
        bpps.append(bits / (H * W))
        psnrs.append(10 * math.log10(255 ** 2 / mse))
    return ck, float(np.mean(bpps)), float(np.mean(psnrs))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpts", nargs="+")
    ap.add_argument("--kodak", default="../shared/data/kodak")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    files = sorted(glob.glob(os.path.join(args.kodak, "*.png")))
    if not files:
        raise SystemExit(f"no PNG under {args.kodak}")
    print("ckpt,quality,lambda,steps,kodak_bpp,kodak_psnr")
    for c in args.ckpts:
        ck, bpp, psnr = evaluate(c, files, torch.device(args.device))
        print(f"{c},{ck['quality']},{ck['lambda']},{ck['steps']},{bpp:.4f},{psnr:.3f}", flush=True)


if __name__ == "__main__":
    main()
