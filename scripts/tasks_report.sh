#!/usr/bin/env bash
# Regenerates docs/results/tasks.md, its results files and plots: machine-task accuracy
# per bit rate of the icm zoo, VVC, HEVC and JPEG (and the uncompressed ceiling) for
# detection (YOLOX-Nano, COCO subset), classification (MobileNetV2, ImageNet sample) and
# segmentation (DeepLabV3, COCO subset with VOC-mapped masks), with task BD-rates against
# VVC; classification on JPEG DCT coefficients (192 and 24 channels) against decoding
# the same JPEGs to RGB; and classification and detection on icm latents against
# decode-then-infer.
#
#   scripts/tasks_report.sh [--reuse] [--tasks "detection classification segmentation"]
#                           [--codecs "none icm vvc hevc jpeg"]
#
#   --reuse   keep results files that exist (only format the report and plots again)
#
# Data: COCO_DIR (default ../shared/data/coco), IMAGENET_DIR (default
# ../shared/data/imagenet-val-sample). Needs ONNX Runtime and ffmpeg, which
# scripts/setup_onnxruntime.sh and scripts/setup_ffmpeg.sh install (run here). Anchors are
# cached (~/.cache/icm/anchors): the first run takes hours on 2 cores (VVC at preset medium
# codes every picture at six QPs: about 80 minutes for the COCO pictures, 75 for the
# ImageNet ones), a rerun about 30 minutes (the icm zoo is coded again).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=docs/results
COCO=${COCO_DIR:-../shared/data/coco}
INET=${IMAGENET_DIR:-../shared/data/imagenet-val-sample}
TASKS="detection classification segmentation"
CODECS="none icm vvc hevc jpeg"
REUSE=0
while [ $# -gt 0 ]; do
    case $1 in
        --reuse) REUSE=1; shift ;;
        --tasks) TASKS=$2; shift 2 ;;
        --codecs) CODECS=$2; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "tasks_report: unknown argument $1" >&2; exit 2 ;;
    esac
done
cargo build --release --quiet --bin icm
ICM=target/release/icm
scripts/setup_onnxruntime.sh --quiet >/dev/null
scripts/setup_ffmpeg.sh >/dev/null

prefix() { case $1 in detection) echo det ;; classification) echo cls ;; segmentation) echo seg ;; esac; }
dataset() { case $1 in classification) echo "$INET" ;; *) echo "$COCO" ;; esac; }

for task in $TASKS; do
    p=$(prefix "$task")
    for codec in $CODECS; do
        json="$OUT/${p}_$codec.json"
        if [ "$REUSE" = 1 ] && [ -s "$json" ]; then
            continue
        fi
        echo "== $task $codec"
        "$ICM" task-eval --task "$task" --dataset "$(dataset "$task")" --codec "$codec" \
            -o "$json" --csv "$OUT/${p}_$codec.csv"
    done
done

# Classification on JPEG DCT coefficients (spec Annex B): the same JPEGs decoded to RGB, or
# read as 192 or the 24 selected frequency channels.
if [[ " $TASKS " == *" classification "* ]]; then
    for d in rgb dct192 dct24; do
        json="$OUT/cls_jpeg_$d.json"
        if [ "$REUSE" = 1 ] && [ -s "$json" ]; then
            continue
        fi
        echo "== classification jpeg-ijg $d"
        "$ICM" task-eval --task classification --dataset "$INET" --codec jpeg-ijg --input-domain "$d" \
            -o "$json" --csv "$OUT/cls_jpeg_$d.csv"
    done
fi

# Classification on icm latents (issue 8): the zoo's streams classified from y^ without g_s,
# against decode-then-infer on the same streams (needs the composed latent network).
if [[ " $TASKS " == *" classification "* ]]; then
    json="$OUT/cls_latent.json"
    if [ "$REUSE" != 1 ] || [ ! -s "$json" ]; then
        echo "== classification icm latents"
        "$ICM" task-eval --task classification --dataset "$INET" --codec icm --input-domain latents \
            -o "$json" --csv "$OUT/cls_latent.csv"
    fi
