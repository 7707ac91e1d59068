"""Builds the training cache of the DCT stems: for every training picture a few 224x224
crops, the teacher's outputs on each clean crop (onnxruntime: the cut tensor and the
logits), and each crop JPEG-coded at random qualities 10..95 (4:2:0) as the 192 frequency
channels of spec Annex B (int16 dequantised coefficients; they fit: |R| < 1024 + 255/2).

    python models/training/dct/build_cache.py --src ../shared/data/train --out .dct_cache

Layout of OUT (numpy memmaps, plus meta.json):
    crop_feat.f16   (M, 32, 28, 28) teacher cut tensor
    crop_logits.f16 (M, 1001)       teacher logits (dequantised, before the softmax)
    crop_image.i32  (M,)            index of the source picture in meta["images"]
    dct.i16         (N, 192, 28, 28)
    sample_crop.i32 (N,)            crop of each coded sample
    sample_q.u8     (N,)            JPEG quality
    sample_bytes.i32 (N,)           JPEG size in bytes
Pictures are split by source picture: meta["val_images"] (every 25th picture) are kept
for validation. Resumable: a finished cache (meta.json) is left as it is.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from common import (
    CROP,
    DEFAULT_TEACHER,
    GRID,
    center_crop,
    frequency_tensor,
    jpeg_encode,
    list_images,
    load_rgb,
    network_input,
    ort_teacher,
    random_crop,
    resize_bilinear,
    resize_short,
)


def crops_of(img: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The centre crop of the classifier's pre-processing, then n-1 random crops (flipped
    at random) of the picture resized to a shorter side of 256..320."""
    out = [center_crop(resize_short(img))]
    h, w = img.shape[:2]
    for _ in range(n - 1):
        short = int(rng.integers(256, 321))
        if w <= h:
            nw, nh = short, max(CROP, h * short // w)
        else:
            nw, nh = max(CROP, w * short // h), short
        out.append(random_crop(resize_bilinear(img, nw, nh), rng))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default="../shared/data/train")
    ap.add_argument("--out", default=".dct_cache")
    ap.add_argument("--teacher", default=DEFAULT_TEACHER)
    ap.add_argument("--crops", type=int, default=4, help="crops per picture")
    ap.add_argument("--codings", type=int, default=2, help="JPEG codings per crop")
    ap.add_argument("--qmin", type=int, default=10)
    ap.add_argument("--qmax", type=int, default=95)
    ap.add_argument("--limit", type=int, help="first N pictures only (smoke tests)")
    ap.add_argument("--val-every", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if os.path.isfile(os.path.join(args.out, "meta.json")):
        print(f"{args.out}: cache exists")
        return 0
    files = list_images(args.src)[: args.limit]
    if not files:
        print(f"no pictures under {args.src}", file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    m_total = len(files) * args.crops
    n_total = m_total * args.codings

    def mm(name, dtype, shape):
        return np.lib.format.open_memmap(os.path.join(args.out, name + ".npy"), "w+", dtype, shape)

    feat = mm("crop_feat", np.float16, (m_total, 32, GRID, GRID))
    logits = mm("crop_logits", np.float16, (m_total, 1001))
    crop_image = mm("crop_image", np.int32, (m_total,))
    dct = mm("dct", np.int16, (n_total, 192, GRID, GRID))
    sample_crop = mm("sample_crop", np.int32, (n_total,))
    sample_q = mm("sample_q", np.uint8, (n_total,))
    sample_bytes = mm("sample_bytes", np.int32, (n_total,))
    sess, _, _ = ort_teacher(args.teacher, args.threads)
    rng = np.random.default_rng(args.seed)
    m = n = 0
    t0 = time.time()
    for i, f in enumerate(files):
        crops = crops_of(load_rgb(f), args.crops, rng)
        x = np.stack([network_input(c) for c in crops])
        for k, c in enumerate(crops):
            _, ft, lg = sess.run(None, {"input": x[k : k + 1]})
            feat[m] = ft[0].astype(np.float16)
            logits[m] = lg[0].astype(np.float16)
            crop_image[m] = i
            for _ in range(args.codings):
                q = int(rng.integers(args.qmin, args.qmax + 1))
                jpg = jpeg_encode(c, q)
                t = frequency_tensor(jpg)
                assert t.shape == (192, GRID, GRID), t.shape
                dct[n] = t.astype(np.int16)
                sample_crop[n] = m
                sample_q[n] = q
                sample_bytes[n] = len(jpg)
                n += 1
            m += 1
        if (i + 1) % 50 == 0 or i + 1 == len(files):
            print(f"{i + 1}/{len(files)} pictures, {n} samples, {time.time() - t0:.0f} s", flush=True)
    for a in (feat, logits, crop_image, dct, sample_crop, sample_q, sample_bytes):
        a.flush()
    val = list(range(0, len(files), args.val_every))
    meta = {
        "images": [os.path.relpath(f, args.src) for f in files],
        "val_images": val,
        "crops": args.crops,
        "codings": args.codings,
        "qualities": [args.qmin, args.qmax],
        "seed": args.seed,
        "teacher": os.path.basename(args.teacher),
        "samples": n,
    }
    with open(os.path.join(args.out, "meta.json.tmp"), "w") as fh:
        json.dump(meta, fh, indent=1)
    os.replace(os.path.join(args.out, "meta.json.tmp"), os.path.join(args.out, "meta.json"))
    print(f"{args.out}: {m} crops, {n} samples in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
