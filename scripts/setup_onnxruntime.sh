#!/usr/bin/env bash
# Installs the Python side of the task decoders into the project venv and prints the path
# of the ONNX Runtime library that `icm task-eval` / `icm task-run` load at run time.
#
#   venv: ${ICM_VENV:-$HOME/.cache/icm-venv} (created when missing)
#   installs scripts/task_requirements.txt: onnxruntime 1.32 (whose wheel ships
#   onnxruntime/capi/libonnxruntime.so.1.32.0), pycocotools (reference for the Rust COCO
#   mAP test), numpy, onnx
#   composes the DCT-domain classifiers (scripts/compose_dct_tasks.py: the stems of
#   models/tasks/ joined to ../shared's MobileNetV2) and the latent-domain classifier and
#   detector (scripts/compose_latent_tasks.py, with ../shared's MobileNetV2 and YOLOX-Nano)
#   in ${ICM_TASK_CACHE:-~/.cache/icm/tasks} when ../shared (or $ICM_TASK_MODELS) has the
#   networks; a no-op when up to date
#
# icm finds the library by itself in that venv; to use another one, set
# ORT_DYLIB_PATH=/path/to/libonnxruntime.so. The `ort` crate (rc.15, API 31) needs
# ONNX Runtime >= 1.31; a 1.22 library aborted at load (../shared/NOTES.md).
# Usage: scripts/setup_onnxruntime.sh [--quiet]   (prints only the path with --quiet)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/venv.sh
log() { [ "${1:-}" = "" ] || [ "$QUIET" = 1 ] || echo "$@" >&2; }
QUIET=0
[ "${1:-}" = "--quiet" ] && QUIET=1

ensure_venv
log "installing scripts/task_requirements.txt into $VENV"
venv_install -r scripts/task_requirements.txt
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
# Exit status 2: no shared classifier (../shared absent), nothing to compose.
rc=0
"$VENV/bin/python" scripts/compose_dct_tasks.py $([ "$QUIET" = 1 ] && echo --quiet) || rc=$?
if [ "$rc" = 2 ]; then
    log "DCT-domain classifiers not composed (no shared classifier)"
elif [ "$rc" != 0 ]; then
    echo "setup_onnxruntime: scripts/compose_dct_tasks.py failed" >&2
    exit 1
fi
rc=0
"$VENV/bin/python" scripts/compose_latent_tasks.py $([ "$QUIET" = 1 ] && echo --quiet) || rc=$?
if [ "$rc" = 2 ]; then
    log "latent-domain networks not all composed (a shared network is missing)"
elif [ "$rc" != 0 ]; then
    echo "setup_onnxruntime: scripts/compose_latent_tasks.py failed" >&2
    exit 1
fi
log "export ORT_DYLIB_PATH=$LIB   # optional: icm finds it in $VENV by itself"
echo "$LIB"
