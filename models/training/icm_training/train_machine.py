"""Fine-tune an icm model for machines (the icm-machine-* zoo).

Starts from a shipped PSNR model file and trains the codec (all of it, or the parts that
--train-parts names) with

    L = R + lambda * ( beta(t) * 255^2 * MSE + (1 - beta(t)) * kappa(t) * L_task )

R: bits per pixel (noise proxy, as train.py); MSE: on [0, 1] RGB; L_task: distillation
of the frozen YOLOX-Nano detector (../shared/models/yolox_nano, turned into a PyTorch
module by onnx2torch) on the reconstruction against the original picture (training
pictures have no labels):
- --task-loss features (default): relative squared error of the three neck feature maps
  (strides 8, 16, 32), each divided by the teacher's feature energy;
- --task-loss outputs: per anchor point, squared error of the box regression weighted by
  the teacher's objectness, plus binary cross-entropy of objectness and class
  probabilities against the teacher's.
The detector sees crops resized by --det-scale, or with --whole whole pictures scaled by
--det-scale into its grey 416x416 letterbox canvas.

Dynamic loss weights, instead of a grid search over fixed weights:
- kappa(t) = 255^2 * EMA(MSE) / EMA(L_task) puts the task loss on the scale of the
  distortion term as both change (the two have unrelated units: a fixed weight that
  balances them at the start is off by an order of magnitude once either moves);
- beta(t) falls linearly from 1 to --beta-end over the first --beta-frac of the steps:
  training starts at the PSNR objective the model was trained for and moves the weight of
  the distortion budget to the task, so the rate is spent where the detector needs it;
  MSE keeps a small weight so the picture stays a picture (and PSNR is reported);
- lambda, the rate-distortion trade-off, is that of the starting model unless given.

--train-parts encoder trains g_a and h_a only: the decoder side (h_s, g_s, the entropy
models) stays that of the starting model, so the machine model differs from it only in
what the encoder chooses to code (fewer parameters to move on a short CPU budget);
--train-parts synthesis trains g_s only: every bitstream stays that of the starting model,
so accuracy is compared at exactly the same rate.

Checkpoints (ckpt_q<Q>.pt) are in train.py's format, so export.py and
`icm model build` turn them into model files; the run resumes from its checkpoint.
Log: losses_q<Q>.csv (step, loss, bpp, mse, psnr, task, beta, kappa, seconds).

    python -m icm_training.train_machine --data .train_data/train --init-model ../icm-psnr-q2.safetensors \\
        --quality 2 --max-steps 600 --out out/machine
"""
import argparse
import csv
import math
import os
import sys
import time

import warnings

import numpy as np
import torch

# onnx2torch's Slice converter indexes with a list (a PyTorch deprecation warning per call).
warnings.filterwarnings("ignore", message="Using a non-tuple sequence", category=UserWarning)

from . import DETECTOR, OUT
from .model import IcmHyperprior, rd_loss
from .train import CropSampler, load_ckpt, load_images, load_model_file, log, save_ckpt

DEFAULT_TEACHER = str(DETECTOR)


def neck_outputs(model) -> list:
    """Names of YOLOX's three neck (PAN) outputs, strides 8, 16 and 32: the inputs of the
    head branch of each level (five convolutions back from head.cls_preds.<k>)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    names = []
    for k in range(3):
        preds = [n for n in model.graph.node if f"head.cls_preds.{k}.weight" in n.input]
        if len(preds) != 1:
            raise SystemExit(f"teacher: no unique head.cls_preds.{k} convolution (not a YOLOX export?)")
        tensor, convs = preds[0].input[0], 0
        while True:
            node = producer.get(tensor)
            if node is None:
                raise SystemExit(f"teacher: level {k} head does not reach the neck")
            if node.op_type == "Conv":
                convs += 1
                if convs == 5:
                    names.append(node.input[0])
                    break
            tensor = node.input[0]
    return names


def load_teacher(path: str, device: torch.device, features: bool) -> torch.nn.Module:
    """YOLOX-Nano as a frozen PyTorch module, input BGR 0..255. features=False: the whole
    detector, output [B, A, 85] (batch 1: the export reshapes with it built in);
    features=True: the backbone and neck only (onnx.utils.Extractor), output the three
    neck feature maps (any batch, any size divisible by 32)."""
    import onnx
    from onnx2torch import convert

    graph = onnx.load(path)
    if features:
        graph = onnx.utils.Extractor(graph).extract_model([graph.graph.input[0].name], neck_outputs(graph))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = convert(graph)
    net.eval().to(device)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def to_yolox(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] RGB to the detector's input: BGR, 0..255."""
    return x[:, [2, 1, 0]] * 255.0


