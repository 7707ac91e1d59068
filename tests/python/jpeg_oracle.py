#!/usr/bin/env python3
"""Oracle of tests/it/jpeg_dct.rs: writes JPEG files made with several encoders and settings
into OUT_DIR, and next to each the coefficients that libjpeg decodes from it
(jpeglib.read_dct): NAME.jpg, NAME_c<i>.npy (int16, shape (blocks_h, blocks_w, 8, 8), natural
order) for every component i, NAME_qt.npy (uint16, (components, 8, 8): the quantisation table
of each component), and cases.json listing the cases.

Usage: jpeg_oracle.py OUT_DIR
"""
import json
import os
import sys

import jpeglib
import numpy as np
from PIL import Image


def image(h, w, seed, kind="natural", channels=3):
    """A deterministic test picture: smooth gradients, edges and texture, or pure noise."""
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((h, w, channels))
    for c in range(channels):
        fx, fy = rng.uniform(0.01, 0.3, 2)
        v = 128 + 60 * np.sin(fx * xx + c) * np.cos(fy * yy)
        v += 50 * ((xx + 2 * yy + 7 * c) % 23 < 11)  # edges
        v += rng.normal(0, 12, (h, w))  # texture
        out[:, :, c] = v
    return np.clip(out, 0, 255).astype(np.uint8)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    cases = []

    def record(name, path, encoder):
        d = jpeglib.read_dct(path)
        comps = [d.Y] + ([d.Cb, d.Cr] if d.Cb is not None else [])
        for i, c in enumerate(comps):
            np.save(os.path.join(out, f"{name}_c{i}.npy"), np.ascontiguousarray(c, dtype=np.int16))
        qt = np.stack([d.qt[d.quant_tbl_no[i]] for i in range(len(comps))]).astype(np.uint16)
        np.save(os.path.join(out, f"{name}_qt.npy"), qt)
        cases.append({"name": name, "encoder": encoder, "components": len(comps)})

    # --- Pillow (libjpeg-turbo): qualities, subsampling, progressive, optimize, restarts.
    sizes = [(1, 1), (7, 13), (33, 17), (3, 511), (48, 64), (75, 100)]  # (h, w)
    n = 0
    for si, (h, w) in enumerate(sizes):
        for q in (10, 50, 75, 95, 100):
            for sub in (0, 1, 2):
                # Vary the other options with the case number, all combinations over the set.
                prog = n % 2 == 1
                opt = n % 3 == 1
                kind = "noise" if n % 5 == 4 else "natural"
                kw = dict(quality=q, subsampling=sub, progressive=prog, optimize=opt)
                if n % 4 == 2:
                    kw["restart_marker_blocks"] = 1 + n % 3
                elif n % 4 == 3:
                    kw["restart_marker_rows"] = 1
                name = f"pil_{w}x{h}_q{q}_s{sub}" + ("_p" if prog else "") + ("_o" if opt else "")
                name += "_rb" if "restart_marker_blocks" in kw else "_rr" if "restart_marker_rows" in kw else ""
                name += "_n" if kind == "noise" else ""
                path = os.path.join(out, name + ".jpg")
                Image.fromarray(image(h, w, n, kind)).save(path, **kw)
                record(name, path, f"Pillow {Image.__version__} {kw}")
                n += 1
        # grayscale
        for prog in (False, True):
            name = f"pil_{w}x{h}_gray" + ("_p" if prog else "")
            path = os.path.join(out, name + ".jpg")
            Image.fromarray(image(h, w, 100 + si, channels=1)[:, :, 0], mode="L").save(
                path, quality=85, progressive=prog, restart_marker_blocks=2 if prog else 0
            )
            record(name, path, f"Pillow grayscale progressive={prog}")

    # --- jpeglib's bundled libjpeg versions: other sampling factors, progressive scripts.
    samplings = {
        "444": ((1, 1), (1, 1), (1, 1)),
        "v2": ((1, 2), (1, 1), (1, 1)),
        "h2": ((2, 1), (1, 1), (1, 1)),
        "420": ((2, 2), (1, 1), (1, 1)),
        "411": ((4, 1), (1, 1), (1, 1)),
        "mixed": ((2, 2), (1, 2), (2, 1)),
    }
    for vi, version in enumerate(("6b", "9e", "turbo210", "mozjpeg403")):
        jpeglib.version.set(version)
        for sn, sf in samplings.items():
            for prog in (False, True):
                h, w = [(33, 17), (40, 65), (9, 130)][(vi + len(sn)) % 3]
                name = f"jl_{version}_{sn}_{w}x{h}" + ("_p" if prog else "")
                path = os.path.join(out, name + ".jpg")
                j = jpeglib.from_spatial(image(h, w, 200 + vi))
                j.samp_factor = sf
                flags = ["+PROGRESSIVE_MODE"] if prog else ["-PROGRESSIVE_MODE"]
                j.write_spatial(path, qt=30 + 20 * vi, flags=flags)
                record(name, path, f"jpeglib libjpeg {version} samp {sf} progressive={prog}")

    # --- extreme coefficients written directly (long Huffman codes, large categories).
    jpeglib.version.set("turbo210")
    rng = np.random.default_rng(7)
    y = rng.integers(-1023, 1024, (3, 5, 8, 8)).astype(np.int16)
    c = rng.integers(-300, 301, (2, 3, 8, 8)).astype(np.int16)
    y[..., 0, 0] = rng.integers(-1023, 1024, (3, 5))  # DC differences stay in category 11
    qt = np.ones((2, 8, 8), np.uint16)
    for prog in (False, True):
        name = "jl_dct_extreme" + ("_p" if prog else "")
        path = os.path.join(out, name + ".jpg")
        jpeglib.from_dct(Y=y, Cb=c, Cr=c.copy(), qt=qt).write_dct(path)
        if prog:
            # Re-encode progressively from the same coefficients.
            d = jpeglib.read_dct(path)
            d.write_dct(path, flags=["+PROGRESSIVE_MODE"])
        record(name, path, f"jpeglib write_dct extreme progressive={prog}")

    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump({"jpeglib": jpeglib.__version__, "cases": cases}, f, indent=1)
    print(f"{len(cases)} cases in {out}")


if __name__ == "__main__":
    main()
