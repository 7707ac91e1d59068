"""The DCT stems' input: JPEG coding (Pillow's libjpeg-turbo, 4:2:0) and the frequency
channels of spec Annex B (as crates/icm-eval/src/jpeg/channels.rs arranges them; tests/it/
dct_task.rs checks equality with `icm dct` through tests/python/dct_arrangement.py)."""
from __future__ import annotations

import io
import os
import tempfile

import numpy as np
from PIL import Image

CHANNELS = 192  # 3 components x 64 frequencies


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
