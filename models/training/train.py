#!/usr/bin/env python3
"""Train one icm float model (one point of the lambda ladder).

All training images are decoded once and kept on the device as uint8; every
batch is a set of random crops (default 256x256) with random horizontal flips,
taken on the device, so no DataLoader is involved.

Loss = bpp + lambda * 255^2 * MSE (CompressAI's RateDistortionLoss).  Adam,
gradient-norm clipping at 1.0, a short linear warm-up when training from
scratch, and the learning rate divided by 10 for the last `--decay-frac` of the
slice (measured in wall time when --max-seconds/--stop-at is given, else in
steps).

Outputs in --out: ckpt_q<Q>.pt (float32 model state_dict + metadata, no
optimizer state; rewritten every --save-every seconds and at the end) and
losses_q<Q>.csv (step,loss,bpp,mse,psnr,lr,seconds; means over each logging
interval).

Examples:
  # from scratch, highest rate
  python train.py --data .train_data/train --quality 6 --lambda 0.0483 --max-seconds 480 --out out
  # fine-tune the next lower rate from it
  python train.py --data .train_data/train --quality 5 --lambda 0.025 --init out/ckpt_q6.pt --max-seconds 150 --out out
  # CPU smoke run
  python train.py --data .train_data/train --max-steps 2 --batch 2 --crop 64 --device cpu --out /tmp/smoke
"""
import argparse
import concurrent.futures as cf
import csv
import math
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from model import IcmHyperprior, rd_loss  # noqa: E402

LAMBDAS = {1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.0130, 5: 0.0250, 6: 0.0483}
T_START = time.time()


def log(msg: str) -> None:
    print(f"[{time.time() - T_START:7.1f}s] {msg}", flush=True)


# ----------------------------------------------------------------------------- data
def load_images(folder: str, device: torch.device, min_side: int, max_images: int = 0):
    exts = (".jpg", ".jpeg", ".png", ".bmp", ".ppm")
    paths = sorted(
        os.path.join(r, f) for r, _d, fs in os.walk(folder) for f in fs if f.lower().endswith(exts)
    )
    if max_images:
        paths = paths[:max_images]
    if not paths:
        raise SystemExit(f"no images under {folder}")

    def load(p):
        with Image.open(p) as im:
            return np.asarray(im.convert("RGB"))

    with cf.ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as ex:
        arrays = list(ex.map(load, paths))
    imgs = []
    for a in arrays:
        if min(a.shape[0], a.shape[1]) < min_side:
            continue
        imgs.append(torch.from_numpy(a.copy()).permute(2, 0, 1).contiguous().to(device))
    if not imgs:
        raise SystemExit(f"no image under {folder} has both sides >= {min_side}")
    return imgs


class CropSampler:
    """Random crops + horizontal flips from a list of uint8 [3,H,W] device tensors."""

    def __init__(self, imgs, crop: int, seed: int):
        self.imgs, self.crop = imgs, crop
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> torch.Tensor:
        c = self.crop
        out = []
        idx = self.rng.integers(0, len(self.imgs), n)
        flips = self.rng.random(n) < 0.5
        for i, f in zip(idx, flips):
            im = self.imgs[i]
            _, H, W = im.shape
            t = int(self.rng.integers(0, H - c + 1))
            l = int(self.rng.integers(0, W - c + 1))
            p = im[:, t : t + c, l : l + c]
            out.append(p.flip(-1) if f else p)
        return torch.stack(out).float().div_(255.0)


# ----------------------------------------------------------------------------- checkpoints
def save_ckpt(path, model, meta):
    sd = {k: v.detach().float().cpu().contiguous() if v.is_floating_point() else v.detach().cpu()
          for k, v in model.state_dict().items()}
    tmp = path + ".tmp"
    torch.save({"state_dict": sd, **meta}, tmp)
    os.replace(tmp, path)


def load_ckpt(path, model):
    ck = torch.load(path, map_location="cpu", weights_only=False)
    sd = ck["state_dict"] if "state_dict" in ck else ck
    model.load_state_dict(sd, strict=True)
    return ck


