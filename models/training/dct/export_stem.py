"""Stem checkpoint <-> ONNX stem file (what models/tasks/ ships).

    python models/training/dct/export_stem.py --ckpt OUT/ckpt.pt --out models/tasks/dct24_stem.onnx

The file is a plain opset-11 graph: input `dct` float32 (N, C, rows, cols), the dequantised
coefficients of the channels listed in the metadata key `icm.channels` (JSON, spec Annex B
indices, in input order); output `features` (N, 32, rows, cols), MobileNetV2's tensor at
the cut (`icm.cut`, a name suffix in the shared classifier). Batch norms are folded into the
convolutions. scripts/compose_dct_tasks.py prepends it to the shared classifier's tail;
train.py --init-stem reads it back (read_stem) to continue training.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnx_torch import CUT_SUFFIX

OPSET = 11


def stem_graph(input_name: str, channels: int, out_channels: int, mean, inv_std, layers,
               graph_name: str, producer: str, meta: dict) -> onnx.ModelProto:
    """A folded stem as a plain opset-11 graph: input `input_name` (N, channels, rows, cols),
    normalised per channel, the convolutions of `layers` (name, weight, bias, groups, relu6,
    residual "save"/"add"/None), output `features` (N, out_channels, rows, cols); `meta` as
    metadata. Shared by the DCT and the latent stems (models/training/latent)."""
    inits = [
        numpy_helper.from_array(np.asarray(mean, np.float32).reshape(1, channels, 1, 1), "stem.mean"),
        numpy_helper.from_array(np.asarray(inv_std, np.float32).reshape(1, channels, 1, 1), "stem.inv_std"),
        numpy_helper.from_array(np.array(0.0, np.float32), "stem.zero"),
        numpy_helper.from_array(np.array(6.0, np.float32), "stem.six"),
    ]
    nodes = [
        helper.make_node("Sub", [input_name, "stem.mean"], ["stem.centred"]),
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
        nodes, graph_name,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", channels, "rows", "cols"])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", out_channels, "rows", "cols"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=producer)
    model.ir_version = 7
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = k, str(v)
    onnx.checker.check_model(model)
    return model


def stem_model(channels, mean, inv_std, layers, meta: dict) -> onnx.ModelProto:
    meta = dict(meta)
    meta["icm.channels"] = json.dumps([int(v) for v in channels])
    meta["icm.cut"] = CUT_SUFFIX
    return stem_graph("dct", len(channels), 32, mean, inv_std, layers, "icm_dct_stem",
                      "icm models/training/dct/export_stem.py", meta)


def read_stem_file(path: str):
    """(mean, inv_std, {layer: (weight, bias)}, metadata) of a stem file of stem_graph."""
    m = onnx.load(path)
    meta = {p.key: p.value for p in m.metadata_props}
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    folded = {}
    for n in m.graph.node:
        if n.op_type == "Conv":
            name = n.input[1][len("stem."):-len(".weight")]
            folded[name] = (inits[n.input[1]], inits[n.input[2]])
    return inits["stem.mean"].reshape(-1), inits["stem.inv_std"].reshape(-1), folded, meta


def read_stem(path: str):
    """(channels, mean, inv_std, {layer: (weight, bias)}, metadata) of a stem file."""
    mean, inv_std, folded, meta = read_stem_file(path)
    return json.loads(meta["icm.channels"]), mean, inv_std, folded, meta


def save_atomic(model: onnx.ModelProto, path: str):
    tmp = path + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, path)


def main() -> int:
    import torch
    from stem import Stem, layers

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    ck = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    stem = Stem(ck["channels"])
    state = {k: v for k, v in ck["model"].items() if not k.startswith("gate.")}
    stem.load_state_dict(state)
    stem.eval()
    meta = {"icm.training": json.dumps(ck.get("summary", {}))}
    model = stem_model(ck["channels"], stem.mean.numpy(), stem.inv_std.numpy(), layers(stem), meta)
    save_atomic(model, args.out)
    # The file must compute what the checkpoint computes.
    import onnxruntime as ort

    x = torch.randn(2, len(ck["channels"]), 28, 28) * 50
    with torch.no_grad():
        want = stem(x)[0].numpy()
    sess = ort.InferenceSession(args.out, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"dct": x.numpy()})[0]
    err = float(np.abs(got - want).max())
    print(f"{args.out}: {len(ck['channels'])} channels, {os.path.getsize(args.out)} bytes, "
          f"max |onnx - torch| {err:.2e}")
    return 0 if err < 1e-3 * max(1.0, float(np.abs(want).max())) else 1


if __name__ == "__main__":
    sys.exit(main())
