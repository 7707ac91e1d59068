"""Stems as ONNX files (what models/tasks/ ships), checked against PyTorch, and read back.

A ConvStem becomes a plain opset-11 graph of its folded layers (stem_graph: input
normalised per channel, Conv/Clip/Add, output `features`; the normalisation and the
folded weights are what read_stem gives back to continue training); any other stem goes
through torch.onnx (torch_graph). export_main is the command line of the export scripts:
--ckpt -> --out, written only when onnxruntime on the file computes what PyTorch computes
on the checkpoint.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import warnings

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from .blocks import ConvStem, layers, load_folded

OPSET = 11


def set_metadata(model: onnx.ModelProto, meta: dict) -> None:
    del model.metadata_props[:]
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = k, str(v)


def stem_graph(stem: ConvStem, input_name: str, graph_name: str, meta: dict) -> onnx.ModelProto:
    """`stem` folded as a plain opset-11 graph: input `input_name` (N, C, rows, cols),
    normalised per channel, its convolutions, output `features` (N, out, rows, cols);
    `meta` as metadata."""
    channels, out_channels = stem.mean.shape[0], stem.out.out_channels
    inits = [
        numpy_helper.from_array(stem.mean.numpy().astype(np.float32).reshape(1, channels, 1, 1), "stem.mean"),
        numpy_helper.from_array(stem.inv_std.numpy().astype(np.float32).reshape(1, channels, 1, 1), "stem.inv_std"),
        numpy_helper.from_array(np.array(0.0, np.float32), "stem.zero"),
        numpy_helper.from_array(np.array(6.0, np.float32), "stem.six"),
    ]
    nodes = [
        helper.make_node("Sub", [input_name, "stem.mean"], ["stem.centred"]),
        helper.make_node("Mul", ["stem.centred", "stem.inv_std"], ["stem.x"]),
    ]
    x, saved = "stem.x", None
    for name, w, b, groups, relu6, residual in layers(stem):
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
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="icm icm_training")
    model.ir_version = 7
    set_metadata(model, meta)
    onnx.checker.check_model(model)
    return model


def torch_graph(stem: torch.nn.Module, x: torch.Tensor, input_name: str, output_names: list[str],
                graph_name: str, meta: dict) -> onnx.ModelProto:
    """`stem` exported by torch.onnx at opset 11 (batch norms folded, any batch size)."""
    buf = io.BytesIO()
    # The TorchScript exporter (deprecated, still shipped): opset 11 as the shared networks,
    # without the onnxscript package the torch.export-based one needs.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.onnx.export(stem, (x,), buf, input_names=[input_name], output_names=output_names,
                      opset_version=OPSET, do_constant_folding=True, dynamo=False,
                      dynamic_axes={k: {0: "n"} for k in (input_name, *output_names)})
    model = onnx.load_from_string(buf.getvalue())
    model.graph.name = graph_name
    model.producer_name = "icm icm_training"
    set_metadata(model, meta)
    onnx.checker.check_model(model)
    return model


def read_stem(path: str, expect: dict | None = None):
    """(mean, inv_std, {layer: (weight, bias)}, metadata) of a stem file of stem_graph;
    fails unless its metadata has the values of `expect`."""
    m = onnx.load(path)
    meta = {p.key: p.value for p in m.metadata_props}
    for k, v in (expect or {}).items():
        if meta.get(k) != v:
            raise SystemExit(f"{path}: metadata {k} is {meta.get(k)!r}, not {v!r}")
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    folded = {}
    for n in m.graph.node:
        if n.op_type == "Conv":
            name = n.input[1][len("stem."):-len(".weight")]
            folded[name] = (inits[n.input[1]], inits[n.input[2]])
    return inits["stem.mean"].reshape(-1), inits["stem.inv_std"].reshape(-1), folded, meta


def load_stem(stem: ConvStem, path: str, expect: dict | None = None) -> None:
    """Initialises `stem` from the stem file `path` (its folded convolutions with identity
    batch norms, and its normalisation)."""
    mean, inv_std, folded, _ = read_stem(path, expect)
    load_folded(stem, folded)
    stem.mean.copy_(torch.tensor(mean))
    stem.inv_std.copy_(torch.tensor(inv_std))
    print(f"initialised from exported stem {path}")


def export_main(doc: str, build, argv=None) -> int:
    """The export command: --ckpt (a training checkpoint) -> --out (ONNX). `build(ck)`
    gives (stem in eval mode, ONNX model, test input x, what to print); the file is
    written when onnxruntime on x matches the stem within 1e-3 of its largest output."""
    import onnxruntime as ort

    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    ck = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    stem, model, x, what = build(ck)
    with torch.no_grad():
        want = stem(x)
    want = [t.numpy() for t in (want if isinstance(want, (tuple, list)) else [want])]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    err = max(float(np.abs(g - w).max()) for g, w in zip(got, want))
    scale = max(1.0, max(float(np.abs(w).max()) for w in want))
    if err > 1e-3 * scale:
        print(f"{args.out}: not written, the ONNX graph differs from PyTorch by {err:.2e}")
        return 1
    tmp = f"{args.out}.tmp{os.getpid()}"
    onnx.save(model, tmp)
    os.replace(tmp, args.out)
    print(f"{args.out}: {what}, {os.path.getsize(args.out)} bytes, max |onnx - torch| {err:.2e}")
    return 0


def summary(ck: dict, **more) -> str:
    """The metadata `icm.training`: the checkpoint's training summary (JSON)."""
    return json.dumps({**ck.get("summary", {}), **more}, sort_keys=True)