# ----------------------------------------------------------------------------- main
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder of training images (see prepare_data.py)")
    ap.add_argument("--quality", type=int, default=6, choices=sorted(LAMBDAS))
    ap.add_argument("--lambda", dest="lmbda", type=float, default=None,
                    help="rate-distortion lambda (default: the ladder value for --quality)")
    ap.add_argument("--init", default=None, help="start from this checkpoint's weights (fine-tuning)")
    ap.add_argument("--resume", default=None,
                    help="continue this checkpoint (weights + its step count, same quality)")
    ap.add_argument("--out", default=os.path.join(HERE, "out", "train"),
                    help="output folder (default: out/train beside this script; the zoo itself lives in out/)")
    ap.add_argument("--max-seconds", type=float, default=0, help="stop after this many seconds of training (0: no limit)")
    ap.add_argument("--stop-at", type=float, default=0, help="also stop at this unix time (0: no limit)")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: no limit)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--warmup", type=int, default=0, help="linear lr warm-up steps (default 500 from scratch, 0 otherwise)")
    ap.add_argument("--decay-frac", type=float, default=0.2, help="last fraction of the slice run at lr/10")
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--channels-last", default="auto", choices=["auto", "on", "off"],
                    help="memory format; auto measures both on CUDA and keeps the faster")
    ap.add_argument("--probe", type=float, default=0,
                    help="before training, time batch 16/32 x NCHW/channels-last for this many seconds each and print it/s")
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--save-every", type=float, default=120, help="seconds between checkpoint saves")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-images", type=int, default=0, help="load only the first K images (tests)")
    return ap.parse_args(argv)


