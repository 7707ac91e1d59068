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
  python -m icm_training.train --data .train_data/train --quality 6 --lambda 0.0483 --max-seconds 480 --out out
  # fine-tune the next lower rate from it
  python -m icm_training.train --data .train_data/train --quality 5 --lambda 0.025 --init out/ckpt_q6.pt --max-seconds 150 --out out
  # CPU smoke run
  python -m icm_training.train --data .train_data/train --max-steps 2 --batch 2 --crop 64 --device cpu --out /tmp/smoke
  # continue from a shipped model file (when the checkpoints are lost)
  python -m icm_training.train --data .train_data/train --quality 4 --init-model ../icm-psnr-q4.safetensors --max-seconds 150 --out out
  # how far the model file's tensors are from the float export it was built from
  python -m icm_training.train --init-model ../icm-psnr-q4.safetensors --compare-export out/q4.safetensors
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

from . import OUT
from .model import IcmHyperprior, rd_loss

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


# ----------------------------------------------------------------------------- model files
def _hs_scales(calib):
    """(s_in, s_out) of the integer h_s layers 0, 2, 4 (spec 12.2), as `icm model build` uses them."""
    a1, a2 = float(calib[1]) / 255.0, float(calib[2]) / 255.0
    return {0: (1.0, a1), 2: (a1, a2), 4: (a2, 2.0 ** -8)}


def _gdn_raw(reparam, effective: np.ndarray) -> torch.Tensor:
    """Inverse of CompressAI's NonNegativeParametrizer.forward (max(x, bound)^2 - pedestal):
    the stored parameter x = sqrt(max(eff + pedestal, bound^2)).  Values of `eff` below the
    parametrizer's minimum (only possible through f16 rounding) map to the bound, which the
    forward maps back to the minimum."""
    pedestal = float(reparam.pedestal.item())
    bound = float(reparam.lower_bound.bound.item())
    x = np.sqrt(np.maximum(effective.astype(np.float64) + pedestal, bound * bound))
    return torch.from_numpy(x.astype(np.float32))


