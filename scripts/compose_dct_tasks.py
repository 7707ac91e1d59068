#!/usr/bin/env python3
"""Composes the DCT-domain classifiers that `icm task-run/task-eval --input-domain dct192|dct24`
load: each stem of models/tasks/ (dct<C>_stem.onnx, trained by icm_training.dct in
models/training/) followed by the tail of the shared MobileNetV2 from its cut tensor on, written to
${ICM_TASK_CACHE:-~/.cache/icm/tasks}/mobilenet_v2_dct<C>.onnx. Generated, never committed;
scripts/setup_onnxruntime.sh runs this. A composed file whose recorded inputs (SHA-256 of
the classifier and of the stem) are unchanged is left as it is.

    python scripts/compose_dct_tasks.py [--classifier FILE.onnx] [--out-dir DIR] [--check]

The tail is every node needed for the classifier's output given the cut tensor (the float
output of the expanded_conv_3 projection, 32 channels at stride 8; its activation
quantisation stays in the tail), with the final 7x7 AveragePool made a GlobalAveragePool
(the same on 7x7, and any grid size runs). --check also runs each composed file on random
input with onnxruntime.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

import onnx
from onnx import helper

ROOT = Path(__file__).resolve().parents[1]
CUT_SUFFIX = "MobilenetV2/expanded_conv_3/project/BatchNorm_Fold/bias1"
CLASSIFIER = "classification/mobilenet_v2_1.0_224_quant.onnx"


def default_classifier() -> Path:
    base = os.environ.get("ICM_TASK_MODELS")
    return (Path(base) if base else ROOT.parent / "shared" / "models") / CLASSIFIER


def default_out_dir() -> Path:
    if os.environ.get("ICM_TASK_CACHE"):
        return Path(os.environ["ICM_TASK_CACHE"])
    return Path.home() / ".cache" / "icm" / "tasks"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compose(classifier: onnx.ModelProto, stem: onnx.ModelProto, sources: dict,
            cut_suffix: str = CUT_SUFFIX, graph_name: str = "icm_dct_classifier") -> onnx.ModelProto:
    """The stem's graph, its output `features` renamed to the classifier's tensor whose name
    ends with `cut_suffix`, followed by every classifier node that tensor feeds (also used
    by scripts/compose_latent_tasks.py, with the stride-16 cut)."""
    g = classifier.graph
    cuts = [o for n in g.node for o in n.output if o.endswith(cut_suffix) and n.op_type == "Conv"]
    if len(cuts) != 1:
        raise SystemExit(f"classifier: {len(cuts)} Conv outputs end with {cut_suffix}")
    cut = cuts[0]
    producer = {o: k for k, n in enumerate(g.node) for o in n.output}
    inits = {i.name: i for i in g.initializer}
    keep, stack, seen = set(), [o.name for o in g.output], {cut}
    while stack:
        t = stack.pop()
        if t in seen or t in inits or not t:
            continue
        seen.add(t)
        if t not in producer:
            raise SystemExit(f"classifier: tensor {t} depends on the picture, not only on the cut")
        k = producer[t]
        keep.add(k)
        stack.extend(g.node[k].input)
    tail = []
    for k in sorted(keep):
        n = g.node[k]
        if n.op_type == "AveragePool":
            n = helper.make_node("GlobalAveragePool", list(n.input), list(n.output), name=n.name)
        tail.append(n)
    used = {i for n in tail for i in n.input}
    tail_inits = [inits[i] for i in sorted(used) if i in inits]

    sg = stem.graph
    (stem_out,) = [n for n in sg.node if n.output[0] == "features"]
    stem_nodes = []
    for n in sg.node:
        n2 = onnx.NodeProto()
        n2.CopyFrom(n)
        if n2.output[0] == "features":
            n2.output[0] = cut
        stem_nodes.append(n2)
    graph = helper.make_graph(
        stem_nodes + tail,
        graph_name,
        list(sg.input),
        list(g.output),
        list(sg.initializer) + tail_inits,
    )
    opset = [o for o in classifier.opset_import if o.domain in ("", "ai.onnx")]
    model = helper.make_model(graph, opset_imports=opset,
                              producer_name="icm scripts/compose_dct_tasks.py")
    model.ir_version = max(classifier.ir_version, stem.ir_version)
    meta = {p.key: p.value for p in stem.metadata_props}
    meta.update(sources)
    meta["icm.cut_tensor"] = cut
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(model)
    return model


def recorded(path: Path) -> dict:
    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception:
        return {}
    return {p.key: p.value for p in m.metadata_props}


def run_check(path: Path, channels: int) -> None:
    import numpy as np
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = (np.random.default_rng(0).standard_normal((1, channels, 28, 28)) * 30).astype(np.float32)
    (p,) = sess.run(None, {"dct": x})
    # Probabilities quantised to 1/256 (the classifier's last QuantizeLinear): a flat
    # distribution sums to less than 1.
    if p.shape != (1, 1001) or not 0.0 < float(p.sum()) <= 1.05 or float(p.min()) < 0.0:
        raise SystemExit(f"{path}: output shape {p.shape}, sum {p.sum()}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--classifier", type=Path, default=default_classifier())
    ap.add_argument("--stems", type=Path, nargs="*",
                    default=sorted((ROOT / "models" / "tasks").glob("dct*_stem.onnx")))
    ap.add_argument("--out-dir", type=Path, default=default_out_dir())
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    if not args.classifier.is_file():
        print(f"compose_dct_tasks: {args.classifier} not found (../shared absent?): nothing composed",
              file=sys.stderr)
        return 2
    if not args.stems:
        print("compose_dct_tasks: no models/tasks/dct*_stem.onnx", file=sys.stderr)
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    classifier = None
    c_hash = sha256(args.classifier)
    for stem_path in args.stems:
        name = stem_path.name.replace("_stem.onnx", "")
        out = args.out_dir / f"mobilenet_v2_{name}.onnx"
        sources = {"icm.classifier_sha256": c_hash, "icm.stem_sha256": sha256(stem_path),
                   "icm.stem_file": stem_path.name}
        if out.is_file() and all(recorded(out).get(k) == v for k, v in sources.items()):
            if not args.quiet:
                print(f"{out}: up to date", file=sys.stderr)
        else:
            if classifier is None:
                classifier = onnx.load(str(args.classifier))
            model = compose(classifier, onnx.load(str(stem_path)), sources)
            tmp = out.with_name(out.name + f".tmp{os.getpid()}")
            onnx.save(model, str(tmp))
            os.replace(tmp, out)
            if not args.quiet:
                print(f"{out}: composed from {stem_path.name} and {args.classifier.name}",
                      file=sys.stderr)
        if args.check:
            stem_in = onnx.load(str(stem_path)).graph.input[0]
            run_check(out, stem_in.type.tensor_type.shape.dim[1].dim_value)
    return 0


if __name__ == "__main__":
    sys.exit(main())