def detect(teacher: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The detector's predictions for a batch of [0, 1] RGB pictures, one picture at a time:
    the exported graph reshapes with a batch size of 1 built in."""
    return torch.cat([teacher(to_yolox(x[i : i + 1])) for i in range(x.shape[0])])


def neck_features(teacher: torch.nn.Module, x: torch.Tensor, scale: float) -> list:
    """The neck's feature maps of a batch of [0, 1] RGB pictures, resized by `scale` (to a
    multiple of 32) first, as the evaluation letterbox shrinks COCO pictures to 416."""
    side = max(32, int(round(x.shape[-1] * scale / 32)) * 32)
    if side != x.shape[-1]:
        x = torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear", align_corners=False,
                                            antialias=scale < 1.0)
    return list(teacher(to_yolox(x)))


def letterbox(x: torch.Tensor, scale=None, side: int = 416) -> torch.Tensor:
    """The detector's pre-processing (MODEL.md), differentiable: scale the [0, 1] picture so
    that its longer side is `side` (scale None) or by `scale` (at most that much), bilinear
    without anti-aliasing as OpenCV's resize, and place it at the top-left of a side x side
    canvas of grey 114. The evaluation scales a 640x480 COCO picture by 0.65; training
    pictures are smaller, so train_machine.py scales them by that typical factor."""
    h, w = x.shape[-2:]
    r = min(side / h, side / w) if scale is None else min(scale, side / h, side / w)
    nh, nw = max(1, int(h * r)), max(1, int(w * r))
    y = torch.nn.functional.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)
    return torch.nn.functional.pad(y, (0, side - nw, 0, side - nh), value=114.0 / 255.0)


class WholeSampler:
    """Whole training pictures (cut to a multiple of 64 a side, as the codec needs, at a
    random offset; random horizontal flips), one [1, 3, H, W] tensor each."""

    def __init__(self, imgs, seed: int):
        self.imgs = imgs
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> list:
        out = []
        for i in self.rng.integers(0, len(self.imgs), n):
            im = self.imgs[i]
            _, H, W = im.shape
            h, w = H // 64 * 64, W // 64 * 64
            t = int(self.rng.integers(0, H - h + 1))
            l = int(self.rng.integers(0, W - w + 1))
            p = im[None, :, t : t + h, l : l + w]
            out.append((p.flip(-1) if self.rng.random() < 0.5 else p).float().div(255.0))
        return out


def feature_loss(student: list, teacher: list) -> torch.Tensor:
    """Mean over the three levels of the squared feature error relative to the teacher's
    feature energy (so each stride counts alike, whatever its activation scale)."""
    return sum(((s - t) ** 2).mean() / t.pow(2).mean().clamp_min(1e-6) for s, t in zip(student, teacher)) / len(teacher)


def distill_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Detection distillation on [B, A, 85] predictions (x, y, log w, log h, objectness,
    80 class probabilities; probabilities after the sigmoid)."""
    obj = teacher[..., 4:5]
    box = ((student[..., :4] - teacher[..., :4]) ** 2 * obj).sum() / obj.sum().clamp_min(1.0)
    p = student[..., 4:].clamp(1e-6, 1 - 1e-6)
    q = teacher[..., 4:]
    bce = -(q * torch.log(p) + (1 - q) * torch.log1p(-p)).mean()
    return box + bce


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="folder of training images (prepare_data.py)")
    ap.add_argument("--init-model", required=True, help="shipped model file to start from")
    ap.add_argument("--quality", type=int, required=True, help="zoo quality index of the result")
    ap.add_argument("--lambda", dest="lmbda", type=float, default=None,
                    help="rate-distortion trade-off (default: the starting model's)")
    ap.add_argument("--teacher", default=DEFAULT_TEACHER, help="YOLOX-Nano ONNX file")
    ap.add_argument("--task-loss", choices=["features", "outputs"], default="features",
                    help="features: relative squared error of the three neck feature maps; outputs: "
                         "distillation of the detector's predictions (box, objectness, classes)")
    ap.add_argument("--whole", action="store_true",
                    help="train on whole pictures letterboxed into the detector's 416x416 canvas, "
                         "scaled by --det-scale (--crop unused; pictures of at least 64x64)")
    ap.add_argument("--det-scale", type=float, default=0.65,
                    help="resize pictures by this before the detector (crops: features only): the evaluation "
                         "letterbox shrinks a 640x480 COCO picture to 416x312")
    ap.add_argument("--out", default=str(OUT / "machine"))
    ap.add_argument("--max-steps", type=int, default=600)
    ap.add_argument("--max-seconds", type=float, default=0, help="also stop after this long (0: no limit)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--train-parts", choices=["all", "encoder", "synthesis"], default="all",
                    help="all: the whole codec; encoder: g_a and h_a only (the decoder side, h_s, "
                         "g_s and the entropy models, stays that of --init-model); synthesis: g_s "
                         "only (the bitstream of every picture stays that of --init-model)")
    ap.add_argument("--beta-end", type=float, default=0.1)
    ap.add_argument("--beta-frac", type=float, default=0.5)
    ap.add_argument("--ema", type=float, default=0.98, help="decay of the loss averages behind kappa")
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--max-images", type=int, default=0)
    ap.add_argument("--save-every", type=float, default=300, help="seconds between checkpoints")
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def crop_terms(model, teacher, x, lmbda, args):
    """Rate-distortion terms and task loss of a batch of crops."""
    out = model(x)
    x_hat = out["x_hat"].clamp(0.0, 1.0)
    r = rd_loss(out, x, lmbda)
    if args.task_loss == "features":
        with torch.no_grad():
            t_out = neck_features(teacher, x, args.det_scale)
        return r, feature_loss(neck_features(teacher, x_hat, args.det_scale), t_out)
    with torch.no_grad():
        t_out = detect(teacher, x)
    return r, distill_loss(detect(teacher, x_hat), t_out)