def load_model_file(path: str, model: "IcmHyperprior" = None):
    """Initialise an IcmHyperprior from a shipped model file (`icm-model-1`, spec 7).

    g_a/h_a/g_s come from their F16 tensors (GDN beta/gamma converted back to CompressAI's
    reparametrised parameters), the entropy bottleneck from its raw F32 state-dict tensors,
    and h_s is dequantised from the integer layers (spec 12.2): with r_o = Mul_o * 2^-Sh_o =
    s_in * w_scale_o / s_out, w_scale_o = r_o * s_out / s_in, weight = W * w_scale_o (per
    output channel) and bias = B * s_in * w_scale_o.  Returns (model, metadata dict)."""
    import json

    from compressai.layers import GDN
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as f:
        raw_meta = f.metadata() or {}
        t = {k: f.get_tensor(k) for k in f.keys()}
    if "icm" not in raw_meta:
        raise SystemExit(f"{path}: no 'icm' metadata entry: not an icm model file")
    meta = json.loads(raw_meta["icm"])
    if meta.get("format") != "icm-model-1" or meta.get("architecture") != "hyperprior-v1":
        raise SystemExit(f"{path}: format {meta.get('format')!r} / architecture {meta.get('architecture')!r} "
                         "is not icm-model-1 / hyperprior-v1")
    if "g_a.0.weight" not in t or "h_a.0.weight" not in t:
        raise SystemExit(f"{path}: the model file has no g_a/h_a (decoder-only file): cannot train from it")
    if "h_s.calibration" not in t:
        raise SystemExit(f"{path}: no h_s.calibration: cannot dequantise h_s")
    gs = tuple(int(t[f"g_s.{i}.weight"].shape[1]) for i in (0, 2, 4))
    N, M = int(t["h_a.0.weight"].shape[0]), int(t["g_a.6.weight"].shape[0])
    if model is None:
        model = IcmHyperprior(N=N, M=M, gs=gs)
    sd = model.state_dict()
    new = {}

    def put(key, value):
        if key not in sd:
            raise SystemExit(f"{path}: model has no tensor {key}")
        v = torch.as_tensor(np.ascontiguousarray(value)).to(sd[key].dtype)
        if tuple(v.shape) != tuple(sd[key].shape):
            raise SystemExit(f"{path}: {key} has shape {tuple(v.shape)}, model expects {tuple(sd[key].shape)}")
        new[key] = v

    for seq_name in ("g_a", "h_a", "g_s"):
        for i, layer in enumerate(getattr(model, seq_name)):
            key = f"{seq_name}.{i}"
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                put(f"{key}.weight", t[f"{key}.weight"].astype(np.float32))
                put(f"{key}.bias", t[f"{key}.bias"].astype(np.float32))
            elif isinstance(layer, GDN):
                C = layer.beta.numel()
                put(f"{key}.beta", _gdn_raw(layer.beta_reparam, t[f"{key}.beta"].astype(np.float32)))
                gamma = t[f"{key}.gamma"].astype(np.float32).reshape(C, C)
                put(f"{key}.gamma", _gdn_raw(layer.gamma_reparam, gamma).reshape(layer.gamma.shape))

    calib = t["h_s.calibration"].astype(np.float64)
    for l, (s_in, s_out) in _hs_scales(calib).items():
        W = t[f"h_s.{l}.weight"].astype(np.float64)
        B = t[f"h_s.{l}.bias"].astype(np.float64)
        r = t[f"h_s.{l}.multiplier"].astype(np.float64) * np.exp2(-t[f"h_s.{l}.shift"].astype(np.float64))
        w_scale = r * s_out / s_in
        transposed = isinstance(model.h_s[l], torch.nn.ConvTranspose2d)
        ws = w_scale.reshape(1, -1, 1, 1) if transposed else w_scale.reshape(-1, 1, 1, 1)
        put(f"h_s.{l}.weight", (W * ws).astype(np.float32))
        put(f"h_s.{l}.bias", (B * s_in * w_scale).astype(np.float32))

    for k, v in t.items():
        if k.startswith("entropy_bottleneck."):
            put(k, v.astype(np.float32))
    missing = [k for k in sd if k not in new and (k.startswith(("g_a.", "h_a.", "g_s.", "h_s.")) and
                                                  k.endswith((".weight", ".bias", ".beta", ".gamma"))
                                                  or k.startswith("entropy_bottleneck.") and sd[k].is_floating_point())]
    if missing:
        raise SystemExit(f"{path}: missing tensors {missing[:5]}{'...' if len(missing) > 5 else ''}")
    sd.update(new)  # buffers not in the file (GDN pedestals/bounds, CDF buffers) keep their defaults
    model.load_state_dict(sd, strict=True)
    meta["calibration"] = [float(c) for c in calib]
    return model, meta


