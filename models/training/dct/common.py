"""Pre-processing shared by the DCT-stem training scripts: the classifier's input crop (as
crates/icm-eval/src/task/classification.rs makes it), JPEG coding, the frequency channels of spec Annex B
(as crates/icm-eval/src/jpeg/channels.rs arranges them) and the onnxruntime teacher.
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_TEACHER = str(
    ROOT.parent / "shared" / "models" / "classification" / "mobilenet_v2_1.0_224_quant.onnx"
)
RESIZE = 256
CROP = 224
GRID = CROP // 8  # 28


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


def resize_short(img: np.ndarray, short: int = RESIZE) -> np.ndarray:
    """Shorter side to `short`, the longer to floor(long * short / shorter)
    (classification::preprocess)."""
    h, w = img.shape[:2]
    if w <= h:
        nw, nh = short, (h * short) // w
    else:
        nw, nh = (w * short) // h, short
    return resize_bilinear(img, max(nw, CROP), max(nh, CROP))


def center_crop(img: np.ndarray, size: int = CROP) -> np.ndarray:
    h, w = img.shape[:2]
    y = int(np.floor((h - size) / 2 + 0.5))
    x = int(np.floor((w - size) / 2 + 0.5))
    return img[y : y + size, x : x + size]


def random_crop(img: np.ndarray, rng: np.random.Generator, size: int = CROP) -> np.ndarray:
    h, w = img.shape[:2]
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    out = img[y : y + size, x : x + size]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def network_input(crop: np.ndarray) -> np.ndarray:
    """(3, 224, 224) float32 in -1..1, as MODEL.md."""
    return ((crop.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1).copy()


def jpeg_encode(rgb: np.ndarray, quality: int) -> bytes:
    """Baseline JPEG, 4:2:0, Annex K tables scaled by libjpeg's quality rule (Pillow's
    libjpeg-turbo), standard Huffman tables."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=int(quality), subsampling=2)
    return buf.getvalue()


def frequency_tensor(jpeg, channels=None) -> np.ndarray:
    """Spec Annex B.2 of a JPEG (bytes or path): (C, ceil(H/8), ceil(W/8)) int32 dequantised
    coefficients, channel c*64 + u*8 + v, chroma blocks repeated over the luma grid;
    `channels` (indices) selects and orders them (default all)."""
    import jpeglib

    if isinstance(jpeg, (bytes, bytearray)):
        fd, path = tempfile.mkstemp(suffix=".jpg", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(jpeg)
            d = jpeglib.read_dct(path)
        finally:
            os.unlink(path)
    else:
        d = jpeglib.read_dct(str(jpeg))
    comps = [d.Y] + ([d.Cb, d.Cr] if d.has_chrominance else [])
    rows, cols = -(-d.height // 8), -(-d.width // 8)
    samp = np.asarray(d.samp_factor).reshape(-1, 2)  # (v, h) per component
    vmax, hmax = samp[:, 0].max(), samp[:, 1].max()
    planes = []
    for c, comp in enumerate(comps):
        v, h = samp[c]
        bh, bw = comp.shape[:2]
        iy = np.minimum(np.arange(rows) * v // vmax, bh - 1)
        ix = np.minimum(np.arange(cols) * h // hmax, bw - 1)
        q = np.asarray(d.qt[d.quant_tbl_no[c]], dtype=np.int32)
        blk = comp[iy][:, ix].astype(np.int32) * q  # (rows, cols, 8, 8)
        planes.append(blk.reshape(rows, cols, 64).transpose(2, 0, 1))
    t = np.concatenate(planes, 0)
    if channels is not None:
        t = t[np.asarray(channels)]
    return np.ascontiguousarray(t)


def ort_teacher(path: str = DEFAULT_TEACHER, threads: int = 2, find_cut=None):
    """onnxruntime session of the classifier with two more outputs: the cut tensor (float,
    before its quantisation) and the dequantised logits. `find_cut(model)` names the cut
    (default: the DCT stems' stride-8 cut, onnx_torch.find_cut). Returns (session, cut,
    logits)."""
    import onnx
    import onnxruntime as ort
    import onnx_torch

    m = onnx.load(path)
    cut, logits = (find_cut or onnx_torch.find_cut)(m), onnx_torch.find_logits(m)
    for name in (cut, logits):
        m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess, cut, logits


def input_stats(cache, rng, key: str, n: int, chunk: int, std_floor: float):
    """Per-channel mean and std (plus `std_floor`) of the stem inputs `cache[key]`, and
    per-channel variance of the teacher's cut tensor, over n training samples read `chunk`
    at a time (the DCT and latent trainers)."""
    idx = np.sort(rng.choice(cache["train_idx"], min(n, len(cache["train_idx"])), replace=False))
    s1, s2 = np.zeros(cache[key].shape[1]), np.zeros(cache[key].shape[1])
    f1, f2 = np.zeros(cache["crop_feat"].shape[1]), np.zeros(cache["crop_feat"].shape[1])
    for k in range(0, len(idx), chunk):
        b = idx[k : k + chunk]
        x = np.asarray(cache[key][b], dtype=np.float64)
        s1 += x.mean(axis=(0, 2, 3)) * len(b)
        s2 += (x ** 2).mean(axis=(0, 2, 3)) * len(b)
        f = np.asarray(cache["crop_feat"][np.asarray(cache["sample_crop"][b])], dtype=np.float64)
        f1 += f.mean(axis=(0, 2, 3)) * len(b)
        f2 += (f ** 2).mean(axis=(0, 2, 3)) * len(b)
    mean = s1 / len(idx)
    std = np.sqrt(np.maximum(s2 / len(idx) - mean ** 2, 0)) + std_floor
    fvar = np.maximum(f2 / len(idx) - (f1 / len(idx)) ** 2, 1e-4)
    return mean, std, fvar
