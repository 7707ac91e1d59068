"""Latent stem checkpoint <-> ONNX stem file (what models/tasks/ ships).

    python models/training/latent/export_latent_stem.py --ckpt OUT/ckpt.pt \
        --out models/tasks/latent_cls_stem.onnx

The file is a plain opset-11 graph: input `latents` float32 (N, 192, rows, cols), y^ in
units of 1 (the decoder's fixed-point values / 256) sampled at the classifier crop's
cells (latent_common.sample_latents, crates/icm-eval/src/task/latent.rs); output `features`
(N, 64, rows, cols), MobileNetV2's tensor at the cut named by the metadata key `icm.cut`
(a name suffix in the shared classifier). Metadata `icm.input` = `latents`, `icm.grid` =
14 (the grid the stem was trained on) and `icm.training` (the run's summary). Batch norms
are folded into the convolutions. scripts/compose_latent_tasks.py prepends it to the
shared classifier's tail; train.py --init-stem reads it back (read_stem).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import onnx

from latent_common import CUT_CHANNELS, CUT_SUFFIX, GRID, LATENT_CHANNELS
from export_stem import read_stem_file, save_atomic, stem_graph  # models/training/dct/export_stem.py

INPUT = "latents"


def stem_model(mean, inv_std, layers, meta: dict, channels: int = LATENT_CHANNELS,
               out_channels: int = CUT_CHANNELS) -> onnx.ModelProto:
    meta = dict(meta)
    meta.update({"icm.input": INPUT, "icm.cut": CUT_SUFFIX, "icm.grid": str(GRID),
                 "icm.latent_channels": str(channels)})
    return stem_graph(INPUT, channels, out_channels, mean, inv_std, layers, "icm_latent_stem",
                      "icm models/training/latent/export_latent_stem.py", meta)


def read_stem(path: str):
    """(mean, inv_std, {layer: (weight, bias)}, metadata) of a stem file."""
    mean, inv_std, folded, meta = read_stem_file(path)
    if meta.get("icm.input") != INPUT:
        raise SystemExit(f"{path}: not a latent stem (metadata icm.input is {meta.get('icm.input')!r})")
    return mean, inv_std, folded, meta


def main() -> int:
    import torch
    from latent_stem import LatentStem, layers, macs

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    ck = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    stem = LatentStem(ck["model"]["mean"].shape[0])
    stem.load_state_dict(ck["model"])
    stem.eval()
    summary = dict(ck.get("summary", {}))
    summary["macs_14x14"] = macs(stem, GRID, GRID)
    model = stem_model(stem.mean.numpy(), stem.inv_std.numpy(), layers(stem),
                       {"icm.training": json.dumps(summary)}, channels=stem.mean.shape[0])
    save_atomic(model, args.out)
    # The file must compute what the checkpoint computes.
    import onnxruntime as ort

    x = torch.randn(2, stem.mean.shape[0], GRID, GRID) * 2
    with torch.no_grad():
        want = stem(x).numpy()
    sess = ort.InferenceSession(args.out, providers=["CPUExecutionProvider"])
    got = sess.run(None, {INPUT: x.numpy()})[0]
    err = float(np.abs(got - want).max())
    print(f"{args.out}: {os.path.getsize(args.out)} bytes, {summary['macs_14x14'] / 1e6:.1f} M "
          f"multiply-adds at {GRID}x{GRID}, max |onnx - torch| {err:.2e}")
    return 0 if err < 1e-3 * max(1.0, float(np.abs(want).max())) else 1


if __name__ == "__main__":
    sys.exit(main())
