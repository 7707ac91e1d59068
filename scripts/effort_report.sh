#!/usr/bin/env bash
# Measures the encoder's rate-distortion search (icm encode --effort, spec 12.6) on Kodak
# and writes docs/results/kodak-effort.md with its figures: per effort, the BD-rate
# against effort 0 (PSNR-RGB and MS-SSIM, pchip), the rate points and the encode time.
#
#   scripts/effort_report.sh     # KODAK_DIR defaults to ../shared/data/kodak
#
# FULL_EFFORTS (default "1") run on all 24 pictures; SUBSET_EFFORTS (default "3") on the
# pictures of SUBSET (default kodim01, 07, 13, 19), each compared with effort 0 on the same
# pictures. Every run re-encodes (nothing is cached): on the 2-core machine, with other
# work running, effort 1 on all of Kodak took about 40 minutes, effort 3 on four pictures
# about 40.
set -euo pipefail
cd "$(dirname "$0")/.."
KODAK=${KODAK_DIR:-../shared/data/kodak}
FULL_EFFORTS=${FULL_EFFORTS:-1}
SUBSET_EFFORTS=${SUBSET_EFFORTS:-3}
SUBSET=${SUBSET:-01 07 13 19}
OUT=docs/results/kodak-effort
ICM=target/release/icm
[ -d "$KODAK" ] || { echo "effort_report: no Kodak images at $KODAK (set KODAK_DIR)"; exit 1; }
cargo build --release --quiet --bin icm
mkdir -p "$OUT"
six=$(mktemp -d)
trap 'rm -rf "$six"' EXIT
for i in $SUBSET; do ln -s "$(realpath "$KODAK/kodim$i.png")" "$six/"; done

run() { # effort dataset name
    echo "== effort $1 on $(ls "$2" | wc -l) pictures"
    "$ICM" eval --dataset "$2" --effort "$1" -o "$OUT/$3.json" --csv "$OUT/$3.csv"
}
run 0 "$KODAK" effort0
for e in $FULL_EFFORTS; do run "$e" "$KODAK" "effort$e"; done
if [ -n "$SUBSET_EFFORTS" ]; then
    run 0 "$six" effort0-subset
    for e in $SUBSET_EFFORTS; do run "$e" "$six" "effort$e-subset"; done
fi

# Encode time of one picture at every effort, alone on the machine.
stream=$(mktemp --suffix=.icm)
{
    echo '{"what": "icm encode KODAK/kodim01.png -q 3 --effort E, wall-clock seconds printed by the command",'
    echo ' "picture": "kodim01.png", "megapixels": 0.393216, "quality": 3, "seconds": {'
    for e in 0 1 2 3; do
        s=$("$ICM" encode "$KODAK/kodim01.png" -o "$stream" -q 3 --effort "$e" 2>/dev/null |
            sed -E 's/.*, ([0-9.]+) s$/\1/')
        printf '  "%s": %s%s\n' "$e" "$s" "$([ "$e" = 3 ] || echo ,)"
    done
    echo '}}'
} > "$OUT/encode-times.json"
rm -f "$stream"

plots=("$OUT/effort0.json") labels="effort 0"
for e in $FULL_EFFORTS; do plots+=("$OUT/effort$e.json"); labels+=",effort $e"; done
"$ICM" plot "${plots[@]}" --labels "$labels" --title "Kodak: icm zoo by encoder effort" -o "$OUT/rd.png"
python3 scripts/effort_markdown.py "$OUT" "$FULL_EFFORTS" "$SUBSET_EFFORTS" "$SUBSET" > docs/results/kodak-effort.md.tmp
mv docs/results/kodak-effort.md.tmp docs/results/kodak-effort.md
echo "effort_report: wrote docs/results/kodak-effort.md"
