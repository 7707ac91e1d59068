#!/usr/bin/env python3
"""Writes docs/results/kodak-effort.md (to stdout) from the results files that
scripts/effort_report.sh makes. Formatting only: the figures come from those files, the
BD-rates from `icm bd-rate`."""
import json
import os
import subprocess
import sys

from report_common import cpu

out, full, subset = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
subset_names = ", ".join("kodim" + i for i in sys.argv[4].split()) if len(sys.argv) > 4 else "a subset"
ICM = "target/release/icm"


def load(name):
    with open(os.path.join(out, name + ".json")) as f:
        return json.load(f)


def bd(anchor, test, metric):
    p = subprocess.run(
        [ICM, "bd-rate", "--anchor", os.path.join(out, anchor + ".json"),
         "--test", os.path.join(out, test + ".json"), "--metric", metric, "--json"],
        capture_output=True, text=True)
    if p.returncode != 0:
        return "n/a"
    return "%+.2f %%" % json.loads(p.stdout)["bd_rate_percent"]


def pictures(d):
    return len({row["image"] for row in d["per_image"]}) if d.get("per_image") else "?"


def megapixels(d):
    rows = d.get("per_image") or []
    px = [r["width"] * r["height"] for r in rows if "width" in r and "height" in r]
    return sum(px) / len(px) / 1e6 if px else 768 * 512 / 1e6


runs = [("effort0", e, f"effort{e}") for e in full] + \
       [("effort0-subset", e, f"effort{e}-subset") for e in subset]

print("# Kodak: the encoder's rate-distortion search (`--effort`)\n")
print(
    "`icm encode --effort N` searches, per tile, for latents with a lower `bpp + lambda * 255^2 * "
    "MSE` than the ones g_a predicts (stochastic Gumbel annealing through g_s; spec 12.6). The "
    "decoder and the streams are unchanged. Each effort is compared with effort 0 on the same "
    "pictures, with the six zoo models (qualities 1-6) as the rate points. Regenerate with\n"
)
print("```sh\nscripts/effort_report.sh\n```\n")
print(
    f"Measured on {cpu()}, {os.cpu_count()} cores, release build, 2 threads; encode times are "
    "wall-clock per picture, in-process, with other work sharing the machine at times.\n"
)
print("![Kodak PSNR-RGB vs bpp by effort](kodak-effort/rd.png)\n")
print("## BD-rate against effort 0 (pchip)\n")
print("Negative = fewer bits for the same quality.\n")
print("| effort | pictures | BD-rate, PSNR-RGB | BD-rate, MS-SSIM | encode s per picture | encode s per megapixel | effort 0: s per picture |")
print("|---|---|---|---|---|---|---|")
for base, e, name in runs:
    d, d0 = load(name), load(base)
    t = sum(d["results"]["encoding_time"]) / len(d["results"]["encoding_time"])
    t0 = sum(d0["results"]["encoding_time"]) / len(d0["results"]["encoding_time"])
    n = pictures(d)
    where = "all 24" if base == "effort0" else f"{n}: {subset_names}"
    print(
        f"| {e} | {where} | {bd(base, name, 'psnr-rgb')} | {bd(base, name, 'ms-ssim')} | "
        f"{t:.1f} | {t / megapixels(d):.1f} | {t0:.2f} |"
    )
print(
    "\nThe search lowers the loss the zoo was trained with, `bpp + lambda * 255^2 * MSE`, so it "
    "gains in PSNR; MS-SSIM is not in that loss and may get worse. The search starts from g_a's "
    "latents and keeps them where it finds nothing better (per tile), so no tile codes at a "
    "higher loss than at effort 0 as the search counts it (ideal code lengths, unrounded "
    "pixels).\n"
)
times_file = os.path.join(out, "encode-times.json")
if os.path.exists(times_file):
    with open(times_file) as f:
        t = json.load(f)
    secs = t["seconds"]
    efforts = sorted(secs, key=int)
    print(
        f"Encode time of one picture on an otherwise idle machine ({t['picture']}, quality "
        f"{t['quality']}, `icm encode`): "
        + ", ".join(f"{secs[e]:.2f} s at effort {e}" for e in efforts)
        + "; per megapixel "
        + ", ".join(f"{secs[e] / t['megapixels']:.1f} s" for e in efforts)
        + ". The times in the tables above ran beside other work.\n"
    )
print("\n## Rate points\n")
print("| pictures | effort | quality | bpp | PSNR-RGB (dB) | MS-SSIM | bpp vs effort 0 | PSNR vs effort 0 | encode s |")
print("|---|---|---|---|---|---|---|---|---|")
seen = set()
for base, e, name in runs:
    where = "all 24" if base == "effort0" else f"{len(subset_names.split(','))} ({subset_names})"
    for label, eff in ([(base, 0)] if base not in seen else []) + [(name, e)]:
        seen.add(label)
        d, d0 = load(label), load(base)
        r, r0 = d["results"], d0["results"]
        for i, rp in enumerate(d["rate_points"]):
            dbpp = 100 * (r["bpp"][i] / r0["bpp"][i] - 1)
            dpsnr = r["psnr-rgb"][i] - r0["psnr-rgb"][i]
            print(
                f"| {where} | {eff} | {rp.get('quality')} | {r['bpp'][i]:.4f} | {r['psnr-rgb'][i]:.3f} | "
                f"{r['ms-ssim'][i]:.4f} | {dbpp:+.2f} % | {dpsnr:+.3f} dB | {r['encoding_time'][i]:.2f} |"
            )
print(
    "\nPer-picture figures: `kodak-effort/*.csv` and the `per_image` arrays of the JSON files."
)
