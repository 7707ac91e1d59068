"""The classification task: the shared MobileNetV2 (../shared/models/classification,
MODEL.md), its pre-processing (crates/icm-eval/src/task/classification.rs: shorter side to
256, centre 224x224 crop, -1..1), the tensors the stems replace and the onnxruntime teacher.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import CLASSIFIER
from .images import resize_bilinear

DEFAULT_TEACHER = str(CLASSIFIER)
RESIZE = 256
CROP = 224
LOGITS = 1001  # classes, background first


@dataclass(frozen=True)
class Cut:
    """A tensor of the classifier that a stem replaces: the float output of a 1x1
    projection, before its activation quantisation (which stays in the tail), found by
    name suffix (onnx_torch.find_tensor)."""
    suffix: str
    channels: int
    stride: int

    @property
    def grid(self) -> int:
        """Its side on the 224x224 crop."""
        return CROP // self.stride


# The DCT stems' cut: the first stride-8 projection (expanded_conv_3/project, 28x28).
DCT_CUT = Cut("MobilenetV2/expanded_conv_3/project/BatchNorm_Fold/bias1", 32, 8)
# The latent stem's cut: the first stride-16 projection (expanded_conv_6/project, 14x14).
LATENT_CUT = Cut("MobilenetV2/expanded_conv_6/project/BatchNorm_Fold/bias1", 64, 16)


def centre_geometry(width: int, height: int) -> tuple[int, int, int, int]:
    """(nw, nh, x0, y0) of the classifier's pre-processing (classification::input_crop):
    shorter side to 256, the longer to floor(long * 256 / short), each at least 224, centre
    crop at round((side - 224) / 2) (half away from zero, as Rust's f64::round)."""
    w, h = max(width, 1), max(height, 1)
    if w <= h:
        nw, nh = RESIZE, (h * RESIZE) // w
    else:
        nw, nh = (w * RESIZE) // h, RESIZE
    nw, nh = max(nw, CROP), max(nh, CROP)
    x0 = int(np.floor((nw - CROP) / 2 + 0.5))
    y0 = int(np.floor((nh - CROP) / 2 + 0.5))
    return nw, nh, x0, y0


def random_geometry(width: int, height: int, rng: np.random.Generator,
                    short: tuple[int, int] = (256, 320)) -> tuple[int, int, int, int]:
    """A training crop: shorter side resized to a random size in `short`, a random 224x224
    window of it."""
    s = int(rng.integers(short[0], short[1] + 1))
    w, h = max(width, 1), max(height, 1)
    if w <= h:
        nw, nh = s, max(CROP, h * s // w)
    else:
        nw, nh = max(CROP, w * s // h), s
    nw, nh = max(nw, CROP), max(nh, CROP)
    x0 = int(rng.integers(0, nw - CROP + 1))
    y0 = int(rng.integers(0, nh - CROP + 1))
    return nw, nh, x0, y0


def crop_of(img: np.ndarray, geom: tuple[int, int, int, int]) -> np.ndarray:
    """The 224x224 crop of `img` (H, W, 3) uint8 at geometry (nw, nh, x0, y0)."""
    nw, nh, x0, y0 = geom
    r = resize_bilinear(img, nw, nh)
    return np.ascontiguousarray(r[y0 : y0 + CROP, x0 : x0 + CROP])


def network_input(crop: np.ndarray) -> np.ndarray:
    """(3, 224, 224) float32 in -1..1, as MODEL.md."""
    return ((crop.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1).copy()


def ort_teacher(cut: Cut, path: str = DEFAULT_TEACHER, threads: int = 2):
    """onnxruntime session of the classifier with two more outputs: the tensor at `cut`
    (float, before its quantisation) and the dequantised logits. Returns (session, cut
    name, logits name); the session's outputs are (probabilities, cut, logits)."""
    import onnx
    import onnxruntime as ort

    from .onnx_torch import find_logits, find_tensor

    m = onnx.load(path)
    names = find_tensor(m, cut.suffix, "Conv"), find_logits(m)
    for name in names:
        m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return (sess, *names)
