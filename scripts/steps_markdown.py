"""docs/results/steps.md from the results files of scripts/steps_report.sh: one model swept
by a global quantisation step against the zoo (Kodak), and the task curves of icm at low
rates and with regions of interest against VVC. BD-rates come from `icm bd-rate` (pchip on
upper envelopes, and the VCEG-M33 cubic fit of all points)."""

import csv
import json
import os
import subprocess
import sys
import tempfile

RESULTS = "docs/results"
# The default background step factor of each task's map (icm_eval::task::roi::default_background).
DEFAULT_G = {"det": 3, "cls": 16, "seg": 3}
ICM = os.environ.get("ICM", "target/release/icm")

TASKS = [
    # prefix, metric, title, pictures
    ("det", "map", "Detection, YOLOX-Nano on the COCO subset, mAP@[.5:.95]"),
    ("cls", "top1", "Classification, MobileNetV2 on the ImageNet sample, top-1"),
    ("seg", "miou_agreement", "Segmentation, DeepLabV3 on the COCO subset, mIoU vs uncompressed prediction"),
]


def rows(name):
    path = os.path.join(RESULTS, name + ".csv")
    return list(csv.DictReader(open(path))) if os.path.exists(path) else []


def curve(names, metric, tmp):
    """One CSV (bpp, metric) of the rate points of several results files."""
    points = [r for n in names for r in rows(n)]
    if not points:
        return None
    path = os.path.join(tmp, "_".join(names) + ".csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["bpp", metric])
        for r in points:
            w.writerow([r["bpp"], r[metric]])
    return path


def bd(anchor, test, metric, method):
    if anchor is None or test is None:
        return "n/a"
    args = [ICM, "bd-rate", "--anchor", anchor, "--test", test, "--metric", metric, "--json"]
    args += ["--envelope"] if method == "pchip" else ["--method", "cubic"]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        return "n/a"
    return "%+.2f %%" % json.loads(p.stdout)["bd_rate_percent"]


def points(name):
    """The rate points of a results file, as their labels' model@step."""
    labels = [r["label"].replace("icm-psnr-", "").split("+")[0] for r in rows(name)]
    steps = [r["label"].split("@")[1] if "@" in r["label"] else "" for r in rows(name)]
    return ", ".join(m + (f"@{s}" if s else "") for m, s in zip(labels, steps))


def span(path, metric):
    pts = [(float(r["bpp"]), float(r[metric])) for r in csv.DictReader(open(path))]
    return min(p[0] for p in pts), max(p[0] for p in pts)


def summary(kind):
    """The short section that kodak.md ("kodak") or tasks.md ("tasks") ends with."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "kodak":
            out += ["## One model, many rates (spec 1.3)", ""]
            rc = os.path.join(RESULTS, "kodak-rate-control", "rate_control.csv")
            if os.path.exists(rc):
                rs = list(csv.DictReader(open(rc)))
                dev = [abs(1 - int(r["bytes"]) / int(r["target_bytes"])) for r in rs]
                out.append(
                    f"- Rate control (`icm encode --bpp`): over {len(rs)} encodes (24 pictures, "
                    f"targets 0.1 to 1.5 bpp) the stream is at most the target and "
                    f"{100 * sum(dev) / len(dev):.2f} % below it on average (largest "
                    f"{100 * max(dev):.2f} %): [kodak-rate-control.md](kodak-rate-control.md)."
                )
            a = os.path.join(RESULTS, "kodak-icm.json")
            t = os.path.join(RESULTS, "kodak-icm-q3-steps.json")
            if os.path.exists(t):
                out.append(
                    "- One model swept by a global step (zoo q3 at steps 0.45 to 2.5) against the "
                    f"zoo's six models: BD-rate {bd(a, t, 'psnr', 'pchip')} in PSNR-RGB, "
                    f"{bd(a, t, 'ms_ssim', 'pchip')} in MS-SSIM (pchip): what a continuous "
                    "`--quality` or `--bpp` between two models costs against a model trained for "
                    "that rate. Details: [steps.md](steps.md)."
                )
        else:
            out += [
                "## Low rates and regions of interest (spec 1.3)",
                "",
                "Task BD-rate against VVC with the zoo's curves extended below q1 by global steps "
                "(`--qualities 1@4,1@3,1@2,1@1.5`), and with region-of-interest coding "
                "(`--roi TASK` with its default background step factor: 16 for classification, 3 "
                "for detection and segmentation; q1 at step 3 up to q5), pchip on "
                "envelopes / cubic. Rate points, ranges and other background factors: "
                "[steps.md](steps.md).",
                "",
                "| task, metric | zoo + q1 steps vs VVC | --roi vs VVC | --roi vs zoo + q1 steps |",
                "|---|---:|---:|---:|",
            ]
            for prefix, metric, title in TASKS:
                vvc = curve([f"{prefix}_vvc"], metric, tmp)
                uniform = curve([f"{prefix}_icm-low", f"{prefix}_icm"], metric, tmp)
                roi = curve([f"{prefix}_icm-roi"], metric, tmp)
                if roi is None:
                    continue
                cell = lambda a, t: f"{bd(a, t, metric, 'pchip')} / {bd(a, t, metric, 'cubic')}"  # noqa: E731
                out.append(
                    f"| {title.split(',')[0].lower()}, {metric} | {cell(vvc, uniform)} | "
                    f"{cell(vvc, roi)} | {cell(uniform, roi)} |"
                )
    out.append("")
    return out


def main():
    out = [
        "# Quantisation steps and regions of interest",
        "",
        "Spec 1.3 lets a stream quantise the latents of one model with a step other than 1, per "
        "16x16 cell (spec 4.6, 5.4, 12.7). This page measures what that gives without training: "
        "one model swept over the zoo's range, task curves extended below the zoo's lowest rate, "
        "and region-of-interest coding (`--roi TASK`). Regenerate with `scripts/steps_report.sh` "
        "then `python3 scripts/steps_markdown.py > docs/results/steps.md`.",
        "",
        "BD-rates are `icm bd-rate` figures: pchip on each curve's upper envelope, and the "
        "VCEG-M33 cubic fit of all points; negative means fewer bits for the same quality. "
        "They are taken over the bpp range where both curves overlap in quality, so a figure "
        "depends on which points each curve has: the ranges are given.",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        if rows("kodak-icm-q3-steps"):
            out += ["## One model swept by a step against the zoo (Kodak, 24 pictures)", ""]
            out += [
                "`icm eval --qualities 3@0.45,3@0.6,3@0.8,3@1,3@1.3,3@1.8,3@2.5` (zoo q3 at seven "
                "global steps) against the zoo's six models (`kodak-icm.json`):",
                "",
                "| metric | BD-rate of q3 + steps vs the zoo, pchip | cubic |",
                "|---|---:|---:|",
            ]
            a = os.path.join(RESULTS, "kodak-icm.json")
            t = os.path.join(RESULTS, "kodak-icm-q3-steps.json")
            for metric, name in [("psnr", "PSNR-RGB"), ("ms_ssim", "MS-SSIM")]:
                out.append(f"| {name} | {bd(a, t, metric, 'pchip')} | {bd(a, t, metric, 'cubic')} |")
            out += ["", "| rate point | bpp | PSNR-RGB | MS-SSIM |", "|---|---:|---:|---:|"]
            for n in ["kodak-icm-q3-steps", "kodak-icm"]:
                groups = {}
                for r in rows(n):
                    groups.setdefault(r["model"], []).append(r)
                for label, rs in groups.items():
                    mean = lambda k: sum(float(r[k]) for r in rs) / len(rs)  # noqa: E731
                    out.append(
                        f"| {label} | {mean('bpp'):.4f} | {mean('psnr'):.2f} | {mean('ms_ssim'):.4f} |"
                    )
            out.append("")
        for prefix, metric, title in TASKS:
            if not rows(f"{prefix}_icm-roi") and not rows(f"{prefix}_icm-low"):
                continue
            vvc = curve([f"{prefix}_vvc"], metric, tmp)
            zoo = curve([f"{prefix}_icm"], metric, tmp)
            uniform = curve([f"{prefix}_icm-low", f"{prefix}_icm"], metric, tmp)
            roi = curve([f"{prefix}_icm-roi"], metric, tmp)
            out += [f"## {title}", ""]
            out += [
                "| test curve | vs | BD-rate, pchip on envelopes | cubic, all points | test bpp range |",
                "|---|---|---:|---:|---|",
            ]
            sweeps = sorted(
                n[:-5]
                for n in os.listdir(RESULTS)
                if n.startswith(f"{prefix}_icm-roi-g") and n.endswith(".json")
            )
            tests = [
                ("icm zoo q1-q6", zoo),
                ("icm zoo + q1 at steps 1.5-4", uniform),
                (f"icm --roi (G {DEFAULT_G[prefix]}), q1@3 to q5", roi),
            ] + [
                (f"icm --roi (G {n.rsplit('-g', 1)[1]}), {points(n)}", curve([n], metric, tmp))
                for n in sweeps
            ]
            for name, t in tests:
                if t is None:
                    continue
                lo, hi = span(t, metric)
                out.append(
                    f"| {name} | VVC | {bd(vvc, t, metric, 'pchip')} | {bd(vvc, t, metric, 'cubic')} "
                    f"| {lo:.3f}-{hi:.3f} |"
                )
            if roi and uniform:
                lo, hi = span(roi, metric)
                out.append(
                    f"| icm --roi (G {DEFAULT_G[prefix]}) | icm zoo + q1 steps | {bd(uniform, roi, metric, 'pchip')} | "
                    f"{bd(uniform, roi, metric, 'cubic')} | {lo:.3f}-{hi:.3f} |"
                )
            out += ["", f"| codec | rate point | bpp | {metric} |", "|---|---|---:|---:|"]
            for n in [f"{prefix}_icm-low", f"{prefix}_icm", f"{prefix}_icm-roi"] + sweeps + [f"{prefix}_vvc"]:
                for r in rows(n):
                    out.append(f"| {r['codec']} | {r['label']} | {float(r['bpp']):.4f} | {float(r[metric]):.4f} |")
            out.append("")
    out += [
        "## What limits these figures",
        "",
        "- **The zoo.** Every curve here is the PSNR-trained zoo, which is behind VVC in PSNR on "
        "Kodak ([kodak.md](kodak.md)); steps and regions of interest move bits, they do not make "
        "the transforms better. Below q1 the only way down is a coarser step on q1, which costs "
        "more than a model trained for that rate would (compare the Kodak sweep above).",
        "- **Detection at the lowest rates.** Below about 0.07 bpp the boxes themselves must be "
        "quantised coarsely; there VVC keeps more mAP than icm with or without `--roi`. A larger "
        "background factor saves little rate once most background latents are already zero "
        "(the G sweeps above) and loses objects the detector finds only with less confidence "
        "than the map's 0.3.",
        "- **Classification.** The classifier reads only its centre crop, so the crop mask with "
        "a large background factor spends almost nothing outside it; what remains is the crop's "
        "own rate.",
        "- **Small sets.** 158 and 250 pictures give noisy accuracies (one COCO category moves mAP "
        "by about 0.003); BD-rates over a few points per curve, and over ranges that differ "
        "between curves, move by several percent with one point. Both interpolations are shown "
        "for that reason.",
        "",
    ]
    print("\n".join(out))


if __name__ == "__main__":
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    sys.exit(main())
