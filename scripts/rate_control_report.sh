#!/usr/bin/env bash
# Measures rate control (icm encode --bpp, spec 12.7) on Kodak: for every picture and
# target, the size reached against the target, the model and step chosen and the encode
# time. Writes docs/results/kodak-rate-control/rate_control.csv; scripts/
# rate_control_markdown.py turns it into the tables of docs/results/kodak-rate-control.md.
#
#   scripts/rate_control_report.sh     # KODAK_DIR defaults to ../shared/data/kodak
#
# TARGETS (default "0.1 0.25 0.5 0.75 1.0 1.5") in bits per pixel. About 8 minutes on the
# 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
KODAK=${KODAK_DIR:-../shared/data/kodak}
TARGETS=${TARGETS:-0.1 0.25 0.5 0.75 1.0 1.5}
OUT=docs/results/kodak-rate-control
ICM=target/release/icm
[ -d "$KODAK" ] || { echo "rate_control_report: no Kodak images at $KODAK (set KODAK_DIR)"; exit 1; }
cargo build --release --quiet --bin icm
mkdir -p "$OUT"
stream=$(mktemp --suffix=.icm)
trap 'rm -f "$stream"' EXIT
csv="$OUT/rate_control.csv.tmp"
echo "picture,target_bpp,target_bytes,bytes,bpp,model,step,seconds" > "$csv"
for t in $TARGETS; do
    echo "== target $t bpp"
    for png in "$KODAK"/*.png; do
        # "OUT: WxH, N bytes, B bpp, model M, step S, T s" then "target N bytes (...)"
        line=$("$ICM" encode "$png" -o "$stream" --bpp "$t" | tr '\n' ' ')
        echo "$line" | sed -E "s#^.*: [0-9]+x[0-9]+, ([0-9]+) bytes, ([0-9.]+) bpp, model ([^,]+), step ([0-9.]+), ([0-9.]+) s target ([0-9]+) bytes.*#$(basename "$png" .png),$t,\6,\1,\2,\3,\4,\5#" >> "$csv"
    done
done
mv "$csv" "$OUT/rate_control.csv"
~/.cache/icm-venv/bin/python scripts/rate_control_markdown.py "$OUT/rate_control.csv" > docs/results/kodak-rate-control.md
echo "wrote docs/results/kodak-rate-control.md"
