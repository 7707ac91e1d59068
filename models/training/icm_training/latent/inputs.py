"""The latent stems' input: y^ of icm streams (coded and decoded with the icm binary, the
decoder stopping before g_s) sampled onto the grid of the task network's pre-processing, as
crates/icm-eval/src/task/latent.rs and latent_detection.rs do (tests/it/latent_task.rs
checks equality through tests/python/latent_sampling.py).

Classifier: the pre-processing (stems.classifier) resizes the decoded picture to a shorter
side of 256 and takes the centre 224x224 crop; its first stride-16 tensor is a 14x14 grid
over that crop. y^ is a stride-16 grid over the coded picture at its own size. Cell (i, j)
of the crop's grid covers crop pixels 16i..16i+15 x 16j..16j+15; its centre,
x = x0 + 16 j + 7.5 in the resized picture, lies at x' = (x0 + 16 j + 8) * W / nw - 0.5 in
the coded picture (half-pixel mapping, as the bilinear resize), i.e. at u = (x' - 7.5) / 16
in units of y^ cells (cell k is centred on pixel 16 k + 7.5). The latent decoders sample y^
bilinearly at those 14x14 positions, clamped to the grid: for a 256x256 picture (no resize,
crop offset 16) the positions are the cells 1..14 themselves.

Detector: the letterbox (stems.detector) scales the picture to nw x nh at the top left of
the 416x416 canvas; the stem reads y^ on the canvas's stride-16 grid (26x26). Canvas cell
(i, j) has its centre 16 j + 7.5 at (16 j + 8) w / nw - 0.5 in the picture, so at
u = ((16 j + 8) w / nw - 8) / 16 in units of y^ cells (sample_positions with offset 0). The
share of the cell's columns inside the scaled picture is clamp((nw - 16 j) / 16, 0, 1),
likewise for rows; a cell with no share lies on the grey padding. The stem's input is 193
channels: y^ / 256 sampled bilinearly at (u, v), clamped to the grid, and set to 0 on cells
with no share; then the product of the two shares.
"""
from __future__ import annotations

import os
import subprocess
import tempfile

import numpy as np

from .. import ROOT
from ..stems.classifier import LATENT_CUT, centre_geometry
from ..stems.detector import INPUT_SIZE

LATENT_CHANNELS = 192
FRAC = 256.0  # y^ is fixed point in units of 1/256
QUALITIES = (1, 2, 3, 4, 5, 6)
GRID = LATENT_CUT.grid  # 14: the classifier stem's grid
DET_GRID = INPUT_SIZE // 16  # 26: the detector stem's grid
DET_CHANNELS = LATENT_CHANNELS + 1  # y^ and the coverage channel


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


def coverage(resized: int, n: int = DET_GRID) -> np.ndarray:
    """Share of each of the n canvas cells along one axis inside a scaled side of
    `resized` pixels: clamp((resized - 16 j) / 16, 0, 1)."""
    j = np.arange(n, dtype=np.float64)
    return np.clip((resized - 16.0 * j) / 16.0, 0.0, 1.0)


def sample_letterbox(y: np.ndarray, width: int, height: int, nw: int, nh: int) -> np.ndarray:
    """The detector stem's input (193, 26, 26) float32 for y^ (C, rows, cols) of a
    width x height picture letterboxed to nw x nh (module docstring). Weights and sums in
    float64, then rounded to float32 (crates/icm-eval/src/task/latent_detection.rs computes
    the same)."""
    u = sample_positions(width, nw, 0, DET_GRID)
    v = sample_positions(height, nh, 0, DET_GRID)
    lat = sample_grid(y, u, v)
    cov = coverage(nh)[:, None] * coverage(nw)[None, :]
    lat = np.where(cov[None] > 0.0, lat, 0.0)
    return np.concatenate([lat, cov[None]], axis=0).astype(np.float32)


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
