#!/usr/bin/env bash
# Runs the whole test suite: Rust unit, integration and property tests (debug build), the
# determinism vectors again in a release build, and the training recipe's smoke run when
# its Python environment can be set up. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# The anchor test (tests/anchor.rs) runs a real ffmpeg with libvvenc: install the PyPI
# wheel imageio-ffmpeg into the project venv (a no-op when present).
if ! scripts/setup_ffmpeg.sh >/dev/null; then
    echo "test.sh: could not install imageio-ffmpeg; the anchor test will be skipped (or fail under CI=true)"
fi

cargo test --all-targets
# The normative path must give the same latents in every build: rerun the vectors in release.
cargo test --release --test determinism

if [ -x scripts/test_python.sh ]; then
    scripts/test_python.sh
fi
