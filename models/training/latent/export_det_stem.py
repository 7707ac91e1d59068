#!/usr/bin/env python3
"""Latent detection stem checkpoint -> ONNX stem file (what models/tasks/ ships).

    python models/training/latent/export_det_stem.py --ckpt OUT/ckpt.pt \
        --out models/tasks/latent_det_stem.onnx

The file is an opset-11 graph (batch norms folded): input `latents` float32
(N, 193, 26, 26), y^ in units of 1 (the decoder's fixed-point values / 256) sampled on the
detector's letterbox grid and the coverage channel (det_common.sample_letterbox,
crates/icm-eval/src/task/latent_detection.rs); outputs `dark3` (N, 64, 52, 52), `dark4` (N, 128, 26, 26)
and `dark5` (N, 256, 13, 13), YOLOX-Nano's backbone outputs, which replace the detector's
tensors named by the metadata key `icm.cuts`. Metadata: `icm.input` = `latents`,
`icm.task` = `detection`, `icm.grid` = 26, `icm.latent_channels` = 192, `icm.training`
(the run's summary). scripts/compose_latent_tasks.py joins it to the detector's neck and
head. The export is checked against PyTorch with onnxruntime.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import warnings

import numpy as np
import onnx

from det_common import CUT_NAMES, CUTS, DET_GRID, IN_CHANNELS

INPUT = "latents"


def main() -> int:
    import onnxruntime as ort
    import torch
    from det_stem import DetStem, macs

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    ck = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    stem = DetStem(ck["model"]["mean"].shape[0])
    stem.load_state_dict(ck["model"])
    stem.eval()
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(
        (2, IN_CHANNELS, DET_GRID, DET_GRID)).astype(np.float32))
    buf = io.BytesIO()
    # The TorchScript exporter (deprecated, still shipped): opset 11 as the shared networks,
    # without the onnxscript package the torch.export-based one needs.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.onnx.export(stem, (x,), buf, input_names=[INPUT], output_names=list(CUT_NAMES),
                      opset_version=11, do_constant_folding=True, dynamo=False,
                      dynamic_axes={k: {0: "n"} for k in (INPUT, *CUT_NAMES)})
    model = onnx.load_from_string(buf.getvalue())
    model.graph.name = "icm_latent_det_stem"
    model.producer_name = "icm models/training/latent/export_det_stem.py"
    summary = dict(ck.get("summary", {}))
    summary["macs"] = macs(stem, DET_GRID, DET_GRID)
    meta = {"icm.input": INPUT, "icm.task": "detection", "icm.cuts": ",".join(CUTS),
            "icm.grid": str(DET_GRID), "icm.latent_channels": str(IN_CHANNELS - 1),
            "icm.training": json.dumps(summary, sort_keys=True)}
    del model.metadata_props[:]
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(model)
    tmp = f"{args.out}.tmp{os.getpid()}"
    onnx.save(model, tmp)
    try:
        sess = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        got = sess.run(None, {INPUT: x.numpy()})
        with torch.no_grad():
            want = [t.numpy() for t in stem(x)]
        err = max(float(np.abs(g - w).max()) for g, w in zip(got, want))
        if err > 1e-3:
            raise SystemExit(f"export differs from PyTorch by {err}")
        os.replace(tmp, args.out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print(f"{args.out}: {os.path.getsize(args.out)} bytes, step {summary.get('steps')}, "
          f"{summary['macs'] / 1e6:.0f} M multiply-adds, max |onnx - torch| {err:.2e}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
