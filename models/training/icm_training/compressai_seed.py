"""Seeded (and briefly CPU-trained) CompressAI reference checkpoints.

CompressAI's pretrained weights cannot be downloaded here, so the reference models that icm's
importer is checked against are made here: a `compressai.models.ScaleHyperprior`
(`bmshj2018-hyperprior`) or `MeanScaleHyperprior` (`mbt2018-mean`) of any width, initialised
from `torch.manual_seed(seed)` and trained for `--steps` steps the way CompressAI's
examples/train.py trains (RateDistortionLoss = bpp + lambda * 255^2 * MSE; Adam lr 1e-4 on the
main parameters, a separate Adam lr 1e-3 on the bottleneck's `quantiles` driven by
`net.aux_loss()`; gradient-norm clipping 1.0; random crops of the training photos, no flips).
`--steps 0` saves the seeded initialisation. Before saving, `net.update(force=True)` fills
`_quantized_cdf`, `_offset`, `_cdf_length` (and the Gaussian's `scale_table`) of both entropy
models, so the checkpoint carries the CDFs CompressAI's `compress` uses.

Formats (`--format`):
  train   torch.save({"epoch", "state_dict", "loss", "optimizer", "aux_optimizer",
          "lr_scheduler"}) as examples/train.py's save_checkpoint writes it (zip serialisation);
  zoo     the plain `net.state_dict()` (what CompressAI's model zoo ships);
  legacy  the train dict with `_use_new_zipfile_serialization=False`.
A sidecar OUT.json (OUT without `.pth.tar`/`.tar`/`.pth`) holds the arguments, the final loss
terms (means over the last 25 steps) and the wall time.

Deterministic for a given seed and thread count: the crops come from
`numpy.random.default_rng(seed)`, the weights and the training noise from
`torch.manual_seed(seed)`.

Examples:
  PY=~/.cache/icm-venv/bin/python
  PYTHONPATH=models/training $PY -m icm_training.compressai_seed --arch mbt2018-mean --N 128 --M 192 \\
      --steps 300 -o ~/.cache/icm/compressai/mbt2018-mean-small.pth.tar
  PYTHONPATH=models/training $PY -m icm_training.compressai_seed --arch bmshj2018-hyperprior \\
      --N 8 --M 12 --steps 2 --batch 1 --crop 64 --format zoo -o /tmp/tiny.pth.tar
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from . import SHARED

ARCHS = ("bmshj2018-hyperprior", "mbt2018-mean")
EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")
DEFAULT_TRAIN = str(SHARED / "data" / "train")


def model_class(arch: str):
    from compressai.models import MeanScaleHyperprior, ScaleHyperprior

    return {"bmshj2018-hyperprior": ScaleHyperprior, "mbt2018-mean": MeanScaleHyperprior}[arch]


def sidecar_path(out: str) -> Path:
    p = Path(out)
    name = p.name
    for suf in (".pth.tar", ".tar", ".pth", ".pt"):
        if name.endswith(suf):
            name = name[: -len(suf)]
            break
    return p.with_name(name + ".json")


class RateDistortionLoss(nn.Module):
    """CompressAI examples/train.py: bpp + lambda * 255^2 * MSE."""

    def __init__(self, lmbda: float):
        super().__init__()
        self.mse = nn.MSELoss()
        self.lmbda = lmbda

    def forward(self, output, target):
        n, _, h, w = target.size()
        num_pixels = n * h * w
        out = {}
        out["bpp_loss"] = sum(
            torch.log(lk).sum() / (-math.log(2) * num_pixels) for lk in output["likelihoods"].values()
        )
        out["mse_loss"] = self.mse(output["x_hat"], target)
        out["loss"] = self.lmbda * 255**2 * out["mse_loss"] + out["bpp_loss"]
        return out


def configure_optimizers(net: nn.Module, lr: float, aux_lr: float):
    """CompressAI examples/train.py: the main Adam without, the aux Adam with only `.quantiles`."""
    params = {n for n, p in net.named_parameters() if not n.endswith(".quantiles") and p.requires_grad}
    aux = {n for n, p in net.named_parameters() if n.endswith(".quantiles") and p.requires_grad}
    pd = dict(net.named_parameters())
    assert not (params & aux) and len(params | aux) == len(pd)
    optimizer = torch.optim.Adam((pd[n] for n in sorted(params)), lr=lr)
    aux_optimizer = torch.optim.Adam((pd[n] for n in sorted(aux)), lr=aux_lr)
    return optimizer, aux_optimizer


class Crops:
    """Random `crop`x`crop` RGB crops of the photos under `folder` (those with a side under
    `crop` are left out), chosen by a seeded numpy generator; float32 in [0,1], NCHW."""

    def __init__(self, folder: str, crop: int, seed: int):
        paths = sorted(
            os.path.join(r, f) for r, _d, fs in os.walk(folder) for f in fs if f.lower().endswith(EXTS)
        )
        self.items = []
        for p in paths:
            with Image.open(p) as im:
                w, h = im.size
            if min(w, h) >= crop:
                self.items.append((p, w, h))
        if not self.items:
            raise SystemExit(f"no picture of at least {crop}x{crop} under {folder}")
        self.skipped = len(paths) - len(self.items)
        self.crop = crop
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> torch.Tensor:
        out = np.empty((n, self.crop, self.crop, 3), np.uint8)
        for b in range(n):
            p, w, h = self.items[int(self.rng.integers(len(self.items)))]
            x0 = int(self.rng.integers(w - self.crop + 1))
            y0 = int(self.rng.integers(h - self.crop + 1))
            with Image.open(p) as im:
                out[b] = np.asarray(im.convert("RGB").crop((x0, y0, x0 + self.crop, y0 + self.crop)))
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def log(t0: float, msg: str) -> None:
    print(f"[{time.perf_counter() - t0:8.1f}s] {msg}", flush=True)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", required=True, choices=ARCHS)
    ap.add_argument("--N", type=int, required=True)
    ap.add_argument("--M", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=0, help="training steps (0: the seeded initialisation)")
    ap.add_argument("--train-dir", default=DEFAULT_TRAIN)
    ap.add_argument("--lambda", dest="lmbda", type=float, default=0.0130,
                    help="MSE lambda (default 0.0130, CompressAI's quality 3)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--aux-lr", type=float, default=1e-3)
    ap.add_argument("--clip", type=float, default=1.0, help="gradient-norm clipping (0: none)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--format", choices=("train", "zoo", "legacy"), default="train")
    ap.add_argument("-o", "--out", required=True, help="checkpoint (e.g. OUT.pth.tar)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    net = model_class(args.arch)(args.N, args.M)
    net.train()
    optimizer, aux_optimizer = configure_optimizers(net, args.lr, args.aux_lr)
    lr_scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, "min")  # saved, never stepped
    criterion = RateDistortionLoss(args.lmbda)
    nparams = sum(p.numel() for p in net.parameters())
    log(t0, f"{args.arch} N={args.N} M={args.M} seed={args.seed}: {nparams:,} parameters, "
            f"{args.steps} steps of {args.batch}x{args.crop}^2, lambda={args.lmbda}, threads={args.threads}")

    history = []
    crops = Crops(args.train_dir, args.crop, args.seed)  # also for --steps 0 (the loss of one batch)
    log(t0, f"{len(crops.items)} training pictures ({crops.skipped} with a side under {args.crop} left out)")
    t_train = time.perf_counter()
    for step in range(1, args.steps + 1):
        d = crops.batch(args.batch)
        optimizer.zero_grad()
        aux_optimizer.zero_grad()
        out_net = net(d)
        out = criterion(out_net, d)
        out["loss"].backward()
        if args.clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), args.clip)
        optimizer.step()
        aux_loss = net.aux_loss()
        aux_loss.backward()
        aux_optimizer.step()
        rec = {k: v.item() for k, v in out.items()}
        rec["aux_loss"] = aux_loss.item()
        if not all(math.isfinite(v) for v in rec.values()):
            raise SystemExit(f"step {step}: non-finite loss {rec}")
        history.append(rec)
        if step % args.log_every == 0 or step == 1 or step == args.steps:
            last = history[-args.log_every:]
            m = {k: sum(r[k] for r in last) / len(last) for k in rec}
            psnr = 10 * math.log10(1 / max(m["mse_loss"], 1e-12))
            el = time.perf_counter() - t_train
            log(t0, f"step {step:4d}/{args.steps}  loss {m['loss']:.4f}  bpp {m['bpp_loss']:.4f}  "
                    f"mse {m['mse_loss']:.6f} ({psnr:.2f} dB)  aux {m['aux_loss']:.1f}  "
                    f"({el / step:.2f} s/step)")
    train_s = time.perf_counter() - t_train

    if history:
        last = history[-25:]
        final = {k: sum(r[k] for r in last) / len(last) for k in history[-1]}
        final["averaged_over_steps"] = len(last)
    else:  # seeded initialisation: the loss of one training batch (train mode, noise)
        with torch.no_grad():
            d = crops.batch(args.batch)
            out = criterion(net(d), d)
            final = {k: float(v) for k, v in out.items()}
            final["aux_loss"] = float(net.aux_loss())
            final["averaged_over_steps"] = 0

    net.eval()
    with torch.no_grad():
        net.update(force=True)
    state = {
        "epoch": (args.steps * args.batch) // len(crops.items),
        "state_dict": net.state_dict(),
        "loss": final["loss"],
        "optimizer": optimizer.state_dict(),
        "aux_optimizer": aux_optimizer.state_dict(),
        "lr_scheduler": lr_scheduler.state_dict(),
    }
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "zoo":
        torch.save(net.state_dict(), out_path)
    elif args.format == "legacy":
        torch.save(state, out_path, _use_new_zipfile_serialization=False)
    else:
        torch.save(state, out_path)
    total_s = time.perf_counter() - t0
    eb, gc = net.entropy_bottleneck, net.gaussian_conditional
    summary = {
        "checkpoint": str(out_path),
        "args": vars(args),
        "compressai": __import__("compressai").__version__,
        "torch": torch.__version__,
        "parameters": nparams,
        "training_pictures": len(crops.items),
        "final": final,
        "train_s": round(train_s, 2),
        "s_per_step": round(train_s / args.steps, 3) if args.steps else None,
        "total_s": round(total_s, 2),
        "entropy_bottleneck_cdf": list(eb._quantized_cdf.shape),
        "gaussian_conditional_cdf": list(gc._quantized_cdf.shape),
    }
    sidecar_path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    log(t0, f"wrote {out_path} ({args.format}, {out_path.stat().st_size / 1e6:.1f} MB): final loss "
            f"{final['loss']:.4f} bpp {final['bpp_loss']:.4f} mse {final['mse_loss']:.6f} aux {final['aux_loss']:.1f}; "
            f"training {train_s:.1f} s, total {total_s:.1f} s")
    return summary


if __name__ == "__main__":
    main()
    sys.exit(0)
