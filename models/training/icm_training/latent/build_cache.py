"""Builds the training cache of the latent classifier stem: every training picture coded at
its own size with the zoo models icm-psnr-q1..q6 (`icm encode`, then `icm decode --latents`:
y^ without g_s), a few 224x224 crops per picture, the teacher's outputs on each clean crop
(onnxruntime: the stride-16 cut tensor and the logits), and each coding's y^ sampled at
each crop's cells (inputs.sample_latents).

    python -m icm_training.latent.build_cache --src ../shared/data/train --out .latent_cache

Crops: the classifier's centre crop (shorter side 256) and --crops - 1 random 224x224
windows of the picture resized to a shorter side of 256..320. The picture is coded once
per quality; all its crops sample the same y^, as the evaluation does (it codes whole
pictures, `icm task-eval --codec icm`).

Layout of OUT (numpy .npy memmaps, plus meta.json; stems.cache):
    crop_feat    (M, 64, 14, 14) f16   teacher cut tensor (expanded_conv_6/project)
    crop_logits  (M, 1001) f16         teacher logits (dequantised, before the softmax)
    crop_image   (M,) i32              index of the source picture in meta["images"]
    crop_geom    (M, 4) i32            nw, nh, x0, y0
    latents      (N, 192, 14, 14) f16  sampled y^ (units of 1), N = M * len(qualities)
    sample_crop  (N,) i32              crop of each sample
    sample_q     (N,) u8               zoo quality
    sample_bpp   (N,) f32              bits per pixel of the whole coded picture
    streams/q<Q>/<picture>.icm         the coded pictures (for other latent-task caches)
Pictures are split by source picture: meta["val_images"] (every --val-every-th picture)
are kept for validation. Resumable: progress.json records the pictures done; a rerun
continues from there; a finished cache (meta.json) is left as it is.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from ..stems.cache import CacheWriter, crop_cache_meta, crop_cache_parser, finished, pictures
from ..stems.classifier import LATENT_CUT, LOGITS, centre_geometry, crop_of, network_input, ort_teacher, random_geometry
from ..stems.images import load_rgb
from .inputs import GRID, LATENT_CHANNELS, code_latents, icm_binary, sample_latents


def main(argv=None) -> int:
    ap = crop_cache_parser(__doc__, ".latent_cache")
    ap.add_argument("--qualities", default="1,2,3,4,5,6")
    ap.add_argument("--jobs", type=int, default=2, help="pictures coded in parallel")
    args = ap.parse_args(argv)
    if finished(args.out):
        return 0
    files = pictures(args)
    qualities = [int(q) for q in args.qualities.split(",")]
    binary = icm_binary()
    nq = len(qualities)
    m_total = len(files) * args.crops
    n_total = m_total * nq
    w = CacheWriter(args.out, {
        "crop_feat": (np.float16, (m_total, LATENT_CUT.channels, GRID, GRID)),
        "crop_logits": (np.float16, (m_total, LOGITS)),
        "crop_image": (np.int32, (m_total,)),
        "crop_geom": (np.int32, (m_total, 4)),
        "latents": (np.float16, (n_total, LATENT_CHANNELS, GRID, GRID)),
        "sample_crop": (np.int32, (n_total,)),
        "sample_q": (np.uint8, (n_total,)),
        "sample_bpp": (np.float32, (n_total,)),
    }, settings={"files": len(files), "crops": args.crops, "qualities": qualities})
    sess, _, _ = ort_teacher(LATENT_CUT, args.teacher, 1)
    work = tempfile.mkdtemp(prefix="icm-latent-cache.", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)

    def code(i: int):
        """Loads picture i and codes it at every quality: (rgb, {q: (y^, bytes)})."""
        img = load_rgb(files[i])
        png = os.path.join(work, f"{i}.png")
        Image.fromarray(img).save(png, compress_level=1)
        try:
            return img, {q: code_latents(png, q, work, binary,
                                         keep=os.path.join(args.out, "streams", f"q{q}", f"{i:05d}.icm"))
                         for q in qualities}
        finally:
            os.unlink(png)

    t0 = time.time()
    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            todo = range(w.done, len(files))
            for i, (img, coded) in zip(todo, pool.map(code, todo)):
                h, wd = img.shape[:2]
                rng = np.random.default_rng([args.seed, i])
                geoms = [centre_geometry(wd, h)] + [random_geometry(wd, h, rng) for _ in range(args.crops - 1)]
                for k, g in enumerate(geoms):
                    m = i * args.crops + k
                    _, ft, lg = sess.run(None, {"input": network_input(crop_of(img, g))[None]})
                    w["crop_feat"][m] = ft[0].astype(np.float16)
                    w["crop_logits"][m] = lg[0].astype(np.float16)
                    w["crop_image"][m] = i
                    w["crop_geom"][m] = g
                    for qi, q in enumerate(qualities):
                        y, nbytes = coded[q]
                        n = m * nq + qi
                        w["latents"][n] = sample_latents(y, wd, h, g).astype(np.float16)
                        w["sample_crop"][n] = m
                        w["sample_q"][n] = q
                        w["sample_bpp"][n] = nbytes * 8.0 / (wd * h)
                if (i + 1) % 25 == 0 or i + 1 == len(files):
                    w.progress(i + 1)
                    rate = (time.time() - t0) / (i + 1 - w.done)
                    print(f"{i + 1}/{len(files)} pictures, {time.time() - t0:.0f} s "
                          f"({rate:.2f} s/picture)", flush=True)
    finally:
        if not os.listdir(work):
            os.rmdir(work)
    w.finish(crop_cache_meta(args, files, qualities=qualities, crops_total=m_total, samples=n_total))
    print(f"{args.out}: {m_total} crops, {n_total} samples in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
