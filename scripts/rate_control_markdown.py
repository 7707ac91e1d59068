"""Tables of docs/results/kodak-rate-control.md from scripts/rate_control_report.sh's CSV."""

import csv
import sys
from collections import defaultdict


def main(path: str) -> None:
    rows = list(csv.DictReader(open(path)))
    by_target = defaultdict(list)
    for r in rows:
        by_target[float(r["target_bpp"])].append(r)
    out = [
        "# Rate control on Kodak",
        "",
        "`icm encode --bpp TARGET` (spec 12.7): the lowest-quality zoo model whose stream at step 1 "
        "reaches the target, then the smallest global quantisation step that fits, by bisection. "
        "Every stream is at most the target; the table gives how close below it lands. "
        "Regenerate with `scripts/rate_control_report.sh` (CSV in `kodak-rate-control/`).",
        "",
        "| target bpp | pictures | mean achieved / target | min | max | mean abs. deviation | models used | mean encode s |",
        "|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    all_dev = []
    for t in sorted(by_target):
        rs = by_target[t]
        ratios = [int(r["bytes"]) / int(r["target_bytes"]) for r in rs]
        dev = [abs(1 - x) for x in ratios]
        all_dev += dev
        models = sorted({r["model"].replace("icm-psnr-", "") for r in rs})
        secs = sum(float(r["seconds"]) for r in rs) / len(rs)
        out.append(
            f"| {t:g} | {len(rs)} | {100 * sum(ratios) / len(ratios):.2f} % | "
            f"{100 * min(ratios):.2f} % | {100 * max(ratios):.2f} % | "
            f"{100 * sum(dev) / len(dev):.2f} % | {', '.join(models)} | {secs:.2f} |"
        )
    out += [
        "",
        f"Over all {len(all_dev)} encodes the mean absolute deviation from the target is "
        f"**{100 * sum(all_dev) / len(all_dev):.2f} %** (largest {100 * max(all_dev):.2f} %).",
        "",
        "## Per picture",
        "",
        "Achieved bpp (model and step) per picture and target.",
        "",
        "| picture | " + " | ".join(f"{t:g}" for t in sorted(by_target)) + " |",
        "|---|" + "---:|" * len(by_target),
    ]
    pictures = sorted({r["picture"] for r in rows})
    cell = {(r["picture"], float(r["target_bpp"])): r for r in rows}
    for p in pictures:
        cells = []
        for t in sorted(by_target):
            r = cell.get((p, t))
            cells.append(
                f"{float(r['bpp']):.4f} ({r['model'].replace('icm-psnr-', '')}, {float(r['step']):.3f})"
                if r
                else "-"
            )
        out.append(f"| {p} | " + " | ".join(cells) + " |")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
