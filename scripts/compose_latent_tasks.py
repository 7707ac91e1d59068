#!/usr/bin/env python3
"""Composes the latent-domain task networks that `icm task-run/task-eval --input-domain
latents` load: the classification stem of models/tasks/ (latent_cls_stem.onnx, trained by
models/training/latent/) followed by the tail of the shared MobileNetV2 from its first
stride-16 projection on, written to ${ICM_TASK_CACHE:-~/.cache/icm/tasks}/mobilenet_v2_latent.onnx.
Generated, never committed; scripts/setup_onnxruntime.sh runs this. A composed file whose
recorded inputs (SHA-256 of the classifier and of the stem) are unchanged is left as it is.

    python scripts/compose_latent_tasks.py [--classifier FILE.onnx] [--out-dir DIR] [--check]

The tail is cut as scripts/compose_dct_tasks.py cuts it (compose()), at the tensor the stem's
metadata key `icm.cut` names. The composed file also records multiply-adds counted from its
graph (every Conv, Gemm and MatMul: output elements x input channels per group x kernel
size, with the shapes of ONNX shape inference): `icm.macs` for the composed network on its
14x14 input, `icm.classifier_macs` for the shared classifier on 3x224x224; icm reports
them (`icm task-eval --input-domain latents`). --check also runs the composed file on random
input with onnxruntime.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import onnx
from onnx import helper, shape_inference

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compose_dct_tasks import (  # noqa: E402
    ROOT,
    compose,
    default_classifier,
    default_out_dir,
    recorded,
    sha256,
)

STEMS = {"latent_cls_stem.onnx": "mobilenet_v2_latent.onnx"}


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
        if n.op_type not in ("Conv", "Gemm", "MatMul"):
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
        else:
            per = w[0]  # (K, N) weights of MatMul / Gemm without transB
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            if n.op_type == "Gemm" and attrs.get("transB"):
                per = w[1]
        total += elems * per
    return total


def run_check(path: Path, grid: int) -> None:
    import numpy as np
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 192, grid, grid)).astype(np.float32)
    (p,) = sess.run(None, {sess.get_inputs()[0].name: x})
    if p.shape != (1, 1001) or not 0.0 < float(p.sum()) <= 1.05 or float(p.min()) < 0.0:
        raise SystemExit(f"{path}: output shape {p.shape}, sum {p.sum()}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--classifier", type=Path, default=default_classifier())
    ap.add_argument("--stem", type=Path, default=ROOT / "models" / "tasks" / "latent_cls_stem.onnx")
    ap.add_argument("--out-dir", type=Path, default=default_out_dir())
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    if not args.classifier.is_file():
        print(f"compose_latent_tasks: {args.classifier} not found (../shared absent?): nothing composed",
              file=sys.stderr)
        return 2
    if not args.stem.is_file():
        print(f"compose_latent_tasks: {args.stem} not found", file=sys.stderr)
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / STEMS.get(args.stem.name, "mobilenet_v2_latent.onnx")
    sources = {"icm.classifier_sha256": sha256(args.classifier), "icm.stem_sha256": sha256(args.stem),
               "icm.stem_file": args.stem.name}
    stem = onnx.load(str(args.stem))
    meta = {p.key: p.value for p in stem.metadata_props}
    if meta.get("icm.input") != "latents" or "icm.cut" not in meta:
        raise SystemExit(f"{args.stem}: not a latent stem (metadata icm.input, icm.cut)")
    grid = int(meta.get("icm.grid", "14"))
    if out.is_file() and all(recorded(out).get(k) == v for k, v in sources.items()):
        if not args.quiet:
            print(f"{out}: up to date", file=sys.stderr)
    else:
        classifier = onnx.load(str(args.classifier))
        model = compose(classifier, stem, sources, cut_suffix=meta["icm.cut"],
                        graph_name="icm_latent_classifier")
        extra = {
            "icm.macs": str(count_macs(model, [1, 192, grid, grid])),
            "icm.classifier_macs": str(count_macs(classifier, [1, 3, 224, 224])),
        }
        for k, v in extra.items():
            p = model.metadata_props.add()
            p.key, p.value = k, v
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        onnx.save(model, str(tmp))
        os.replace(tmp, out)
        if not args.quiet:
            print(f"{out}: composed from {args.stem.name} and {args.classifier.name} "
                  f"({int(extra['icm.macs']) / 1e6:.1f} M multiply-adds at {grid}x{grid}; the "
                  f"classifier {int(extra['icm.classifier_macs']) / 1e6:.1f} M at 224x224)",
                  file=sys.stderr)
    if args.check:
        run_check(out, grid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
