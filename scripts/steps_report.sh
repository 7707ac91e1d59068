#!/usr/bin/env bash
# Measures quantisation steps and region-of-interest coding (spec 12.7) and writes their
# results files into docs/results (tables in kodak.md and tasks.md):
# - kodak-icm-q3-steps.json: one model (zoo q3) swept by a global step over the zoo's
#   range, against the zoo's six models (kodak-icm.json);
# - {det,cls,seg}_icm-low.json: the zoo's lowest model at steps 1.5 to 4, extending the
#   icm task curves (the zoo's are {det,cls,seg}_icm.json) down to where accuracy falls;
# - {det,cls,seg}_icm-roi.json: icm with --roi TASK (the task's default background step
#   factor: 16 for classification, 3 otherwise) from q1 at step 3 to q5;
# - det_icm-roi-g{G}.json: detection ROI with other background factors G (GSWEEP, default
#   "6 12"), at q1 and q2 with the boxes at step 1 and q1 at step 1.5.
#
#   scripts/steps_report.sh      # REUSE=1 keeps results files that exist
#
# ICM (default target/release/icm) is the binary used. About 75 minutes on the 2-core
# machine (detection 20, classification 25, segmentation 20, Kodak 8).
set -euo pipefail
cd "$(dirname "$0")/.."
KODAK=${KODAK_DIR:-../shared/data/kodak}
COCO=${COCO_DIR:-../shared/data/coco}
INET=${IMAGENET_DIR:-../shared/data/imagenet-val-sample}
TASKS=${TASKS:-detection classification segmentation}
REUSE=${REUSE:-0}
OUT=docs/results
ICM=${ICM:-target/release/icm}
LOW=1@4,1@3,1@2,1@1.5
ROI=1@3,1@2,1@1.5,1..5
[ "$ICM" != target/release/icm ] || cargo build --release --quiet --bin icm
scripts/setup_onnxruntime.sh --quiet >/dev/null

run() { # results-name command...
    local json="$OUT/$1.json"
    shift
    if [ "$REUSE" = 1 ] && [ -s "$json" ]; then return; fi
    echo "== $(basename "$json" .json)"
    local start=$SECONDS
    "$@" -o "$json" --csv "${json%.json}.csv"
    echo "   $((SECONDS - start)) s"
}
prefix() { case $1 in detection) echo det ;; classification) echo cls ;; segmentation) echo seg ;; esac; }
dataset() { case $1 in classification) echo "$INET" ;; *) echo "$COCO" ;; esac; }

for task in $TASKS; do
    p=$(prefix "$task")
    run "${p}_icm-low" "$ICM" task-eval --task "$task" --dataset "$(dataset "$task")" --qualities "$LOW"
    run "${p}_icm-roi" "$ICM" task-eval --task "$task" --dataset "$(dataset "$task")" --qualities "$ROI" --roi "$task"
done
for g in ${GSWEEP-6 12}; do
    run "det_icm-roi-g$g" "$ICM" task-eval --task detection --dataset "$COCO" --qualities 1@1.5,1,2 \
        --roi detection --roi-background "$g"
done
run kodak-icm-q3-steps "$ICM" eval --dataset "$KODAK" --qualities 3@0.45,3@0.6,3@0.8,3@1,3@1.3,3@1.8,3@2.5
