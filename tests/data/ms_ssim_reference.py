#!/usr/bin/env python3
"""Reference MS-SSIM / PSNR figures for crates/icm-eval/src/metrics.rs.

Writes ms_ssim_reference.json next to this script for a few deterministic synthetic
8-bit RGB image pairs (the generator is mirrored in the Rust unit test).

Two figures per pair:

* ``ms_ssim``: a float64 NumPy port of ``pytorch_msssim.ms_ssim(X, Y, data_range=255,
  size_average=True)`` (pytorch-msssim 1.0.0), the value the Rust code must match
  closely (both are float64).
* ``ms_ssim_pytorch_msssim``: the unmodified ``pytorch_msssim`` 1.0.0 source run on
  float32 tensors. When PyTorch is installed it is used; otherwise a minimal NumPy
  stand-in for the handful of torch functions the package calls (``conv2d`` with groups,
  ``avg_pool2d`` with zero padding counted in the average, ``relu``, ``stack``, ``prod``)
  is put in ``sys.modules['torch']`` first. ``pytorch_backend`` records which.

Usage: pip install numpy pytorch-msssim [--no-deps]; python3 ms_ssim_reference.py
"""

import json
import os
import sys
import types

import numpy as np

MASK = 0xFFFFFFFF

# ---------------------------------------------------------------- synthetic images


def mix32(v):
    """lowbias32 hash on uint32 arrays."""
    v = v.astype(np.uint64) & MASK
    v ^= v >> 16
    v = (v * 0x7FEB352D) & MASK
    v ^= v >> 15
    v = (v * 0x846CA68B) & MASK
    v ^= v >> 16
    return v


