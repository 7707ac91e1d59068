#!/usr/bin/env python3
"""Self-tests of icm_ref.py, written from spec/icm-v1.md (version 1.3) like the decoder.

    ~/.cache/icm-venv/bin/python -m pytest conformance/reference_py/test_icm_ref.py
    python3 conformance/reference_py/test_icm_ref.py        # the same without pytest

Needs numpy only (pytest optional). What they check:

- every vector of conformance/vectors.json still decodes to its `latents_sha256`, or is
  refused with its `error_class` (as tests/it/reference_py.rs checks it);
- 1.2 architectures (7.2.1) against 1.0 ones on the conformance models and streams (the
  stream's `model_sha256` rewritten for the re-declared model): `mbt2018-mean` with all
  `NegMul = 0` and `Med = 0` decodes as `hyperprior-v1`; `bmshj2018-hyperprior` (the scale
  half of h_s.4, `Med = 0`) as `hyperprior-v1` with the mean half of h_s.4 zeroed; a
  `hyperprior-v1` file with extra (even malformed) `z.median` and `negative_multiplier`
  tensors as without them;
- hand-computed small cases of the median term (9.2), of the clipped LeakyReLU (9.3) and of a
  whole h_s (1x1 z grid, 2x2 / 4x4 outputs);
- the vectorised h_s against a direct loop over the formulas of 9.2-9.4, on random small
  models of every architecture (K = 1 and 3, grids 1x1 to 3x4, z beyond the clip);
- whole streams for random small models of every architecture, encoded here with the
  encoder of 12.4 (escapes in z and y included), decoded by the command line;
- the validation rules of 7.5 for 1.2 (`invalid-model`), and the tensors that table 7-1 does
  not list for an architecture, which are not examined;
- 1.3 step maps: the stepped scale index of 9.4 (`TD[k] = (T[k] * D) >> 8`, floored, repeated
  values) by hand and against a direct count; STEP chunks of `D = 256` decode as no STEP
  chunk (and the CRC of 4.5 covers the STEP payload); whole streams with step maps (P = 1 and
  P >= 2, blocks cut by the grid, tsum chunks) for random small models of every architecture,
  encoded here; the container checks of the STEP chunk and their order (4.6, 13, 13.1).
"""
import hashlib
import json
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import icm_ref  # noqa: E402

SCRIPT = HERE / "icm_ref.py"
SMALL = ROOT / "conformance/models/test-seed1-small.safetensors"
ARCHS = ("hyperprior-v1", "bmshj2018-hyperprior", "mbt2018-mean")


# ---------------------------------------------------------------- helpers: files

_ST_DTYPE = {"int8": "I8", "uint8": "U8", "uint16": "U16", "int32": "I32",
             "float16": "F16", "float32": "F32", "float64": "F64"}


def safetensors_bytes(tensors, metadata):
    """7.1: u64 header length, JSON header (padded with spaces), data section; the tensors
    tile the data section in the order given."""
    header, data = {}, bytearray()
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _ST_DTYPE[arr.dtype.name], "shape": list(arr.shape),
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    header["__metadata__"] = metadata
    h = json.dumps(header).encode("utf-8")
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + bytes(data)


def icm_metadata(arch, name, N, M, **extra):
    icm = {"format": "icm-model-1", "architecture": arch, "name": name, "quality": "1",
           "N": str(N), "M": str(M), "mean_frac_bits": "8", "ans_precision": "16"}
    icm.update(extra)
    return {"icm": json.dumps(icm)}


def read_model(path):
    """(icm metadata object, tensors in file order) of a model file."""
    meta, t = icm_ref.load_safetensors(Path(path).read_bytes())
    return json.loads(meta["icm"]), {k: np.array(v) for k, v in t.items()}


def write_model(path, icm, tensors):
    data = safetensors_bytes(tensors, {"icm": json.dumps(icm)})
    Path(path).write_bytes(data)
    return hashlib.sha256(data).digest()


def with_sha(stream, sha):
    """The stream with its `model_sha256` (4.1, offset 27 + L) replaced."""
    L = stream[26]
    return stream[:27 + L] + sha + stream[27 + L + 32:]


def run_cli(stream_path, model_path):
    """The command line as tests/it/reference_py.rs runs it: (status, hash or None, class)."""
    out = subprocess.run([sys.executable, str(SCRIPT), str(stream_path), str(model_path)],
                         capture_output=True, text=True)
    got = next((l[len("latents sha256 "):].strip() for l in out.stdout.splitlines()
                if l.startswith("latents sha256 ")), None)
    cls = next((l[len("error: "):].strip() for l in out.stderr.splitlines()
                if l.startswith("error: ")), None)
    return out.returncode, got, cls


def decode_hash(stream_path, model_path):
    return icm_ref.annex_a(icm_ref.decode(str(stream_path), str(model_path))[1])


def refusal(model_path, stream_path=ROOT / "bitstreams/v1-17x33.icm"):
    """The class icm_ref reports for a model (13.1: the model is checked first, so any
    stream does)."""
    try:
        icm_ref.decode(str(stream_path), str(model_path))
    except icm_ref.DecodeError as e:
        return e.cls
    return None


# ---------------------------------------------------------------- helpers: an encoder (12.4)

