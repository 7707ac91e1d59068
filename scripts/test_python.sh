#!/usr/bin/env bash
# The Python part of the test suite (called by scripts/test.sh): pytest on the tests of the
# training recipe, models/training/tests (what each runs: their docstrings):
#
#   test_stems.py   the stem toolkit on synthetic data (needs no ../shared)
#   test_smoke.py   the recipe end to end on CPU: make_manifest --check (models/MANIFEST.json
#                   matches the files); the zoo's prepare_data, training, export, model build,
#                   codec round trip and model file read back; the machine fine-tune; the DCT
#                   and latent stems, each cached, trained, exported and composed
#
# in the venv ${ICM_VENV:-$HOME/.cache/icm-venv} with every requirement of the tests and the
# package icm_training (models/training) installed by scripts/setup_test_env.sh, run first
# unless scripts/test.sh has (ICM_TEST_ENV_READY=1); a no-op of a few seconds once satisfied;
# torch from PyPI is the large CUDA build, a few GiB.
#
# The smoke tests need ../shared/data/train (or $ICM_TRAIN_SRC), the stems also ../shared's
# classifier or detector; without them they are skipped with a message, except when
# CI=true, where that is a failure. Arguments go to pytest (e.g. -k latent).
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

rc=0
PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -m pytest models/training/tests -v -rfEs --durations=0 \
    -p no:cacheprovider --basetemp="$TMP/pytest" --junitxml="$TMP/junit.xml" "$@" || rc=$?
# passed and failed (failures and errors) from pytest's report; no report: pytest itself failed
read -r passed failed < <("$VENV/bin/python" - "$TMP/junit.xml" <<'EOF' || echo "0 1"
import sys
import xml.etree.ElementTree as ET
s = ET.parse(sys.argv[1]).getroot()
s = s if s.tag == "testsuite" else s.find("testsuite")
n, f, e, k = (int(s.get(a, 0)) for a in ("tests", "failures", "errors", "skipped"))
print(n - f - e - k, f + e)
EOF
)
finish "$passed" "$failed" "$rc"
