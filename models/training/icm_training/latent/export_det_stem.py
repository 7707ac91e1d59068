"""Latent detection stem checkpoint -> ONNX stem file (what models/tasks/ ships).

    python -m icm_training.latent.export_det_stem --ckpt OUT/ckpt.pt \
        --out models/tasks/latent_det_stem.onnx

The file is an opset-11 graph (torch.onnx, batch norms folded): input `latents` float32
(N, 193, 26, 26), y^ in units of 1 (the decoder's fixed-point values / 256) sampled on the
detector's letterbox grid and the coverage channel (inputs.sample_letterbox,
crates/icm-eval/src/task/latent_detection.rs); outputs `dark3` (N, 64, 52, 52), `dark4`
(N, 128, 26, 26) and `dark5` (N, 256, 13, 13), YOLOX-Nano's backbone outputs, which replace
the detector's tensors named by the metadata key `icm.cuts`. Metadata: `icm.input` =
`latents`, `icm.task` = `detection`, `icm.grid` = 26, `icm.latent_channels` = 192,
`icm.training` (the run's summary). scripts/compose_latent_tasks.py joins it to the
detector's neck and head.
"""
from __future__ import annotations

import sys

import numpy as np
import torch

from ..stems.blocks import macs
from ..stems.detector import CUT_NAMES, CUTS
from ..stems.export import export_main, summary, torch_graph
from .inputs import DET_CHANNELS, DET_GRID
from .stem import DetStem


def build(ck):
    stem = DetStem(ck["model"]["mean"].shape[0])
    stem.load_state_dict(ck["model"])
    stem.eval()
    n = macs(stem, DET_GRID, DET_GRID)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(
        (2, DET_CHANNELS, DET_GRID, DET_GRID)).astype(np.float32))
    meta = {"icm.input": "latents", "icm.task": "detection", "icm.cuts": ",".join(CUTS),
            "icm.grid": str(DET_GRID), "icm.latent_channels": str(DET_CHANNELS - 1),
            "icm.training": summary(ck, macs=n)}
    model = torch_graph(stem, x, "latents", list(CUT_NAMES), "icm_latent_det_stem", meta)
    return stem, model, x, f"step {ck.get('summary', {}).get('steps')}, {n / 1e6:.0f} M multiply-adds"


def main(argv=None) -> int:
    return export_main(__doc__, build, argv)


if __name__ == "__main__":
    sys.exit(main())
