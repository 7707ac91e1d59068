#!/usr/bin/env bash
# Installs the ffmpeg that `icm anchor` uses by default: the static build in the PyPI wheel
# imageio-ffmpeg (libvvenc, the native VVC decoder, libx265, libaom, libdav1d, libjxl,
# libwebp), into the project's virtual environment ${ICM_VENV:-~/.cache/icm-venv}.
# Prints the path of the ffmpeg executable. A no-op of a second when already installed.
set -euo pipefail
. "$(dirname "$0")/lib/venv.sh"
ensure_venv
if ! "$VENV/bin/python" -c "import imageio_ffmpeg" 2>/dev/null; then
    venv_install "imageio-ffmpeg==0.8.1"
fi
"$VENV/bin/python" -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())"
