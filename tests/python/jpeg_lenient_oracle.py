#!/usr/bin/env python3
"""Oracle of tests/it/jpeg_lenient.rs: corrupt and truncated JPEGs, made deterministically from
Kodak pictures, and the coefficients libjpeg reads from each (jpeglib.read_dct, which warns
and goes on where the data is damaged).

Usage: jpeg_lenient_oracle.py [--libjpeg VERSION] OUT_DIR KODAK_DIR [EXTRA_DIR ...]

Sources: crops of Kodak pictures coded by Pillow (libjpeg-turbo) baseline and progressive,
4:2:0 / 4:2:2 / 4:4:4 / grayscale, with and without restart intervals, optimised tables, and
by jpeglib's libjpeg 6b (progressive, mixed sampling factors). Defects: cuts at several
offsets of the entropy-coded data (right after SOS, inside, just before and just after a
restart marker, after whole progressive scans, without EOI), flipped bytes, runs of ones
(invalid Huffman codes) and of zeros, a stray EOI or RSTn marker inside the data, renumbered
and missing restart markers, a sequential scan with Ss = Se = 0, a DNL segment. EXTRA_DIR:
every *.jpg / *.jpeg there is added as it is (for instance other decoders' test suites).

Writes OUT_DIR/NAME.jpg, and when libjpeg reads it NAME_c<i>.npy (int16, (blocks_h, blocks_w,
8, 8), natural order) and NAME_qt.npy (uint16, (components, 8, 8)); OUT_DIR/cases.json lists
{name, source, defect, libjpeg (true when it read the file), components}.
"""
import argparse
import glob
import json
import os
import sys

import jpeglib
import numpy as np
from PIL import Image


def segments(b):
    """Markers of a JPEG file outside entropy-coded data: [(offset, code)], and per scan
    (data start, data end, [offsets of RST markers inside])."""
    marks, scans = [], []
    p = 2
    while p + 1 < len(b):
        if b[p] != 0xFF:
            p += 1
            continue
        code = b[p + 1]
        if code == 0xFF:
            p += 1
            continue
        marks.append((p, code))
        if code == 0xD9:
            break
        length = (b[p + 2] << 8) | b[p + 3]
        p += 2 + length
        if code == 0xDA:
            start, rst = p, []
            while p + 1 < len(b):
                if b[p] == 0xFF and b[p + 1] != 0 and b[p + 1] != 0xFF:
                    if 0xD0 <= b[p + 1] <= 0xD7:
                        rst.append(p)
                        p += 2
                        continue
                    break
                p += 1
            scans.append((start, p, rst))
    return marks, scans


def picture(kodak, index, w, h, x0, y0):
    img = Image.open(os.path.join(kodak, f"kodim{index:02d}.png")).convert("RGB")
    return img.crop((x0, y0, x0 + w, y0 + h))


def sources(kodak):
    """(name, bytes) of the undamaged files."""
    out = []

    def pil(name, img, **kw):
        path = "/tmp/_lenient_src.jpg"
        img.save(path, "JPEG", **kw)
        with open(path, "rb") as f:
            out.append((name, f.read()))
        os.remove(path)

    pil("b420", picture(kodak, 1, 250, 170, 100, 60), quality=75, subsampling=2)
    pil("b444_rb3", picture(kodak, 3, 120, 90, 300, 200), quality=90, subsampling=0,
        restart_marker_blocks=3)
    pil("b422_rr", picture(kodak, 5, 200, 130, 20, 300), quality=50, subsampling=1,
        restart_marker_rows=1)
    pil("b420_opt", picture(kodak, 7, 180, 120, 400, 100), quality=85, subsampling=2,
        optimize=True)
    pil("p420", picture(kodak, 9, 240, 160, 200, 200), quality=80, subsampling=2,
        progressive=True)
    pil("p444_rb2", picture(kodak, 11, 100, 70, 50, 50), quality=85, subsampling=0,
        progressive=True, restart_marker_blocks=2)
    pil("gray_p_rr", picture(kodak, 13, 150, 100, 300, 300).convert("L"), quality=70,
        progressive=True, restart_marker_rows=1)
    # libjpeg 6b, progressive, mixed sampling factors (Y 2x2, Cb 1x2, Cr 2x1).
    jpeglib.version.set("6b")
    arr = np.asarray(picture(kodak, 15, 130, 90, 200, 150))
    j = jpeglib.from_spatial(arr)
    j.samp_factor = ((2, 2), (1, 2), (2, 1))
    path = "/tmp/_lenient_src.jpg"
    j.write_spatial(path, qt=70, flags=["+PROGRESSIVE_MODE"])
    with open(path, "rb") as f:
        out.append(("jl_p_mixed", f.read()))
    os.remove(path)
    return out


