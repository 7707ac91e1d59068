#!/usr/bin/env bash
# Installs everything the test suite (scripts/test.sh) needs before any test runs, so that no
# test depends on another having installed something first:
#
#   1. the project venv ${ICM_VENV:-~/.cache/icm-venv} (python3 -m venv; on Debian/Ubuntu
#      python3-venv is installed with apt-get when missing and this runs as root)
#   2. one pip install of every Python requirement of the tests (about 5 GiB on disk, 3-8
#      minutes the first time, a few seconds once satisfied):
#        scripts/task_requirements.txt   onnxruntime (the library icm loads), pycocotools,
#                                        onnx: task-decoder tests, network composition
#        tests/python/requirements.txt   jpeglib, Pillow: the libjpeg oracle of the DCT tests;
#                                        pytest; ray and tqdm: python -m icm.dist (a local
#                                        Ray runtime in python/tests/test_dist.py)
#        models/training/requirements.txt  torch (the PyPI CUDA build, most of the size),
#                                        compressai, ...: the training recipe's smoke runs
#      then the training recipe itself, the package icm_training of models/training,
#      editable (no dependencies), unless the venv has it from this checkout already
#   3. scripts/setup_ffmpeg.sh: the imageio-ffmpeg wheel (ffmpeg with libvvenc, 80 MB)
#   4. scripts/setup_onnxruntime.sh: composes the DCT- and latent-domain task networks from
#      ../shared's networks into ${ICM_TASK_CACHE:-~/.cache/icm/tasks}
#
# Prints the ONNX Runtime library path on its last line. Exits non-zero when a step fails.
# Usage: scripts/setup_test_env.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/venv.sh

step() { echo "setup: $*" >&2; }
t0=$(date +%s)
ensure_venv
step "pip install of the test requirements into $VENV (first time: about 5 GiB, several minutes)"
venv_install -r scripts/task_requirements.txt -r tests/python/requirements.txt \
    -r models/training/requirements.txt
# The venv is shared by checkouts: reinstalled when its icm_training is another checkout's.
if ! "$VENV/bin/python" -c 'import os, sys, icm_training as m
sys.exit(os.path.realpath(m.__file__) != os.path.realpath(sys.argv[1]))' \
    models/training/icm_training/__init__.py 2>/dev/null; then
    venv_install --no-deps -e models/training
fi
step "ffmpeg: $(scripts/setup_ffmpeg.sh)"
lib=$(scripts/setup_onnxruntime.sh --quiet)
step "ONNX Runtime: $lib"
step "done in $(($(date +%s) - t0)) s"
echo "$lib"