fi

# Detection on icm latents (issue 8): the zoo's streams of the COCO pictures, YOLOX-Nano's
# neck and head fed by the latent stem, against decode-then-infer on the same streams.
if [[ " $TASKS " == *" detection "* ]]; then
    json="$OUT/det_latent.json"
    if [ "$REUSE" != 1 ] || [ ! -s "$json" ]; then
        echo "== detection icm latents"
        "$ICM" task-eval --task detection --dataset "$COCO" --codec icm --input-domain latents \
            -o "$json" --csv "$OUT/det_latent.csv"
    fi
fi

# Plots: accuracy against bpp, the uncompressed score as the ceiling.
ceiling() { # FILE METRIC
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["results"][sys.argv[2]][0])' "$1" "$2"
}
plot() { # PREFIX METRIC TITLE
    local p=$1 m=$2 files=() labels=()
    for codec in icm vvc hevc jpeg latent; do
        [ -s "$OUT/${p}_$codec.json" ] || continue
        files+=("$OUT/${p}_$codec.json")
        labels+=("$([ "$codec" = latent ] && echo "icm latents (no g_s)" || echo "$codec")")
    done
    local ceil=()
    [ -s "$OUT/${p}_none.json" ] && ceil=(--ceiling "$(ceiling "$OUT/${p}_none.json" "$m"):uncompressed")
    "$ICM" plot "${files[@]}" --metric "$m" --labels "$(IFS=,; echo "${labels[*]}")" \
        --title "$3" "${ceil[@]}" -o "$OUT/tasks-$p-$m.png"
}
[ -s "$OUT/det_icm.json" ] && plot det map "Detection (YOLOX-Nano, COCO subset): mAP@[.5:.95] vs rate"
[ -s "$OUT/cls_icm.json" ] && plot cls top1 "Classification (MobileNetV2, ImageNet sample): top-1 vs rate"
[ -s "$OUT/seg_icm.json" ] && plot seg miou "Segmentation (DeepLabV3, COCO subset): mIoU vs rate"

# Task BD-rates against VVC: pchip on each curve's upper envelope, and the cubic fit of
# all points, as one JSON object per line.
: >"$OUT/tasks-bdrate.jsonl"
for pm in det:map det:map50 cls:top1 cls:top5 seg:miou seg:pixel_accuracy seg:miou_agreement; do
    p=${pm%%:*}
    m=${pm#*:}
    [ -s "$OUT/${p}_vvc.json" ] || continue
    for codec in icm hevc jpeg; do
        [ -s "$OUT/${p}_$codec.json" ] || continue
        for method in pchip-envelope cubic; do
            args=(--method "${method%%-*}")
            [ "$method" = pchip-envelope ] && args+=(--envelope)
            if r=$("$ICM" bd-rate --anchor "$OUT/${p}_vvc.json" --test "$OUT/${p}_$codec.json" \
                --metric "$m" "${args[@]}" --json 2>&1); then
                echo "{\"task\":\"$p\",\"metric\":\"$m\",\"codec\":\"$codec\",\"method\":\"$method\",\"result\":$r}"
            else
                r=$(printf '%s' "$r" | tail -1 | sed 's/\\/\\\\/g; s/"/\\"/g')
                echo "{\"task\":\"$p\",\"metric\":\"$m\",\"codec\":\"$codec\",\"method\":\"$method\",\"error\":\"$r\"}"
            fi
        done
    done >>"$OUT/tasks-bdrate.jsonl"
done

python3 scripts/tasks_markdown.py "$OUT" >"$OUT/tasks.md.tmp"
mv "$OUT/tasks.md.tmp" "$OUT/tasks.md"
echo "tasks_report: wrote $OUT/tasks.md"
