"""Make a compact training copy of shared/data/train for the GPU machine.

Every image is converted to RGB and downscaled with Lanczos so that its shorter
side is exactly `--short-side` pixels (256 by default: this also washes out most
JPEG artefacts of the sources), then saved as JPEG (quality 92, 4:2:0: the
whole set must stay under ~45 MiB to travel to the GPU machine) under `--out`, keeping the sub-folder structure.  Images whose
shorter side is already below `--short-side` are skipped (they cannot give a
full 256x256 crop and upscaling would only teach blur).

Usage (from the repository root):
    python -m icm_training.prepare_data --src ../shared/data/train --out .train_data/train
"""
import argparse
import os
import sys

from PIL import Image


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default="../shared/data/train", help="folder with the source images (searched recursively)")
    ap.add_argument("--out", default=".train_data/train", help="output folder")
    ap.add_argument("--short-side", type=int, default=256)
    ap.add_argument("--quality", type=int, default=92)
    ap.add_argument("--subsampling", type=int, default=2, help="PIL JPEG chroma subsampling: 0=4:4:4, 1=4:2:2, 2=4:2:0")
    ap.add_argument("--max-mb", type=float, default=45.0, help="fail if the output is larger than this")
    args = ap.parse_args()

    exts = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff")
    srcs = []
    for root, _dirs, files in os.walk(args.src):
        for f in files:
            if f.lower().endswith(exts):
                srcs.append(os.path.join(root, f))
    srcs.sort()
    if not srcs:
        print(f"no images under {args.src}", file=sys.stderr)
        return 1

    kept = skipped = total_bytes = 0
    for path in srcs:
        rel = os.path.relpath(path, args.src)
        dst = os.path.join(args.out, os.path.splitext(rel)[0] + ".jpg")
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            s = min(w, h)
            if s < args.short_side:
                skipped += 1
                continue
            if s != args.short_side:
                nw = max(args.short_side, round(w * args.short_side / s))
                nh = max(args.short_side, round(h * args.short_side / s))
                if w <= h:
                    nw = args.short_side
                else:
                    nh = args.short_side
                im = im.resize((nw, nh), Image.LANCZOS)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            im.save(dst, "JPEG", quality=args.quality, subsampling=args.subsampling, optimize=True)
        total_bytes += os.path.getsize(dst)
        kept += 1

    mb = total_bytes / 2**20
    print(f"{kept} images written to {args.out} ({mb:.1f} MiB), {skipped} skipped (shorter side < {args.short_side})")
    if mb > args.max_mb:
        print(f"output is larger than {args.max_mb} MiB: lower --quality", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