def whole_terms(model, teacher, pictures, lmbda, args):
    """The same for whole pictures of different sizes: each coded alone, letterboxed for
    the detector; bpp, MSE and task loss averaged over the pictures."""
    rs, tasks = [], []
    for x in pictures:
        out = model(x)
        x_hat = out["x_hat"].clamp(0.0, 1.0)
        rs.append(rd_loss(out, x, lmbda))
        x_lb, x_hat_lb = letterbox(x, args.det_scale), letterbox(x_hat, args.det_scale)
        if args.task_loss == "features":
            with torch.no_grad():
                t_out = list(teacher(to_yolox(x_lb)))
            tasks.append(feature_loss(list(teacher(to_yolox(x_hat_lb))), t_out))
        else:
            with torch.no_grad():
                t_out = detect(teacher, x_lb)
            tasks.append(distill_loss(detect(teacher, x_hat_lb), t_out))
    r = {k: sum(d[k] for d in rs) / len(rs) for k in ("bpp", "mse")}
    return r, sum(tasks) / len(tasks)


def beta_at(step: int, total: int, end: float, frac: float) -> float:
    ramp = max(1.0, frac * total)
    return 1.0 + (end - 1.0) * min(1.0, step / ramp)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    os.makedirs(args.out, exist_ok=True)
    ckpt_path = os.path.join(args.out, f"ckpt_q{args.quality}.pt")
    log_path = os.path.join(args.out, f"losses_q{args.quality}.csv")

    model = IcmHyperprior()
    _, mmeta = load_model_file(args.init_model, model)
    lmbda = args.lmbda if args.lmbda is not None else float(mmeta["lambda"])
    base_steps = int(mmeta.get("steps", 0))
    parents = [f"{mmeta.get('name', os.path.basename(args.init_model))}:q{mmeta.get('quality', '?')}@{base_steps}"]
    done, ema = 0, None
    if os.path.exists(ckpt_path):
        ck = load_ckpt(ckpt_path, model)
        done = int(ck.get("machine_steps", 0))
        ema = ck.get("loss_ema")
        log(f"resumed {ckpt_path} at machine step {done}")
    model.to(device).train()
    teacher = load_teacher(args.teacher, device, args.task_loss == "features")
    imgs = load_images(args.data, device, 64 if args.whole else args.crop, args.max_images)
    sampler = WholeSampler(imgs, args.seed + done) if args.whole else CropSampler(imgs, args.crop, args.seed + done)
    if args.train_parts != "all":
        trained = ("g_a.", "h_a.") if args.train_parts == "encoder" else ("g_s.",)
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith(trained))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    log(f"machine fine-tune q{args.quality} from {args.init_model}: lambda {lmbda}, {len(imgs)} images, "
        f"batch {args.batch}, crop {args.crop}, steps {done}..{args.max_steps}, training {args.train_parts} "
        f"({sum(p.numel() for p in model.parameters() if p.requires_grad)} parameters)")

    def meta():
        return {"quality": args.quality, "lambda": lmbda, "steps": base_steps + done,
                "machine_steps": done, "parents": parents, "batch": args.batch, "crop": args.crop,
                "lr": args.lr, "loss_ema": ema, "objective": f"machine (YOLOX-Nano {args.task_loss} distillation)",
                "task_loss": args.task_loss, "det_scale": args.det_scale,
                "beta_end": args.beta_end, "train_parts": args.train_parts}

    new_log = not os.path.exists(log_path)
    with open(log_path, "a", newline="") as f:
        w = csv.writer(f)
        if new_log:
            w.writerow(["step", "loss", "bpp", "mse", "psnr", "task", "beta", "kappa", "seconds"])
        t0, last_save = time.time(), time.time()
        acc = []
        while done < args.max_steps:
            if args.max_seconds and time.time() - t0 > args.max_seconds:
                break
            if args.whole:
                r, task = whole_terms(model, teacher, sampler.batch(args.batch), lmbda, args)
            else:
                r, task = crop_terms(model, teacher, sampler.batch(args.batch), lmbda, args)
            m, tk = float(r["mse"].detach()), float(task.detach())
            ema = (m, tk) if ema is None else (
                args.ema * ema[0] + (1 - args.ema) * m, args.ema * ema[1] + (1 - args.ema) * tk)
            kappa = 255.0 ** 2 * ema[0] / max(ema[1], 1e-12)
            beta = beta_at(done, args.max_steps, args.beta_end, args.beta_frac)
            loss = r["bpp"] + lmbda * (beta * 255.0 ** 2 * r["mse"] + (1 - beta) * kappa * task)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            done += 1
            acc.append((float(loss.detach()), float(r["bpp"].detach()), m, tk))
            if done % args.log_every == 0 or done == args.max_steps:
                a = np.mean(np.array(acc), axis=0)
                psnr = 10 * math.log10(1.0 / max(a[2], 1e-12))
                w.writerow([done, f"{a[0]:.5f}", f"{a[1]:.5f}", f"{a[2]:.6f}", f"{psnr:.3f}",
                            f"{a[3]:.5f}", f"{beta:.3f}", f"{kappa:.3f}", f"{time.time() - t0:.1f}"])
                f.flush()
                log(f"step {done}: loss {a[0]:.4f} bpp {a[1]:.4f} psnr {psnr:.2f} task {a[3]:.4f} "
                    f"beta {beta:.2f} kappa {kappa:.1f}")
                acc = []
            if time.time() - last_save > args.save_every:
                save_ckpt(ckpt_path, model, meta())
                last_save = time.time()
    save_ckpt(ckpt_path, model, meta())
    log(f"wrote {ckpt_path} (machine steps {done})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
