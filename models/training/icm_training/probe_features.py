"""How far icm's decoded pictures move YOLOX-Nano's neck features, per model and image set.

Each picture is coded and decoded with the icm binary (the real codec, not the training
forward pass), both the original and the decoded picture are letterboxed as the detector's
pre-processing does (longer side 416, grey canvas), and the relative squared error of the
three neck feature maps (train_machine.py's `feature_loss`) is averaged over the pictures,
with the PSNR of the decoded pictures. Used to see whether what a machine fine-tune learned
on the training pictures carries over to other pictures (models/training/README.md).

    python -m icm_training.probe_features --models models/icm-psnr-q1.safetensors M.safetensors \\
        --images '../shared/data/coco/val2017/*.jpg' --limit 20
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

from . import ROOT
from .train_machine import DEFAULT_TEACHER, feature_loss, letterbox, load_teacher, to_yolox


def to_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32)).permute(2, 0, 1)[None] / 255.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", required=True, help="model files or names")
    ap.add_argument("--images", required=True, help="glob of pictures")
    ap.add_argument("--limit", type=int, default=20, help="first N pictures (sorted), every --stride-th")
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--icm", default=str(ROOT / "target" / "release" / "icm"))
    ap.add_argument("--teacher", default=DEFAULT_TEACHER)
    args = ap.parse_args(argv)
    files = sorted(glob.glob(args.images))[:: args.stride][: args.limit]
    if not files:
        raise SystemExit(f"no pictures match {args.images}")
    teacher = load_teacher(args.teacher, torch.device("cpu"), True)
    rows = {m: [] for m in args.models}
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        src, stream, dec = (os.path.join(tmp, n) for n in ("in.png", "x.icm", "x.png"))
        for f in files:
            with Image.open(f) as im:
                a = np.asarray(im.convert("RGB"))
            Image.fromarray(a).save(src)
            x = to_tensor(a)
            t = list(teacher(to_yolox(letterbox(x))))
            for m in args.models:
                for cmd in (["encode", src, "-o", stream, "--model", m], ["decode", stream, "-o", dec, "--model", m]):
                    subprocess.run([args.icm, *cmd], check=True, capture_output=True)
                with Image.open(dec) as im:
                    d = np.asarray(im.convert("RGB"))
                s = list(teacher(to_yolox(letterbox(to_tensor(d)))))
                mse = float(((d.astype(np.float64) - a) ** 2).mean())
                rows[m].append((float(feature_loss(s, t)), 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))))
    print(f"{len(files)} pictures of {args.images}")
    for m, v in rows.items():
        fl, psnr = np.mean(np.array(v), axis=0)
        print(f"{m}: feature loss {fl:.4f}, PSNR {psnr:.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
