#!/usr/bin/env python3
"""Composes the latent-domain task networks that `icm task-run/task-eval --input-domain
latents` load, from the stems of models/tasks/ (trained by icm_training.latent in
models/training/), into ${ICM_TASK_CACHE:-~/.cache/icm/tasks}:
- latent_cls_stem.onnx followed by the tail of the shared MobileNetV2 from its first
  stride-16 projection on: mobilenet_v2_latent.onnx;
- latent_det_stem.onnx followed by YOLOX-Nano's neck and head (every node the detector's
  output needs given its three backbone outputs, which the stem's dark3/dark4/dark5
  replace): yolox_nano_latent.onnx.
Generated, never committed; scripts/setup_onnxruntime.sh runs this. A composed file whose
recorded inputs (SHA-256 of the shared network and of the stem) are unchanged is left as
it is.

    python scripts/compose_latent_tasks.py [--stems FILE.onnx ...] [--out-dir DIR] [--check]

The classifier's tail is cut as scripts/compose_dct_tasks.py cuts it (compose()), at the
tensor the stem's metadata key `icm.cut` names; the detector is cut at the tensors of
`icm.cuts`. The composed file also records multiply-adds counted from its graph (every
Conv, ConvTranspose, Gemm and MatMul: output elements x input channels per group x kernel
size, input elements x output channels x kernel size for ConvTranspose, with the shapes of
ONNX shape inference): `icm.macs` for the composed network on its input grid, and
`icm.classifier_macs` (3x224x224) or `icm.detector_macs` (3x416x416) for the shared
network; icm reports them (`icm task-eval --input-domain latents`). --check also runs each
composed file on random input with onnxruntime.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import onnx
from onnx import helper, shape_inference

from compose_dct_tasks import (  # scripts/, on sys.path as this script's folder
    ROOT,
    compose,
    default_classifier,
    default_out_dir,
    recorded,
    sha256,
)

STEMS = {"classification": "mobilenet_v2_latent.onnx", "detection": "yolox_nano_latent.onnx"}
DETECTOR = "yolox_nano/yolox_nano.onnx"


def default_detector() -> Path:
    base = os.environ.get("ICM_TASK_MODELS")
    return (Path(base) if base else ROOT.parent / "shared" / "models") / DETECTOR


def count_macs(model: onnx.ModelProto, shape: list[int]) -> int:
    """Multiply-adds of the Conv, Gemm and MatMul nodes of `model` with its (first) input
    fixed to `shape`."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inp = m.graph.input[0]
    dims = inp.type.tensor_type.shape.dim
    for d, v in zip(dims, shape):
        d.Clear()
        d.dim_value = int(v)
    m = shape_inference.infer_shapes(m, strict_mode=True)
    shapes = {}
    for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            shapes[vi.name] = [d.dim_value for d in t.shape.dim]
    for i in m.graph.initializer:
        shapes[i.name] = list(i.dims)
    total = 0
    for n in m.graph.node:
        if n.op_type not in ("Conv", "ConvTranspose", "Gemm", "MatMul"):
            continue
        out, w = shapes.get(n.output[0]), shapes.get(n.input[1])
        if not out or not w or 0 in out or 0 in w:
            raise SystemExit(f"count_macs: no shape for {n.op_type} {n.output[0]}")
        elems = 1
        for d in out:
            elems *= d
        if n.op_type == "Conv":
            per = 1
            for d in w[1:]:
                per *= d  # input channels per group x kernel
        elif n.op_type == "ConvTranspose":  # every tap of every input element
            x = shapes.get(n.input[0])
            if not x or 0 in x:
                raise SystemExit(f"count_macs: no shape for ConvTranspose {n.input[0]}")
            elems = 1
            for d in x:
                elems *= d
            per = 1
            for d in w[1:]:
                per *= d  # output channels per group x kernel
        else:
            per = w[0]  # (K, N) weights of MatMul / Gemm without transB
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            if n.op_type == "Gemm" and attrs.get("transB"):
                per = w[1]
        total += elems * per
    return total


