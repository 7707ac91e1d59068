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
# ONNX Runtime and pycocotools for the task-decoder tests (tests/task_*.rs) in the project
# venv; icm finds the library there. Outside CI a failed install only makes those tests skip.
if ORT_LIB=$(scripts/setup_onnxruntime.sh --quiet); then
    echo "test: ONNX Runtime at $ORT_LIB"
elif [ "${CI:-}" = true ]; then
    echo "test: scripts/setup_onnxruntime.sh failed (CI=true)" >&2
    exit 1
else
    echo "test: warning: scripts/setup_onnxruntime.sh failed; task tests will skip" >&2
fi

cargo test --all-targets
# The normative path must give the same latents in every build: rerun the vectors in release.
cargo test --release --test determinism

if [ -x scripts/test_python.sh ]; then
    scripts/test_python.sh
fi
