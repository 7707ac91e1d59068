"""Plot the training curves of the lambda ladder: losses_q<Q>.csv -> one PNG.

Three panels against the cumulative step count (fine-tuned models continue
their parent's step count): loss, bpp and PSNR (from the training MSE).

Usage:
  python -m icm_training.plot_losses --dir out --out losses.png
"""
import argparse
import csv
import glob
import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    cols = {k: [float(r[k]) for r in rows] for k in ("step", "loss", "bpp", "psnr")}
    return cols


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="models/training/out", help="folder with losses_q*.csv")
    ap.add_argument("--out", default="models/training/losses.png")
    args = ap.parse_args()
    files = sorted(glob.glob(os.path.join(args.dir, "losses_q*.csv")),
                   key=lambda p: -int(re.search(r"q(\d+)", os.path.basename(p)).group(1)))
    if not files:
        raise SystemExit(f"no losses_q*.csv in {args.dir}")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for f in files:
        q = re.search(r"q(\d+)", os.path.basename(f)).group(1)
        c = read(f)
        for ax, k in zip(axes, ("loss", "bpp", "psnr")):
            ax.plot(c["step"], c[k], label=f"q{q}", lw=0.8)
    for ax, k, lab in zip(axes, ("loss", "bpp", "psnr"),
                          ("loss = bpp + lambda*255^2*MSE", "bpp (training, noisy likelihoods)", "PSNR dB (training MSE)")):
        ax.set_xlabel("step (cumulative)")
        ax.set_title(lab)
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[2].set_ylim(20, None)
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
