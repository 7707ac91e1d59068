#!/usr/bin/env python3
"""Independent reference decoder for the normative part of icm v1.

Written from spec/icm-v1.md only (sections 2-10, 13 and Annex A), version 1.3.  Decodes a stream
to its latents (z^ and y^ of every tile) and prints the Annex A conformance hash:

    python3 icm_ref.py STREAM MODEL [--npy OUT.npz]

A stream or model it refuses gets the class of spec 13, found in the order of 13.1, on the
first line of standard error: `error: CLASS`.

Model architectures (7.2.1, table 7-1): `hyperprior-v1` (1.0), `bmshj2018-hyperprior` and
`mbt2018-mean` (1.2). Step maps (1.3): the STEP chunk (4.6), its block indices (5.4, 8.8), the
stepped scale index (9.4) and `y^ = q * D + mu` (10).

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
    """A stream or model rejected under spec section 13: `cls` is its class (13)."""

    def __init__(self, cls, why):
        super().__init__("%s: %s" % (cls, why))
        self.cls = cls


def invalid_model(why):
    return DecodeError("invalid-model", why)


def corrupt(why):
    return DecodeError("corrupt-payload", why)


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

_DTYPES = {  # 7.1: the six dtypes of a model file
    "I8": "<i1", "U8": "<u1", "U16": "<u2", "I32": "<i4", "F16": "<f2", "F32": "<f4",
}

LEVELS = {1: (8192, 1 << 25, 2048), 2: (32768, 1 << 28, 2048)}

# 7.2.1 table 7-1: architecture -> (h_s.4 outputs per latent channel (C4 = 2M or M),
# hidden activation of h_s (9.3), has z.median (9.2)).
ARCHITECTURES = {
    "hyperprior-v1": (2, "relu", False),
    "bmshj2018-hyperprior": (1, "relu", True),
    "mbt2018-mean": (2, "leaky", True),
}


def load_safetensors(data):
    """7.1 and the file rules of 7.5: header length, JSON header, dtypes, offsets that tile
    the data section exactly."""
    if len(data) < 8:
        raise invalid_model("file too short")
    (hlen,) = struct.unpack_from("<Q", data, 0)
    if 8 + hlen > len(data):
        raise invalid_model("header length")
    try:
        header = json.loads(data[8:8 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise invalid_model("header is not UTF-8 JSON")
    if not isinstance(header, dict):
        raise invalid_model("header is not a JSON object")
    base = 8 + hlen
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise invalid_model("__metadata__ is not a map of strings")
    tensors, spans = {}, []
    for name, info in header.items():
        try:
            dt = _DTYPES[info["dtype"]]
            shape = tuple(int(d) for d in info["shape"])
            a, b = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise invalid_model("tensor %s: dtype, shape or data_offsets" % name)
        if any(d < 0 for d in shape) or a < 0 or b < a:
            raise invalid_model("tensor %s: shape or data_offsets" % name)
        count = int(np.prod(shape, dtype=np.int64))
        if b - a != count * np.dtype(dt).itemsize:
            raise invalid_model("tensor %s: size" % name)
        spans.append((a, b))
        tensors[name] = (dt, shape, a, count)
    end = 0
    for a, b in sorted(spans):
        if a != end:
            raise invalid_model("data_offsets overlap or leave a gap")
        end = b
    if base + end != len(data):
        raise invalid_model("data_offsets do not end at the end of the file")
    arrays = {}
    for name, (dt, shape, a, count) in tensors.items():
        arrays[name] = np.frombuffer(data, dtype=dt, count=count, offset=base + a).reshape(shape)
    return meta, arrays


def _check_float_layers(t, prefix, layers, cin):
    """7.5 / 11.1: a float transform's shapes; layers are ("convT", k), ("conv", k), "gdn",
    "act" (an activation: no tensor). Returns the output channels."""
    c = cin
    for i, kind in enumerate(layers):
        if kind == "act":
            continue
        if kind == "gdn":
            beta, gamma = t.get("%s.%d.beta" % (prefix, i)), t.get("%s.%d.gamma" % (prefix, i))
            if beta is None or gamma is None or beta.dtype.kind != "f" \
                    or gamma.dtype.kind != "f" or beta.shape != (c,) or gamma.shape != (c, c):
                raise invalid_model("%s.%d GDN shapes" % (prefix, i))
            continue
        op, k = kind
        w, b = t.get("%s.%d.weight" % (prefix, i)), t.get("%s.%d.bias" % (prefix, i))
        if w is None or b is None or w.dtype.kind != "f" or b.dtype.kind != "f" or w.ndim != 4:
            raise invalid_model("%s.%d missing or not a float 4-D weight" % (prefix, i))
        if op == "convT":
            wi, wo = w.shape[0], w.shape[1]
        else:
            wo, wi = w.shape[0], w.shape[1]
        if wi != c or wo < 1 or w.shape[2:] != (k, k) or b.shape != (wo,):
            raise invalid_model("%s.%d shapes" % (prefix, i))
        c = wo
    return c


G_S = [("convT", 5), "gdn", ("convT", 5), "gdn", ("convT", 5), "gdn", ("convT", 5)]
G_A = [("conv", 5), "gdn", ("conv", 5), "gdn", ("conv", 5), "gdn", ("conv", 5)]
H_A = [("conv", 3), "act", ("conv", 5), "act", ("conv", 5)]  # ReLU or LeakyReLU (11.1)


def _check_table(f):
    if f.size == 0 or int(f.min()) < 1 or int(f.sum(dtype=np.int64)) != 1 << 16:
        raise invalid_model("frequency table (7.4)")


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
            raise invalid_model("no icm metadata")
        # safetensors metadata values are strings: the icm object is JSON text.
        try:
            icm = json.loads(icm)
        except ValueError:
            raise invalid_model("icm metadata is not JSON")
        if not isinstance(icm, dict) or not all(isinstance(v, str) for v in icm.values()):
            raise invalid_model("icm metadata is not an object of strings")
        if (icm.get("format") != "icm-model-1" or icm.get("architecture") not in ARCHITECTURES
                or icm.get("mean_frac_bits") != "8" or icm.get("ans_precision") != "16"):
            raise invalid_model("metadata (7.2)")
        # 7.2.1: what the architecture reads; a tensor it does not list is informative (7.6)
        # and not examined beyond the file rules.
        self.architecture = icm["architecture"]
        outputs_per_channel, act_kind, has_median = ARCHITECTURES[self.architecture]
        self.name = icm.get("name", "").encode("utf-8")
        if not 1 <= len(self.name) <= 64 or not icm.get("quality", "").isdigit():
            raise invalid_model("name or quality (7.2)")

        def req(name, dtype, ndim):
            if name not in t:
                raise invalid_model("missing " + name)
            a = t[name]
            if a.dtype != np.dtype(dtype) or a.ndim != ndim:
                raise invalid_model("dtype/shape of " + name)
            return a

        self.layers = {}
        # 7.3 / 9.3: {0: NegMul_0, 2: NegMul_2} for the clipped LeakyReLU, else None
        self.negmul = {} if act_kind == "leaky" else None
        for l in (0, 2, 4):
            w = req("h_s.%d.weight" % l, "<i1", 4).astype(np.int64)
            b = req("h_s.%d.bias" % l, "<i4", 1).astype(np.int64)
            m = req("h_s.%d.multiplier" % l, "<i4", 1).astype(np.int64)
            s = req("h_s.%d.shift" % l, "<u1", 1).astype(np.int64)
            cout = w.shape[0] if l == 4 else w.shape[1]
            if not (b.shape == m.shape == s.shape == (cout,)) or min(w.shape) < 1:
                raise invalid_model("h_s.%d per-channel shapes" % l)
            if (np.abs(w) > 127).any() or (np.abs(b) > (1 << 30) - 1).any() \
                    or (m < 0).any() or (s < 1).any() or (s > 62).any():
                raise invalid_model("h_s.%d ranges (7.5)" % l)
            self.layers[l] = (w, b, m, s)
            if act_kind == "leaky" and l != 4:
                n = req("h_s.%d.negative_multiplier" % l, "<i4", 1).astype(np.int64)
                if n.shape != (cout,):
                    raise invalid_model("h_s.%d.negative_multiplier shape" % l)
                if (n < 0).any():
                    raise invalid_model("h_s.%d.negative_multiplier ranges (7.5)" % l)
                self.negmul[l] = n
        w0, w2, w4 = (self.layers[l][0] for l in (0, 2, 4))
        self.N, self.C1 = w0.shape[0], w0.shape[1]
        self.C2 = w2.shape[1]
        if w0.shape[2:] != (5, 5) or w2.shape[2:] != (5, 5) or w2.shape[0] != self.C1:
            raise invalid_model("h_s.0/h_s.2 shapes")
        K = w4.shape[2]
        if w4.shape[3] != K or K % 2 != 1 or w4.shape[1] != self.C2 \
                or w4.shape[0] % outputs_per_channel:
            raise invalid_model("h_s.4 shape")
        # C4 = 2M or M (table 7-1); M is also the input channel count of g_s.0 (checked below).
        self.M = w4.shape[0] // outputs_per_channel
        if self.M > 1024:
            raise invalid_model("M > 1024")
        if self.N * 9 > 1 << 15 or self.C1 * 9 > 1 << 15 or self.C2 * K * K > 1 << 15:
            raise invalid_model("taps (7.5)")

        zoff = req("z.offset", "<i4", 1).astype(np.int64)
        zsize = req("z.size", "<i4", 1).astype(np.int64)
        zfreq = req("z.frequency", "<u2", 1)
        if zoff.shape != (self.N,) or zsize.shape != (self.N,) or (zsize < 2).any() \
                or int(zsize.sum()) != zfreq.size or (np.abs(zoff) > 1 << 20).any():
            raise invalid_model("z tables")
        self.zoff = [int(v) for v in zoff]
        self.median = None  # 7.3 / 9.2: Med[c] in units of 2^-8
        if has_median:
            med = req("z.median", "<i4", 1).astype(np.int64)
            if med.shape != (self.N,) or (np.abs(med) > 1 << 15).any():
                raise invalid_model("z.median (7.5)")
            self.median = med
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
            raise invalid_model("y tables")
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

        # 7.5: g_s is required; g_a and h_a are checked when present (11.1).
        if _check_float_layers(t, "g_s", G_S, self.M) != 3:
            raise invalid_model("g_s does not end at 3 channels")
        if "g_a.0.weight" in t and _check_float_layers(t, "g_a", G_A, 3) != self.M:
            raise invalid_model("g_a does not end at M channels")
        if "h_a.0.weight" in t and _check_float_layers(t, "h_a", H_A, self.M) != self.N:
            raise invalid_model("h_a does not end at N channels")


# ---------------------------------------------------------------- 8 entropy decoding

class RansDecoder:
    """8.2 - 8.5."""

    def __init__(self, payload):
        if len(payload) % 4:
            raise corrupt("length not a multiple of 4")
        self.w = list(struct.unpack("<%dI" % (len(payload) // 4), payload))
        self.k = len(self.w)
        if self.k == 0:
            self.x = 0
        else:
            a = self.pop()
            if a == 0:
                raise corrupt("last word is 0")
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
            raise corrupt("escape length %d" % b)
        u = 1 << b
        if b > 0:
            u += self.uniform(b)
        return unzigzag(u - 1)

    def finish(self):
        """8.4."""
        if self.k != 0 or self.x != 0:
            raise corrupt("not exhausted (k=%d, x=%d)" % (self.k, self.x))


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


def median_term(med, w, H, W):
    """9.2 median term of layer 0: RoundShift(sum of Med[i] * W0[i][o][ky][kx], 8) over the
    terms of the transposed convolution of an H x W input (only input positions inside the
    grid), computed in i64; Cout x 2H x 2W."""
    ones = np.broadcast_to(med[:, None, None], (med.shape[0], H, W))
    return round_shift(transposed_conv(ones, w, np.zeros(w.shape[1], dtype=np.int64)), 8)


def activation(acc, m, s, negmul=None):
    """9.3 Act_l: clipped ReLU (negmul None) or clipped LeakyReLU (NegMul for acc < 0)."""
    if negmul is None:
        return np.clip(requant(acc, m, s), 0, 255)
    mul = np.where(acc >= 0, m[:, None, None], negmul[:, None, None])
    return np.clip(round_shift(acc * mul, s[:, None, None]), -255, 255)


def scale_index(T, sc, dmap=None):
    """9.4: idx = the number of k with TD[k] < s, TD[k] = (T[k] * D) >> 8 in i64 (floor) at a
    position of step D (TD = T for D = 256). T is strictly increasing and D >= 1, so TD is
    non-decreasing and a left search counts the TD[k] < s. dmap: the step map D(i, j) of
    5.4 (4h x 4w, the same for every channel) or None (D = 256 everywhere)."""
    if dmap is None:
        return np.searchsorted(T, sc, side="left")
    idx = np.empty(sc.shape, dtype=np.int64)
    for D in np.unique(dmap).tolist():
        at = dmap == D
        TD = T if D == 256 else (T * np.int64(D)) >> 8
        idx[:, at] = np.searchsorted(TD, sc[:, at], side="left")
    return idx


def hyper_synthesis(model, zhat, dmap=None):
    """9.1 / 9.4: returns (idx, mu), each M x 4h x 4w; dmap: the tile's step map (5.4) or
    None."""
    a0 = np.clip(zhat.astype(np.int64), -128, 127)
    neg = model.negmul or {}
    w, b, m, s = model.layers[0]
    acc0 = transposed_conv(a0, w, b)
    if model.median is not None:
        acc0 = acc0 + median_term(model.median, w, a0.shape[1], a0.shape[2])
    a1 = activation(acc0, m, s, neg.get(0))
    w, b, m, s = model.layers[2]
    a2 = activation(transposed_conv(a1, w, b), m, s, neg.get(2))
    w, b, m, s = model.layers[4]
    out = requant(conv(a2, w, b), m, s)
    M = model.M
    sc = out[:M]
    idx = scale_index(model.T, sc, dmap)
    if out.shape[0] == M:  # scale-only h_s.4 (bmshj2018-hyperprior): means are 0 (9.4)
        mu = np.zeros_like(sc)
    else:
        mu = np.clip(out[M:], -(1 << 23), 1 << 23)
    return idx, mu


# ---------------------------------------------------------------- 4/5 container

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data):
    """4.5: CRC-32C (reflected 0x82F63B78, initial and final XOR 0xFFFFFFFF)."""
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


class _Reader:
    """Reads syntax elements in stream order (13.1); one that cannot be read whole is
    `truncated`."""

    def __init__(self, data, pos=0, end=None):
        self.data, self.pos = data, pos
        self.end = len(data) if end is None else end

    def bytes(self, n, what):
        if self.pos + n > self.end:
            raise DecodeError("truncated", "%s at offset %d" % (what, self.pos))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u8(self, what):
        return self.bytes(1, what)[0]

    def u16(self, what):
        return struct.unpack("<H", self.bytes(2, what))[0]

    def u32(self, what):
        return struct.unpack("<I", self.bytes(4, what))[0]


def _field(ok, what):
    if not ok:
        raise DecodeError("invalid-field", what)


class StepChunk:
    """4.6: the payload of a STEP chunk, its fields checked in the order of the table (13.1
    step 2). The index payload (P >= 2) is decoded with the tile (8.8, 13.1 step 4)."""
    __slots__ = ("b", "steps", "table", "index_payload")

    def __init__(self, payload):
        r = _Reader(payload)
        self.b = r.u8("STEP block_log2")
        _field(self.b <= 7, "STEP block_log2")
        P = r.u8("STEP palette_size")
        _field(1 <= P <= 255, "STEP palette_size")
        self.steps = []
        for p in range(P):  # each step is checked as soon as it is read
            D = r.u16("STEP step[%d]" % p)
            _field(1 <= D <= 4096, "STEP step[%d]" % p)
            self.steps.append(D)
        self.table, self.index_payload = None, None
        if P == 1:
            _field(len(payload) == 4, "STEP payload of P = 1 longer than 4 bytes")
            return
        freqs = [r.u16("STEP frequency[%d]" % p) for p in range(P)]
        _field(min(freqs) >= 1 and sum(freqs) == 1 << 16, "STEP frequencies (7.4)")
        self.table = Table(freqs)
        self.index_payload = payload[r.pos:]

    def step_map(self, H, W):
        """5.4 / 8.8: D(i, j) on the H x W y grid (H = PH/16, W = PW/16), int64. Decodes the
        block indices (P >= 2): corrupt-payload on the failures of 8.2 and 8.4."""
        b = self.b
        BH, BW = ceil_div(H, 1 << b), ceil_div(W, 1 << b)
        if self.table is None:
            blk = np.zeros((BH, BW), dtype=np.int64)
        else:
            dec = RansDecoder(self.index_payload)
            blk = np.array([dec.symbol(self.table) for _ in range(BH * BW)],
                           dtype=np.int64).reshape(BH, BW)
            dec.finish()
        D = np.array(self.steps, dtype=np.int64)[blk]
        # block (bi, bj) holds the positions with i >> b = bi, j >> b = bj
        return np.repeat(np.repeat(D, 1 << b, axis=0), 1 << b, axis=1)[:H, :W]


def parse_stream(data, model):
    """4-6: the container, each syntax element checked as soon as it is read (13.1 step 2),
    then the model match (step 3)."""
    r = _Reader(data)
    if r.bytes(4, "magic") != b"\x89ICM":
        raise DecodeError("bad-magic", "magic")
    if r.u8("major_version") != 1:
        raise DecodeError("unsupported-version", "major_version")
    minor = r.u8("minor_version")
    _field(r.u8("profile_idc") == 0, "profile_idc")
    level = r.u8("level_idc")
    _field(level in LEVELS, "level_idc")
    maxdim, maxpix, maxtile = LEVELS[level]
    width = r.u32("width")
    _field(1 <= width <= maxdim, "width")
    height = r.u32("height")
    _field(1 <= height <= maxdim, "height")
    _field(width * height <= maxpix, "width * height")
    tsize = []
    for what, dim in (("tile_width", width), ("tile_height", height)):
        t = r.u32(what)
        _field(t >= 64 and t % 64 == 0 and t <= maxtile and t <= ceil_div(dim, 64) * 64, what)
        tsize.append(t)
    tile_w, tile_h = tsize
    _field(r.u8("colour_format") == 0, "colour_format")
    quality = r.u8("quality")
    L = r.u8("model_name_length")
    _field(1 <= L <= 64, "model_name_length")
    name = r.bytes(L, "model_name")
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("invalid-field", "model_name is not UTF-8")
    sha = r.bytes(32, "model_sha256")
    cols, rows = ceil_div(width, tile_w), ceil_div(height, tile_h)
    count = cols * rows
    tiles = []
    last_tile = None  # what the CRC of a tsum just after this chunk covers (4.5), for a TILE
    step = None  # (StepChunk, payload) of a STEP chunk just read (4.6)
    while True:
        if r.pos == len(data):
            raise DecodeError("truncated", "no IEND")
        ctype = r.bytes(4, "chunk_type")
        # 13.1: unknown-required-chunk, tile-count, then invalid-field (tsum not after a TILE
        # chunk, anything but TILE after a STEP chunk)
        if ctype == b"IEND" and len(tiles) != count:
            raise DecodeError("tile-count", "IEND after %d of %d tiles" % (len(tiles), count))
        if ctype in (b"TILE", b"STEP") and len(tiles) == count:
            raise DecodeError("tile-count", "%r after %d TILE chunks" % (ctype, count))
        if ctype not in (b"IEND", b"TILE", b"STEP") and not 0x61 <= ctype[0] <= 0x7A:
            raise DecodeError("unknown-required-chunk", repr(ctype))
        _field(ctype != b"tsum" or last_tile is not None, "tsum not after a TILE chunk")
        _field(step is None or ctype == b"TILE", "%r after a STEP chunk" % ctype)
        clen = r.u32("chunk_length")
        _field(ctype != b"IEND" or clen == 0, "IEND chunk_length")
        _field(ctype != b"tsum" or clen == 4, "tsum chunk_length")
        payload = r.bytes(clen, "chunk payload")
        previous, last_tile = last_tile, None
        if ctype == b"IEND":
            break
        if ctype == b"tsum":
            if struct.unpack("<I", payload)[0] != crc32c(previous):
                raise DecodeError("checksum-mismatch", "tile %d" % (len(tiles) - 1))
            continue
        if ctype == b"STEP":
            step = (StepChunk(payload), payload)
            continue
        if ctype == b"TILE":
            t = _Reader(payload)
            _field(t.u32("tile_index") == len(tiles), "tile_index")
            zlen = t.u32("z_length")
            t.bytes(zlen, "z payload")
            chunk, step_payload = step if step is not None else (None, b"")
            tiles.append((payload[8:8 + zlen], payload[8 + zlen:], chunk))
            # 4.5: with a STEP chunk, the CRC covers its payload followed by the TILE's
            last_tile = step_payload + payload
            step = None
        # an optional chunk: skipped
    if r.pos != len(data):
        raise DecodeError("trailing-data", "%d bytes after IEND" % (len(data) - r.pos))
    if name != model.name or sha != model.sha256:
        raise DecodeError("model-mismatch", "model_name or model_sha256")
    geo = []
    for t in range(count):
        x0, y0 = (t % cols) * tile_w, (t // cols) * tile_h
        tw, th = min(tile_w, width - x0), min(tile_h, height - y0)
        geo.append((ceil_div(th, 64) * 64, ceil_div(tw, 64) * 64))
    return dict(width=width, height=height, tile_w=tile_w, tile_h=tile_h,
                minor=minor, quality=quality), tiles, geo


# ---------------------------------------------------------------- 8.6 / 8.7 / 10

def decode_tile(model, zpay, ypay, PH, PW, step=None):
    """One tile (3, step 3): the block indices of its step map (8.8), z^ (8.6), then y^ (8.7,
    10), in the order of 13.1 step 4. step: the tile's StepChunk or None."""
    h, w = PH // 64, PW // 64
    # 5.4: D(i, j) on the PH/16 x PW/16 grid; None is D = 256 everywhere
    dmap = None if step is None else step.step_map(PH // 16, PW // 16)
    dec = RansDecoder(zpay)
    zhat = np.empty((model.N, h, w), dtype=np.int64)
    zflat = zhat.reshape(-1)
    n = h * w
    for c in range(model.N):
        tab, off = model.ztables[c], model.zoff[c]
        for i in range(n):
            zflat[c * n + i] = dec.value(tab, off)
    dec.finish()

    idx, mu = hyper_synthesis(model, zhat, dmap)
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
    # 10: y^ = q * D(i, j) + mu; without a step map D = 256, i.e. (q << 8) + mu
    yhat = (qa << 8) + mu if dmap is None else qa * dmap + mu
    return zhat, yhat


def _escape(dec):
    """8.5 steps 2-4."""
    b = dec.uniform(5)
    if b > 16:
        raise corrupt("escape length %d" % b)
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
    for (zpay, ypay, step), (PH, PW) in zip(tiles, geo):
        out.append(decode_tile(model, zpay, ypay, PH, PW, step))
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
        print("error: %s" % e.cls, file=sys.stderr)
        print("icm_ref: %s" % e, file=sys.stderr)
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
