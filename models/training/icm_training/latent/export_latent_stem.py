"""Latent classifier stem checkpoint -> ONNX stem file (what models/tasks/ ships).

    python -m icm_training.latent.export_latent_stem --ckpt OUT/ckpt.pt \
        --out models/tasks/latent_cls_stem.onnx

The file is a plain opset-11 graph (stems.export.stem_graph): input `latents` float32
(N, 192, rows, cols), y^ in units of 1 (the decoder's fixed-point values / 256) sampled at
the classifier crop's cells (inputs.sample_latents, crates/icm-eval/src/task/latent.rs);
output `features` (N, 64, rows, cols), MobileNetV2's tensor at the cut named by the
metadata key `icm.cut` (a name suffix in the shared classifier). Metadata `icm.input` =
`latents`, `icm.grid` = 14 (the grid the stem was trained on), `icm.latent_channels` and
`icm.training` (the run's summary). Batch norms are folded into the convolutions.
scripts/compose_latent_tasks.py prepends it to the shared classifier's tail; train
--init-stem reads it back.
"""
from __future__ import annotations

import sys

import torch

from ..stems.blocks import macs
from ..stems.classifier import LATENT_CUT
from ..stems.export import export_main, stem_graph, summary
from .inputs import GRID
from .stem import LatentStem


def build(ck):
    c = ck["model"]["mean"].shape[0]
    stem = LatentStem(c)
    stem.load_state_dict(ck["model"])
    stem.eval()
    n = macs(stem, GRID, GRID)
    meta = {"icm.training": summary(ck, macs_14x14=n), "icm.input": "latents",
            "icm.cut": LATENT_CUT.suffix, "icm.grid": str(GRID), "icm.latent_channels": str(c)}
    x = torch.randn(2, c, GRID, GRID) * 2
    return stem, stem_graph(stem, "latents", "icm_latent_stem", meta), x, \
        f"{n / 1e6:.1f} M multiply-adds at {GRID}x{GRID}"


def main(argv=None) -> int:
    return export_main(__doc__, build, argv)


if __name__ == "__main__":
    sys.exit(main())
