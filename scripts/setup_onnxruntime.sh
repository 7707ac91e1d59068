#!/usr/bin/env bash
# Installs the Python side of the task decoders into the project venv and prints the path
# of the ONNX Runtime library that `icm task-eval` / `icm task-run` load at run time.
#
#   venv: ${ICM_VENV:-$HOME/.cache/icm-venv} (created when missing)
#   installs scripts/task_requirements.txt: onnxruntime 1.32 (whose wheel ships
#   onnxruntime/capi/libonnxruntime.so.1.32.0), pycocotools (reference for the Rust COCO
#   mAP test), numpy
#
# icm finds the library by itself in that venv; to use another one, set
# ORT_DYLIB_PATH=/path/to/libonnxruntime.so. The `ort` crate (rc.15, API 31) needs
# ONNX Runtime >= 1.31; a 1.22 library aborted at load (../shared/NOTES.md).
# Usage: scripts/setup_onnxruntime.sh [--quiet]   (prints only the path with --quiet)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${ICM_VENV:-$HOME/.cache/icm-venv}
log() { [ "${1:-}" = "" ] || [ "$QUIET" = 1 ] || echo "$@" >&2; }
QUIET=0
[ "${1:-}" = "--quiet" ] && QUIET=1

if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
log "installing scripts/task_requirements.txt into $VENV"
"$VENV/bin/python" -m pip install --disable-pip-version-check -q -r scripts/task_requirements.txt >&2
LIB=$("$VENV/bin/python" - <<'PY'
import glob, os, onnxruntime
capi = os.path.join(os.path.dirname(onnxruntime.__file__), "capi")
libs = sorted(glob.glob(os.path.join(capi, "libonnxruntime.so*")))
if not libs:
    raise SystemExit(f"no libonnxruntime.so* in {capi}")
print(libs[-1])
PY
)
log "onnxruntime $("$VENV/bin/python" -c 'import onnxruntime; print(onnxruntime.__version__)')"
log "export ORT_DYLIB_PATH=$LIB   # optional: icm finds it in $VENV by itself"
echo "$LIB"
