#!/usr/bin/env python3
"""Writes docs/results/tasks.md (to stdout) from the results files that
scripts/tasks_report.sh makes (task-eval JSON, tasks-bdrate.jsonl, plots). Formatting
only: every figure comes from those files."""
import datetime
import json
import os
import sys

from report_common import cpu

out = sys.argv[1] if len(sys.argv) > 1 else "docs/results"


def load(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


CODECS = [
    ("none", "uncompressed", None),
    ("icm", "icm (PSNR zoo)", "quality"),
    ("vvc", "VVC (libvvenc)", "QP"),
    ("hevc", "HEVC (x265)", "QP"),
    ("jpeg", "JPEG (mjpeg)", "qscale"),
]

TASKS = [
    ("det", "Detection: YOLOX-Nano on the COCO subset (158 images)",
     [("map", "mAP@[.5:.95]"), ("map50", "mAP@.5")], "map"),
    ("cls", "Classification: MobileNetV2 on the ImageNet sample (250 images)",
     [("top1", "top-1"), ("top5", "top-5")], "top1"),
    ("seg", "Segmentation: DeepLabV3 on the COCO subset (158 images)",
     [("miou", "mIoU"), ("pixel_accuracy", "pixel accuracy"),
      ("miou_agreement", "mIoU vs uncompressed prediction")], "miou"),
]

NOTES = {
    "det": [
        "mAP as pycocotools' COCOeval (bbox, area `all`, maxDets 100); the Rust implementation "
        "equals pycocotools on the same detections (tests/it/task_py.rs).",
        "The uncompressed figure differs from MODEL.md's 0.2835 / 0.4486 (onnxruntime with "
        "OpenCV JPEG decoding and resize): icm decodes the JPEGs with the `image` crate and "
        "resizes with its own OpenCV-style bilinear.",
        "158 images give a noisy mAP (one category with one or two instances moves it by "
        "about 0.003): neighbouring rate points can swap order, and high-rate points can "
        "pass the uncompressed ceiling.",
    ],
    "cls": [
        "MODEL.md: top-1 0.908, top-5 0.988 on the same images. One image is 0.004.",
    ],
    "seg": [
        "Ground truth as `models/segmentation/MODEL.md` built its baseline: the COCO instance "
        "masks of the 20 VOC-equivalent categories, larger objects drawn first, other objects "
        "background (`task::segmentation::coco_voc_truth`); polygons filled at pixel centres. "
        "`miou` is over the 21 classes, as MODEL.md's 0.261.",
        "Several VOC classes have only a few pixels in these images, so mIoU moves by about "
        "0.01 between neighbouring rate points: against the ground truth the curves are flat "
        "within that noise from about 0.3 bpp up, and their BD-rates (which change sign between "
        "pchip and cubic) say little. `miou_agreement`, the mIoU of the prediction on the "
        "decoded picture against the prediction on the original, is monotone in rate and is "
        "the telling measure of what coding costs this network.",
    ],
}

bd_rows = []
bd_path = os.path.join(out, "tasks-bdrate.jsonl")
if os.path.exists(bd_path):
    with open(bd_path) as f:
        bd_rows = [json.loads(line) for line in f if line.strip()]


def bd(task, metric, codec, method):
    for r in bd_rows:
        if (r["task"], r["metric"], r["codec"], r["method"]) == (task, metric, codec, method):
            return r
    return None


def fmt_bd(r):
    if r is None:
        return "-"
    if "error" in r:
        return "n/a"
    return "%+.2f %%" % r["result"]["bd_rate_percent"]


def dropped(r):
    if r is None or "result" not in r or "envelope_dropped" not in r["result"]:
        return ""
    d = r["result"]["envelope_dropped"]
    parts = []
    for side in ("anchor", "test"):
        for rate, q in d[side]:
            parts.append(f"{side} {rate:.3f} bpp")
    return ", ".join(parts)


print("# Machine-task accuracy against bit rate\n")
print("Task accuracy of the icm zoo (`icm-psnr-q1` .. `q6`, trained for PSNR), VVC, HEVC and "
      "JPEG on the task data of `../shared`, with the uncompressed pictures as the ceiling, "
      "measured with `icm task-eval` (networks and pre-/post-processing of "
      "`../shared/models/*/MODEL.md`, `crates/icm-eval/src/task/`). The conventional codecs run through the "
      "anchor path (`icm anchor`: real encoders in the ffmpeg of PyPI imageio-ffmpeg, settings "
      "and colour conversion in [docs/anchors.md](../anchors.md)); bpp is the real bitstream "
      "size over the picture's pixels, averaged as `icm eval` does. Regenerate this page, its "
      "results files (`{det,cls,seg}_{codec}.json|csv`) and plots with\n")
print("```sh\nscripts/tasks_report.sh\n```\n")
print(f"Measured on {cpu()}, 2 cores, {datetime.date.today().isoformat()}.\n")
print("**Task BD-rate** is the Bjøntegaard delta of rate at equal task accuracy against VVC "
      "(`icm bd-rate --metric map`): negative means fewer bits than VVC for the same accuracy. "
      "Accuracy curves on a few hundred pictures are not monotone in rate, which the pchip "
      "interpolation of the common test conditions needs, so two figures are given: pchip on "
      "each curve's upper envelope (`--envelope`: a point is left out when a cheaper point of "
      "the same curve is at least as accurate; the points left out are listed) and the "
      "VCEG-M33 cubic fit of all points (`--method cubic`). n/a: the curves do not overlap in "
      "accuracy.\n")

SUMMARY = [("det", "map", "detection, mAP@[.5:.95]"), ("cls", "top1", "classification, top-1"),
           ("seg", "miou_agreement", "segmentation, mIoU vs uncompressed prediction")]
summary = [(name, bd(t, m, "icm", "pchip-envelope"), bd(t, m, "icm", "cubic")) for t, m, name in SUMMARY]
if any(pe or cu for _, pe, cu in summary):
    print("**Summary: task BD-rate of the icm PSNR zoo against VVC**\n")
    print("| task, metric | pchip on envelopes | cubic, all points |")
    print("|---|---:|---:|")
    for name, pe, cu in summary:
        print(f"| {name} | {fmt_bd(pe)} | {fmt_bd(cu)} |")
    print("\nFor comparison, Le et al. report -37.87 % for detection with codecs trained end to end "
          "for the task; the zoo here is trained for PSNR only, and is behind VVC in PSNR on Kodak "
          "([kodak.md](kodak.md)): at equal pixel fidelity VVC wins, at equal machine accuracy "
          "icm does.\n")
    print("These figures cover the zoo's own range (0.2 bpp and up), where the curves sit near "
          "the uncompressed ceiling. Extended below q1 with quantisation steps, and with "
          "region-of-interest coding (spec 1.3), the comparison over the whole range is in "
          "[the last section](#low-rates-and-regions-of-interest-spec-13).\n")

for p, title, metrics, main in TASKS:
    results = {c: load(f"{p}_{c}.json") for c, _, _ in CODECS}
    if not any(results.values()):
        continue
    print(f"## {title}\n")
    if os.path.exists(os.path.join(out, f"tasks-{p}-{main}.png")):
        print(f"![{title}](tasks-{p}-{main}.png)\n")
    # BD-rates first: the summary.
    codecs_bd = [c for c, _, _ in CODECS if c not in ("none", "vvc") and results.get(c)]
    if results.get("vvc") and codecs_bd:
        print("| codec | metric | task BD-rate vs VVC, pchip on envelopes | cubic, all points | left out of the envelopes |")
        print("|---|---|---:|---:|---|")
        for c in codecs_bd:
            for m, mname in metrics:
                pe, cu = bd(p, m, c, "pchip-envelope"), bd(p, m, c, "cubic")
                print(f"| {c} | {mname} | {fmt_bd(pe)} | {fmt_bd(cu)} | {dropped(pe)} |")
        print()
    print("| codec | rate point | bpp | " + " | ".join(n for _, n in metrics) + " |")
    print("|---|---|---:|" + "---:|" * len(metrics))
    for c, name, param in CODECS:
        r = results.get(c)
        if not r:
            continue
        res = r["results"]
        for i, point in enumerate(r.get("rate_points", [])):
            rate = "-" if param is None else f"{param} {point.get('quality')}"
            vals = " | ".join("%.4f" % res[m][i] if m in res else "-" for m, _ in metrics)
            bpp = res["bpp"][i]
            print(f"| {name} | {rate} | {bpp:.4f} | {vals} |")
    print()
    for n in NOTES.get(p, []):
        print(f"- {n}")
    times = [
        f"{c} {r['total_time'] / 60:.1f} min" for c, _, _ in CODECS
        if (r := results.get(c)) and "total_time" in r
    ]
    if times:
        print(f"- Wall time of each `icm task-eval` run (2 cores; conventional codecs include "
              f"their encoders unless cached): {', '.join(times)}.")
    print()


# ----------------------------------------------------------------------------- DCT input
DCT = [("rgb", "(a) RGB 3x224x224"), ("dct192", "(b) DCT 192x28x28"), ("dct24", "(c) DCT 24x28x28")]
dct = {d: load(f"cls_jpeg_{d}.json") for d, _ in DCT}
if all(dct.values()):
    rgb, d192, d24 = dct["rgb"], dct["dct192"], dct["dct24"]
    q = [p["quality"] for p in rgb["rate_points"]]
    print("## Classification on JPEG DCT coefficients\n")
    print("MobileNetV2 fed (a) the decoded picture, (b) all 192 DCT channels of the JPEG, (c) the "
          "24 channels of spec Annex B.3, on the same JPEG files: each ImageNet-sample picture is "
          "cropped as the classifier's pre-processing does (shorter side 256, centre 224x224) and "
          "that crop is JPEG-coded in process at IJG qualities (4:2:0 with libjpeg's colour "
          "conversion and chroma averaging, Annex K tables scaled as libjpeg's "
          "`jpeg_set_quality`). (a) decodes the JPEG to RGB (`image` crate) and runs the shared "
          "network; (b) and (c) decode only the coefficients (`icm::jpeg`, Annex B) and run the "
          "shared network with its input stages (the first conv and the first four "
          "inverted-residual blocks, up to the first stride-8 projection) replaced by a stem "
          "trained by distillation from the RGB network on the 1,250 unlabelled training "
          "pictures (`models/training/icm_training/dct/`, `models/tasks/`). `scripts/tasks_report.sh` runs\n")
    print("    icm task-eval --task classification --dataset ../shared/data/imagenet-val-sample \\")
    print("        --codec jpeg-ijg --input-domain rgb|dct192|dct24 -o cls_jpeg_{rgb,dct192,dct24}.json\n")
    print("| quality | bpp | top-1 (a) RGB | top-1 (b) DCT 192 | top-1 (c) DCT 24 | top-5 (a) | top-5 (b) | top-5 (c) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i, qi in enumerate(q):
        t1 = " | ".join("%.3f" % dct[d]["results"]["top1"][i] for d, _ in DCT)
        t5 = " | ".join("%.3f" % dct[d]["results"]["top5"][i] for d, _ in DCT)
        print(f"| {qi} | {rgb['results']['bpp'][i]:.3f} | {t1} | {t5} |")
    print("\nbpp is of the 224x224 JPEG (the same files for a, b, c).\n")
    print("What reaches the network per picture, and the time from JPEG file to class scores "
          "(mean over the qualities of `decode_s` and `infer_s`; ONNX Runtime on CPU):\n")
    print("| input | bytes (float32, as given to ONNX Runtime) | compact form | decode | network | decode + network |")
    print("|---|---:|---:|---:|---:|---:|")
    compact = {"rgb": ("uint8", 1), "dct192": ("int16", 2), "dct24": ("int16", 2)}
    for d, name in DCT:
        r = dct[d]["results"]
        nbytes = r["input_bytes"][0]
        kind, size = compact[d]
        dec = 1e3 * sum(r["decode_s"]) / len(q)
        inf = 1e3 * sum(r["infer_s"]) / len(q)
        print(f"| {name} | {nbytes:,.0f} | {nbytes / 4 * size:,.0f} ({kind}) | {dec:.2f} ms | {inf:.1f} ms | {dec + inf:.1f} ms |")
    print()
    hi = [i for i, qi in enumerate(q) if qi >= 20]
    rng = lambda d: (min(dct[d]["results"]["top1"][i] for i in hi), max(dct[d]["results"]["top1"][i] for i in hi))
    (a0, a1), (b0, b1), (c0, c1) = rng("rgb"), rng("dct192"), rng("dct24")
    print(f"- From quality 20 up, top-1 is {c0:.2f}-{c1:.2f} for (c) and {b0:.2f}-{b1:.2f} for (b), "
          f"against {a0:.2f}-{a1:.2f} for (a); at quality {q[0]}: (a) {rgb['results']['top1'][0]:.3f}, "
          f"(b) {d192['results']['top1'][0]:.3f}, (c) {d24['results']['top1'][0]:.3f}. The DCT networks "
          "are limited by their stems (trained by distillation on 1,250 unlabelled pictures in about "
          "1.5 hours of 2 shared CPU cores), not by the JPEG: their curves are flat from quality 20. "
          "At the lowest quality they can beat decoding to RGB: the stems learn the features of the "
          "clean picture from its compressed coefficients, which the RGB network, never trained on "
          "JPEG artefacts, does not.")
    print("- The DCT networks run faster: their stems (48 M multiply-adds with 192 channels, 36 M "
          "with 24) replace stages that run at 112x112 and 56x56 and cost about 90 M; (c) gives the "
          "network an eighth of the values of (a) and (b).")
    print("- The encoder matters to the DCT networks: with one chroma sample per 2x2 cell instead of "
          "libjpeg's average of the cell, the 192-channel network lost 8 points at quality 95; the "
          "in-process encoder therefore makes libjpeg's chroma.")
    print("- 250 pictures: one picture is 0.004, so differences of 0.02 between neighbouring "
          "qualities are noise.")
    print("- What more compute buys, in the order expected to matter: longer KL training; labelled "
          "ImageNet pictures (cross-entropy as well as distillation); a wider stem; training with "
          "the tail's activation quantisation (float during training, quantised at inference); "
          "larger pictures (448x448 JPEGs, a 56x56 DCT grid), as Xu et al. do.")
    print()


# --------------------------------------------------------------------------- latent input
lat = load("cls_latent.json")
if lat:
    r = lat["results"]
    q = [p["quality"] for p in lat["rate_points"]]
    n = len(q)
    print("## Classification on icm latents (no g_s)\n")
    print("The same icm streams (each whole ImageNet-sample picture coded by the PSNR zoo) "
          "classified two ways: (a) decode-then-infer, the full decoder (g_s included) then the "
          "shared MobileNetV2 on the picture; (b) the latent path, entropy decoding and h_s "
          "only, y^ sampled at the classifier crop's 14x14 cells and the shared network with "
          "everything before its first stride-16 projection replaced by a stem trained by "
          "distillation (`models/training/icm_training/latent/`, `models/tasks/latent_cls_stem.onnx`). "
          "`scripts/tasks_report.sh` runs\n")
    print("    icm task-eval --task classification --dataset ../shared/data/imagenet-val-sample \\")
    print("        --codec icm --input-domain latents -o cls_latent.json\n")
    print("| quality | bpp | top-1 (a) decode-then-infer | top-1 (b) latents | top-5 (a) | top-5 (b) | "
          "decode (a) | decode (b) | network (a) | network (b) | multiply-adds (a) | multiply-adds (b) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i, qi in enumerate(q):
        print(f"| {qi} | {r['bpp'][i]:.3f} | {r['rgb_top1'][i]:.3f} | {r['top1'][i]:.3f} | "
              f"{r['rgb_top5'][i]:.3f} | {r['top5'][i]:.3f} | {1e3 * r['rgb_decode_s'][i]:.0f} ms | "
              f"{1e3 * r['decode_s'][i]:.1f} ms | {1e3 * r['rgb_infer_s'][i]:.1f} ms | "
              f"{1e3 * r['infer_s'][i]:.1f} ms | {r['rgb_macs'][i] / 1e9:.2f} G | "
              f"{r['macs'][i] / 1e9:.3f} G |")
    ratio = sum(r["rgb_macs"]) / sum(r["macs"])
    t_a = sum(r["rgb_decode_s"]) + sum(r["rgb_infer_s"])
    t_b = sum(r["decode_s"]) + sum(r["infer_s"])
    print("\nTimes are means per picture (ONNX Runtime and the icm decoder on CPU); decode (a) "
          "is the whole decoder, decode (b) entropy decoding and h_s (the sampling of y^ is in "
          "network (b)). "
          "Multiply-adds per picture: (a) g_s on the picture's tiles plus the classifier at "
          "224x224, (b) the composed latent network at 14x14 (entropy decoding and h_s, common "
          "to both, not counted).\n")
    print(f"- Over the {n} rate points, (b) needs {ratio:.0f} times fewer multiply-adds and "
          f"{t_a / t_b:.0f} times less time from stream to class scores than (a).")
    print(f"- Top-1 of (b) is {min(r['top1']):.3f}-{max(r['top1']):.3f} against "
          f"{min(r['rgb_top1']):.3f}-{max(r['rgb_top1']):.3f} for (a): the shipped stem is weak. "
          "It was trained on 475 of the 1,250 training pictures in under an hour of shared CPU "
          "and agreed with the teacher on 0.06 of the held-out crops "
          "(`models/training/icm_training/latent/README.md`); what a stem trained on more data reaches was "
          "not measured.")
    icm = load("cls_icm.json")
    if icm and all(abs(a - b) < 1e-9 for a, b in zip(icm["results"]["bpp"], r["bpp"])):
        diff = [qi for i, qi in enumerate(q) if icm["results"]["top1"][i] != r["rgb_top1"][i]]
        if diff:
            print(f"- (a) codes the same streams as the icm rows above (the same bpp) but its top-1 "
                  f"differs from theirs at qualities {', '.join(map(str, diff))}; cls_icm.json was "
                  "not rerun with this build, and the cause was not investigated.")
    print(f"- Wall time of the run (2 cores shared with other jobs): {lat['total_time'] / 60:.1f} min.")
    print()

dlat = load("det_latent.json")
if dlat:
    r = dlat["results"]
    q = [p["quality"] for p in dlat["rate_points"]]
    n = len(q)
    print("## Detection on icm latents (no g_s)\n")
    print("The same icm streams (each whole COCO-subset picture coded by the PSNR zoo) "
          "detected two ways: (a) decode-then-infer, the full decoder (g_s included) then "
          "YOLOX-Nano on the letterboxed picture; (b) the latent path, entropy decoding and "
          "h_s only, y^ sampled on the detector's 26x26 letterbox grid and YOLOX-Nano with its "
          "backbone (CSPDarknet) replaced by a stem that feeds the neck at strides 8, 16 and 32, "
          "trained by distillation (`models/training/icm_training/latent/train_det.py`, "
          "`models/tasks/latent_det_stem.onnx`). `scripts/tasks_report.sh` runs\n")
    print("    icm task-eval --task detection --dataset ../shared/data/coco \\")
    print("        --codec icm --input-domain latents -o det_latent.json\n")
    print("| quality | bpp | mAP (a) decode-then-infer | mAP (b) latents | mAP@.5 (a) | mAP@.5 (b) | "
          "decode (a) | decode (b) | network (a) | network (b) | multiply-adds (a) | multiply-adds (b) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i, qi in enumerate(q):
        print(f"| {qi} | {r['bpp'][i]:.3f} | {r['rgb_map'][i]:.4f} | {r['map'][i]:.4f} | "
              f"{r['rgb_map50'][i]:.4f} | {r['map50'][i]:.4f} | {1e3 * r['rgb_decode_s'][i]:.0f} ms | "
              f"{1e3 * r['decode_s'][i]:.1f} ms | {1e3 * r['rgb_infer_s'][i]:.1f} ms | "
              f"{1e3 * r['infer_s'][i]:.1f} ms | {r['rgb_macs'][i] / 1e9:.2f} G | "
              f"{r['macs'][i] / 1e9:.3f} G |")
    ratio = sum(r["rgb_macs"]) / sum(r["macs"])
    t_a = sum(r["rgb_decode_s"]) + sum(r["rgb_infer_s"])
    t_b = sum(r["decode_s"]) + sum(r["infer_s"])
    share = [b / a for a, b in zip(r["rgb_map"], r["map"]) if a > 0]
    print("\nTimes are means per picture (ONNX Runtime and the icm decoder on CPU); decode (a) "
          "is the whole decoder, decode (b) entropy decoding and h_s (the sampling of y^ is in "
          "network (b)). Multiply-adds per picture: (a) g_s on the picture's tiles plus the "
          "detector at 416x416, (b) the composed latent network at 26x26 (its stem alone is "
          "larger than the backbone it replaces; entropy decoding and h_s, common to both, not "
          "counted).\n")
    print(f"- Over the {n} rate points, (b) needs {ratio:.0f} times fewer multiply-adds and "
          f"{t_a / t_b:.0f} times less time from stream to boxes than (a).")
    print(f"- mAP of (b) is {min(r['map']):.4f}-{max(r['map']):.4f} against "
          f"{min(r['rgb_map']):.4f}-{max(r['rgb_map']):.4f} for (a) "
          f"({100 * min(share):.0f}-{100 * max(share):.0f} % of it): the shipped stem is weak. "
          "It was trained on CPU only (32 minutes of feature distillation, then 43 of feature "
          "and head distillation, on the 1,250 training pictures) and predicts about 40 % of "
          "the backbone outputs' variance (`models/training/icm_training/latent/README.md`).")
    print(f"- Wall time of the run: {dlat['total_time'] / 60:.1f} min.")
    print()

# Low rates and regions of interest (spec 1.3): scripts/steps_report.sh.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import steps_markdown  # noqa: E402

print("\n".join(steps_markdown.summary("tasks")))
