#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz_jpeg target (fuzz/corpus/fuzz_jpeg): a few tiny JPEGs
covering baseline, progressive (libjpeg-turbo and mozjpeg scripts), restart intervals,
grayscale and 4:4:4 / 4:2:2 / 4:2:0, a few KB in all. Needs tests/python/requirements.txt.

Usage (from the repository root): python fuzz/make_jpeg_corpus.py
"""
import io
import os

import jpeglib
import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_jpeg")


def picture(h, w, seed, channels=3):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (xx * 255 // max(w - 1, 1) + 40 * ((xx // 3 + yy // 2) % 2))[..., None]
    x = base + rng.integers(-30, 30, (h, w, channels))
    return np.clip(x, 0, 255).astype(np.uint8)


def pil(name, arr, **kw):
    buf = io.BytesIO()
    img = Image.fromarray(arr if arr.shape[2] == 3 else arr[:, :, 0])
    img.save(buf, format="JPEG", **kw)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(buf.getvalue())


def main():
    os.makedirs(OUT, exist_ok=True)
    pil("base_420_16x16.jpg", picture(16, 16, 1), quality=50, subsampling=2)
    pil("prog_420_24x17.jpg", picture(17, 24, 2), quality=60, subsampling=2, progressive=True)
    pil("rst_444_13x7.jpg", picture(7, 13, 3), quality=70, subsampling=0, restart_marker_blocks=1)
    pil("prog_rst_422_20x9.jpg", picture(9, 20, 4), quality=40, subsampling=1,
        progressive=True, restart_marker_blocks=2)
    pil("gray_prog_9x7.jpg", picture(7, 9, 5, channels=1), quality=80, progressive=True)
    jpeglib.version.set("mozjpeg403")
    path = os.path.join(OUT, "mozjpeg_prog_16x8.jpg")
    jpeglib.from_spatial(picture(8, 16, 6)).write_spatial(path, qt=75)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(os.listdir(OUT))} seeds, {total} bytes in {OUT}")


if __name__ == "__main__":
    main()