def base_image(width, height, seed):
    """HxWx3 uint8: gradients, a checkerboard and hashed noise."""
    y, x, c = np.meshgrid(
        np.arange(height, dtype=np.uint64),
        np.arange(width, dtype=np.uint64),
        np.arange(3, dtype=np.uint64),
        indexing="ij",
    )
    idx = (y * width + x) * 3 + c
    noise = mix32((idx + seed * 0x9E3779B1) & MASK) % 32
    checker = ((x // 16 + y // 16 + c) % 2) * 60
    v = (x * 160) // width + (y * 80) // height + checker + noise
    return (v % 256).astype(np.uint8), idx


def distort(a, idx, seed, kind):
    if kind == "noise":
        n = (mix32((idx + (seed + 1) * 0x9E3779B1) & MASK) % 41).astype(np.int64) - 20
        return np.clip(a.astype(np.int64) + n, 0, 255).astype(np.uint8)
    if kind == "quantised":
        return ((a.astype(np.int64) // 24) * 24 + 12).astype(np.uint8)
    if kind == "invert-blue":
        b = a.copy()
        b[:, :, 2] = 255 - a[:, :, 2]
        return b
    raise ValueError(kind)


CASES = [
    {"name": "noise-192x192", "width": 192, "height": 192, "seed": 1, "kind": "noise"},
    {"name": "quantised-201x179", "width": 201, "height": 179, "seed": 2, "kind": "quantised"},
    {"name": "noise-odd-241x163", "width": 241, "height": 163, "seed": 3, "kind": "noise"},
    {"name": "invert-blue-170x190", "width": 170, "height": 190, "seed": 4, "kind": "invert-blue"},
]

# ---------------------------------------------------------------- float64 port

WEIGHTS = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]


def gauss_1d(size=11, sigma=1.5):
    coords = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def filt(p, g):
    """Valid separable correlation along H, then W (as pytorch_msssim.gaussian_filter)."""
    k = len(g)
    if p.shape[0] >= k:
        p = sum(g[t] * p[t : t + p.shape[0] - k + 1, :] for t in range(k))
    if p.shape[1] >= k:
        p = sum(g[t] * p[:, t : t + p.shape[1] - k + 1] for t in range(k))
    return p


def ssim_cs(x, y, g, data_range=255.0, K=(0.01, 0.03)):
    c1 = (K[0] * data_range) ** 2
    c2 = (K[1] * data_range) ** 2
    mu1, mu2 = filt(x, g), filt(y, g)
    s1 = filt(x * x, g) - mu1**2
    s2 = filt(y * y, g) - mu2**2
    s12 = filt(x * y, g) - mu1 * mu2
    cs = (2 * s12 + c2) / (s1 + s2 + c2)
    ssim = ((2 * mu1 * mu2 + c1) / (mu1**2 + mu2**2 + c1)) * cs
    return ssim.mean(), cs.mean()


def avg_pool(p):
    """F.avg_pool2d(kernel_size=2, padding=[h%2, w%2]), count_include_pad=True."""
    ph, pw = p.shape[0] % 2, p.shape[1] % 2
    q = np.pad(p, ((ph, ph), (pw, pw)))
    oh = (p.shape[0] + 2 * ph - 2) // 2 + 1
    ow = (p.shape[1] + 2 * pw - 2) // 2 + 1
    q = q[: 2 * oh, : 2 * ow]
    return q.reshape(oh, 2, ow, 2).sum(axis=(1, 3)) / 4.0


def ms_ssim_port(a, b):
    g = gauss_1d()
    vals = []
    for c in range(3):
        x = a[:, :, c].astype(np.float64)
        y = b[:, :, c].astype(np.float64)
        assert min(x.shape) > 160
        v = 1.0
        for i, w in enumerate(WEIGHTS):
            ssim, cs = ssim_cs(x, y, g)
            if i < len(WEIGHTS) - 1:
                v *= max(cs, 0.0) ** w
                x, y = avg_pool(x), avg_pool(y)
            else:
                v *= max(ssim, 0.0) ** w
        vals.append(v)
    return float(np.mean(vals))


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


# ---------------------------------------------------------------- torch stand-in


def install_numpy_torch():
    """Registers a tiny NumPy-backed 'torch' sufficient for pytorch_msssim.ms_ssim."""
    from numpy.lib.stride_tricks import sliding_window_view

    class Tensor(np.ndarray):
        def unsqueeze(self, d):
            return np.expand_dims(self, d).view(Tensor)

        def repeat(self, reps):
            return np.tile(np.asarray(self), reps).view(Tensor)

        def transpose(self, a, b):
            return np.swapaxes(np.asarray(self), a, b).view(Tensor)

        def to(self, *args, dtype=None, **kwargs):
            return self if dtype is None else np.asarray(self).astype(dtype).view(Tensor)

        def pow(self, e):
            return np.power(np.asarray(self), e).view(Tensor)

        def flatten(self, start=0):
            s = np.asarray(self)
            return s.reshape(s.shape[:start] + (-1,)).view(Tensor)

        def mean(self, dim=None):
            return np.asarray(np.asarray(self).mean(axis=dim)).view(Tensor)

        def squeeze(self, dim=None):
            s = np.asarray(self)
            if dim is not None and s.shape[dim] != 1:
                return self
            return s.squeeze(axis=dim).view(Tensor)

        def new_tensor(self, data):
            return np.array(data, dtype=self.dtype).view(Tensor)

        def view(self, *shape):
            if len(shape) == 1 and isinstance(shape[0], type):
                return super().view(shape[0])
            return np.asarray(self).reshape(shape).view(Tensor)

        def item(self):
            return np.asarray(self).item()

    def t(a):
        return np.asarray(a).view(Tensor)

    def conv2d(x, weight, stride=1, padding=0, groups=1):
        x, w = np.asarray(x), np.asarray(weight)
        assert stride == 1 and padding == 0 and groups == x.shape[1] == w.shape[0]
        kh, kw = w.shape[2:]
        out = []
        for c in range(groups):
            win = sliding_window_view(x[:, c], (kh, kw), axis=(1, 2))
            out.append(np.einsum("nhwij,ij->nhw", win, w[c, 0]).astype(x.dtype))
        return t(np.stack(out, axis=1))

    def avg_pool2d(x, kernel_size=2, padding=(0, 0)):
        x = np.asarray(x)
        assert kernel_size == 2
        ph, pw = padding
        h, w = x.shape[2:]
        q = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        oh, ow = (h + 2 * ph - 2) // 2 + 1, (w + 2 * pw - 2) // 2 + 1
        q = q[:, :, : 2 * oh, : 2 * ow]
        n, c = x.shape[:2]
        return t((q.reshape(n, c, oh, 2, ow, 2).sum(axis=(3, 5)) / 4).astype(x.dtype))

    torch = types.ModuleType("torch")
    nn = types.ModuleType("torch.nn")
    functional = types.ModuleType("torch.nn.functional")
    torch.Tensor = Tensor
    torch.float = np.float32
    torch.arange = lambda n, dtype=None: t(np.arange(n, dtype=dtype))
    torch.exp = lambda a: t(np.exp(np.asarray(a)))
    torch.flatten = lambda a, start=0: t(a).flatten(start)
    torch.relu = lambda a: t(np.maximum(np.asarray(a), 0))
    torch.stack = lambda xs, dim=0: t(np.stack([np.asarray(v) for v in xs], axis=dim))
    torch.prod = lambda a, dim=None: t(np.prod(np.asarray(a), axis=dim))
    torch.from_numpy = t
    nn.Module = object
    nn.functional = functional
    functional.conv2d = conv2d
    functional.conv3d = None
    functional.avg_pool2d = avg_pool2d
    functional.avg_pool3d = None
    torch.nn = nn
    sys.modules.update({"torch": torch, "torch.nn": nn, "torch.nn.functional": functional})
    return torch


def load_pytorch_msssim():
    try:
        import torch  # noqa: F401

        backend = "torch " + torch.__version__
    except ImportError:
        install_numpy_torch()
        backend = "numpy stand-in for torch"
    try:
        from pytorch_msssim import ms_ssim
    except ImportError:
        return None, None
    return ms_ssim, backend


def main():
    ms_ssim_ref, backend = load_pytorch_msssim()
    torch = sys.modules.get("torch")
    out = []
    for case in CASES:
        a, idx = base_image(case["width"], case["height"], case["seed"])
        b = distort(a, idx, case["seed"], case["kind"])
        entry = dict(case)
        entry["ms_ssim"] = ms_ssim_port(a, b)
        entry["psnr"] = psnr(a, b)
        if ms_ssim_ref is not None:
            X = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)[None]).astype(np.float32))
            Y = torch.from_numpy(np.ascontiguousarray(b.transpose(2, 0, 1)[None]).astype(np.float32))
            entry["ms_ssim_pytorch_msssim"] = float(ms_ssim_ref(X, Y, data_range=255, size_average=True).item())
        out.append(entry)
        print(entry, file=sys.stderr)
    doc = {
        "generator": "tests/data/ms_ssim_reference.py",
        "pytorch_msssim_version": "1.0.0",
        "pytorch_backend": backend,
        "cases": out,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ms_ssim_reference.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
