#!/usr/bin/env bash
# Encodes and decodes one picture with the default model and prints what happened.
# Usage: scripts/demo.sh [IMAGE]   (any picture icm encode reads: PNG, PPM, JPEG, WebP, TIFF,
# ...; default: a synthetic 512x384 test image). Outputs go to target/demo/.
#
# The first run builds icm in release mode: 4 minutes on the 2-core development machine,
# longer on slower ones (cargo prints each crate as it compiles); later runs start at once.
set -euo pipefail
# Resolve the argument before changing to the repository root, so relative paths work.
img=""
if [ $# -gt 0 ]; then
    [ -f "$1" ] || { echo "demo: $1: no such file" >&2; exit 1; }
    img=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
fi
cd "$(dirname "$0")/.."
if [ ! -x target/release/icm ]; then
    echo "demo: building icm (release; the first build takes several minutes: 4 on 2 cores here)"
fi
cargo build --release --bin icm
out=target/demo
mkdir -p "$out"
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
