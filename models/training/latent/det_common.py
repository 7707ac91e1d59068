"""What the latent-domain detection scripts share: the detector's letterbox mapped onto the
grid of y^, the sampling of y^ there (as crates/icm-eval/src/task/latent_detection.rs does it), the
letterboxed teacher input and the onnxruntime teacher cut at YOLOX-Nano's backbone outputs.

YOLOX-Nano (../shared/models/yolox_nano/MODEL.md, crates/icm-eval/src/task/detection.rs) scales the picture
by r = min(416 / h, 416 / w) to nw x nh = floor(w r) x floor(h r) (bilinear), places it at
the top left of a 416x416 canvas of grey 114 and runs CSPDarknet, whose three outputs
(dark3, dark4, dark5: 64, 128 and 256 channels at strides 8, 16 and 32, 52x52, 26x26 and
13x13) feed the PAN neck. The latent stem replaces CSPDarknet: it reads y^ resampled onto
the canvas's stride-16 grid (26x26). Canvas cell (i, j) covers canvas pixels
16i..16i+15 x 16j..16j+15; its centre, 16 j + 7.5, lies in the picture at
(16 j + 8) w / nw - 0.5 (half-pixel mapping, as the bilinear resize) and so at
u = ((16 j + 8) w / nw - 8) / 16 in units of y^ cells (latent_common.sample_positions with
offset 0). The share of the cell's columns inside the scaled picture is
clamp((nw - 16 j) / 16, 0, 1), likewise for rows; a cell with no share lies on the grey
padding. The stem's input is 193 channels: y^ / 256 sampled bilinearly at (u, v), clamped
to the grid, and set to 0 on cells with no share; then the product of the two shares.
"""
from __future__ import annotations

import numpy as np

from latent_common import LATENT_CHANNELS, ROOT, sample_grid, sample_positions

# The detector and its pre-processing (crates/icm-eval/src/task/detection.rs).
INPUT_SIZE = 416
PAD_VALUE = 114
DET_GRID = INPUT_SIZE // 16  # 26: the stem's input grid
IN_CHANNELS = LATENT_CHANNELS + 1  # y^ and the coverage channel
DEFAULT_DETECTOR = str(ROOT.parent / "shared" / "models" / "yolox_nano" / "yolox_nano.onnx")
# CSPDarknet's outputs in yolox_nano.onnx (the neck's inputs): dark3 is the second input of
# the neck's second Concat, dark4 of its first, dark5 the input of lateral_conv0.
CUTS = ("781", "841", "882")
CUT_NAMES = ("dark3", "dark4", "dark5")
CUT_CHANNELS = (64, 128, 256)
CUT_STRIDES = (8, 16, 32)

__all__ = [
    "INPUT_SIZE", "PAD_VALUE", "DET_GRID", "IN_CHANNELS", "DEFAULT_DETECTOR", "CUTS",
    "CUT_NAMES", "CUT_CHANNELS", "CUT_STRIDES", "letterbox_size", "letterbox_input",
    "coverage", "sample_letterbox", "ort_backbone", "check_cuts",
]


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
    from common import resize_bilinear  # models/training/dct/common.py

    canvas = np.full((INPUT_SIZE, INPUT_SIZE, 3), PAD_VALUE, np.uint8)
    canvas[:nh, :nw] = resize_bilinear(img, nw, nh)
    return np.ascontiguousarray(canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32))


def coverage(resized: int, n: int = DET_GRID) -> np.ndarray:
    """Share of each of the n canvas cells along one axis inside a scaled side of
    `resized` pixels: clamp((resized - 16 j) / 16, 0, 1)."""
    j = np.arange(n, dtype=np.float64)
    return np.clip((resized - 16.0 * j) / 16.0, 0.0, 1.0)


def sample_letterbox(y: np.ndarray, width: int, height: int, nw: int, nh: int) -> np.ndarray:
    """The stem's input (193, 26, 26) float32 for y^ (C, rows, cols) of a width x height
    picture letterboxed to nw x nh (module docstring). Weights and sums in float64, then
    rounded to float32 (crates/icm-eval/src/task/latent_detection.rs computes the same)."""
    u = sample_positions(width, nw, 0, DET_GRID)
    v = sample_positions(height, nh, 0, DET_GRID)
    lat = sample_grid(y, u, v)
    cov = coverage(nh)[:, None] * coverage(nw)[None, :]
    lat = np.where(cov[None] > 0.0, lat, 0.0)
    return np.concatenate([lat, cov[None]], axis=0).astype(np.float32)


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