@torch.no_grad()
def compare_with_export(model, export_path: str, n_z: int = 4, seed: int = 0, images=None):
    """Max differences between a model (e.g. loaded from a model file) and a float export
    (`icm-float-1`): h_s on random integer z (and on the z of `images`, [B,3,H,W] in [0,1],
    when given), g_s on random y, g_a on random images, the h_s weights/biases in units of
    their quantisation steps (<= 0.5 when they are the int8 rounding of the export), and the
    effective GDN parameters.  Returns a dict name -> (max |diff|, max |ref|)."""
    from safetensors.torch import load_file
    import torch.nn.functional as F

    e = load_file(export_path)
    model = model.cpu().eval()
    g = torch.Generator().manual_seed(seed)
    N, M = model.N, model.M
    cal0 = float(e["h_s.calibration"][0]) if "h_s.calibration" in e else 16.0
    # z: sparse Laplacian-like integers within the calibrated range
    z = torch.round(torch.distributions.Laplace(0.0, cal0 / 8).sample((n_z, N, 6, 6)))
    z = z.clamp(-cal0, cal0)

    def hs_ref(v):
        v = F.relu(F.conv_transpose2d(v, e["h_s.0.weight"], e["h_s.0.bias"], stride=2, padding=2, output_padding=1))
        v = F.relu(F.conv_transpose2d(v, e["h_s.2.weight"], e["h_s.2.bias"], stride=2, padding=2, output_padding=1))
        return F.conv2d(v, e["h_s.4.weight"], e["h_s.4.bias"])

    res = {}
    ref, got = hs_ref(z), model.h_s(z)
    res["h_s scales"] = ((got[:, :M] - ref[:, :M]).abs().max().item(), ref[:, :M].abs().max().item())
    res["h_s means"] = ((got[:, M:] - ref[:, M:]).abs().max().item(), ref[:, M:].abs().max().item())
    if images is not None:
        zi = torch.round(model.h_a(model.g_a(images)))
        ref, got = hs_ref(zi), model.h_s(zi)
        res["h_s scales (image z)"] = ((got[:, :M] - ref[:, :M]).abs().max().item(), ref[:, :M].abs().max().item())
        res["h_s means (image z)"] = ((got[:, M:] - ref[:, M:]).abs().max().item(), ref[:, M:].abs().max().item())
    s_io = _hs_scales(e["h_s.calibration"].double().tolist())
    for l in (0, 2, 4):
        w_ref = e[f"h_s.{l}.weight"].double()
        transposed = isinstance(model.h_s[l], torch.nn.ConvTranspose2d)
        wmax = w_ref.abs().amax(dim=(0, 2, 3) if transposed else (1, 2, 3))
        step = torch.where(wmax > 0, wmax / 127, torch.ones_like(wmax))
        shp = (1, -1, 1, 1) if transposed else (-1, 1, 1, 1)
        dw = ((model.h_s[l].weight.double() - w_ref) / step.view(shp)).abs().max().item()
        db = ((model.h_s[l].bias.double() - e[f"h_s.{l}.bias"].double()) / (step * s_io[l][0])).abs().max().item()
        res[f"h_s.{l}.weight (quant. steps)"] = (dw, 127.0)
        res[f"h_s.{l}.bias (quant. steps)"] = (db, float("nan"))
    for l in (0, 2, 4):
        w_ref, w = e[f"h_s.{l}.weight"], model.h_s[l].weight
        res[f"h_s.{l}.weight"] = ((w - w_ref).abs().max().item(), w_ref.abs().max().item())
        res[f"h_s.{l}.bias"] = ((model.h_s[l].bias - e[f"h_s.{l}.bias"]).abs().max().item(),
                                e[f"h_s.{l}.bias"].abs().max().item())

    def seq_ref(name, v, n_layers, transposed, inverse):
        for i in range(n_layers):
            k = f"{name}.{i}"
            if i % 2 == 0:
                w, b = e[f"{k}.weight"], e[f"{k}.bias"]
                if transposed:
                    v = F.conv_transpose2d(v, w, b, stride=2, padding=2, output_padding=1)
                else:
                    v = F.conv2d(v, w, b, stride=2, padding=w.shape[-1] // 2)
            else:
                gm = e[f"{k}.gamma"]
                norm = F.conv2d(v * v, gm.view(*gm.shape, 1, 1), e[f"{k}.beta"])
                v = v * torch.sqrt(norm) if inverse else v / torch.sqrt(norm)
        return v

    y = torch.randn(2, M, 8, 8, generator=g) * 4
    ref, got = seq_ref("g_s", y, 7, True, True), model.g_s(y)
    res["g_s output"] = ((got - ref).abs().max().item(), ref.abs().max().item())
    x = torch.rand(2, 3, 64, 64, generator=g)
    x = torch.nn.functional.avg_pool2d(x, 5, 1, 2)  # a little spatial correlation
    ref, got = seq_ref("g_a", x, 7, False, False), model.g_a(x)
    res["g_a output"] = ((got - ref).abs().max().item(), ref.abs().max().item())
    from compressai.layers import GDN
    for seq_name in ("g_a", "g_s"):
        for i, layer in enumerate(getattr(model, seq_name)):
            if isinstance(layer, GDN):
                k = f"{seq_name}.{i}"
                b = layer.beta_reparam(layer.beta)
                gm = layer.gamma_reparam(layer.gamma).reshape(e[f"{k}.gamma"].shape)
                res[f"{k}.beta"] = ((b - e[f"{k}.beta"]).abs().max().item(), e[f"{k}.beta"].abs().max().item())
                res[f"{k}.gamma"] = ((gm - e[f"{k}.gamma"]).abs().max().item(), e[f"{k}.gamma"].abs().max().item())
    for k, v in model.entropy_bottleneck.state_dict().items():
        ek = f"entropy_bottleneck.{k}"
        if ek in e:
            res[ek] = ((v - e[ek]).abs().max().item(), e[ek].abs().max().item())
    return res


# ----------------------------------------------------------------------------- main
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="folder of training images (see prepare_data.py); required for training")
    ap.add_argument("--quality", type=int, default=6, choices=sorted(LAMBDAS))
    ap.add_argument("--lambda", dest="lmbda", type=float, default=None,
                    help="rate-distortion lambda (default: the ladder value for --quality)")
    ap.add_argument("--init", default=None, help="start from this checkpoint's weights (fine-tuning)")
    ap.add_argument("--init-model", default=None,
                    help="start from a shipped model file (icm-model-1 safetensors, e.g. models/icm-psnr-q4.safetensors): "
                         "F16 g_a/h_a/g_s, the bottleneck's F32 tensors, h_s dequantised from its integers "
                         "(for when the checkpoints are lost)")
    ap.add_argument("--compare-export", default=None,
                    help="with --init-model: print the max differences between the loaded model and this float "
                         "export (icm-float-1, e.g. out/q4.safetensors) and exit without training")
    ap.add_argument("--resume", default=None,
                    help="continue this checkpoint (weights + its step count, same quality)")
    ap.add_argument("--out", default=str(OUT / "train"),
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
    args = ap.parse_args(argv)
    if sum(bool(a) for a in (args.init, args.init_model, args.resume)) > 1:
        ap.error("give at most one of --init, --init-model, --resume")
    if args.compare_export and not args.init_model:
        ap.error("--compare-export needs --init-model")
    if not args.data and not args.compare_export:
        ap.error("--data is required")
    return args


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


def run_compare(args) -> int:
    model, meta = load_model_file(args.init_model)
    log(f"loaded {args.init_model}: {meta.get('name')} quality {meta.get('quality')} steps {meta.get('steps')} "
        f"calibration {meta['calibration']}")
    images = None
    if args.data:
        imgs = load_images(args.data, torch.device("cpu"), 256, max_images=2)
        images = torch.stack([im[:, :256, :256] for im in imgs]).float() / 255.0
    res = compare_with_export(model, args.compare_export, images=images)
    print(f"max |model file - float export| ({args.compare_export}):")
    for k, (d, ref) in res.items():
        if math.isnan(ref):
            print(f"  {k:36s} {d:10.3e}")
        else:
            print(f"  {k:36s} {d:10.3e}   (max |ref| {ref:.3e}, relative {d / max(ref, 1e-30):.2e})")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.compare_export:
        return run_compare(args)
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
    elif args.init_model:
        _, mmeta = load_model_file(args.init_model, model.cpu())
        model.to(device)
        prev_steps = int(mmeta.get("steps", 0))
        parents = [f"{mmeta.get('name', os.path.basename(args.init_model))}:q{mmeta.get('quality', '?')}@{prev_steps}"]
        log(f"initialised from model file {args.init_model} ({mmeta.get('name')}, quality {mmeta.get('quality')}, "
            f"steps {prev_steps}; h_s dequantised from int8)")
    warmup = args.warmup if args.warmup else (0 if (args.init or args.init_model or args.resume) else 500)

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
