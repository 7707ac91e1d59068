"""y^ sampled as the latent stems' training saw it, for tests/it/latent_task.rs: at the
classifier crop's cells (models/training/latent/latent_common.sample_latents), or with
--detection on the detector's letterbox grid with the coverage channel
(models/training/latent/det_common.sample_letterbox).

    python tests/python/latent_sampling.py [--detection] Y.npy WIDTH HEIGHT OUT.npy

Y.npy: y^ as `icm decode --latents` writes it (int32, (192, rows, cols)); WIDTH x HEIGHT:
the coded picture; OUT.npy: float32 (192, 14, 14), or (193, 26, 26) with --detection.
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models" / "training" / "latent"))
from latent_common import sample_latents  # noqa: E402

args = sys.argv[1:]
detection = args[:1] == ["--detection"]
if detection:
    args = args[1:]
y = np.load(args[0])
w, h = int(args[1]), int(args[2])
if detection:
    from det_common import letterbox_size, sample_letterbox  # noqa: E402

    nw, nh, _ = letterbox_size(w, h)
    out = sample_letterbox(y, w, h, nw, nh)
else:
    out = sample_latents(y, w, h)
np.save(args[3], np.ascontiguousarray(out, dtype="<f4"))
