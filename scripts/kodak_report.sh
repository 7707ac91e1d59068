#!/usr/bin/env bash
# Regenerates docs/results/kodak.md and its figures: the icm zoo (icm eval) and the
# conventional anchors (icm anchor: VVC, HEVC, AV1, JPEG, JPEG XL, WebP) on the 24 Kodak
# images, the published CompressAI VTM points, BD-rates against our VVC anchor, and the RD
# plots.
#
#   scripts/kodak_report.sh              # KODAK_DIR defaults to ../shared/data/kodak
#
# Needs ffmpeg with libvvenc etc.: scripts/setup_ffmpeg.sh installs it (run here when no
# ffmpeg is found). Anchors are cached (~/.cache/icm/anchors), so a rerun takes a minute
# or two (the icm zoo is re-encoded); the first run takes about 15 minutes on 2 cores,
# most of it VVC.
set -euo pipefail
cd "$(dirname "$0")/.."
KODAK=${KODAK_DIR:-../shared/data/kodak}
OUT=docs/results
ICM=target/release/icm
[ -d "$KODAK" ] || { echo "kodak_report: no Kodak images at $KODAK (set KODAK_DIR)"; exit 1; }
cargo build --release --quiet --bin icm
[ -n "${ICM_FFMPEG:-}" ] || scripts/setup_ffmpeg.sh >/dev/null

"$ICM" eval --dataset "$KODAK" --qualities 1..6 -o "$OUT/kodak-icm.json" --csv "$OUT/kodak-icm.csv"
for codec in vvc hevc av1 jpeg jxl webp; do
    echo "== $codec"
    "$ICM" anchor --codec "$codec" --dataset "$KODAK" -o "$OUT/kodak-$codec.json" --csv "$OUT/kodak-$codec.csv"
done

CURVES=("$OUT/kodak-icm.json" "$OUT/kodak-vvc.json" "$OUT/vtm-compressai-kodak.json"
        "$OUT/kodak-hevc.json" "$OUT/kodak-av1.json" "$OUT/kodak-jxl.json"
        "$OUT/kodak-webp.json" "$OUT/kodak-jpeg.json")
LABELS="icm-psnr (zoo),VVC (libvvenc 4:2:0 10-bit),VTM 4:4:4 (CompressAI published),HEVC (x265 4:2:0 10-bit),AV1 (libaom 4:2:0 10-bit),JPEG XL (libjxl),WebP (libwebp),JPEG (ffmpeg mjpeg)"
# The zoo with the encoder's search (icm encode --effort 1), measured by
# scripts/effort_report.sh (40 minutes, so not rerun here).
EFFORT1="$OUT/kodak-effort/effort1.json"
if [ -f "$EFFORT1" ]; then
    CURVES=("${CURVES[0]}" "$EFFORT1" "${CURVES[@]:1}")
    LABELS="${LABELS%%,*},icm-psnr (zoo) --effort 1,${LABELS#*,}"
fi
for ext in png svg; do
    "$ICM" plot "${CURVES[@]}" --labels "$LABELS" --title "Kodak: PSNR-RGB vs rate" -o "$OUT/kodak-rd.$ext"
done
"$ICM" plot "$OUT/kodak-icm.json" "$OUT/kodak-vvc.json" "$OUT/kodak-hevc.json" "$OUT/kodak-av1.json" \
    "$OUT/kodak-jxl.json" "$OUT/kodak-webp.json" "$OUT/kodak-jpeg.json" --metric ms-ssim \
    --labels "icm-psnr (zoo),VVC,HEVC,AV1,JPEG XL,WebP,JPEG" --title "Kodak: MS-SSIM vs rate" \
    -o "$OUT/kodak-rd-msssim.png"

# BD-rate (pchip) of every curve against an anchor; "n/a" where the curves do not overlap.
bd() {
    local j
    if j=$("$ICM" bd-rate --anchor "$1" --test "$2" --metric "$3" --json 2>/dev/null); then
        python3 -c 'import json, sys; print("%+.2f %%" % json.load(sys.stdin)["bd_rate_percent"])' <<<"$j"
    else
        echo "n/a"
    fi
}
{
    echo "| codec | BD-rate vs our VVC, PSNR-RGB | BD-rate vs our VVC, MS-SSIM | BD-rate vs published VTM 4:4:4, PSNR-RGB |"
    echo "|---|---|---|---|"
    for name in icm icm-effort1 vvc hevc av1 jxl webp jpeg; do
        f="$OUT/kodak-$name.json"
        if [ "$name" = icm-effort1 ]; then
            [ -f "$EFFORT1" ] || continue
            f=$EFFORT1 name="icm --effort 1"
        fi
        echo "| $name | $(bd "$OUT/kodak-vvc.json" "$f" psnr-rgb) | $(bd "$OUT/kodak-vvc.json" "$f" ms-ssim) | $(bd "$OUT/vtm-compressai-kodak.json" "$f" psnr-rgb) |"
    done
} > "$OUT/kodak-bdrate.md"

python3 scripts/kodak_markdown.py "$OUT" > "$OUT/kodak.md.tmp"
mv "$OUT/kodak.md.tmp" "$OUT/kodak.md"
echo "kodak_report: wrote $OUT/kodak.md"
