"""What the latent-domain training scripts share: the classifier's crop geometry mapped onto
the grid of y^, the bilinear sampling of y^ at that geometry (as crates/icm-eval/src/task/latent.rs does
it), coding with the icm binary, and the onnxruntime teacher with its stride-16 cut.

The pre-processing of the pixel classifier (crates/icm-eval/src/task/classification.rs, MODEL.md) resizes
the decoded picture to a shorter side of 256 and takes the centre 224x224 crop; its first
stride-16 tensor is a 14x14 grid over that crop. y^ is a stride-16 grid over the coded
picture at its own size. Cell (i, j) of the crop's grid covers crop pixels
16i..16i+15 x 16j..16j+15; its centre, x = x0 + 16 j + 7.5 in the resized picture, lies at
x' = (x0 + 16 j + 8) * W / nw - 0.5 in the coded picture (half-pixel mapping, as the
bilinear resize), i.e. at u = (x' - 7.5) / 16 in units of y^ cells (cell k is centred on
pixel 16 k + 7.5). The latent decoders sample y^ bilinearly at those 14x14 positions,
clamped to the grid: for a 256x256 picture (no resize, crop offset 16) the positions are
the cells 1..14 themselves.

This module reuses models/training/dct/ (onnx_torch, common): that folder goes on sys.path
after this one.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DCT = HERE.parent / "dct"
if str(DCT) not in sys.path:
    sys.path.append(str(DCT))

from common import (  # noqa: E402  (models/training/dct/common.py)
    CROP,
    DEFAULT_TEACHER,
    RESIZE,
    list_images,
    load_rgb,
    network_input,
    resize_bilinear,
)
from common import ort_teacher as dct_ort_teacher  # noqa: E402

ROOT = HERE.parents[2]
# The float output of the 1x1 projection of MobileNetV2's first stride-16 block
# (expanded_conv_6/project, 64 channels, 14x14 for a 224x224 input), before its activation
# quantisation: the tensor the latent stem replaces.
CUT_SUFFIX = "MobilenetV2/expanded_conv_6/project/BatchNorm_Fold/bias1"
CUT_CHANNELS = 64
GRID = CROP // 16  # 14
LATENT_CHANNELS = 192
FRAC = 256.0  # y^ is fixed point in units of 1/256
QUALITIES = (1, 2, 3, 4, 5, 6)

__all__ = [
    "CROP", "DEFAULT_TEACHER", "RESIZE", "list_images", "load_rgb", "network_input",
    "resize_bilinear", "CUT_SUFFIX", "CUT_CHANNELS", "GRID", "LATENT_CHANNELS", "FRAC",
    "QUALITIES", "centre_geometry", "random_geometry", "crop_of", "sample_positions",
    "sample_grid", "sample_latents", "icm_binary", "code_latents", "stream_latents", "ort_teacher",
]


def centre_geometry(width: int, height: int) -> tuple[int, int, int, int]:
    """(nw, nh, x0, y0) of the classifier's pre-processing (classification::input_crop):
    shorter side to 256, the longer to floor(long * 256 / short), each at least 224, centre
    crop at round((side - 224) / 2) (half away from zero, as Rust's f64::round)."""
    w, h = max(width, 1), max(height, 1)
    if w <= h:
        nw, nh = RESIZE, (h * RESIZE) // w
    else:
        nw, nh = (w * RESIZE) // h, RESIZE
    nw, nh = max(nw, CROP), max(nh, CROP)
    x0 = int(np.floor((nw - CROP) / 2 + 0.5))
    y0 = int(np.floor((nh - CROP) / 2 + 0.5))
    return nw, nh, x0, y0


def random_geometry(width: int, height: int, rng: np.random.Generator,
                    short: tuple[int, int] = (256, 320)) -> tuple[int, int, int, int]:
    """A training crop: shorter side resized to a random size in `short`, a random 224x224
    window of it."""
    s = int(rng.integers(short[0], short[1] + 1))
    w, h = max(width, 1), max(height, 1)
    if w <= h:
        nw, nh = s, max(CROP, h * s // w)
    else:
        nw, nh = max(CROP, w * s // h), s
    nw, nh = max(nw, CROP), max(nh, CROP)
    x0 = int(rng.integers(0, nw - CROP + 1))
    y0 = int(rng.integers(0, nh - CROP + 1))
    return nw, nh, x0, y0


def crop_of(img: np.ndarray, geom: tuple[int, int, int, int]) -> np.ndarray:
    """The 224x224 crop of `img` (H, W, 3) uint8 at geometry (nw, nh, x0, y0)."""
    nw, nh, x0, y0 = geom
    r = resize_bilinear(img, nw, nh)
    return np.ascontiguousarray(r[y0 : y0 + CROP, x0 : x0 + CROP])


def sample_positions(size: int, resized: int, offset: int, n: int = GRID) -> np.ndarray:
    """Positions, in y^ cells, of the centres of the n crop cells along one axis: picture
    side `size`, resized side `resized`, crop offset `offset` (module docstring)."""
    j = np.arange(n, dtype=np.float64)
    return ((offset + 16.0 * j + 8.0) * (size / resized) - 8.0) / 16.0


def _taps(pos: np.ndarray, cells: int):
    p = np.clip(pos, 0.0, cells - 1.0)
    i0 = np.floor(p).astype(np.int64)
    f = p - i0
    i1 = np.minimum(i0 + 1, cells - 1)
    return i0, i1, f


def sample_grid(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """y^ (C, rows, cols) / 256 sampled bilinearly at positions u (columns) x v (rows), in
    units of y^ cells and clamped to the grid: float64 (C, len(v), len(u)) (as
    crates/icm-eval/src/task/latent.rs sample_grid)."""
    c, rows, cols = y.shape
    x_0, x_1, fx = _taps(u, cols)
    y_0, y_1, fy = _taps(v, rows)
    a = np.asarray(y, dtype=np.float64) / FRAC
    top = a[:, y_0][:, :, x_0] * (1 - fx) + a[:, y_0][:, :, x_1] * fx
    bot = a[:, y_1][:, :, x_0] * (1 - fx) + a[:, y_1][:, :, x_1] * fx
    return top * (1 - fy)[None, :, None] + bot * fy[None, :, None]


def sample_latents(y: np.ndarray, width: int, height: int,
                   geom: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """y^ (C, rows, cols) (int32 fixed point or float in the same units) sampled bilinearly
    at the crop cells of geometry `geom` (default: the classifier's centre crop) of a
    width x height picture: (C, 14, 14) float32 in units of 1 (y^ / 256). Weights and sums
    in float64, then rounded to float32 (crates/icm-eval/src/task/latent.rs computes the same)."""
    nw, nh, x0, y0 = geom if geom is not None else centre_geometry(width, height)
    u = sample_positions(width, nw, x0)
    v = sample_positions(height, nh, y0)
    return sample_grid(y, u, v).astype(np.float32)


def icm_binary() -> str:
    """$ICM_BIN, else the release build of this checkout."""
    b = os.environ.get("ICM_BIN") or str(ROOT / "target" / "release" / "icm")
    if not os.access(b, os.X_OK):
        raise SystemExit(f"{b}: no icm binary (cargo build --release, or set ICM_BIN)")
    return b


def _run(cmd: list[str]):
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")


def stream_latents(stream: str, workdir: str, binary: str | None = None) -> np.ndarray:
    """y^ of an .icm stream (`icm decode --latents`, no g_s): int32 (192, rows, cols)."""
    b = binary or icm_binary()
    fd, lat = tempfile.mkstemp(suffix=".npy", dir=workdir)
    os.close(fd)
    try:
        _run([b, "decode", "--threads", "1", stream, "--latents", lat])
        return np.load(lat)
    finally:
        os.unlink(lat)


def code_latents(png: str, quality: int, workdir: str, binary: str | None = None,
                 keep: str | None = None):
    """Codes `png` with the zoo model of `quality` (`icm encode`) and decodes its latents
    only (`icm decode --latents`): (y^ int32 (192, rows, cols), stream bytes). `keep`: also
    leave the stream at that path."""
    b = binary or icm_binary()
    if keep:
        os.makedirs(os.path.dirname(keep), exist_ok=True)
        stream = keep + f".tmp{os.getpid()}"
    else:
        fd, stream = tempfile.mkstemp(suffix=".icm", dir=workdir)
        os.close(fd)
    try:
        _run([b, "encode", "--threads", "1", "-q", str(quality), png, "-o", stream])
        y = stream_latents(stream, workdir, b)
        size = os.path.getsize(stream)
        if keep:
            os.replace(stream, keep)
        return y, size
    finally:
        if os.path.exists(stream):
            os.unlink(stream)


def ort_teacher(path: str = DEFAULT_TEACHER, threads: int = 1):
    """onnxruntime session of the classifier with two more outputs: the stride-16 cut
    tensor (float, before its quantisation) and the dequantised logits. Returns
    (session, cut name, logits name)."""
    from onnx_torch import find_tensor  # models/training/dct/onnx_torch.py

    return dct_ort_teacher(path, threads, lambda m: find_tensor(m, CUT_SUFFIX, "Conv"))
