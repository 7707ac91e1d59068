"""Builds the training cache of the latent detection stem: every picture coded whole at zoo
qualities 1..6 (`icm encode`, then `icm decode --latents`, no g_s), letterboxed at
--geometries scales, YOLOX-Nano's backbone outputs on each clean letterboxed picture (the
targets) and y^ of each coding sampled onto the letterbox's 26x26 grid
(inputs.sample_letterbox, the stem's input).

    python -m icm_training.latent.build_det_cache --src ../shared/data/train \
        --out .latent_det_cache [--streams .latent_cache/streams]

Pictures are taken in a seeded random order (so a partly built cache mixes the training
set's sources); the cache is resumable (progress.json) and train_det --partial reads what
is done. Geometry 0 of a picture is the detector's own letterbox (scale 1); the others
scale it by a random factor in [0.55, 0.9] (COCO's 640x480 pictures are scaled by 0.65,
the training pictures by about 0.86).

    dark3   (M, 64, 52, 52)  f16    teacher outputs (M = pictures x geometries)
    dark4   (M, 128, 26, 26) f16
    dark5   (M, 256, 13, 13) f16
    x       (M, Q, 193, 26, 26) f16 stem input per quality
    bpp     (M, Q) f32              rate of each coding
    geom    (M, 4) f32              nw, nh, r, scale
    image   (M,) i32                index of the picture in the sorted list of --src
    streams/q<Q>/<index>.icm        the coded pictures

--streams DIR reuses streams already coded (DIR/q<Q>/<index>.icm, the layout of
build_cache) instead of coding again.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from ..stems.cache import CacheWriter
from ..stems.detector import (CUT_CHANNELS, CUT_NAMES, CUT_STRIDES, DEFAULT_DETECTOR, INPUT_SIZE,
                              letterbox_input, letterbox_size, ort_backbone)
from ..stems.images import list_images, load_rgb
from .inputs import DET_CHANNELS, DET_GRID, QUALITIES, code_latents, icm_binary, sample_letterbox, stream_latents


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", required=True, help="folder of training pictures")
    ap.add_argument("--out", required=True)
    ap.add_argument("--detector", default=DEFAULT_DETECTOR)
    ap.add_argument("--geometries", type=int, default=2, help="letterbox scales per picture")
    ap.add_argument("--limit", type=int, default=0, help="at most this many pictures")
    ap.add_argument("--streams", default="", help="folder of streams already coded")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    files = list_images(args.src)
    order = np.random.default_rng(args.seed).permutation(len(files))
    if args.limit:
        order = order[: args.limit]
    n_pics, g_per, qs = len(order), args.geometries, list(QUALITIES)
    m_total = n_pics * g_per
    arrays = {name: (np.float16, (m_total, c, INPUT_SIZE // s, INPUT_SIZE // s))
              for name, c, s in zip(CUT_NAMES, CUT_CHANNELS, CUT_STRIDES)}
    arrays.update({
        "x": (np.float16, (m_total, len(qs), DET_CHANNELS, DET_GRID, DET_GRID)),
        "bpp": (np.float32, (m_total, len(qs))),
        "geom": (np.float32, (m_total, 4)),
        "image": (np.int32, (m_total,)),
    })
    w = CacheWriter(args.out, arrays, settings={
        "files": len(files), "pictures": n_pics, "geometries": g_per, "qualities": qs, "seed": args.seed})
    teacher = ort_backbone(args.detector, args.threads)
    binary = icm_binary()
    rng = np.random.default_rng(args.seed + 1 + w.done)
    work = tempfile.mkdtemp(prefix="icm-det-cache-")
    t0 = time.time()
    try:
        for p in range(w.done, n_pics):
            i = int(order[p])
            img = load_rgb(files[i])
            h, wd = img.shape[:2]
            lat = {}
            png = os.path.join(work, "pic.png")
            for q in qs:
                keep = os.path.join(args.out, "streams", f"q{q}", f"{i:05d}.icm")
                old = os.path.join(args.streams, f"q{q}", f"{i:05d}.icm") if args.streams else ""
                if old and os.path.isfile(old):
                    os.makedirs(os.path.dirname(keep), exist_ok=True)
                    shutil.copyfile(old, keep)
                if os.path.isfile(keep):
                    lat[q] = (stream_latents(keep, work, binary), os.path.getsize(keep))
                else:
                    if not os.path.exists(png):
                        Image.fromarray(img).save(png, compress_level=1)
                    lat[q] = code_latents(png, q, work, binary, keep=keep)
            if os.path.exists(png):
                os.unlink(png)
            for k in range(g_per):
                scale = 1.0 if k == 0 else float(rng.uniform(0.55, 0.9))
                nw, nh, r = letterbox_size(wd, h, scale)
                m = p * g_per + k
                outs = teacher.run(None, {teacher.get_inputs()[0].name: letterbox_input(img, nw, nh)})
                for name, o in zip(CUT_NAMES, outs):
                    w[name][m] = o[0].astype(np.float16)
                for qi, q in enumerate(qs):
                    y, size = lat[q]
                    w["x"][m, qi] = sample_letterbox(y, wd, h, nw, nh).astype(np.float16)
                    w["bpp"][m, qi] = size * 8.0 / (wd * h)
                w["geom"][m] = (nw, nh, r, scale)
                w["image"][m] = i
            if (p + 1) % 10 == 0 or p + 1 == n_pics:
                w.progress(p + 1)
                print(json.dumps({"done": p + 1, "of": n_pics, "s": round(time.time() - t0, 1)}), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