class RansEncoder:
    """12.4: the inverse of 8.3, run over the symbols in reverse decoding order."""

    def __init__(self):
        self.ops = []  # (cdf[s], f[s]) in decoding order

    def symbol(self, tab, s):
        self.ops.append((tab.cdf[s], tab.f[s]))

    def uniform(self, bits, s):
        self.ops.append((s << (16 - bits), 1 << (16 - bits)))

    def value(self, tab, off, v):
        """The inverse of 8.5 DecodeValue."""
        s = v - off
        if 0 <= s < tab.S - 1:
            self.symbol(tab, s)
            return
        self.symbol(tab, tab.S - 1)
        u = (2 * v if v >= 0 else -2 * v - 1) + 1  # ZigZag(v) + 1
        b = u.bit_length() - 1
        assert b <= 16
        self.uniform(5, b)
        if b > 0:
            self.uniform(b, u - (1 << b))

    def payload(self):
        x, words = 0, []
        for start, f in reversed(self.ops):
            if (x >> 48) >= f:
                words.append(x & 0xFFFFFFFF)
                x >>= 32
            x = ((x // f) << 16) + (x % f) + start
        if x:
            words.append(x & 0xFFFFFFFF)
            if x >> 32:
                words.append(x >> 32)
        return struct.pack("<%dI" % len(words), *words)


def chunk(ctype, payload):
    """4.2: type, length, payload."""
    return ctype + struct.pack("<I", len(payload)) + payload


def build_stream(name, sha, width, height, tile_w, tile_h, tiles, steps=None, tsum=False):
    """4: header, one TILE chunk per (z payload, y payload), IEND; steps: a STEP payload (or
    None) per tile, written before its TILE chunk (4.6); tsum: a tsum chunk after every TILE
    chunk, over the STEP and TILE payloads (4.5)."""
    name = name.encode("utf-8")
    minor = 3 if steps and any(steps) else 1 if tsum else 0
    out = bytearray(b"\x89ICM" + bytes([1, minor, 0, 1]))
    out += struct.pack("<4I", width, height, tile_w, tile_h)
    out += bytes([0, 1, len(name)]) + name + sha
    for t, (zp, yp) in enumerate(tiles):
        sp = steps[t] if steps else None
        if sp is not None:
            out += chunk(b"STEP", sp)
        payload = struct.pack("<2I", t, len(zp)) + zp + yp
        out += chunk(b"TILE", payload)
        if tsum:
            out += chunk(b"tsum", struct.pack("<I", crc32c((sp or b"") + payload)))
    out += chunk(b"IEND", b"")
    return bytes(out)


def crc32c(data):
    """4.5, bit by bit: reflected 0x82F63B78, initial value and final XOR 0xFFFFFFFF."""
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    return c ^ 0xFFFFFFFF


def step_payload(b, steps, blk=None, freqs=None):
    """4.6: a STEP payload; for P >= 2 the block indices blk (BH x BW, 5.4) coded with the
    table freqs as 12.4 (8.8 decodes them in raster order)."""
    out = bytes([b, len(steps)]) + struct.pack("<%dH" % len(steps), *steps)
    if len(steps) == 1:
        return out
    tab = icm_ref.Table(freqs)
    enc = RansEncoder()
    for s in np.asarray(blk).reshape(-1).tolist():
        enc.symbol(tab, s)
    return out + struct.pack("<%dH" % len(freqs), *freqs) + enc.payload()


def step_map(b, steps, blk, H, W):
    """5.4 written again: D(i, j) = D[Blk[i >> b][j >> b]] on an H x W grid."""
    blk = np.zeros((1, 1), dtype=np.int64) if blk is None else np.asarray(blk)
    return np.array([[steps[int(blk[i >> b][j >> b])] for j in range(W)] for i in range(H)],
                    dtype=np.int64)


def tile_grids(width, height, tile_w, tile_h):
    """5.2 / 5.3: (PH, PW) of every tile in raster order."""
    cols, rows = -(-width // tile_w), -(-height // tile_h)
    out = []
    for t in range(cols * rows):
        x0, y0 = (t % cols) * tile_w, (t // cols) * tile_h
        tw, th = min(tile_w, width - x0), min(tile_h, height - y0)
        out.append((-(-th // 64) * 64, -(-tw // 64) * 64))
    return out


def annex_a(latents):
    """Annex A, written again here: per tile z^ then y^, CHW, i32 little-endian."""
    h = hashlib.sha256()
    for z, y in latents:
        for a in (z, y):
            h.update(struct.pack("<%di" % a.size, *(int(v) for v in a.reshape(-1))))
    return h.hexdigest()


# ---------------------------------------------------------------- helpers: the h_s of 9, directly

def rs(v, s):
    """2.3 RoundShift on Python integers (>> floors)."""
    return (v + (1 << (s - 1))) >> s


def naive_hs(arch, t, zhat, dmap=None):
    """9.1-9.4 as written, one output element at a time, in Python integers.
    t: the model's tensors; zhat: N x h x w array; dmap: the step map D(i, j) (4h x 4w) or
    None. Returns (idx, mu) as M x 4h x 4w arrays."""
    leaky = arch == "mbt2018-mean"
    med = [int(v) for v in t["z.median"]] if arch != "hyperprior-v1" else None
    a = [[[max(-128, min(127, int(v))) for v in row] for row in ch] for ch in zhat]

    def tconv(A, l, med=None):
        W = t["h_s.%d.weight" % l].tolist()
        B = t["h_s.%d.bias" % l].tolist()
        cin, H, Wd = len(A), len(A[0]), len(A[0][0])
        cout, K = len(W[0]), len(W[0][0])
        p = (K - 1) // 2
        out = []
        for o in range(cout):
            plane = []
            for Y in range(2 * H):
                row = []
                for X in range(2 * Wd):
                    acc, msum = B[o], 0
                    for i in range(cin):
                        for iy in range(H):
                            ky = Y - 2 * iy + p
                            if not 0 <= ky < K:
                                continue
                            for ix in range(Wd):
                                kx = X - 2 * ix + p
                                if not 0 <= kx < K:
                                    continue
                                acc += A[i][iy][ix] * W[i][o][ky][kx]
                                if med is not None:
                                    msum += med[i] * W[i][o][ky][kx]
                    if med is not None:
                        acc += rs(msum, 8)
                    row.append(acc)
                plane.append(row)
            out.append(plane)
        return out

    def act(acc, l):
        Mul = t["h_s.%d.multiplier" % l].tolist()
        Sh = t["h_s.%d.shift" % l].tolist()
        Neg = t["h_s.%d.negative_multiplier" % l].tolist() if leaky else None
        out = []
        for o, plane in enumerate(acc):
            if not leaky:
                out.append([[max(0, min(255, rs(v * Mul[o], Sh[o]))) for v in row]
                            for row in plane])
            else:
                out.append([[max(-255, min(255, rs(v * (Mul[o] if v >= 0 else Neg[o]), Sh[o])))
                             for v in row] for row in plane])
        return out

    a1 = act(tconv(a, 0, med), 0)
    a2 = act(tconv(a1, 2), 2)
    W = t["h_s.4.weight"].tolist()
    B = t["h_s.4.bias"].tolist()
    Mul = t["h_s.4.multiplier"].tolist()
    Sh = t["h_s.4.shift"].tolist()
    C4, C2, K = len(W), len(W[0]), len(W[0][0])
    p = (K - 1) // 2
    H, Wd = len(a2[0]), len(a2[0][0])
    out = []
    for o in range(C4):
        plane = []
        for y in range(H):
            row = []
            for x in range(Wd):
                acc = B[o]
                for i in range(C2):
                    for ky in range(K):
                        for kx in range(K):
                            yy, xx = y + ky - p, x + kx - p
                            if 0 <= yy < H and 0 <= xx < Wd:
                                acc += a2[i][yy][xx] * W[o][i][ky][kx]
                row.append(rs(acc * Mul[o], Sh[o]))
            plane.append(row)
        out.append(plane)
    M = C4 // 2 if arch != "bmshj2018-hyperprior" else C4
    T = t["y.scale_threshold"].tolist()

    def td(k, i, j):  # 9.4: TD[k] = (T[k] * D) >> 8, floored; T[k] for D = 256
        D = 256 if dmap is None else int(dmap[i][j])
        return k if D == 256 else (k * D) >> 8

    idx = np.array([[[sum(1 for k in T if td(k, i, j) < s) for j, s in enumerate(row)]
                     for i, row in enumerate(plane)] for plane in out[:M]], dtype=np.int64)
    if C4 == M:
        mu = np.zeros_like(idx)
    else:
        mu = np.array([[[max(-(1 << 23), min(1 << 23, v)) for v in row] for row in plane]
                       for plane in out[M:]], dtype=np.int64)
    return idx, mu


# ---------------------------------------------------------------- helpers: small random models

def _freqs(rng, n):
    """n frequencies >= 1 summing to 2^16 (7.4)."""
    w = rng.random(n) + 0.05
    f = 1 + np.floor(w / w.sum() * ((1 << 16) - n)).astype(np.int64)
    f[int(np.argmax(f))] += (1 << 16) - int(f.sum())
    return f.astype(np.uint16)


def small_model(arch, N=2, C1=3, C2=4, M=3, K=3, seed=0):
    """(icm metadata, tensors) of a small model of `arch` with random but valid values."""
    rng = np.random.default_rng(seed)
    C4 = M if arch == "bmshj2018-hyperprior" else 2 * M
    t = {}
    t["h_s.0.weight"] = rng.integers(-127, 128, (N, C1, 5, 5)).astype(np.int8)
    t["h_s.2.weight"] = rng.integers(-127, 128, (C1, C2, 5, 5)).astype(np.int8)
    t["h_s.4.weight"] = rng.integers(-127, 128, (C4, C2, K, K)).astype(np.int8)
    for l, c, bias, shifts in ((0, C1, 20000, (36, 38)), (2, C2, 60000, (38, 41)),
                               (4, C4, 60000, (31, 34))):
        t["h_s.%d.bias" % l] = rng.integers(-bias, bias + 1, c).astype(np.int32)
        mul = rng.integers(1 << 29, 1 << 31, c)
        mul[0] = 0 if l == 2 else mul[0]  # a channel with Mul = 0
        t["h_s.%d.multiplier" % l] = mul.astype(np.int32)
        t["h_s.%d.shift" % l] = rng.integers(shifts[0], shifts[1] + 1, c).astype(np.uint8)
        if arch == "mbt2018-mean" and l != 4:
            neg = np.minimum(mul * rng.uniform(0, 1.5, c), (1 << 31) - 1).astype(np.int64)
            neg[-1] = 0  # a channel with NegMul = 0 (a ReLU)
            t["h_s.%d.negative_multiplier" % l] = neg.astype(np.int32)
    t["z.offset"] = np.full(N, -3, dtype=np.int32)
    t["z.size"] = np.full(N, 8, dtype=np.int32)
    t["z.frequency"] = np.concatenate([_freqs(rng, 8) for _ in range(N)])
    if arch != "hyperprior-v1":
        med = rng.integers(-(1 << 15), (1 << 15) + 1, N)
        med[0] = -(1 << 15)
        med[-1] = 1 << 15 if N > 1 else med[-1]
        t["z.median"] = med.astype(np.int32)
    T = np.array([-20000, -300, 0, 700, 3000, 12000], dtype=np.int32)
    R = np.arange(1, T.size + 2, dtype=np.int32)
    t["y.scale_threshold"] = T
    t["y.half_width"] = R
    t["y.frequency"] = np.concatenate([_freqs(rng, 2 * int(r) + 2) for r in R])
    c = [M, 2, 2, 2, 3]
    for i, l in enumerate((0, 2, 4, 6)):
        t["g_s.%d.weight" % l] = rng.standard_normal((c[i], c[i + 1], 5, 5)).astype(np.float32)
        t["g_s.%d.bias" % l] = np.zeros(c[i + 1], dtype=np.float32)
    for l in (1, 3, 5):
        t["g_s.%d.beta" % l] = np.ones(2, dtype=np.float16)
        t["g_s.%d.gamma" % l] = np.full((2, 2), 0.1, dtype=np.float16)
    icm = json.loads(icm_metadata(arch, "t-%s-%d" % (arch, seed), N, M)["icm"])
    return icm, t


def encode_stream(icm, t, sha, width, height, tile_w, tile_h, rng, step_maps=None,
                  tsum=False):
    """A stream of random latents for the model (z^ with escapes and values past the clip of
    9.1, q with escapes); returns (stream, expected latents). idx and mu come from naive_hs.
    step_maps(PH, PW): (b, steps, blk or None, freqs or None) of a tile's STEP chunk, or None
    for a tile without one (4.6, 5.4); then y^ = q * D + mu (10)."""
    arch = icm["architecture"]
    N = t["h_s.0.weight"].shape[0]
    zoff, zsize = t["z.offset"].tolist(), t["z.size"].tolist()
    ztabs, pos = [], 0
    for c in range(N):
        ztabs.append(icm_ref.Table(t["z.frequency"][pos:pos + zsize[c]]))
        pos += zsize[c]
    R = t["y.half_width"].tolist()
    ytabs, pos = [], 0
    for r in R:
        ytabs.append(icm_ref.Table(t["y.frequency"][pos:pos + 2 * r + 2]))
        pos += 2 * r + 2
    tiles, latents, steps = [], [], []
    for PH, PW in tile_grids(width, height, tile_w, tile_h):
        sm = step_maps(PH, PW) if step_maps else None
        dmap = None if sm is None else step_map(sm[0], sm[1], sm[2], PH // 16, PW // 16)
        steps.append(None if sm is None else step_payload(*sm))
        z = rng.integers(-4, 5, (N, PH // 64, PW // 64))
        special = [200, -129, 128, 127, -128, 65535, -65535, 4, -4]
        flat = z.reshape(-1)
        for k in range(min(len(special), flat.size // 2)):
            flat[rng.integers(flat.size)] = special[k]
        enc = RansEncoder()
        for c in range(N):
            for v in z[c].reshape(-1):
                enc.value(ztabs[c], zoff[c], int(v))
        zp = enc.payload()
        idx, mu = naive_hs(arch, t, z, dmap)
        q = rng.integers(-3, 4, idx.shape)
        qf = q.reshape(-1)
        for k, v in enumerate([9, -9, 65535, -65535, 0, 40]):
            qf[rng.integers(qf.size)] = v
        enc = RansEncoder()
        for k, v in zip(idx.reshape(-1).tolist(), qf.tolist()):
            enc.value(ytabs[k], -R[k], int(v))
        yp = enc.payload()
        tiles.append((zp, yp))
        latents.append((z, (q << 8) + mu if dmap is None else q * dmap[None] + mu))
    return build_stream(icm["name"], sha, width, height, tile_w, tile_h, tiles, steps,
                        tsum), latents


# ---------------------------------------------------------------- the conformance suite

def test_conformance_vectors():
    """Every vector of conformance/vectors.json, as tests/it/reference_py.rs checks it."""
    index = json.loads((ROOT / "conformance/vectors.json").read_text())
    failures = []
    for v in index["vectors"]:
        stream, model = ROOT / v["stream"], ROOT / v["model"]
        try:
            got = decode_hash(stream, model)
            cls = None
        except icm_ref.DecodeError as e:
            got, cls = None, e.cls
        want = v.get("latents_sha256")
        if (want is not None and got != want) or (want is None and cls != v["error_class"]):
            failures.append((v["name"], want or v["error_class"], got or cls))
    assert not failures, failures


def test_command_line():
    """The interface: `latents sha256 HEX` on stdout, or `error: CLASS` on stderr and status 1."""
    assert run_cli(ROOT / "bitstreams/v1-17x33.icm", SMALL) == (
        0, "59f384513984dec099e4ddfb04762c632625405b1a4a6115cf5e8c1b6a89e901", None)
    assert run_cli(ROOT / "bitstreams/v1-17x33.icm",
                   ROOT / "conformance/models/x-model-z-table-sum.safetensors") == (
        1, None, "invalid-model")


# ---------------------------------------------------------------- 1.2 against 1.0, real models

REAL_CASES = [  # (vector name, model): 1 tile, 12 tiles, 1.1 checksums, edge values, zoo
    ("v1-17x33", SMALL),
    ("v1-200x140-tiles64", SMALL),
    ("v1-1-checksums-tiles64", SMALL),
    ("v1-edge-values-128x128", SMALL),
    ("v1-edge-values-zoo-q3", ROOT / "models/icm-psnr-q3.safetensors"),
]


def _vector(name):
    index = json.loads((ROOT / "conformance/vectors.json").read_text())
    return next(v for v in index["vectors"] if v["name"] == name)


def _redeclared(tmp, name, model, icm_change, tensor_change):
    """Decode vector `name` with the model re-declared: returns the latents hash."""
    icm, t = read_model(model)
    icm.update(icm_change)
    t = tensor_change(dict(t))
    tmp = Path(tmp)
    mpath, spath = tmp / ("m-" + name), tmp / ("s-" + name)
    sha = write_model(mpath, icm, t)
    spath.write_bytes(with_sha((ROOT / _vector(name)["stream"]).read_bytes(), sha))
    return decode_hash(spath, mpath)


def test_mbt_zero_negative_multipliers_decode_as_hyperprior_v1(tmp_path):
    """9.3: the clipped LeakyReLU with NegMul = 0 is the clipped ReLU; 9.2: Med = 0 adds 0."""
    for name, model in REAL_CASES:
        def change(t):
            N = t["h_s.0.weight"].shape[0]
            t["z.median"] = np.zeros(N, dtype=np.int32)
            for l in (0, 2):
                t["h_s.%d.negative_multiplier" % l] = np.zeros_like(t["h_s.%d.multiplier" % l])
            return t
        got = _redeclared(tmp_path, name, model, {"architecture": "mbt2018-mean"}, change)
        assert got == _vector(name)["latents_sha256"], name


def test_bmshj_decodes_as_hyperprior_v1_with_zero_means(tmp_path):
    """9.4: a scale-only h_s.4 (C4 = M) gives mu = 0, as a 2M h_s.4 whose mean half is zero."""
    for name, model in REAL_CASES:
        M = read_model(model)[1]["h_s.4.weight"].shape[0] // 2

        def zero_means(t):
            for k in ("weight", "bias"):
                a = t["h_s.4." + k].copy()
                a[M:] = 0
                t["h_s.4." + k] = a
            return t

        def scale_only(t):
            for k in ("weight", "bias", "multiplier", "shift"):
                t["h_s.4." + k] = t["h_s.4." + k][:M].copy()
            t["z.median"] = np.zeros(t["h_s.0.weight"].shape[0], dtype=np.int32)
            return t

        want = _redeclared(tmp_path, name, model, {}, zero_means)
        got = _redeclared(tmp_path, name, model, {"architecture": "bmshj2018-hyperprior"},
                          scale_only)
        assert got == want, name
        # and the means were not zero before: the zeroing changed the latents
        assert want != _vector(name)["latents_sha256"], name


def test_hyperprior_v1_ignores_tensors_it_does_not_list(tmp_path):
    """7.2.1 / 7.6: `hyperprior-v1` decodes as in 1.0 whatever other tensors the file holds,
    even malformed ones (dtype, shape, values) of names that 1.2 architectures read."""
    def extra(t):
        N, C1 = t["h_s.0.weight"].shape[:2]
        t["z.median"] = np.full(N + 1, 1e6, dtype=np.float32)
        t["h_s.0.negative_multiplier"] = np.full((C1, 2), 255, dtype=np.uint8)
        t["h_s.2.negative_multiplier"] = np.full(3, -5, dtype=np.int32)
        return t
    for name, model in REAL_CASES[:2]:
        assert _redeclared(tmp_path, name, model, {"source": "x"}, extra) == \
            _vector(name)["latents_sha256"], name
        # also with plausible values that would change the latents if they were read
        def plausible(t):
            t["z.median"] = np.full(t["h_s.0.weight"].shape[0], 3000, dtype=np.int32)
            for l in (0, 2):
                t["h_s.%d.negative_multiplier" % l] = t["h_s.%d.multiplier" % l].copy()
            return t
        assert _redeclared(tmp_path, name, model, {}, plausible) == \
            _vector(name)["latents_sha256"], name


def test_real_model_median_and_leaky_against_direct_formulas():
    """On the conformance model's tensors and a decoded z^: the vectorised h_s equals the
    direct one of 9.2-9.4 with non-zero medians and negative multipliers, and both differ
    from the hyperprior-v1 result."""
    _, latents = icm_ref.decode(str(ROOT / "bitstreams/v1-1x70.icm"), str(SMALL))
    zhat = latents[0][0]
    base = icm_ref.Model(str(SMALL))
    icm, t = read_model(SMALL)
    rng = np.random.default_rng(7)
    N = t["h_s.0.weight"].shape[0]
    t["z.median"] = rng.integers(-300, 301, N).astype(np.int32)
    for l in (0, 2):
        t["h_s.%d.negative_multiplier" % l] = (t["h_s.%d.multiplier" % l] // 100).astype(np.int32)
    bidx, bmu = icm_ref.hyper_synthesis(base, zhat)
    M = base.M
    with tempfile.TemporaryDirectory() as d:
        for arch in ("mbt2018-mean", "bmshj2018-hyperprior"):
            ta = dict(t)
            if arch == "bmshj2018-hyperprior":
                for k in ("weight", "bias", "multiplier", "shift"):
                    ta["h_s.4." + k] = t["h_s.4." + k][:M].copy()
            write_model(Path(d) / "m", dict(icm, architecture=arch), ta)
            m = icm_ref.Model(str(Path(d) / "m"))
            idx, mu = icm_ref.hyper_synthesis(m, zhat)
            nidx, nmu = naive_hs(arch, ta, zhat)
            assert (idx == nidx).all() and (mu == nmu).all(), arch
            assert (idx != bidx).any(), arch
            assert (mu != bmu).any() if arch == "mbt2018-mean" else (mu == 0).all()


# ---------------------------------------------------------------- hand-computed cases

def test_median_term_hand_computed_1x1():
    """9.2 for a 1x1 z grid: output (Y, X) of 2x2 sees only the tap (ky, kx) = (Y+2, X+2), so
    acc0 = B0 + a0 * W + RoundShift(Med * W, 8)."""
    W = np.zeros((1, 1, 5, 5), dtype=np.int64)
    W[0, 0, 2, 2], W[0, 0, 2, 3], W[0, 0, 3, 3] = 3, 1, -5
    B = np.array([7], dtype=np.int64)
    a0 = np.array([[[4]]], dtype=np.int64)
    acc = icm_ref.transposed_conv(a0, W, B)
    assert acc.tolist() == [[[19, 11], [7, -13]]]
    # Med = 128 (0.5): RoundShift(384, 8) = 2 (1.5 rounds up), (128) -> 1 (0.5 up),
    # (-640) -> -2 (-2.5 ties towards plus infinity)
    term = icm_ref.median_term(np.array([128], dtype=np.int64), W, 1, 1)
    assert term.tolist() == [[[2, 1], [0, -2]]]
    # Med = -128: RoundShift(-384, 8) = -1 (-1.5 towards plus infinity), -128 -> 0, 640 -> 3
    term = icm_ref.median_term(np.array([-128], dtype=np.int64), W, 1, 1)
    assert term.tolist() == [[[-1, 0], [0, 3]]]
    # two input channels: the sum over both is rounded once: 128*3 + 128*3 = 768 -> 3,
    # not RoundShift(384, 8) + RoundShift(384, 8) = 4; 100*3 + 20*3 = 360 -> 1 (1.41)
    W2 = np.zeros((2, 1, 5, 5), dtype=np.int64)
    W2[:, 0, 2, 2] = 3
    assert icm_ref.median_term(np.array([128, 128]), W2, 1, 1)[0, 0, 0] == 3
    assert icm_ref.median_term(np.array([100, 20]), W2, 1, 1)[0, 0, 0] == 1


def test_median_term_border_cases():
    """9.2: the median sum runs over the taps that reach inside the grid only. On a 3x3 grid
    with all-ones weights and Med = 256 (1.0) the term at (Y, X) is the number of (iy, ky)
    pairs with Y = 2 iy + ky - 2 times the number of (ix, kx) pairs: 2 2 3 2 2 1 along an
    axis of 6 outputs (fewer at the borders, where taps fall outside the grid)."""
    W = np.ones((1, 1, 5, 5), dtype=np.int64)
    term = icm_ref.median_term(np.array([256]), W, 3, 3)
    # rows/cols 0..5: count of iy in 0..2 with 0 <= Y - 2iy + 2 < 5
    cnt = [sum(1 for iy in range(3) if 0 <= Y - 2 * iy + 2 < 5) for Y in range(6)]
    assert cnt == [2, 2, 3, 2, 2, 1]
    assert term[0].tolist() == [[cy * cx for cx in cnt] for cy in cnt]
    # the identity B + S1 + RoundShift(S2, 8) = RoundShift(256 (B + S1) + S2, 8): the
    # median term equals a transposed convolution of 256 a0 + Med, rounded once
    rng = np.random.default_rng(3)
    for H, Wd in ((1, 1), (2, 3), (4, 1)):
        W = rng.integers(-127, 128, (3, 2, 5, 5)).astype(np.int64)
        B = rng.integers(-1000, 1000, 2).astype(np.int64)
        a0 = rng.integers(-128, 128, (3, H, Wd)).astype(np.int64)
        med = rng.integers(-(1 << 15), (1 << 15) + 1, 3).astype(np.int64)
        got = icm_ref.transposed_conv(a0, W, B) + icm_ref.median_term(med, W, H, Wd)
        alt = icm_ref.round_shift(
            icm_ref.transposed_conv(256 * a0 + med[:, None, None], W, 256 * B), 8)
        assert (got == alt).all()


def test_clipped_leaky_relu_hand_computed():
    """9.3: Mul for acc >= 0, NegMul for acc < 0, Clip(-255, 255); the clipped ReLU clips
    at 0."""
    acc = np.array([[[0, 1, 600, -1, -3, -1000, -5, 7]]], dtype=np.int64)
    mul = np.array([1 << 30])
    neg = np.array([1 << 29])  # slope 0.25 at Sh = 31
    sh = np.array([31])
    # acc >= 0: RoundShift(acc * 2^30, 31) = round(acc / 2): 0, 1 (0.5 up), 300 -> 255,
    # 7 -> 4 (3.5 up); acc < 0: RoundShift(acc * 2^29, 31) = round(acc / 4): -1 -> 0
    # (-0.25), -3 -> -1 (-0.75), -1000 -> -250, -5 -> -1 (-1.25)
    assert icm_ref.activation(acc, mul, sh, neg).tolist() == \
        [[[0, 1, 255, 0, -1, -250, -1, 4]]]
    # ties towards plus infinity: -2 * 2^29 / 2^31 = -0.5 -> 0, -6 -> -1.5 -> -1
    assert icm_ref.activation(np.array([[[-2, -6, -4000]]]), mul, sh, neg).tolist() == \
        [[[0, -1, -255]]]
    # ReLU (no NegMul), and LeakyReLU with NegMul = 0: the same
    assert icm_ref.activation(acc, mul, sh).tolist() == [[[0, 1, 255, 0, 0, 0, 0, 4]]]
    assert icm_ref.activation(acc, mul, sh, np.array([0])).tolist() == \
        [[[0, 1, 255, 0, 0, 0, 0, 4]]]


def _hand_tensors(arch, med=128):
    """N = C1 = C2 = M = 1, K = 1. Layer 0 as in test_median_term_hand_computed_1x1 (B0 = 7,
    taps 3, 1, 0, -5); Act_0 the identity for acc >= 0 (Mul 2^20, Sh 20) and, for mbt, slope
    1/2 below 0; layer 2 copies a1 to the even positions (only W2[2][2] = 1, B2 = 0) with
    slope 1 on both sides; h_s.4 copies a2 to the scale (and the mean)."""
    t = {}
    W0 = np.zeros((1, 1, 5, 5), dtype=np.int8)
    W0[0, 0, 2, 2], W0[0, 0, 2, 3], W0[0, 0, 3, 3] = 3, 1, -5
    W2 = np.zeros((1, 1, 5, 5), dtype=np.int8)
    W2[0, 0, 2, 2] = 1
    C4 = 1 if arch == "bmshj2018-hyperprior" else 2
    t["h_s.0.weight"], t["h_s.2.weight"] = W0, W2
    t["h_s.4.weight"] = np.ones((C4, 1, 1, 1), dtype=np.int8)
    for l, c, b in ((0, 1, 7), (2, 1, 0), (4, C4, 0)):
        t["h_s.%d.bias" % l] = np.full(c, b, dtype=np.int32)
        t["h_s.%d.multiplier" % l] = np.full(c, 1 << 20, dtype=np.int32)
        t["h_s.%d.shift" % l] = np.full(c, 20, dtype=np.uint8)
    if arch == "mbt2018-mean":
        t["h_s.0.negative_multiplier"] = np.array([1 << 19], dtype=np.int32)
        t["h_s.2.negative_multiplier"] = np.array([1 << 20], dtype=np.int32)
    t["z.offset"], t["z.size"] = np.array([-1], dtype=np.int32), np.array([3], dtype=np.int32)
    t["z.frequency"] = np.array([20000, 20000, 25536], dtype=np.uint16)
    if arch != "hyperprior-v1":
        t["z.median"] = np.array([med], dtype=np.int32)
    t["y.scale_threshold"] = np.array([0, 10, 20], dtype=np.int32)
    t["y.half_width"] = np.zeros(4, dtype=np.int32)
    t["y.frequency"] = np.full(8, 1 << 15, dtype=np.uint16)
    for l, (ci, co) in zip((0, 2, 4, 6), ((1, 1), (1, 1), (1, 1), (1, 3))):
        t["g_s.%d.weight" % l] = np.zeros((ci, co, 5, 5), dtype=np.float32)
        t["g_s.%d.bias" % l] = np.zeros(co, dtype=np.float32)
    for l in (1, 3, 5):
        t["g_s.%d.beta" % l] = np.ones(1, dtype=np.float32)
        t["g_s.%d.gamma" % l] = np.zeros((1, 1), dtype=np.float32)
    return json.loads(icm_metadata(arch, "hand", 1, 1)["icm"]), t


def _hand_model(tmp, arch, **kw):
    icm, t = _hand_tensors(arch, **kw)
    path = Path(tmp) / ("hand-" + arch)
    write_model(path, icm, t)
    return icm_ref.Model(str(path))


def _spread(a1):
    """The 4x4 a2 of the hand model: a1 at the even positions, 0 elsewhere."""
    out = np.zeros((4, 4), dtype=np.int64)
    out[0::2, 0::2] = a1
    return out


def test_hand_computed_hyper_synthesis(tmp_path):
    """A whole h_s (9.1-9.4) on a 1x1 z grid, computed by hand for each architecture."""
    T = [0, 10, 20]

    def count(s):
        return sum(1 for k in T if k < s)

    cases = [
        # (arch, z, med, a1): acc0 = 7 + a0 * [3, 1, 0, -5] + RoundShift(Med * [3, 1, 0, -5], 8)
        ("hyperprior-v1", 4, 128, [[19, 11], [7, 0]]),        # acc0 -13 -> 0 (no median)
        ("bmshj2018-hyperprior", 4, 128, [[21, 12], [7, 0]]),  # + [2, 1, 0, -2]; -15 -> 0
        ("mbt2018-mean", 4, 128, [[21, 12], [7, -7]]),         # -15 / 2 = -7.5 -> -7
        ("mbt2018-mean", 4, 0, [[19, 11], [7, -6]]),           # -13 / 2 = -6.5 -> -6
        ("mbt2018-mean", 4, -128, [[18, 11], [7, -5]]),        # + [-1, 0, 0, 3]; -10 -> -5
        # z = 200 is clipped to 127: 7 + 381 + 2 = 390 -> 255, 7 + 127 + 1 = 135,
        # 7 - 635 - 2 = -630 -> RoundShift(-315) -> -255
        ("mbt2018-mean", 200, 128, [[255, 135], [7, -255]]),
        ("hyperprior-v1", -200, 128, [[0, 0], [7, 255]]),      # a0 = -128: 7 + 640 = 647
        # Med = 2^15 (128.0): 7 + 384 = 391 -> 255, 7 + 128 = 135, 7 - 640 = -633 -> -255
        ("mbt2018-mean", 0, 1 << 15, [[255, 135], [7, -255]]),
    ]
    for arch, z, med, a1 in cases:
        m = _hand_model(tmp_path, arch, med=med)
        idx, mu = icm_ref.hyper_synthesis(m, np.array([[[z]]]))
        a2 = _spread(np.array(a1))
        assert idx.shape == (1, 4, 4) and mu.shape == (1, 4, 4)
        assert idx[0].tolist() == [[count(v) for v in row] for row in a2.tolist()], (arch, z, med)
        want_mu = np.zeros((4, 4)) if arch == "bmshj2018-hyperprior" else a2
        assert mu[0].tolist() == want_mu.tolist(), (arch, z, med)
        nidx, nmu = naive_hs(arch, _hand_tensors(arch, med=med)[1], np.array([[[z]]]))
        assert (nidx == idx).all() and (nmu == mu).all()


# ---------------------------------------------------------------- random models, direct formulas

def test_vectorised_hs_equals_direct_formulas(tmp_path):
    rng = np.random.default_rng(11)
    seen = {arch: set() for arch in ARCHS}
    for seed, arch in enumerate(ARCHS * 3):
        K = (1, 3, 5)[seed // 3]
        icm, t = small_model(arch, N=2, C1=3, C2=3, M=2, K=K, seed=seed)
        path = tmp_path / ("rnd-%d" % seed)
        write_model(path, icm, t)
        m = icm_ref.Model(str(path))
        assert m.architecture == arch
        for h, w in ((1, 1), (1, 2), (3, 2)):
            z = rng.integers(-200, 201, (2, h, w))
            idx, mu = icm_ref.hyper_synthesis(m, z)
            nidx, nmu = naive_hs(arch, t, z)
            assert (idx == nidx).all() and (mu == nmu).all(), (arch, K, h, w)
            seen[arch].update(np.unique(idx).tolist())
    # the values exercise what they should: most scale tables of every architecture
    assert all(len(v) >= 5 for v in seen.values()), seen


def test_median_zero_equals_no_median_and_nonzero_differs(tmp_path):
    """9.2: Med = 0 adds nothing; a non-zero Med changes acc0."""
    rng = np.random.default_rng(5)
    for arch in ("bmshj2018-hyperprior", "mbt2018-mean"):
        icm, t = small_model(arch, seed=21)
        z = rng.integers(-6, 7, (2, 2, 3))
        t0 = dict(t, **{"z.median": np.zeros(2, dtype=np.int32)})
        write_model(tmp_path / "zero", icm, t0)
        m0 = icm_ref.Model(str(tmp_path / "zero"))
        assert (m0.median == 0).all()
        r0 = icm_ref.hyper_synthesis(m0, z)
        m0.median = None  # the same model without a median term
        r1 = icm_ref.hyper_synthesis(m0, z)
        assert all((a == b).all() for a, b in zip(r0, r1))
        write_model(tmp_path / "med", icm, t)
        rm = icm_ref.hyper_synthesis(icm_ref.Model(str(tmp_path / "med")), z)
        assert any((a != b).any() for a, b in zip(r0, rm))


# ---------------------------------------------------------------- whole streams

def test_encoded_streams_every_architecture(tmp_path):
    """Streams encoded here (12.4) for random small models: 4 tiles of 1x2 and 1x1 z grids
    (130x70, tiles 128x64) and one of 3x4 (200x140); decoded by the command line."""
    rng = np.random.default_rng(2024)
    for seed, arch in enumerate(ARCHS):
        icm, t = small_model(arch, seed=100 + seed)
        mpath = tmp_path / ("enc-%s.safetensors" % arch)
        sha = write_model(mpath, icm, t)
        for geom in ((130, 70, 128, 64), (200, 140, 256, 192)):
            stream, latents = encode_stream(icm, t, sha, *geom, rng)
            spath = tmp_path / ("enc-%s-%d.icm" % (arch, geom[0]))
            spath.write_bytes(stream)
            assert run_cli(spath, mpath) == (0, annex_a(latents), None), (arch, geom)
            # the same stream with the model re-declared as another architecture does not
            # decode to these latents (the architecture is read)
            if arch == "mbt2018-mean":
                icm2 = dict(icm, architecture="hyperprior-v1")
                m2 = tmp_path / "other.safetensors"
                spath.write_bytes(with_sha(stream, write_model(m2, icm2, t)))
                got = run_cli(spath, m2)[1]
                assert got != annex_a(latents)


# ---------------------------------------------------------------- 7.5 validation

def test_validation_of_1_2_models(tmp_path):
    """7.5 for the 1.2 architectures: each case is `invalid-model` (13), found before the
    stream is read (13.1)."""
    def case(arch, change, icm_change=None):
        icm, t = small_model(arch, seed=1)
        icm.update(icm_change or {})
        change(t)
        path = tmp_path / "bad.safetensors"
        write_model(path, icm, t)
        return refusal(path)

    def drop(name):
        return lambda t: t.pop(name)

    def put(name, value):
        return lambda t: t.__setitem__(name, value)

    def nothing(t):
        pass

    M, N, C1, C2 = 3, 2, 3, 4
    bad = [
        ("unknown architecture", "mbt2018-mean", nothing, {"architecture": "cheng2020-anchor"}),
        ("architecture absent", "hyperprior-v1", nothing, {"architecture": ""}),
        ("architecture case", "bmshj2018-hyperprior", nothing,
         {"architecture": "BMSHJ2018-hyperprior"}),
        ("bmshj without z.median", "bmshj2018-hyperprior", drop("z.median"), None),
        ("mbt without z.median", "mbt2018-mean", drop("z.median"), None),
        ("mbt without h_s.0 NegMul", "mbt2018-mean", drop("h_s.0.negative_multiplier"), None),
        ("mbt without h_s.2 NegMul", "mbt2018-mean", drop("h_s.2.negative_multiplier"), None),
        ("z.median F32", "bmshj2018-hyperprior",
         put("z.median", np.zeros(N, dtype=np.float32)), None),
        ("z.median U16", "mbt2018-mean", put("z.median", np.zeros(N, dtype=np.uint16)), None),
        ("z.median [N+1]", "mbt2018-mean", put("z.median", np.zeros(N + 1, dtype=np.int32)),
         None),
        ("z.median [N, 1]", "bmshj2018-hyperprior",
         put("z.median", np.zeros((N, 1), dtype=np.int32)), None),
        ("Med = 2^15 + 1", "mbt2018-mean",
         put("z.median", np.array([0, (1 << 15) + 1], dtype=np.int32)), None),
        ("Med = -2^15 - 1", "bmshj2018-hyperprior",
         put("z.median", np.array([-(1 << 15) - 1, 0], dtype=np.int32)), None),
        ("NegMul < 0", "mbt2018-mean",
         put("h_s.2.negative_multiplier", np.array([1, 2, -1, 3], dtype=np.int32)), None),
        ("NegMul I8", "mbt2018-mean",
         put("h_s.0.negative_multiplier", np.zeros(C1, dtype=np.int8)), None),
        ("NegMul [C2] for h_s.0", "mbt2018-mean",
         put("h_s.0.negative_multiplier", np.zeros(C2, dtype=np.int32)), None),
        ("NegMul [C1, 1]", "mbt2018-mean",
         put("h_s.0.negative_multiplier", np.zeros((C1, 1), dtype=np.int32)), None),
    ]

    def h4(rows):
        def f(t):
            t["h_s.4.weight"] = np.zeros((rows, C2, 3, 3), dtype=np.int8)
            t["h_s.4.bias"] = np.zeros(rows, dtype=np.int32)
            t["h_s.4.multiplier"] = np.zeros(rows, dtype=np.int32)
            t["h_s.4.shift"] = np.ones(rows, dtype=np.uint8)
        return f

    bad += [
        ("bmshj with C4 = 2M", "bmshj2018-hyperprior", h4(2 * M), None),
        ("mbt with C4 = M", "mbt2018-mean", h4(M), None),
        ("hyperprior-v1 with C4 = M", "hyperprior-v1", h4(M), None),
        ("mbt with C4 = 2M + 2", "mbt2018-mean", h4(2 * M + 2), None),
        ("bmshj with C4 = M + 1", "bmshj2018-hyperprior", h4(M + 1), None),
        # a tensor no architecture reads is still subject to the file rules (dtype of 7.1)
        ("hyperprior-v1, z.median F64", "hyperprior-v1",
         put("z.median", np.zeros(N, dtype=np.float64)), None),
    ]
    for what, arch, change, icm_change in bad:
        assert case(arch, change, icm_change) == "invalid-model", what

    good = [
        ("Med = +-2^15", "mbt2018-mean",
         put("z.median", np.array([-(1 << 15), 1 << 15], dtype=np.int32)), None),
        ("NegMul = 2^31 - 1 and 0", "mbt2018-mean",
         put("h_s.0.negative_multiplier", np.array([(1 << 31) - 1, 0, 5], dtype=np.int32)),
         None),
        # tensors that table 7-1 does not list for the architecture: not examined
        ("hyperprior-v1, malformed z.median", "hyperprior-v1",
         put("z.median", np.full((5, 5), 1e9, dtype=np.float32)), None),
        ("hyperprior-v1, malformed NegMul", "hyperprior-v1",
         put("h_s.0.negative_multiplier", np.full(7, -1, dtype=np.int32)), None),
        ("bmshj, malformed NegMul", "bmshj2018-hyperprior",
         put("h_s.2.negative_multiplier", np.full((2, 2), 9, dtype=np.uint8)), None),
        ("mbt, h_s.4.negative_multiplier (l = 4 is not listed)", "mbt2018-mean",
         put("h_s.4.negative_multiplier", np.full(1, -7, dtype=np.int32)), None),
        ("informative source key", "bmshj2018-hyperprior", nothing,
         {"source": "compressai.zoo bmshj2018-hyperprior q1"}),
    ]
    for what, arch, change, icm_change in good:
        icm, t = small_model(arch, seed=1)
        icm.update(icm_change or {})
        change(t)
        path = tmp_path / "good.safetensors"
        write_model(path, icm, t)
        m = icm_ref.Model(str(path))  # does not raise
        assert m.architecture == arch and m.M == M, what
        assert refusal(path) == "model-mismatch", what  # checked, then the stream's sha


def test_extra_tensors_do_not_change_1_2_decoding(tmp_path):
    """7.6: a `bmshj2018-hyperprior` file with negative multipliers decodes as without them."""
    rng = np.random.default_rng(8)
    icm, t = small_model("bmshj2018-hyperprior", seed=3)
    write_model(tmp_path / "a", icm, t)
    t2 = dict(t)
    t2["h_s.0.negative_multiplier"] = t["h_s.0.multiplier"].copy()
    t2["h_s.2.negative_multiplier"] = t["h_s.2.multiplier"].copy()
    write_model(tmp_path / "b", icm, t2)
    z = rng.integers(-9, 10, (2, 2, 2))
    ra = icm_ref.hyper_synthesis(icm_ref.Model(str(tmp_path / "a")), z)
    rb = icm_ref.hyper_synthesis(icm_ref.Model(str(tmp_path / "b")), z)
    assert all((a == b).all() for a, b in zip(ra, rb))


# ---------------------------------------------------------------- 1.3 step maps

def test_stepped_scale_index_hand_computed():
    """9.4: TD[k] = (T[k] * D) >> 8 in i64, `>>` rounding towards minus infinity; the index
    is the number of TD[k] < s (TD may repeat values for D < 256)."""
    T = np.array([-300, -1, 0, 5, 700], dtype=np.int64)
    sc = np.array([[[-5, -2, -1, 0, 1, 2, 3, 1000]]], dtype=np.int64)
    # D = 256: T itself
    assert icm_ref.scale_index(T, sc).tolist() == [[[1, 1, 1, 2, 3, 3, 3, 5]]]
    # D = 3 (3/256): TD = [-900 >> 8, -3 >> 8, 0, 15 >> 8, 2100 >> 8] = [-4, -1, 0, 0, 8]
    d3 = np.full((1, 8), 3, dtype=np.int64)
    assert icm_ref.scale_index(T, sc, d3).tolist() == [[[0, 1, 1, 2, 4, 4, 4, 5]]]
    # D = 1: TD = [-2, -1, 0, 0, 2]: -300 / 256 = -1.17 floors to -2, -1 / 256 to -1
    d1 = np.full((1, 8), 1, dtype=np.int64)
    assert icm_ref.scale_index(T, sc, d1).tolist() == [[[0, 0, 1, 2, 4, 4, 5, 5]]]
    # D = 4096 (16): TD = 16 T = [-4800, -16, 0, 80, 11200]
    d16 = np.full((1, 8), 4096, dtype=np.int64)
    assert icm_ref.scale_index(T, sc, d16).tolist() == [[[2, 2, 2, 2, 3, 3, 3, 4]]]
    # a map mixing them, position by position
    mixed = np.array([[256, 3, 1, 4096, 256, 3, 1, 4096]], dtype=np.int64)
    assert icm_ref.scale_index(T, sc, mixed).tolist() == [[[1, 1, 1, 2, 3, 4, 5, 4]]]


def test_stepped_scale_index_against_direct_count():
    """9.4 on random thresholds, scales and steps (1..4096), against the count as written."""
    rng = np.random.default_rng(13)
    for _ in range(20):
        T = np.unique(rng.integers(-(1 << 31), 1 << 31, 12)).astype(np.int64)
        T = np.concatenate([T, np.sort(rng.choice(np.arange(-40, 40), 6, replace=False))])
        T = np.unique(T)
        sc = rng.integers(-(1 << 40), 1 << 40, (2, 5, 6))
        sc[0] = rng.integers(-50, 50, (5, 6))
        dmap = rng.choice([1, 2, 3, 100, 255, 256, 257, 384, 4095, 4096], (5, 6))
        got = icm_ref.scale_index(T, sc, dmap)
        Tl = T.tolist()
        want = [[[sum(1 for k in Tl if (k * int(dmap[i, j])) >> 8 < int(sc[c, i, j]))
                  for j in range(6)] for i in range(5)] for c in range(2)]
        assert got.tolist() == want


def _with_chunks(stream, before_tile):
    """The stream with chunks inserted before each TILE chunk: before_tile(t, tile payload)
    returns the bytes to insert (tsum chunks are copied as they are: see _recompute_tsum)."""
    L = stream[26]
    pos = 59 + L
    out = bytearray(stream[:pos])
    t = 0
    while pos < len(stream):
        ctype = stream[pos:pos + 4]
        (n,) = struct.unpack_from("<I", stream, pos + 4)
        if ctype == b"TILE":
            out += before_tile(t, stream[pos + 8:pos + 8 + n])
            t += 1
        out += stream[pos:pos + 8 + n]
        pos += 8 + n
    return bytes(out)


def _recompute_tsum(stream):
    """Every tsum chunk recomputed over the STEP (when any) and TILE payloads before it."""
    L = stream[26]
    pos = 59 + L
    out = bytearray(stream[:pos])
    covered = b""
    while pos < len(stream):
        ctype = stream[pos:pos + 4]
        (n,) = struct.unpack_from("<I", stream, pos + 4)
        payload = stream[pos + 8:pos + 8 + n]
        if ctype == b"tsum":
            payload = struct.pack("<I", crc32c(covered))
        out += chunk(ctype, payload)
        covered = payload if ctype == b"STEP" else covered + payload if ctype == b"TILE" \
            else b""
        pos += 8 + n
    return bytes(out)


def _decode_bytes(tmp, stream, model):
    path = Path(tmp) / "s.icm"
    path.write_bytes(stream)
    try:
        return decode_hash(path, model), None
    except icm_ref.DecodeError as e:
        return None, e.cls


def test_step_256_decodes_as_no_step_chunk(tmp_path):
    """4.6 / 5.4: a STEP chunk whose steps are all 256 (P = 1, or P = 2 with two steps of 256,
    any block size) gives the latents of 1.2; 4.5: the CRC then covers the STEP payload."""
    one = step_payload(7, [256])
    two = lambda t, p: chunk(b"STEP", step_payload(0, [256, 256], np.zeros((64, 64), int)
                                                   [:4 * (t % 2 + 1), :4], [1, 65535]))
    for name in ("v1-17x33", "v1-200x140-tiles64"):
        v = _vector(name)
        data = (ROOT / v["stream"]).read_bytes()
        got = _decode_bytes(tmp_path, _with_chunks(data, lambda t, p: chunk(b"STEP", one)),
                            ROOT / v["model"])
        assert got == (v["latents_sha256"], None), name
    # two-step palettes: the index payload must code exactly the blocks of the tile (8.4)
    v = _vector("v1-17x33")  # one tile of 64 x 64: a 4 x 4 y grid
    data = (ROOT / v["stream"]).read_bytes()
    for b, BH in ((0, 4), (1, 2), (2, 1), (7, 1)):
        sp = step_payload(b, [256, 256], np.arange(BH * BH).reshape(BH, BH) % 2, [3, 65533])
        got = _decode_bytes(tmp_path, _with_chunks(data, lambda t, p: chunk(b"STEP", sp)),
                            ROOT / v["model"])
        assert got == (v["latents_sha256"], None), b
        # one block more coded than the tile has: the index payload is not exhausted (8.4).
        # (One fewer is not detected: from x = 0 and k = 0, 8.3 decodes symbol 0 and
        # leaves x = 0.)
        for n in (BH * BH + 1,):
            bad = step_payload(b, [256, 256], np.ones(n, dtype=np.int64), [3, 65533])
            got = _decode_bytes(tmp_path, _with_chunks(data, lambda t, p: chunk(b"STEP", bad)),
                                ROOT / v["model"])
            assert got[1] == "corrupt-payload", (b, n)
    # tsum: with the STEP chunk inserted the stored CRCs no longer match; recomputed over
    # STEP payload + TILE payload they do
    v = _vector("v1-1-checksums-tiles64")
    data = (ROOT / v["stream"]).read_bytes()
    stepped = _with_chunks(data, lambda t, p: chunk(b"STEP", one))
    assert _decode_bytes(tmp_path, stepped, ROOT / v["model"]) == (None, "checksum-mismatch")
    assert _decode_bytes(tmp_path, _recompute_tsum(stepped), ROOT / v["model"]) == \
        (v["latents_sha256"], None)
    # and a step other than 256 is read: the stream no longer decodes to these latents (its y
    # payloads were coded with the tables of D = 256, so they may not decode at all)
    other = _with_chunks(data, lambda t, p: chunk(b"STEP", step_payload(7, [300])))
    got = _decode_bytes(tmp_path, _recompute_tsum(other), ROOT / v["model"])
    assert got != (v["latents_sha256"], None) and got[1] in (None, "corrupt-payload")


def test_encoded_stepped_streams_every_architecture(tmp_path):
    """Streams with step maps encoded here for random small models: P = 1 and P >= 2 (up to
    255 steps), block sizes 1 to 128 positions, blocks cut by the grid's edge, steps 1..4096,
    tiles with and without a STEP chunk, tsum chunks; decoded by the command line."""
    rng = np.random.default_rng(1303)

    def maps(kind):
        def f(PH, PW):
            H, W = PH // 16, PW // 16
            if kind == "none-and-one":  # every other tile without a STEP chunk
                f.n = getattr(f, "n", 0) + 1
                return None if f.n % 2 else (7, [int(rng.integers(1, 4097))], None, None)
            b = {"single": 0, "cut": 3, "big": 2, "huge": 7, "many": 0}[kind]
            BH, BW = -(-H // (1 << b)), -(-W // (1 << b))
            P = {"single": 4, "cut": 3, "big": 2, "huge": 2, "many": 255}[kind]
            steps = [1, 4096, 256, 2][:P] if P <= 4 else \
                rng.integers(1, 4097, P).tolist()
            blk = rng.integers(0, P, (BH, BW))
            freqs = _freqs(rng, P).tolist()
            return (b, steps, blk, freqs)
        return f

    for seed, arch in enumerate(ARCHS):
        icm, t = small_model(arch, seed=200 + seed)
        mpath = tmp_path / ("step-%s.safetensors" % arch)
        sha = write_model(mpath, icm, t)
        for kind, geom, tsum in (("single", (130, 70, 128, 64), False),
                                 # a 12 x 16 grid: 2 x 2 blocks of 8 (the last row cut to
                                 # 4), 3 x 4 blocks of 4, one block of 128 (cut to 12 x 16)
                                 ("cut", (200, 140, 256, 192), True),
                                 ("big", (200, 140, 256, 192), False),
                                 ("huge", (200, 140, 256, 192), False),
                                 ("many", (130, 70, 128, 64), True),
                                 ("none-and-one", (130, 70, 128, 64), True)):
            stream, latents = encode_stream(icm, t, sha, *geom, rng, maps(kind), tsum)
            spath = tmp_path / ("step-%s-%s.icm" % (arch, kind))
            spath.write_bytes(stream)
            assert run_cli(spath, mpath) == (0, annex_a(latents), None), (arch, kind)


def test_step_chunk_container_checks(tmp_path):
    """4.6, 13 and 13.1: the STEP fields are container checks, read in the order of the
    table and each checked as it is read; a STEP chunk must be followed by a TILE chunk;
    the index payload is a payload (13.1 step 4), decoded before the tile's z."""
    v = _vector("v1-17x33")  # one tile: 4 x 4 y grid
    model = ROOT / v["model"]
    data = (ROOT / v["stream"]).read_bytes()
    L = data[26]
    head, body = data[:59 + L], data[59 + L:]
    tile_end = body.index(b"IEND")
    tile, iend = body[:tile_end], body[tile_end:]

    def with_step(payload, after=b""):
        return head + chunk(b"STEP", payload) + after + tile + iend

    idx16 = step_payload(0, [256, 512], np.zeros((4, 4), dtype=np.int64), [1, 65535])
    cases = [
        ("STEP, P = 1, D = 256", with_step(step_payload(0, [256])), v["latents_sha256"]),
        ("STEP, P = 2", with_step(idx16), None),  # decodes (all blocks index 0, D = 256)
        ("empty STEP payload", with_step(b""), "truncated"),
        ("block_log2 only", with_step(b"\x00"), "truncated"),
        ("block_log2 8 in a 1-byte payload", with_step(b"\x08"), "invalid-field"),
        ("palette_size 0", with_step(b"\x00\x00"), "invalid-field"),
        ("P = 1, step truncated", with_step(b"\x00\x01\x00"), "truncated"),
        ("P = 1, payload of 5 bytes", with_step(step_payload(0, [256]) + b"\x00"),
         "invalid-field"),
        ("P = 1, step 0", with_step(b"\x00\x01\x00\x00"), "invalid-field"),
        # steps in range pass the container; the y payload, coded with the tables of D = 256,
        # then need not decode with those of another step
        ("P = 1, step 4096", with_step(step_payload(0, [4096])), "payload"),
        ("P = 1, step 1", with_step(step_payload(0, [1])), "payload"),
        ("P = 1, step 4097", with_step(b"\x00\x01" + struct.pack("<H", 4097)), "invalid-field"),
        # each step checked as it is read: a bad step[0] before a truncated step[1]
        ("step[0] = 0, step[1] truncated", with_step(b"\x00\x02\x00\x00\x01"), "invalid-field"),
        ("P = 2, frequencies truncated", with_step(idx16[:8]), "truncated"),
        ("P = 2, no frequencies", with_step(idx16[:6]), "truncated"),
        ("P = 2, a frequency 0", with_step(idx16[:6] + struct.pack("<2H", 0, 65535) +
                                            idx16[10:]), "invalid-field"),
        ("P = 2, frequencies sum to 2^16 - 1",
         with_step(idx16[:6] + struct.pack("<2H", 1, 65534) + idx16[10:]), "invalid-field"),
        ("P = 2, index payload not whole words", with_step(idx16 + b"\x00"),
         "corrupt-payload"),
        ("P = 2, empty index payload (x = 0: every block index 0)", with_step(idx16[:10]),
         None),
        ("P = 2, index payload with a last word 0", with_step(idx16 + b"\0\0\0\0"),
         "corrupt-payload"),
        ("STEP then STEP", with_step(step_payload(0, [256]),
                                     chunk(b"STEP", step_payload(0, [256]))), "invalid-field"),
        ("STEP then tsum", with_step(step_payload(0, [256]), chunk(b"tsum", b"\0" * 4)),
         "invalid-field"),
        ("STEP then an optional chunk", with_step(step_payload(0, [256]), chunk(b"abcd", b"")),
         "invalid-field"),
        # 13.1 lists unknown-required-chunk and tile-count before the invalid-field checks
        ("STEP then an unknown required chunk",
         with_step(step_payload(0, [256]), chunk(b"ABCD", b"")), "unknown-required-chunk"),
        ("STEP then IEND", head + chunk(b"STEP", step_payload(0, [256])) + iend, "tile-count"),
        ("STEP at the end of the stream", head + chunk(b"STEP", step_payload(0, [256])),
         "truncated"),
        ("STEP chunk_length past the end", head + b"STEP" + struct.pack("<I", 100) + b"\0\0",
         "truncated"),
        ("STEP after the last TILE", head + tile + chunk(b"STEP", step_payload(0, [256])) +
         iend, "tile-count"),
        ("STEP after the last TILE, bad fields", head + tile + chunk(b"STEP", b"\xff") + iend,
         "tile-count"),
        # container before model match (13.1 steps 2 and 3)
        ("bad STEP and wrong model_sha256",
         with_sha(with_step(b"\x09"), b"\0" * 32), "invalid-field"),
    ]
    # container before payloads: a corrupt index payload in the tile, an invalid field after
    corrupt_idx = with_step(idx16 + b"\x01\0\0\0")
    cases.append(("corrupt index payload", corrupt_idx, "corrupt-payload"))
    cases.append(("corrupt index payload, then IEND of length 1",
                  corrupt_idx[:-4] + b"\x01\0\0\0", "invalid-field"))
    for what, stream, want in cases:
        got, cls = _decode_bytes(tmp_path, stream, model)
        if want is None:
            assert cls is None, (what, cls)
        elif want == "payload":
            assert cls in (None, "corrupt-payload"), (what, cls)
        elif len(want) == 64:
            assert got == want, what
        else:
            assert cls == want, (what, cls)


def test_index_payload_decoded_before_z(tmp_path):
    """8.8 / 13.1 step 4: a tile's block indices come before its z^; the first failing tile
    decides. The decoder's messages say which payload failed only through the order, so this
    checks it by tracing the payloads it initialises."""
    v = _vector("v1-200x140-tiles64")
    data = (ROOT / v["stream"]).read_bytes()
    # every block index 0 (D = 256): the tiles' y payloads decode as without a STEP chunk
    sp = step_payload(0, [256, 300], np.zeros((4, 4), dtype=np.int64), [65535, 1])
    bad = sp + b"\x01\0\0\0"  # the index payload is not exhausted
    order = []
    real = icm_ref.RansDecoder.__init__

    def traced(self, payload):
        order.append(payload)
        real(self, payload)

    def insert(t, p):  # tile 1: a bad index payload; every tile a z payload of its own
        return chunk(b"STEP", bad if t == 1 else sp)
    stream = _with_chunks(data, insert)
    icm_ref.RansDecoder.__init__ = traced
    try:
        got = _decode_bytes(tmp_path, stream, ROOT / v["model"])
    finally:
        icm_ref.RansDecoder.__init__ = real
    assert got == (None, "corrupt-payload")
    idx_payload = sp[2 + 8:]
    # tile 0: index, z, y; tile 1: the index payload fails before its z is read
    assert order[0] == idx_payload and order[3] == bad[10:] and len(order) == 4


# ---------------------------------------------------------------- without pytest

if __name__ == "__main__":
    import inspect
    import traceback
    failed = 0
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")]
    for n, f in tests:
        try:
            if "tmp_path" in inspect.signature(f).parameters:
                with tempfile.TemporaryDirectory() as d:
                    f(Path(d))
            else:
                f()
            print("ok   ", n)
        except Exception:
            failed += 1
            print("FAIL ", n)
            traceback.print_exc()
    print("%d passed, %d failed" % (len(tests) - failed, failed))
    sys.exit(1 if failed else 0)
