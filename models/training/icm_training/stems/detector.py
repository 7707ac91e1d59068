"""The detection task: YOLOX-Nano (../shared/models/yolox_nano, MODEL.md), its letterbox
(crates/icm-eval/src/task/detection.rs), the backbone outputs a stem replaces, the
onnxruntime backbone (the teacher) and the detector's neck and head in PyTorch.

The detector scales the picture by r = min(416 / h, 416 / w) to nw x nh = floor(w r) x
floor(h r) (bilinear), places it at the top left of a 416x416 canvas of grey 114 and runs
CSPDarknet, whose three outputs (dark3, dark4, dark5: 64, 128 and 256 channels at strides
8, 16 and 32, 52x52, 26x26 and 13x13) feed the PAN neck.
"""
from __future__ import annotations

import numpy as np

from .. import DETECTOR
from .images import resize_bilinear

DEFAULT_DETECTOR = str(DETECTOR)
INPUT_SIZE = 416
PAD_VALUE = 114
# CSPDarknet's outputs in yolox_nano.onnx (the neck's inputs): dark3 is the second input of
# the neck's second Concat, dark4 of its first, dark5 the input of lateral_conv0.
CUTS = ("781", "841", "882")
CUT_NAMES = ("dark3", "dark4", "dark5")
CUT_CHANNELS = (64, 128, 256)
CUT_STRIDES = (8, 16, 32)


def letterbox_size(width: int, height: int, scale: float = 1.0) -> tuple[int, int, float]:
    """(nw, nh, r) of the letterbox: r = min(416 / h, 416 / w) * scale in float64,
    nw = floor(w r), nh = floor(h r), each clamped to 1..416 (detection::letterbox has
    scale 1; training also uses smaller scales)."""
    r = min(INPUT_SIZE / max(height, 1), INPUT_SIZE / max(width, 1)) * scale
    nw = int(min(max(int(width * r), 1), INPUT_SIZE))
    nh = int(min(max(int(height * r), 1), INPUT_SIZE))
    return nw, nh, r


def letterbox_input(img: np.ndarray, nw: int, nh: int) -> np.ndarray:
    """The detector's input (1, 3, 416, 416) float32, BGR, 0..255: `img` (H, W, 3) uint8
    resized to nw x nh (resize_bilinear, as imageops) on a canvas of 114."""
    canvas = np.full((INPUT_SIZE, INPUT_SIZE, 3), PAD_VALUE, np.uint8)
    canvas[:nh, :nw] = resize_bilinear(img, nw, nh)
    return np.ascontiguousarray(canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32))


def check_cuts(model) -> None:
    """Fails unless `model` (onnx.ModelProto of yolox_nano.onnx) has the three cut tensors."""
    names = {o for n in model.graph.node for o in n.output}
    missing = [c for c in CUTS if c not in names]
    if missing:
        raise SystemExit(f"detector graph has no tensor {missing}: not the shared yolox_nano.onnx")


def ort_backbone(path: str = DEFAULT_DETECTOR, threads: int = 2):
    """onnxruntime session of CSPDarknet alone (the detector's graph from `images` to the
    three cut tensors, onnx.utils.Extractor): outputs dark3, dark4, dark5."""
    import onnx
    import onnxruntime as ort
    from onnx.utils import Extractor

    model = onnx.load(path)
    check_cuts(model)
    sub = Extractor(model).extract_model([model.graph.input[0].name], list(CUTS))
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(sub.SerializeToString(), so, providers=["CPUExecutionProvider"])


def head_levels(model) -> list[str]:
    """Names of the detector's three per-level head outputs (N, 85, H, W) for strides 8, 16
    and 32: box regression, objectness and class probabilities (after the sigmoid), the
    tensors the export reshapes (with batch 1 built in) and concatenates into `output`."""
    producer = {o: n for n in model.graph.node for o in n.output}
    out = producer.get(model.graph.output[0].name)
    if out is not None and out.op_type == "Transpose":
        out = producer.get(out.input[0])
    if out is None or out.op_type != "Concat" or len(out.input) != 3:
        raise SystemExit("detector: output is not a Concat of three levels (not a YOLOX export?)")
    names = []
    for t in out.input:
        r = producer.get(t)
        if r is None or r.op_type != "Reshape":
            raise SystemExit("detector: a level of the output is not reshaped from a map")
        names.append(r.input[0])
    return names


def torch_head(path: str = DEFAULT_DETECTOR):
    """YOLOX-Nano's neck and head as a frozen PyTorch module (onnx.utils.Extractor from the
    three cut tensors to head_levels, converted by onnx2torch): (dark3, dark4, dark5) ->
    the three level maps (N, 85, H, W); any batch."""
    import warnings

    import onnx
    from onnx.utils import Extractor
    from onnx2torch import convert

    model = onnx.load(path)
    check_cuts(model)
    sub = Extractor(model).extract_model(list(CUTS), head_levels(model))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = convert(sub)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net
