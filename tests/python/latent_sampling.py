"""y^ sampled at the classifier crop's cells as the latent stem's training saw it
(models/training/latent/latent_common.sample_latents), for tests/latent_task.rs.

    python tests/python/latent_sampling.py Y.npy WIDTH HEIGHT OUT.npy

Y.npy: y^ as `icm decode --latents` writes it (int32, (192, rows, cols)); WIDTH x HEIGHT:
the coded picture; OUT.npy: float32 (192, 14, 14).
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models" / "training" / "latent"))
from latent_common import sample_latents  # noqa: E402

y = np.load(sys.argv[1])
out = sample_latents(y, int(sys.argv[2]), int(sys.argv[3]))
np.save(sys.argv[4], np.ascontiguousarray(out, dtype="<f4"))
