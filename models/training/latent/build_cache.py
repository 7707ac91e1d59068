"""Builds the training cache of the latent stem: every training picture coded at its own
size with the zoo models icm-psnr-q1..q6 (`icm encode`, then `icm decode --latents`: y^
without g_s), a few 224x224 crops per picture, the teacher's outputs on each clean crop
(onnxruntime: the stride-16 cut tensor and the logits), and each coding's y^ sampled at
each crop's cells (latent_common.sample_latents).

    python models/training/latent/build_cache.py --src ../shared/data/train --out .latent_cache

Crops: the classifier's centre crop (shorter side 256) and --crops - 1 random 224x224
windows of the picture resized to a shorter side of 256..320. The picture is coded once
per quality; all its crops sample the same y^, as the evaluation does (it codes whole
pictures, `icm task-eval --codec icm`).

Layout of OUT (numpy .npy memmaps, plus meta.json):
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
are kept for validation. Resumable: progress.json records the pictures done (written
after the arrays are flushed); a rerun continues from there; a finished cache (meta.json)
is left as it is.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from latent_common import (
    CUT_CHANNELS,
    DEFAULT_TEACHER,
    GRID,
    LATENT_CHANNELS,
    centre_geometry,
    code_latents,
    crop_of,
    icm_binary,
    list_images,
    load_rgb,
    network_input,
    ort_teacher,
    random_geometry,
    sample_latents,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default="../shared/data/train")
    ap.add_argument("--out", default=".latent_cache")
    ap.add_argument("--teacher", default=DEFAULT_TEACHER)
    ap.add_argument("--crops", type=int, default=4, help="crops per picture")
    ap.add_argument("--qualities", default="1,2,3,4,5,6")
    ap.add_argument("--limit", type=int, help="first N pictures only (smoke tests)")
    ap.add_argument("--val-every", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="pictures coded in parallel")
    args = ap.parse_args()
    if os.path.isfile(os.path.join(args.out, "meta.json")):
        print(f"{args.out}: cache exists")
        return 0
    files = list_images(args.src)[: args.limit]
    if not files:
        print(f"no pictures under {args.src}", file=sys.stderr)
        return 1
    qualities = [int(q) for q in args.qualities.split(",")]
    binary = icm_binary()
    os.makedirs(args.out, exist_ok=True)
    nq = len(qualities)
    m_total = len(files) * args.crops
    n_total = m_total * nq
    prog_path = os.path.join(args.out, "progress.json")
    done = 0
    if os.path.isfile(prog_path):
        prog = json.load(open(prog_path))
        if prog.get("files") != len(files) or prog.get("crops") != args.crops or prog.get("qualities") != qualities:
            raise SystemExit(f"{prog_path}: made with other arguments; use another --out")
        done = prog["done"]
        print(f"resuming after {done} pictures")
    mode = "r+" if done else "w+"

    def mm(name, dtype, shape):
        p = os.path.join(args.out, name + ".npy")
        if mode == "r+":
            return np.load(p, mmap_mode="r+")
        return np.lib.format.open_memmap(p, "w+", dtype, shape)

    feat = mm("crop_feat", np.float16, (m_total, CUT_CHANNELS, GRID, GRID))
    logits = mm("crop_logits", np.float16, (m_total, 1001))
    crop_image = mm("crop_image", np.int32, (m_total,))
    crop_geom = mm("crop_geom", np.int32, (m_total, 4))
    lat = mm("latents", np.float16, (n_total, LATENT_CHANNELS, GRID, GRID))
    sample_crop = mm("sample_crop", np.int32, (n_total,))
    sample_q = mm("sample_q", np.uint8, (n_total,))
    sample_bpp = mm("sample_bpp", np.float32, (n_total,))
    arrays = (feat, logits, crop_image, crop_geom, lat, sample_crop, sample_q, sample_bpp)
    sess, _, _ = ort_teacher(args.teacher, 1)
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    work = tempfile.mkdtemp(prefix="icm-latent-cache.", dir=shm)

    def stream_path(i: int, q: int) -> str:
        return os.path.join(args.out, "streams", f"q{q}", f"{i:05d}.icm")

    def code(i: int):
        """Loads picture i and codes it at every quality: (rgb, {q: (y^, bytes)})."""
        img = load_rgb(files[i])
        png = os.path.join(work, f"{i}.png")
        Image.fromarray(img).save(png, compress_level=1)
        try:
            return img, {q: code_latents(png, q, work, binary, keep=stream_path(i, q))
                         for q in qualities}
        finally:
            os.unlink(png)

    t0 = time.time()
    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for i, (img, coded) in zip(range(done, len(files)), pool.map(code, range(done, len(files)))):
                h, w = img.shape[:2]
                rng = np.random.default_rng([args.seed, i])
                geoms = [centre_geometry(w, h)] + [random_geometry(w, h, rng) for _ in range(args.crops - 1)]
                for k, g in enumerate(geoms):
                    m = i * args.crops + k
                    x = network_input(crop_of(img, g))[None]
                    _, ft, lg = sess.run(None, {"input": x})
                    feat[m] = ft[0].astype(np.float16)
                    logits[m] = lg[0].astype(np.float16)
                    crop_image[m] = i
                    crop_geom[m] = g
                    for qi, q in enumerate(qualities):
                        y, nbytes = coded[q]
                        n = m * nq + qi
                        lat[n] = sample_latents(y, w, h, g).astype(np.float16)
                        sample_crop[n] = m
                        sample_q[n] = q
                        sample_bpp[n] = nbytes * 8.0 / (w * h)
                if (i + 1) % 25 == 0 or i + 1 == len(files):
                    for a in arrays:
                        a.flush()
                    tmp = prog_path + ".tmp"
                    with open(tmp, "w") as fh:
                        json.dump({"done": i + 1, "files": len(files), "crops": args.crops,
                                   "qualities": qualities}, fh)
                    os.replace(tmp, prog_path)
                    rate = (time.time() - t0) / (i + 1 - done)
                    print(f"{i + 1}/{len(files)} pictures, {time.time() - t0:.0f} s "
                          f"({rate:.2f} s/picture)", flush=True)
    finally:
        os.rmdir(work) if not os.listdir(work) else None
    val = list(range(0, len(files), args.val_every))
    meta = {
        "images": [os.path.relpath(f, args.src) for f in files],
        "val_images": val,
        "crops": args.crops,
        "qualities": qualities,
        "seed": args.seed,
        "teacher": os.path.basename(args.teacher),
        "crops_total": m_total,
        "samples": n_total,
    }
    with open(os.path.join(args.out, "meta.json.tmp"), "w") as fh:
        json.dump(meta, fh, indent=1)
    os.replace(os.path.join(args.out, "meta.json.tmp"), os.path.join(args.out, "meta.json"))
    print(f"{args.out}: {m_total} crops, {n_total} samples in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
