#!/usr/bin/env python3
"""Independent reference decoder for the normative part of icm v1.

Written from spec/icm-v1.md only (sections 2-10, 13 and Annex A).  Decodes a stream
to its latents (z^ and y^ of every tile) and prints the Annex A conformance hash:

    python3 icm_ref.py STREAM MODEL [--npy OUT.npz]

Dependencies: Python 3 standard library and numpy.
"""
import argparse
import hashlib
import json
import struct
import sys
from bisect import bisect_right

import numpy as np


class DecodeError(Exception):
    """A stream or model rejected under spec section 13."""


# ---------------------------------------------------------------- 2 conventions

def round_shift(v, s):
    """2.3 RoundShift on int64 arrays; s broadcast per channel (1 <= s <= 62)."""
    s = np.asarray(s, dtype=np.int64)
    return (v + (np.int64(1) << (s - 1))) >> s


def unzigzag(u):
    """2.4: u/2 for even u, -(u+1)/2 for odd u."""
    return (u >> 1) ^ -(u & 1)


def ceil_div(a, b):
    return (a + b - 1) // b


# ---------------------------------------------------------------- 7 model file

_DTYPES = {
    "I8": "<i1", "U8": "<u1", "I16": "<i2", "U16": "<u2", "I32": "<i4", "U32": "<u4",
    "I64": "<i8", "U64": "<u8", "F16": "<f2", "F32": "<f4", "F64": "<f8",
}

LEVELS = {1: (8192, 1 << 25, 2048), 2: (32768, 1 << 28, 2048)}


