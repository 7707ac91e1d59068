#!/usr/bin/env bash
# Runs the whole test suite: the set-up (scripts/setup_test_env.sh), Rust unit, integration
# and property tests (debug build), the determinism vectors again in a release build, and
# the training recipe's smoke runs (scripts/test_python.sh). Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Every Python package and tool a test uses is installed here, before any test runs (the
# first time about 5 GiB and several minutes; see scripts/setup_test_env.sh). Under CI a
# failed set-up fails the run; elsewhere the tests that need what is missing skip.
if ORT_LIB=$(scripts/setup_test_env.sh); then
    echo "test: ONNX Runtime at $ORT_LIB"
    export ICM_TEST_ENV_READY=1
elif [ "${CI:-}" = true ]; then
    echo "test: scripts/setup_test_env.sh failed (CI=true)" >&2
    exit 1
else
    echo "test: warning: scripts/setup_test_env.sh failed; the tests that need Python packages, ffmpeg or ONNX Runtime will skip" >&2
fi

cargo test --workspace --all-targets
# The normative path must give the same latents in every build: rerun the vectors in release.
cargo test --release --test it determinism::

# The README's first command, given a relative path from another folder (issue 24 item 6).
demo_log=$(mktemp)
if (cd tests && ../scripts/demo.sh ../conformance/reference/v1-noise-96x96.png) >"$demo_log" 2>&1 &&
    grep -q "latents sha256" "$demo_log" && [ -s target/demo/decoded.png ]; then
    echo "test: scripts/demo.sh ok"
else
    echo "test: scripts/demo.sh FAILED:" >&2
    tail -n 20 "$demo_log" >&2
    exit 1
fi
rm -f "$demo_log"

if [ -x scripts/test_python.sh ]; then
    scripts/test_python.sh
fi
