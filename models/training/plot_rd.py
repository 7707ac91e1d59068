#!/usr/bin/env python3
"""Rate-distortion plot of the icm zoo on Kodak against the VTM anchor.

Reads the `icm eval` results (docs/results/kodak-icm.json: CompressAI eval_model layout,
one rate point per model) and writes
  docs/results/kodak-rd.png, docs/results/kodak-rd.svg   PSNR-RGB vs bpp, 0..1.6 bpp
  docs/results/kodak-rd.csv                              codec,bpp,psnr,ms_ssim rows of both curves

The anchor is CompressAI's published VTM result on Kodak (VTM, YCbCr 4:4:4; bpp and
PSNR-RGB averaged over the 24 images; no MS-SSIM column is used from it, so it is empty
in the CSV).

Usage (from the repository root; needs matplotlib):
  python models/training/plot_rd.py
"""
import argparse
import csv
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VTM_LABEL = "VTM (YCbCr 4:4:4), CompressAI anchor"
# CompressAI's published VTM anchor on Kodak: (bpp, PSNR-RGB dB)
VTM_KODAK = [
    (0.0482, 26.14), (0.1125, 28.49), (0.2458, 31.20), (0.4905, 34.26),
    (0.8748, 37.42), (1.4308, 40.42), (2.3246, 43.51), (3.6326, 46.59),
]
X_MAX = 1.6


def load_icm(path):
    with open(path) as f:
        ev = json.load(f)
    res = ev["results"]
    names = [p["model"] for p in ev.get("rate_points", [])] or [""] * len(res["bpp"])
    rows = sorted(zip(res["bpp"], res["psnr-rgb"], res["ms-ssim"], names))
    return ev, rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default=os.path.join(ROOT, "docs", "results", "kodak-icm.json"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "results", "kodak-rd"),
                    help="output path without extension (.png, .svg and .csv are written)")
    args = ap.parse_args(argv)

    ev, icm = load_icm(args.results)
    names = [r[3] for r in icm if r[3]]
    label = f"icm zoo ({names[0]} .. {names[-1]})" if names else "icm zoo"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)

    with open(args.out + ".csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["codec", "bpp", "psnr", "ms_ssim"])
        for bpp, psnr, msssim, _name in icm:
            w.writerow(["icm", f"{bpp:.6f}", f"{psnr:.4f}", f"{msssim:.6f}"])
        for bpp, psnr in VTM_KODAK:
            w.writerow(["vtm", f"{bpp:.4f}", f"{psnr:.2f}", ""])

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "icm-kodak-rd"  # reproducible SVG ids
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    vx = [b for b, _ in VTM_KODAK]
    vy = [p for _, p in VTM_KODAK]
    ax.plot(vx, vy, "s--", color="tab:gray", label=VTM_LABEL, markersize=5)
    ix = [r[0] for r in icm]
    iy = [r[1] for r in icm]
    ax.plot(ix, iy, "o-", color="tab:blue", label=label, markersize=6)
    for bpp, psnr, _m, name in icm:
        if name:
            ax.annotate(name.rsplit("-", 1)[-1], (bpp, psnr), textcoords="offset points", xytext=(6, -10),
                        fontsize=8, color="tab:blue")
    visible = [p for b, p in VTM_KODAK if b <= X_MAX] + iy
    ax.set_xlim(0, X_MAX)
    ax.set_ylim(min(visible) - 1, max(visible) + 1)
    ax.set_xlabel("bits per pixel (bpp)")
    ax.set_ylabel("PSNR-RGB (dB)")
    ax.set_title("Kodak (24 images): rate-distortion, icm zoo vs VTM")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(args.out + ".png", metadata={"Software": None})
    fig.savefig(args.out + ".svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    for ext in (".png", ".svg", ".csv"):
        print(f"wrote {os.path.relpath(args.out + ext, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
