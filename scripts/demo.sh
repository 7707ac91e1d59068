#!/usr/bin/env bash
# Encodes and decodes one image with the default model and prints what happened.
# Usage: scripts/demo.sh [IMAGE.png|.ppm]   (default: a synthetic 512x384 test image)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
out=target/demo
mkdir -p "$out"
img="${1:-}"
if [ -z "$img" ]; then
    img="$out/synthetic.ppm"
    python3 - "$img" <<'PY'
import math, sys
w, h = 512, 384
px = bytearray()
for y in range(h):
    for x in range(w):
        r = int(127 + 120 * math.sin(x / 23.0) * math.cos(y / 31.0))
        g = int(255 * y / h)
        b = 220 if ((x // 32 + y // 32) % 2 == 0) else 40
        px += bytes((r, g, b))
open(sys.argv[1], "wb").write(b"P6\n%d %d\n255\n" % (w, h) + bytes(px))
PY
fi
./target/release/icm encode "$img" -o "$out/image.icm"
./target/release/icm info "$out/image.icm"
./target/release/icm decode "$out/image.icm" -o "$out/decoded.png" --latents "$out/latents.npy" --hash
echo "demo: wrote $out/image.icm, $out/decoded.png and $out/latents.npy"