def defects(b):
    """(defect name, damaged bytes) for one undamaged file."""
    marks, scans = segments(b)
    progressive = any(code == 0xC2 for _, code in marks)
    start = scans[0][0]
    eoi = max(o for o, code in marks if code == 0xD9)
    span = eoi - start
    at = lambda f: start + int(f * span)  # noqa: E731
    out = [("cut_sos", b[:start]), ("no_eoi", b[:eoi])]
    for f in (0.03, 0.3, 0.55, 0.8, 0.995):
        out.append((f"cut_{int(f * 1000)}", b[:at(f)]))
    for f in (0.2, 0.6):
        p = at(f)
        d = bytearray(b)
        d[p] ^= 0x5A
        out.append((f"flip_{int(f * 100)}", bytes(d)))
    for f in (0.25, 0.7):
        p = at(f)
        out.append((f"ones_{int(f * 100)}", b[:p] + b"\xff\x00" * 3 + b[p + 6:]))
        out.append((f"zeros_{int(f * 100)}", b[:p] + b"\x00" * 8 + b[p + 8:]))
    p = at(0.5)
    out.append(("eoi_mid", b[:p] + b"\xff\xd9" + b[p:]))
    p = at(0.4)
    out.append(("rst5_mid", b[:p] + b"\xff\xd5" + b[p:]))
    rst = [r for _, _, rs in scans for r in rs]
    if len(rst) >= 4:
        r = rst[2]
        out.append(("cut_before_rst", b[:r]))
        out.append(("cut_after_rst", b[:r + 2]))
        r = rst[1]  # expected RST1 (or later in a progressive file)
        for d in (1, 2, 3, 4, 6, 7):
            x = bytearray(b)
            x[r + 1] = 0xD0 + ((x[r + 1] - 0xD0 + d) & 7)
            out.append((f"rst_plus{d}", bytes(x)))
        out.append(("rst_dropped", b[:r] + b[r + 2:]))
        out.append(("rst_interval_dropped", b[:r] + b[rst[2]:]))
        out.append(("rst_tem", b[:r + 1] + b"\x01" + b[r + 2:]))
    if progressive:
        sos = [o for o, code in marks if code == 0xDA]
        for k in (1, 2, 4, 6):
            if k < len(sos):
                out.append((f"scans_{k}", b[:sos[k]]))
                s0, s1, _ = scans[k]
                out.append((f"scans_{k}_half", b[:(s0 + s1) // 2]))
    else:
        sos = [o for o, code in marks if code == 0xDA][0]
        ns = b[sos + 4]
        se = sos + 5 + 2 * ns + 1  # Ss, Se, AhAl follow the component list
        x = bytearray(b)
        x[se] = 0
        out.append(("se_zero", bytes(x)))
        out.append(("dnl", b[:eoi] + b"\xff\xdc\x00\x04\x00\x10" + b[eoi:]))
    return out


def read_isolated(path, name, out):
    """Reads `path` with jpeglib in a forked child (some libjpeg builds of jpeglib exit or
    crash on broken files) and saves NAME_c<i>.npy, NAME_qt.npy; returns the number of
    components, or 0 when libjpeg refused the file."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            d = jpeglib.read_dct(path)
            comps = [d.Y] + ([d.Cb, d.Cr] if d.Cb is not None else [])
            if d.K is not None:
                comps.append(d.K)
            for i, c in enumerate(comps):
                np.save(os.path.join(out, f"{name}_c{i}.npy"),
                        np.ascontiguousarray(c, dtype=np.int16))
            qt = np.stack([d.qt[d.quant_tbl_no[i]] for i in range(len(comps))]).astype(np.uint16)
            np.save(os.path.join(out, f"{name}_qt.npy"), qt)
            code = 10 + len(comps)
        except Exception:  # libjpeg refused the file (jpeglib raises OSError)
            pass
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) > 10:
        return os.WEXITSTATUS(status) - 10
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--libjpeg", default="6b", help="jpeglib's libjpeg version (default 6b)")
    ap.add_argument("out")
    ap.add_argument("kodak")
    ap.add_argument("extra", nargs="*")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    files = []
    for src, b in sources(a.kodak):
        files.append((f"{src}_ok", src, "none", b))
        for defect, d in defects(b):
            files.append((f"{src}_{defect}", src, defect, d))
    for extra in a.extra:
        names = sorted(glob.glob(os.path.join(extra, "*.jpg")) + glob.glob(os.path.join(extra, "*.jpeg")))
        for path in names:
            with open(path, "rb") as f:
                b = f.read()
            stem = "x_" + "".join(c if c.isalnum() else "_" for c in os.path.basename(path))
            files.append((stem, path, "extra", b))
    jpeglib.version.set(a.libjpeg)
    cases = []
    for name, src, defect, b in files:
        path = os.path.join(a.out, name + ".jpg")
        with open(path, "wb") as f:
            f.write(b)
        n = read_isolated(path, name, a.out)
        case = {"name": name, "source": src, "defect": defect, "libjpeg": n > 0, "components": n}
        cases.append(case)
    with open(os.path.join(a.out, "cases.json"), "w") as f:
        json.dump({"jpeglib": jpeglib.__version__, "libjpeg": a.libjpeg, "cases": cases}, f,
                  indent=1)
    read = sum(c["libjpeg"] for c in cases)
    print(f"{len(cases)} files, {read} read by libjpeg {a.libjpeg}, in {a.out}", flush=True)
    sys.stderr.flush()
    # Skip the interpreter's teardown: after some broken files (other decoders' crash
    # tests) jpeglib's libjpeg-turbo 2.1 build crashes there, with all results written.
    os._exit(0)


if __name__ == "__main__":
    main()