def compose_detector(detector: onnx.ModelProto, stem: onnx.ModelProto, sources: dict) -> onnx.ModelProto:
    """The stem's graph (names prefixed `stem/`), its outputs dark3, dark4, dark5 renamed
    to the detector's tensors of the stem's `icm.cuts`, followed by every detector node the
    output needs given those tensors."""
    from onnx import compose as onnx_compose
    from onnx.utils import Extractor

    meta = {p.key: p.value for p in stem.metadata_props}
    cuts = meta["icm.cuts"].split(",")
    names = {o for n in detector.graph.node for o in n.output}
    if len(cuts) != 3 or any(c not in names for c in cuts):
        raise SystemExit(f"detector: no tensors {cuts} (not the shared yolox_nano.onnx?)")
    head = Extractor(detector).extract_model(cuts, [o.name for o in detector.graph.output])
    if any(i.name == detector.graph.input[0].name for i in head.graph.input):
        raise SystemExit("detector: its output depends on the picture, not only on the cuts")
    stem = onnx_compose.add_prefix(stem, "stem/")
    outs = [o.name for o in stem.graph.output]
    opset = [o for o in detector.opset_import if o.domain in ("", "ai.onnx")]
    for m in (stem, head):
        del m.opset_import[:]
        m.opset_import.extend(opset)
        m.ir_version = max(detector.ir_version, stem.ir_version)
        del m.metadata_props[:]
    model = onnx_compose.merge_models(stem, head, io_map=list(zip(outs, cuts)),
                                      producer_name="icm scripts/compose_latent_tasks.py")
    model.graph.name = "icm_latent_detector"
    meta.update(sources)
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(model)
    return model


def run_check(path: Path, task: str, grid: int) -> None:
    import numpy as np
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal((1, inp.shape[1], grid, grid)).astype(np.float32)
    (p,) = sess.run(None, {inp.name: x})
    if task == "detection":
        cells = sum((416 // s) ** 2 for s in (8, 16, 32))
        if p.shape != (1, cells, 85) or not np.isfinite(p).all():
            raise SystemExit(f"{path}: output shape {p.shape}")
    elif p.shape != (1, 1001) or not 0.0 < float(p.sum()) <= 1.05 or float(p.min()) < 0.0:
        raise SystemExit(f"{path}: output shape {p.shape}, sum {p.sum()}")


def compose_one(stem_path: Path, args) -> int:
    stem = onnx.load(str(stem_path))
    meta = {p.key: p.value for p in stem.metadata_props}
    task = meta.get("icm.task", "classification")
    if meta.get("icm.input") != "latents" or task not in STEMS or (
            "icm.cut" not in meta and "icm.cuts" not in meta):
        raise SystemExit(f"{stem_path}: not a latent stem (metadata icm.input, icm.task, icm.cut)")
    shared = args.detector if task == "detection" else args.classifier
    if not shared.is_file():
        print(f"compose_latent_tasks: {shared} not found (../shared absent?): nothing composed",
              file=sys.stderr)
        return 2
    out = args.out_dir / STEMS[task]
    key = "icm.detector_sha256" if task == "detection" else "icm.classifier_sha256"
    sources = {key: sha256(shared), "icm.stem_sha256": sha256(stem_path),
               "icm.stem_file": stem_path.name}
    grid = int(meta.get("icm.grid", "14"))
    channels = stem.graph.input[0].type.tensor_type.shape.dim[1].dim_value or 192
    if out.is_file() and all(recorded(out).get(k) == v for k, v in sources.items()):
        if not args.quiet:
            print(f"{out}: up to date", file=sys.stderr)
    else:
        net = onnx.load(str(shared))
        if task == "detection":
            model = compose_detector(net, stem, sources)
            extra = {"icm.macs": str(count_macs(model, [1, channels, grid, grid])),
                     "icm.detector_macs": str(count_macs(net, [1, 3, 416, 416]))}
            what = "detector"
        else:
            model = compose(net, stem, sources, cut_suffix=meta["icm.cut"],
                            graph_name="icm_latent_classifier")
            extra = {"icm.macs": str(count_macs(model, [1, channels, grid, grid])),
                     "icm.classifier_macs": str(count_macs(net, [1, 3, 224, 224]))}
            what = "classifier"
        for k, v in extra.items():
            p = model.metadata_props.add()
            p.key, p.value = k, v
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        onnx.save(model, str(tmp))
        os.replace(tmp, out)
        shared_macs = int(extra[f"icm.{what}_macs"])
        if not args.quiet:
            print(f"{out}: composed from {stem_path.name} and {shared.name} "
                  f"({int(extra['icm.macs']) / 1e6:.1f} M multiply-adds at {grid}x{grid}; the "
                  f"{what} {shared_macs / 1e6:.1f} M)", file=sys.stderr)
    if args.check:
        run_check(out, task, grid)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--classifier", type=Path, default=default_classifier())
    ap.add_argument("--detector", type=Path, default=default_detector())
    ap.add_argument("--stems", "--stem", type=Path, nargs="*",
                    default=sorted((ROOT / "models" / "tasks").glob("latent_*_stem.onnx")))
    ap.add_argument("--out-dir", type=Path, default=default_out_dir())
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    missing = [s for s in args.stems if not s.is_file()]
    if missing:
        print(f"compose_latent_tasks: {missing[0]} not found", file=sys.stderr)
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rc = 0
    for stem_path in args.stems:
        rc = max(rc, compose_one(stem_path, args))
    return rc


if __name__ == "__main__":
    sys.exit(main())
