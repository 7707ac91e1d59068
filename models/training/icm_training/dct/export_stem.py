"""DCT stem checkpoint -> ONNX stem file (what models/tasks/ ships).

    python -m icm_training.dct.export_stem --ckpt OUT/ckpt.pt --out models/tasks/dct24_stem.onnx

The file is a plain opset-11 graph (stems.export.stem_graph): input `dct` float32
(N, C, rows, cols), the dequantised coefficients of the channels listed in the metadata key
`icm.channels` (JSON, spec Annex B indices, in input order); output `features`
(N, 32, rows, cols), MobileNetV2's tensor at the cut (`icm.cut`, a name suffix in the shared
classifier). Batch norms are folded into the convolutions. scripts/compose_dct_tasks.py
prepends it to the shared classifier's tail; train --init-stem reads it back.
"""
from __future__ import annotations

import json
import sys

import torch

from ..stems.classifier import DCT_CUT
from ..stems.export import export_main, stem_graph, summary
from .stem import Stem


def build(ck):
    stem = Stem(ck["channels"])
    stem.load_state_dict({k: v for k, v in ck["model"].items() if not k.startswith("gate.")})
    stem.eval()
    meta = {"icm.training": summary(ck), "icm.channels": json.dumps([int(v) for v in ck["channels"]]),
            "icm.cut": DCT_CUT.suffix}
    x = torch.randn(2, len(ck["channels"]), DCT_CUT.grid, DCT_CUT.grid) * 50
    return stem, stem_graph(stem, "dct", "icm_dct_stem", meta), x, f"{len(ck['channels'])} channels"


def main(argv=None) -> int:
    return export_main(__doc__, build, argv)


if __name__ == "__main__":
    sys.exit(main())
