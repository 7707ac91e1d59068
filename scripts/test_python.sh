#!/usr/bin/env bash
# The Python part of the test suite (called by scripts/test.sh): pytest on
#
#   python/tests    the Python package icm (python/, distribution icm-codec) against the icm
#                   command: the same stream bytes, pixels, latents and info; BD-rate against
#                   the PyPI bjontegaard package; the conformance suite and its must-fail
#                   vectors' exception classes; hostile streams; threads; python -m icm.dist
#                   on a local Ray runtime of 2 workers against icm task-eval, icm anchor
#                   and icm eval (test_dist.py: 8 COCO pictures x 2 rate points, a worker
#                   killed mid-run, a rerun from the cache; 3 Kodak pictures x 2 qualities;
#                   about a minute and a half). Its wheel is built
#                   from this checkout by maturin (release; cargo's target folder
#                   ${ICM_PY_TARGET:-~/.cache/icm/python-target}, kept between runs: about
#                   2.5 minutes the first time on 2 cores, seconds after) and installed
#                   into the venv first; the icm command is target/release/icm (built when
#                   stale: cargo build --release --bin icm, a no-op after scripts/demo.sh).
#   models/training/tests  the training recipe (what each runs: their docstrings):
#     test_stems.py   the stem toolkit on synthetic data (needs no ../shared)
#     test_smoke.py   the recipe end to end on CPU: make_manifest --check (models/MANIFEST.json
#                     matches the files); the zoo's prepare_data, training, export, model
#                     build, codec round trip and model file read back; the machine
#                     fine-tune; the DCT and latent stems, each cached, trained, exported and
#                     composed
#
# in the venv ${ICM_VENV:-$HOME/.cache/icm-venv} with every requirement of the tests and the
# package icm_training (models/training) installed by scripts/setup_test_env.sh, run first
# unless scripts/test.sh has (ICM_TEST_ENV_READY=1); a no-op of a few seconds once satisfied;
# torch from PyPI is the large CUDA build, a few GiB.
#
# The smoke tests need ../shared/data/train (or $ICM_TRAIN_SRC), the stems also ../shared's
# classifier or detector; without them they are skipped with a message, except when
# CI=true, where that is a failure. Arguments go to both pytest runs (e.g. -k latent).
# Ends with "python: N passed, M failed"; exits non-zero on any failure.
# ICM_KEEP_TMP=1 keeps the temporary folder (pytest's working folders under it).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/venv.sh
T_ALL=$(date +%s)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/icm-python-test.XXXXXX")
if [ "${ICM_KEEP_TMP:-0}" = 1 ]; then
    echo "python: keeping $TMP"
else
    trap 'rm -rf "$TMP"' EXIT
fi

# finish PASSED FAILED [EXIT]: the closing lines, and the exit status (default: 0 unless failures)
finish() {
    echo "python: total $(($(date +%s) - T_ALL)) s"
    echo "python: $1 passed, $2 failed"
    exit "${3:-$(($2 > 0))}"
}

t0=$(date +%s)
if [ "${ICM_TEST_ENV_READY:-}" != 1 ] && ! scripts/setup_test_env.sh >"$TMP/setup.log" 2>&1; then
    echo "python: FAIL venv: scripts/setup_test_env.sh failed; last lines of its output:"
    tail -n 40 "$TMP/setup.log" | sed 's/^/    /'
    finish 0 1
fi
echo "python: venv $VENV: scripts/setup_test_env.sh took $(($(date +%s) - t0)) s"

# The package icm: its wheel, built from this checkout, installed into the venv (pip runs
# maturin, which it finds on PATH, without build isolation: no download).
t0=$(date +%s)
if ! PATH="$VENV/bin:$PATH" CARGO_TARGET_DIR="${ICM_PY_TARGET:-$HOME/.cache/icm/python-target}" \
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q --no-build-isolation \
    --no-deps ./python >"$TMP/wheel.log" 2>&1; then
    echo "python: FAIL wheel: pip install ./python failed; last lines of its output:"
    tail -n 40 "$TMP/wheel.log" | sed 's/^/    /'
    finish 0 1
fi
echo "python: the package icm built and installed in $(($(date +%s) - t0)) s"
# The extension's own Rust unit tests (how Rust errors become Python exceptions).
if ! CARGO_TARGET_DIR="${ICM_PY_TARGET:-$HOME/.cache/icm/python-target}" \
    cargo test --manifest-path python/Cargo.toml -q >"$TMP/cargo-test.log" 2>&1; then
    echo "python: FAIL cargo test --manifest-path python/Cargo.toml; last lines of its output:"
    tail -n 40 "$TMP/cargo-test.log" | sed 's/^/    /'
    finish 0 1
fi
echo "python: $(grep -h '^test result' "$TMP/cargo-test.log" | head -n 1)"
# The icm command the package is compared with, built from this checkout.
t0=$(date +%s)
if ! cargo build --release --bin icm -q >"$TMP/cli.log" 2>&1; then
    echo "python: FAIL icm: cargo build --release --bin icm failed; last lines of its output:"
    tail -n 40 "$TMP/cli.log" | sed 's/^/    /'
    finish 0 1
fi
export ICM_BIN="$PWD/target/release/icm"
echo "python: icm command ready in $(($(date +%s) - t0)) s"

# pytest once per folder, each with its own configuration (python/pyproject.toml,
# models/training/pyproject.toml; the Python reference decoder's self-tests need none) and
# report; the reports are added up below.
rc=0
for suite in python/tests models/training/tests conformance/reference_py; do
    PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -m pytest "$suite" -v -rfEs --durations=0 \
        -p no:cacheprovider --basetemp="$TMP/pytest-${suite//\//-}" \
        --junitxml="$TMP/junit-${suite//\//-}.xml" "$@" || {
        r=$?
        # 5: no test selected (arguments such as -k that match only the other folder's)
        [ "$r" = 5 ] || rc=$r
    }
done
# passed and failed (failures and errors) from pytest's reports; a missing report: that run
# of pytest itself failed
read -r passed failed < <("$VENV/bin/python" - "$TMP/junit-python-tests.xml" \
    "$TMP/junit-models-training-tests.xml" "$TMP/junit-conformance-reference_py.xml" <<'EOF' || echo "0 1"
import sys
import xml.etree.ElementTree as ET
passed = failed = 0
for path in sys.argv[1:]:
    s = ET.parse(path).getroot()
    s = s if s.tag == "testsuite" else s.find("testsuite")
    n, f, e, k = (int(s.get(a, 0)) for a in ("tests", "failures", "errors", "skipped"))
    passed, failed = passed + n - f - e - k, failed + f + e
print(passed, failed)
EOF
)
finish "$passed" "$failed" "$rc"
