"""Builds the training cache of the DCT stems: for every training picture a few 224x224
crops, the teacher's outputs on each clean crop (onnxruntime: the cut tensor and the
logits), and each crop JPEG-coded at random qualities 10..95 (4:2:0) as the 192 frequency
channels of spec Annex B (int16 dequantised coefficients; they fit: |R| < 1024 + 255/2).

    python -m icm_training.dct.build_cache --src ../shared/data/train --out .dct_cache

Crops: the classifier's centre crop (shorter side 256), then --crops - 1 random 224x224
windows (flipped at random) of the picture resized to a shorter side of 256..320.

Layout of OUT (numpy .npy memmaps, plus meta.json; stems.cache):
    crop_feat    (M, 32, 28, 28) f16   teacher cut tensor
    crop_logits  (M, 1001) f16         teacher logits (dequantised, before the softmax)
    crop_image   (M,) i32              index of the source picture in meta["images"]
    dct          (N, 192, 28, 28) i16
    sample_crop  (N,) i32              crop of each coded sample
    sample_q     (N,) u8               JPEG quality
    sample_bytes (N,) i32              JPEG size in bytes
Pictures are split by source picture: meta["val_images"] (every --val-every-th picture) are
kept for validation. A finished cache (meta.json) is left as it is.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from ..stems.cache import CacheWriter, crop_cache_meta, crop_cache_parser, finished, pictures
from ..stems.classifier import DCT_CUT, LOGITS, centre_geometry, crop_of, network_input, ort_teacher, random_geometry
from ..stems.images import load_rgb
from .inputs import CHANNELS, frequency_tensor, jpeg_encode


def crops_of(img: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The centre crop, then n-1 random crops flipped at random (module docstring)."""
    h, w = img.shape[:2]
    out = [crop_of(img, centre_geometry(w, h))]
    for _ in range(n - 1):
        c = crop_of(img, random_geometry(w, h, rng))
        out.append(np.ascontiguousarray(c[:, ::-1]) if rng.random() < 0.5 else c)
    return out


def main(argv=None) -> int:
    ap = crop_cache_parser(__doc__, ".dct_cache")
    ap.add_argument("--codings", type=int, default=2, help="JPEG codings per crop")
    ap.add_argument("--qmin", type=int, default=10)
    ap.add_argument("--qmax", type=int, default=95)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if finished(args.out):
        return 0
    files = pictures(args)
    m_total = len(files) * args.crops
    n_total = m_total * args.codings
    grid = DCT_CUT.grid
    w = CacheWriter(args.out, {
        "crop_feat": (np.float16, (m_total, DCT_CUT.channels, grid, grid)),
        "crop_logits": (np.float16, (m_total, LOGITS)),
        "crop_image": (np.int32, (m_total,)),
        "dct": (np.int16, (n_total, CHANNELS, grid, grid)),
        "sample_crop": (np.int32, (n_total,)),
        "sample_q": (np.uint8, (n_total,)),
        "sample_bytes": (np.int32, (n_total,)),
    })
    sess, _, _ = ort_teacher(DCT_CUT, args.teacher, args.threads)
    rng = np.random.default_rng(args.seed)
    m = n = 0
    t0 = time.time()
    for i, f in enumerate(files):
        for c in crops_of(load_rgb(f), args.crops, rng):
            _, ft, lg = sess.run(None, {"input": network_input(c)[None]})
            w["crop_feat"][m] = ft[0].astype(np.float16)
            w["crop_logits"][m] = lg[0].astype(np.float16)
            w["crop_image"][m] = i
            for _ in range(args.codings):
                q = int(rng.integers(args.qmin, args.qmax + 1))
                jpg = jpeg_encode(c, q)
                t = frequency_tensor(jpg)
                assert t.shape == (CHANNELS, grid, grid), t.shape
                w["dct"][n] = t.astype(np.int16)
                w["sample_crop"][n] = m
                w["sample_q"][n] = q
                w["sample_bytes"][n] = len(jpg)
                n += 1
            m += 1
        if (i + 1) % 50 == 0 or i + 1 == len(files):
            print(f"{i + 1}/{len(files)} pictures, {n} samples, {time.time() - t0:.0f} s", flush=True)
    w.finish(crop_cache_meta(args, files, codings=args.codings, qualities=[args.qmin, args.qmax], samples=n))
    print(f"{args.out}: {m} crops, {n} samples in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
