"""y^ sampled as the latent stems' training saw it, for tests/it/latent_task.rs: at the
classifier crop's cells (icm_training.latent.inputs.sample_latents), or with --detection on
the detector's letterbox grid with the coverage channel (sample_letterbox); the training
package is models/training, installed in the project venv by scripts/setup_test_env.sh.

    python tests/python/latent_sampling.py [--detection] Y.npy WIDTH HEIGHT OUT.npy

Y.npy: y^ as `icm decode --latents` writes it (int32, (192, rows, cols)); WIDTH x HEIGHT:
the coded picture; OUT.npy: float32 (192, 14, 14), or (193, 26, 26) with --detection.
"""
import sys

import numpy as np

from icm_training.latent.inputs import sample_latents, sample_letterbox
from icm_training.stems.detector import letterbox_size

args = sys.argv[1:]
detection = args[:1] == ["--detection"]
if detection:
    args = args[1:]
y = np.load(args[0])
w, h = int(args[1]), int(args[2])
if detection:
    nw, nh, _ = letterbox_size(w, h)
    out = sample_letterbox(y, w, h, nw, nh)
else:
    out = sample_latents(y, w, h)
np.save(args[3], np.ascontiguousarray(out, dtype="<f4"))
