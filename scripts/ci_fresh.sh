#!/usr/bin/env bash
# Runs CI as a new machine would: `bash .ci/run` with CI=true in a fresh clone of the
# committed HEAD (../shared linked beside it) and an empty home folder, so no venv, pip
# cache, task cache or build output of earlier runs can hide a missing install step. The
# Rust toolchain is the only thing taken from this machine (CARGO_HOME, RUSTUP_HOME).
#
# Takes as long as CI on a new machine: 23 to 35 minutes measured on 2 cores (a clean build, about
# 5 GiB of Python packages, the whole suite). Run it before submitting a change to the
# tests or the set-up. Uncommitted changes are not included.
# Usage: scripts/ci_fresh.sh [LOG]   (LOG: where the output goes; default: the terminal)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
shared=$(cd "$root/.." && pwd)/shared
[ -d "$shared" ] || { echo "ci_fresh: $shared not found (CI runs with ../shared beside the clone)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/icm-ci-fresh.XXXXXX")
mkdir "$work/home"
ln -s "$shared" "$work/shared"
git clone --quiet --no-hardlinks "$root" "$work/main"
echo "ci_fresh: clone of $(git rev-parse --short HEAD) in $work/main, HOME=$work/home" >&2
[ $# -gt 0 ] && exec >"$1" 2>&1
cd "$work/main"
rc=0
env HOME="$work/home" CI=true \
    CARGO_HOME="${CARGO_HOME:-$(dirname "$(dirname "$(command -v cargo)")")}" \
    RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" \
    bash .ci/run </dev/null || rc=$?
echo "ci_fresh: .ci/run exited $rc ($work kept; remove it when done)"
exit $rc
