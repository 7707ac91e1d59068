"""Latent stem checkpoint <-> ONNX stem file (what models/tasks/ ships).

    python models/training/latent/export_latent_stem.py --ckpt OUT/ckpt.pt \
        --out models/tasks/latent_cls_stem.onnx

The file is a plain opset-11 graph: input `latents` float32 (N, 192, rows, cols), y^ in
units of 1 (the decoder's fixed-point values / 256) sampled at the classifier crop's
cells (latent_common.sample_latents, src/task/latent.rs); output `features`
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
from onnx import TensorProto, helper, numpy_helper

from latent_common import CUT_CHANNELS, CUT_SUFFIX, GRID, LATENT_CHANNELS

OPSET = 11
INPUT = "latents"


def stem_model(mean, inv_std, layers, meta: dict, channels: int = LATENT_CHANNELS,
               out_channels: int = CUT_CHANNELS) -> onnx.ModelProto:
    inits = [
        numpy_helper.from_array(np.asarray(mean, np.float32).reshape(1, channels, 1, 1), "stem.mean"),
        numpy_helper.from_array(np.asarray(inv_std, np.float32).reshape(1, channels, 1, 1), "stem.inv_std"),
        numpy_helper.from_array(np.array(0.0, np.float32), "stem.zero"),
        numpy_helper.from_array(np.array(6.0, np.float32), "stem.six"),
    ]
    nodes = [
        helper.make_node("Sub", [INPUT, "stem.mean"], ["stem.centred"]),
        helper.make_node("Mul", ["stem.centred", "stem.inv_std"], ["stem.x"]),
    ]
    x, saved = "stem.x", None
    for name, w, b, groups, relu6, residual in layers:
        if residual == "save":
            saved = x
        inits += [
            numpy_helper.from_array(w.astype(np.float32), f"stem.{name}.weight"),
            numpy_helper.from_array(b.astype(np.float32), f"stem.{name}.bias"),
        ]
        ks = int(w.shape[2])
        y = f"stem.{name}"
        nodes.append(helper.make_node(
            "Conv", [x, f"stem.{name}.weight", f"stem.{name}.bias"], [y],
            kernel_shape=[ks, ks], pads=[ks // 2] * 4, strides=[1, 1], group=int(groups)))
        x = y
        if relu6:
            nodes.append(helper.make_node("Clip", [x, "stem.zero", "stem.six"], [x + ".relu6"]))
            x += ".relu6"
        if residual == "add":
            nodes.append(helper.make_node("Add", [x, saved], [x + ".add"]))
            x += ".add"
    nodes.append(helper.make_node("Identity", [x], ["features"]))
    graph = helper.make_graph(
        nodes, "icm_latent_stem",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", channels, "rows", "cols"])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", out_channels, "rows", "cols"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="icm models/training/latent/export_latent_stem.py")
    model.ir_version = 7
    meta = dict(meta)
    meta.update({"icm.input": INPUT, "icm.cut": CUT_SUFFIX, "icm.grid": str(GRID),
                 "icm.latent_channels": str(channels)})
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = k, str(v)
    onnx.checker.check_model(model)
    return model


def read_stem(path: str):
    """(mean, inv_std, {layer: (weight, bias)}, metadata) of a stem file."""
    m = onnx.load(path)
    meta = {p.key: p.value for p in m.metadata_props}
    if meta.get("icm.input") != INPUT:
        raise SystemExit(f"{path}: not a latent stem (metadata icm.input is {meta.get('icm.input')!r})")
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    folded = {}
    for n in m.graph.node:
        if n.op_type == "Conv":
            name = n.input[1][len("stem."):-len(".weight")]
            folded[name] = (inits[n.input[1]], inits[n.input[2]])
    return inits["stem.mean"].reshape(-1), inits["stem.inv_std"].reshape(-1), folded, meta


def save_atomic(model: onnx.ModelProto, path: str):
    tmp = path + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, path)


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