def load_safetensors(data):
    """7.1: u64 LE header length H, H bytes of JSON, then the tensor data."""
    if len(data) < 8:
        raise DecodeError("invalid model: file too short")
    (hlen,) = struct.unpack_from("<Q", data, 0)
    if 8 + hlen > len(data):
        raise DecodeError("invalid model: header length")
    header = json.loads(data[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    meta = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, info in header.items():
        dt = _DTYPES.get(info["dtype"])
        if dt is None:
            continue  # not needed by the normative decoder
        a, b = info["data_offsets"]
        shape = tuple(info["shape"])
        arr = np.frombuffer(data, dtype=dt, count=(b - a) // np.dtype(dt).itemsize,
                            offset=base + a)
        if int(np.prod(shape, dtype=np.int64)) != arr.size:
            raise DecodeError("invalid model: tensor %s size" % name)
        tensors[name] = arr.reshape(shape)
    return meta, tensors


def _check_table(f):
    if f.size == 0 or int(f.min()) < 1 or int(f.sum(dtype=np.int64)) != 1 << 16:
        raise DecodeError("invalid model: frequency table (7.4)")


class Table:
    """A frequency table (7.4) prepared for 8.3."""
    __slots__ = ("f", "cdf", "S")

    def __init__(self, freqs):
        f = [int(v) for v in freqs]
        cdf = [0]
        for v in f:
            cdf.append(cdf[-1] + v)
        self.f = f
        self.cdf = cdf
        self.S = len(f)


class Model:
    def __init__(self, path):
        with open(path, "rb") as fh:
            data = fh.read()
        self.sha256 = hashlib.sha256(data).digest()
        meta, t = load_safetensors(data)
        icm = meta.get("icm")
        if icm is None:
            raise DecodeError("invalid model: no icm metadata")
        # safetensors metadata values are strings: the icm object is JSON text.
        if isinstance(icm, str):
            icm = json.loads(icm)
        if (icm.get("format") != "icm-model-1" or icm.get("architecture") != "hyperprior-v1"
                or icm.get("mean_frac_bits") != "8" or icm.get("ans_precision") != "16"):
            raise DecodeError("invalid model: metadata (7.2)")
        self.name = icm["name"].encode("utf-8")

        def req(name, dtype, ndim):
            if name not in t:
                raise DecodeError("invalid model: missing " + name)
            a = t[name]
            if a.dtype != np.dtype(dtype) or a.ndim != ndim:
                raise DecodeError("invalid model: dtype/shape of " + name)
            return a

        self.layers = {}
        for l in (0, 2, 4):
            w = req("h_s.%d.weight" % l, "<i1", 4).astype(np.int64)
            b = req("h_s.%d.bias" % l, "<i4", 1).astype(np.int64)
            m = req("h_s.%d.multiplier" % l, "<i4", 1).astype(np.int64)
            s = req("h_s.%d.shift" % l, "<u1", 1).astype(np.int64)
            cout = w.shape[0] if l == 4 else w.shape[1]
            if not (b.shape == m.shape == s.shape == (cout,)):
                raise DecodeError("invalid model: h_s.%d per-channel shapes" % l)
            if (np.abs(w) > 127).any() or (np.abs(b) > (1 << 30) - 1).any() \
                    or (m < 0).any() or (s < 1).any() or (s > 62).any():
                raise DecodeError("invalid model: h_s.%d ranges (7.5)" % l)
            self.layers[l] = (w, b, m, s)
        w0, w2, w4 = (self.layers[l][0] for l in (0, 2, 4))
        self.N, self.C1 = w0.shape[0], w0.shape[1]
        self.C2 = w2.shape[1]
        if w0.shape[2:] != (5, 5) or w2.shape[2:] != (5, 5) or w2.shape[0] != self.C1:
            raise DecodeError("invalid model: h_s.0/h_s.2 shapes")
        K = w4.shape[2]
        if w4.shape[3] != K or K % 2 != 1 or w4.shape[1] != self.C2 or w4.shape[0] % 2:
            raise DecodeError("invalid model: h_s.4 shape")
        self.M = w4.shape[0] // 2
        if self.N * 9 > 1 << 15 or self.C1 * 9 > 1 << 15 or self.C2 * K * K > 1 << 15:
            raise DecodeError("invalid model: taps (7.5)")

        zoff = req("z.offset", "<i4", 1).astype(np.int64)
        zsize = req("z.size", "<i4", 1).astype(np.int64)
        zfreq = req("z.frequency", "<u2", 1)
        if zoff.shape != (self.N,) or zsize.shape != (self.N,) or (zsize < 1).any() \
                or int(zsize.sum()) != zfreq.size or (np.abs(zoff) > 1 << 20).any():
            raise DecodeError("invalid model: z tables")
        self.zoff = [int(v) for v in zoff]
        self.ztables = []
        pos = 0
        for c in range(self.N):
            f = zfreq[pos:pos + int(zsize[c])]
            _check_table(f)
            self.ztables.append(Table(f))
            pos += int(zsize[c])

        T = req("y.scale_threshold", "<i4", 1).astype(np.int64)
        R = req("y.half_width", "<i4", 1).astype(np.int64)
        yfreq = req("y.frequency", "<u2", 1)
        if not (1 <= T.size <= 255) or R.size != T.size + 1 or (R < 0).any() \
                or (R > 32767).any() or (np.diff(T) <= 0).any() \
                or int((2 * R + 2).sum()) != yfreq.size:
            raise DecodeError("invalid model: y tables")
        self.T = T
        self.R = [int(v) for v in R]
        self.ytables = []
        pos = 0
        for k in range(R.size):
            S = 2 * self.R[k] + 2
            f = yfreq[pos:pos + S]
            _check_table(f)
            self.ytables.append(Table(f))
            pos += S


# ---------------------------------------------------------------- 8 entropy decoding

class RansDecoder:
    """8.2 - 8.5."""

    def __init__(self, payload):
        if len(payload) % 4:
            raise DecodeError("corrupt payload: length not a multiple of 4")
        self.w = list(struct.unpack("<%dI" % (len(payload) // 4), payload))
        self.k = len(self.w)
        if self.k == 0:
            self.x = 0
        else:
            a = self.pop()
            if a == 0:
                raise DecodeError("corrupt payload: last word is 0")
            self.x = a
            if self.k > 0:
                self.x = (self.x << 32) | self.pop()

    def pop(self):
        self.k -= 1
        return self.w[self.k]

    def symbol(self, tab):
        x = self.x
        v = x & 0xFFFF
        cdf = tab.cdf
        s = bisect_right(cdf, v) - 1
        x = (x >> 16) * tab.f[s] + v - cdf[s]
        if x < (1 << 32) and self.k > 0:
            self.k -= 1
            x = (x << 32) | self.w[self.k]
        self.x = x
        return s

    def uniform(self, bits):
        """Symbol of the uniform table of 2^bits symbols (f = 2^(16-bits))."""
        x = self.x
        v = x & 0xFFFF
        sh = 16 - bits
        s = v >> sh
        x = (x >> 16) * (1 << sh) + v - (s << sh)
        if x < (1 << 32) and self.k > 0:
            self.k -= 1
            x = (x << 32) | self.w[self.k]
        self.x = x
        return s

    def value(self, tab, off):
        """8.5 DecodeValue."""
        s = self.symbol(tab)
        if s < tab.S - 1:
            return off + s
        b = self.uniform(5)
        if b > 16:
            raise DecodeError("corrupt payload: escape length %d" % b)
        u = 1 << b
        if b > 0:
            u += self.uniform(b)
        return unzigzag(u - 1)

    def finish(self):
        """8.4."""
        if self.k != 0 or self.x != 0:
            raise DecodeError("corrupt payload: not exhausted (k=%d, x=%d)" % (self.k, self.x))


# ---------------------------------------------------------------- 9 integer h_s

def transposed_conv(a, w, b):
    """9.2, stride 2, K x K, padding (K-1)/2, output Cout x 2H x 2W.
    a: (Cin, H, W) int64; w: (Cin, Cout, K, K) int64; b: (Cout,) int64."""
    cin, H, W = a.shape
    cout, K = w.shape[1], w.shape[2]
    p = (K - 1) // 2
    buf = np.zeros((cout, 2 * H + K, 2 * W + K), dtype=np.int64)
    flat = a.reshape(cin, H * W)
    for ky in range(K):
        for kx in range(K):
            contrib = (w[:, :, ky, kx].T @ flat).reshape(cout, H, W)
            # output index Y = 2*iy + ky - p  ->  buffer index Y + p = 2*iy + ky
            buf[:, ky:ky + 2 * H:2, kx:kx + 2 * W:2] += contrib
    return buf[:, p:p + 2 * H, p:p + 2 * W] + b[:, None, None]


def conv(a, w, b):
    """9.2 ordinary convolution, stride 1, zero padding (K-1)/2.
    a: (Cin, H, W); w: (Cout, Cin, K, K)."""
    cin, H, W = a.shape
    cout, K = w.shape[0], w.shape[2]
    p = (K - 1) // 2
    pad = np.zeros((cin, H + 2 * p, W + 2 * p), dtype=np.int64)
    pad[:, p:p + H, p:p + W] = a
    out = np.zeros((cout, H * W), dtype=np.int64)
    for ky in range(K):
        for kx in range(K):
            out += w[:, :, ky, kx] @ pad[:, ky:ky + H, kx:kx + W].reshape(cin, H * W)
    return out.reshape(cout, H, W) + b[:, None, None]


def requant(acc, m, s):
    """9.3: RoundShift(acc * Mul[o], Sh[o]) in i64, per output channel."""
    return round_shift(acc * m[:, None, None], s[:, None, None])


def hyper_synthesis(model, zhat):
    """9.1 / 9.4: returns (idx, mu), each M x 4h x 4w."""
    a0 = np.clip(zhat.astype(np.int64), -128, 127)
    w, b, m, s = model.layers[0]
    a1 = np.clip(requant(transposed_conv(a0, w, b), m, s), 0, 255)
    w, b, m, s = model.layers[2]
    a2 = np.clip(requant(transposed_conv(a1, w, b), m, s), 0, 255)
    w, b, m, s = model.layers[4]
    out = requant(conv(a2, w, b), m, s)
    M = model.M
    sc = out[:M]
    idx = np.searchsorted(model.T, sc, side="left")  # number of T[k] < s
    mu = np.clip(out[M:], -(1 << 23), 1 << 23)
    return idx, mu


# ---------------------------------------------------------------- 4/5 container

def parse_stream(data, model):
    if len(data) < 27:
        raise DecodeError("truncated header")
    if data[:4] != b"\x89ICM":
        raise DecodeError("bad magic")
    major, minor, profile, level = data[4], data[5], data[6], data[7]
    if major != 1:
        raise DecodeError("unsupported version")
    width, height, tile_w, tile_h = struct.unpack_from("<4I", data, 8)
    colour, quality, L = data[24], data[25], data[26]
    if len(data) < 59 + L:
        raise DecodeError("truncated header")
    name = data[27:27 + L]
    sha = data[27 + L:59 + L]
    if profile != 0 or colour != 0 or level not in LEVELS or not (1 <= L <= 64):
        raise DecodeError("invalid field (header)")
    maxdim, maxpix, maxtile = LEVELS[level]
    if not (1 <= width <= maxdim and 1 <= height <= maxdim and width * height <= maxpix):
        raise DecodeError("invalid field: image size")
    for tsz, dim in ((tile_w, width), (tile_h, height)):
        if tsz < 64 or tsz % 64 or tsz > maxtile or tsz > ceil_div(dim, 64) * 64:
            raise DecodeError("invalid field: tile size")
    if name != model.name or sha != model.sha256:
        raise DecodeError("model mismatch")
    cols, rows = ceil_div(width, tile_w), ceil_div(height, tile_h)
    count = cols * rows
    tiles = []
    pos = 59 + L
    while True:
        if pos + 8 > len(data):
            raise DecodeError("truncated: chunk header / no IEND")
        ctype = data[pos:pos + 4]
        (clen,) = struct.unpack_from("<I", data, pos + 4)
        pos += 8
        if pos + clen > len(data):
            raise DecodeError("truncated: chunk payload")
        payload = data[pos:pos + clen]
        pos += clen
        if ctype == b"IEND":
            if clen != 0:
                raise DecodeError("invalid field: IEND length")
            if pos != len(data):
                raise DecodeError("trailing data")
            break
        if ctype == b"TILE":
            if clen < 8:
                raise DecodeError("invalid field: TILE length")
            tidx, zlen = struct.unpack_from("<2I", payload, 0)
            if tidx != len(tiles) or zlen > clen - 8:
                raise DecodeError("invalid field: tile_index / z_length")
            if tidx >= count:
                raise DecodeError("tile count")
            tiles.append((payload[8:8 + zlen], payload[8 + zlen:]))
        elif 0x61 <= ctype[0] <= 0x7A:
            continue  # unknown optional chunk
        else:
            raise DecodeError("unknown required chunk %r" % ctype)
    if len(tiles) != count:
        raise DecodeError("tile count")
    geo = []
    for t in range(count):
        x0, y0 = (t % cols) * tile_w, (t // cols) * tile_h
        tw, th = min(tile_w, width - x0), min(tile_h, height - y0)
        geo.append((ceil_div(th, 64) * 64, ceil_div(tw, 64) * 64))
    return dict(width=width, height=height, tile_w=tile_w, tile_h=tile_h,
                minor=minor, quality=quality), tiles, geo


# ---------------------------------------------------------------- 8.6 / 8.7 / 10

def decode_tile(model, zpay, ypay, PH, PW):
    h, w = PH // 64, PW // 64
    dec = RansDecoder(zpay)
    zhat = np.empty((model.N, h, w), dtype=np.int64)
    zflat = zhat.reshape(-1)
    n = h * w
    for c in range(model.N):
        tab, off = model.ztables[c], model.zoff[c]
        for i in range(n):
            zflat[c * n + i] = dec.value(tab, off)
    dec.finish()

    idx, mu = hyper_synthesis(model, zhat)
    dec = RansDecoder(ypay)
    idxl = idx.reshape(-1).tolist()
    tabs = model.ytables
    R = model.R
    q = [0] * len(idxl)
    # Inlined fast path of DecodeValue for the y symbols (same arithmetic as RansDecoder).
    w_ = dec.w
    k = dec.k
    x = dec.x
    for e, t in enumerate(idxl):
        tab = tabs[t]
        cdf = tab.cdf
        v = x & 0xFFFF
        s = bisect_right(cdf, v) - 1
        x = (x >> 16) * tab.f[s] + v - cdf[s]
        if x < 4294967296 and k > 0:
            k -= 1
            x = (x << 32) | w_[k]
        if s < tab.S - 1:
            q[e] = s - R[t]
        else:
            dec.x, dec.k = x, k
            dec_val = _escape(dec)
            x, k = dec.x, dec.k
            q[e] = dec_val
    dec.x, dec.k = x, k
    dec.finish()
    qa = np.array(q, dtype=np.int64).reshape(mu.shape)
    yhat = (qa << 8) + mu
    return zhat, yhat


def _escape(dec):
    """8.5 steps 2-4."""
    b = dec.uniform(5)
    if b > 16:
        raise DecodeError("corrupt payload: escape length %d" % b)
    u = 1 << b
    if b > 0:
        u += dec.uniform(b)
    return unzigzag(u - 1)


def decode(stream_path, model_path):
    model = Model(model_path)
    with open(stream_path, "rb") as fh:
        data = fh.read()
    hdr, tiles, geo = parse_stream(data, model)
    out = []
    for (zpay, ypay), (PH, PW) in zip(tiles, geo):
        out.append(decode_tile(model, zpay, ypay, PH, PW))
    return hdr, out


def annex_a(latents):
    """Annex A: per tile, z^ then y^, CHW, i32 little-endian."""
    h = hashlib.sha256()
    for zhat, yhat in latents:
        h.update(zhat.astype("<i4").tobytes())
        h.update(yhat.astype("<i4").tobytes())
    return h.hexdigest()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stream")
    ap.add_argument("model")
    ap.add_argument("--npy", metavar="OUT",
                    help="also save the latents as an .npz (z0, y0, z1, y1, ...)")
    ap.add_argument("--latents-raw", metavar="OUT",
                    help="also write the Annex A serialisation (for icm conformance --decoder)")
    args = ap.parse_args(argv)
    try:
        _, latents = decode(args.stream, args.model)
    except DecodeError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    print("latents sha256 %s" % annex_a(latents))
    if args.latents_raw:
        with open(args.latents_raw, "wb") as fh:
            for zhat, yhat in latents:
                fh.write(zhat.astype("<i4").tobytes())
                fh.write(yhat.astype("<i4").tobytes())
    if args.npy:
        arrs = {}
        for t, (z, y) in enumerate(latents):
            arrs["z%d" % t] = z.astype(np.int32)
            arrs["y%d" % t] = y.astype(np.int32)
        with open(args.npy, "wb") as fh:
            np.savez(fh, **arrs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
