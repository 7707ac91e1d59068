"""Picture files and icm's bilinear resize (crates/icm-eval's imageops::resize_bilinear:
OpenCV INTER_LINEAR in 11-bit fixed point, no anti-aliasing), which the task networks'
pre-processing uses."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def list_images(folder: str) -> list[str]:
    """Image files under `folder` (recursively), sorted."""
    ext = {".jpg", ".jpeg", ".png", ".ppm"}
    return sorted(
        str(p) for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in ext
    )


def load_rgb(path: str) -> np.ndarray:
    """(H, W, 3) uint8 (grayscale and other modes converted to RGB)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _taps(src: int, dst: int):
    """OpenCV INTER_LINEAR taps in 11-bit fixed point (imageops::linear_taps)."""
    scale = src / dst
    f = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f).astype(np.int64)
    frac = (f - s.astype(np.float32)).astype(np.float32)
    low = s < 0
    s[low] = 0
    frac[low] = 0.0
    high = s >= src - 1
    s[high] = src - 1
    frac[high] = 0.0
    s1 = np.minimum(s + 1, src - 1)
    w0 = np.floor((1.0 - frac) * np.float32(2048) + np.float32(0.5)).astype(np.int64)
    w1 = np.floor(frac * np.float32(2048) + np.float32(0.5)).astype(np.int64)
    return s, s1, w0, w1


def resize_bilinear(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """imageops::resize_bilinear: OpenCV-style bilinear, no anti-aliasing."""
    sh, sw = img.shape[:2]
    x0, x1, xw0, xw1 = _taps(sw, width)
    y0, y1, yw0, yw1 = _taps(sh, height)
    a = img.astype(np.int64)
    rows = a[:, x0] * xw0[None, :, None] + a[:, x1] * xw1[None, :, None]
    out = rows[y0] * yw0[:, None, None] + rows[y1] * yw1[:, None, None]
    out = (out + (1 << 21)) >> 22
    return np.clip(out, 0, 255).astype(np.uint8)