def make_step(model, opt, clip):
    def step(x, lmbda):
        out = model(x)
        r = rd_loss(out, x, lmbda)
        opt.zero_grad(set_to_none=True)
        r["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return r
    return step


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def probe(args, model, sampler, device, lmbda):
    """Throughput of a few configurations; the weights are restored afterwards."""
    import copy

    saved = copy.deepcopy(model.state_dict())
    res = {}
    for cl in (False, True):
        model.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
        for bs in (16, 32):
            opt = torch.optim.Adam([p for n, p in model.named_parameters() if not n.endswith("quantiles")], lr=1e-7)
            step = make_step(model, opt, args.clip)
            fmt = torch.channels_last if cl else torch.contiguous_format
            for _ in range(5):
                step(sampler.batch(bs).contiguous(memory_format=fmt), lmbda)
            sync(device)
            t0, n = time.time(), 0
            while time.time() - t0 < args.probe:
                step(sampler.batch(bs).contiguous(memory_format=fmt), lmbda)
                n += 1
                if n % 10 == 0:
                    sync(device)
            sync(device)
            dt = time.time() - t0
            res[(cl, bs)] = n / dt
            log(f"probe channels_last={cl} batch={bs}: {n / dt:.2f} it/s, {n * bs / dt:.1f} img/s")
    model.load_state_dict(saved)
    return res


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    lmbda = args.lmbda if args.lmbda is not None else LAMBDAS[args.quality]
    torch.manual_seed(args.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    os.makedirs(args.out, exist_ok=True)

    t0 = time.time()
    imgs = load_images(args.data, device, args.crop, args.max_images)
    log(f"loaded {len(imgs)} images onto {device} in {time.time() - t0:.1f}s")
    sampler = CropSampler(imgs, args.crop, args.seed + 1000 * args.quality)

    model = IcmHyperprior().to(device)
    prev_steps, parents = 0, []
    if args.resume:
        ck = load_ckpt(args.resume, model)
        prev_steps, parents = int(ck.get("steps", 0)), list(ck.get("parents", []))
        log(f"resumed {args.resume} (steps {prev_steps})")
    elif args.init:
        ck = load_ckpt(args.init, model)
        prev_steps = int(ck.get("steps", 0))
        parents = list(ck.get("parents", [])) + [f"q{ck.get('quality', '?')}@{prev_steps}"]
        log(f"initialised from {args.init} (quality {ck.get('quality')}, steps {prev_steps})")
    warmup = args.warmup if args.warmup else (0 if (args.init or args.resume) else 500)

    if args.probe > 0:
        res = probe(args, model, sampler, device, lmbda)
        if args.channels_last == "auto":
            args.channels_last = "on" if res[(True, args.batch)] > res[(False, args.batch)] else "off"
    elif args.channels_last == "auto":
        args.channels_last = "on" if device.type == "cuda" else "off"
    fmt = torch.channels_last if args.channels_last == "on" else torch.contiguous_format
    model.to(memory_format=fmt)
    model.train()

    # the quantiles of the entropy bottleneck only serve CompressAI's aux loss (unused here)
    params = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    opt = torch.optim.Adam(params, lr=args.lr)
    step_fn = make_step(model, opt, args.clip)

    csv_path = os.path.join(args.out, f"losses_q{args.quality}.csv")
    ckpt_path = os.path.join(args.out, f"ckpt_q{args.quality}.pt")
    new_csv = not (args.resume and os.path.exists(csv_path))
    fcsv = open(csv_path, "w" if new_csv else "a", newline="")
    wcsv = csv.writer(fcsv)
    if new_csv:
        wcsv.writerow(["step", "loss", "bpp", "mse", "psnr", "lr", "seconds"])

    limit = args.max_seconds if args.max_seconds > 0 else math.inf
    if args.stop_at > 0:
        limit = min(limit, args.stop_at - time.time())
    if limit == math.inf and args.max_steps == 0:
        raise SystemExit("give --max-seconds, --stop-at or --max-steps")

    def meta(step):
        return {"quality": args.quality, "lambda": lmbda, "steps": prev_steps + step, "slice_steps": step,
                "parents": parents, "batch": args.batch, "crop": args.crop, "lr": args.lr}

    log(f"q{args.quality} lambda={lmbda} batch={args.batch} crop={args.crop} lr={args.lr} warmup={warmup} "
        f"channels_last={args.channels_last} limit={limit:.0f}s max_steps={args.max_steps}")
    t_train = time.time()
    last_save = t_train
    step = 0
    acc = torch.zeros(4, device=device)  # loss, bpp, mse, nonfinite count
    n_acc = 0
    good = {k: v.detach().clone() for k, v in model.state_dict().items()}
    n_restores = 0
    while True:
        el = time.time() - t_train
        prog = max(el / limit if limit != math.inf else 0.0, step / args.max_steps if args.max_steps else 0.0)
        if prog >= 1.0:
            break
        lr = args.lr * (0.1 if prog >= 1.0 - args.decay_frac else 1.0)
        if step < warmup:
            lr *= (step + 1) / warmup
        for g in opt.param_groups:
            g["lr"] = lr
        x = sampler.batch(args.batch).contiguous(memory_format=fmt)
        r = step_fn(x, lmbda)
        step += 1
        with torch.no_grad():
            acc += torch.stack([r["loss"].detach(), r["bpp"].detach(), r["mse"].detach(),
                                (~torch.isfinite(r["loss"].detach())).float()])
        n_acc += 1
        last = args.max_steps and step >= args.max_steps
        if step % args.log_every == 0 or last:
            a = (acc / n_acc).tolist()
            nonfinite = a[3] * n_acc
            if nonfinite > 0 or not all(math.isfinite(v) for v in a[:3]):
                # a non-finite loss appeared: go back to the last good weights, fresh optimizer state
                n_restores += 1
                model.load_state_dict(good)
                opt = torch.optim.Adam(params, lr=args.lr)
                step_fn = make_step(model, opt, args.clip)
                log(f"step {step}: non-finite loss ({nonfinite:.0f}x), restored last good weights ({n_restores})")
                if n_restores > 5:
                    raise SystemExit("training diverged")
            else:
                good = {k: v.detach().clone() for k, v in model.state_dict().items()}
                psnr = 10 * math.log10(1.0 / max(a[2], 1e-12))
                secs = time.time() - t_train
                wcsv.writerow([prev_steps + step, f"{a[0]:.5f}", f"{a[1]:.5f}", f"{a[2]:.7f}", f"{psnr:.3f}",
                               f"{lr:.3g}", f"{secs:.1f}"])
                fcsv.flush()
                if step % (args.log_every * 10) == 0 or last:
                    log(f"q{args.quality} step {step} ({prev_steps + step}) loss {a[0]:.4f} bpp {a[1]:.4f} "
                        f"psnr {psnr:.2f} lr {lr:.2g} {step / secs:.2f} it/s")
            acc.zero_()
            n_acc = 0
            if time.time() - last_save > args.save_every:
                save_ckpt(ckpt_path, model, meta(step))
                last_save = time.time()
    secs = time.time() - t_train
    save_ckpt(ckpt_path, model, meta(step))
    fcsv.close()
    log(f"done q{args.quality}: {step} steps in {secs:.1f}s ({step / max(secs, 1e-9):.2f} it/s, "
        f"{step * args.batch / max(secs, 1e-9):.1f} img/s); saved {ckpt_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
