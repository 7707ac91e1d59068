"""The shared MobileNetV2 ONNX graph rebuilt in PyTorch, so that gradients flow through it.

The graph (../shared/models/classification/mobilenet_v2_1.0_224_quant.onnx, converted from
TensorFlow Lite by tflite2onnx) computes in float with QuantizeLinear/DequantizeLinear pairs
around every weight and activation. Here:

- a weight's Q/DQ pair is evaluated once: the network's float weights are the dequantised
  uint8 values, stored as frozen buffers;
- an activation's Q/DQ pair is fake quantisation, `(clamp(round(x / s) + z, 0, 255) - z) * s`
  (round half to even, as ONNX Runtime), with a straight-through gradient;
- Conv (with the graph's asymmetric "SAME" padding), Clip, Add, AveragePool, Transpose,
  Reshape and Softmax are their torch equivalents.

`OnnxNet.run(feeds, outputs)` evaluates only the nodes needed for `outputs` given the tensors
in `feeds`, so the same object gives the full network (feed `input`) or its tail from any cut
tensor (feed the cut). icm_training.dct.check_teacher compares it with onnxruntime.
"""
from __future__ import annotations

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

# The logits, dequantised, before the softmax.
LOGITS_SUFFIX = "MobilenetV2/Logits/Squeeze1_dequantized"


def find_tensor(model: onnx.ModelProto, suffix: str, op_type: str | None = None) -> str:
    """The one node output whose name ends with `suffix` (made by `op_type` if given)."""
    hits = [
        o
        for n in model.graph.node
        for o in n.output
        if o.endswith(suffix) and (op_type is None or n.op_type == op_type)
    ]
    if len(hits) != 1:
        raise ValueError(f"{len(hits)} tensors end with {suffix!r}: {hits[:3]}")
    return hits[0]


def find_logits(model: onnx.ModelProto) -> str:
    return find_tensor(model, LOGITS_SUFFIX, "DequantizeLinear")


class FakeQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale, zero):
        q = torch.clamp(torch.round(x / scale) + zero, 0.0, 255.0)
        return (q - zero) * scale

    @staticmethod
    def backward(ctx, g):
        return g, None, None


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class OnnxNet(torch.nn.Module):
    """A frozen, differentiable evaluation of the MobileNetV2 ONNX graph."""

    def __init__(self, path: str, fake_quant: bool = True):
        super().__init__()
        model = onnx.load(path)
        self.model = model
        self.fake_quant = fake_quant
        consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.nodes = []  # (op, inputs, outputs, attrs)
        tensors: dict[str, np.ndarray] = {}
        n_buf = 0
        self._buf: dict[str, str] = {}

        def const(name):
            if name in tensors:
                return tensors[name]
            if name in consts:
                return consts[name]
            return None

        for node in model.graph.node:
            ins = list(node.input)
            vals = [const(i) for i in ins]
            # Constant folding (the weights' Q/DQ pairs).
            if node.op_type in ("QuantizeLinear", "DequantizeLinear") and all(
                v is not None for v in vals
            ):
                x, s, z = vals
                if node.op_type == "QuantizeLinear":
                    q = np.clip(np.round(x / s) + z.astype(np.float64), 0, 255)
                    tensors[node.output[0]] = q.astype(z.dtype)
                else:
                    tensors[node.output[0]] = (
                        (x.astype(np.float64) - z.astype(np.float64)) * s
                    ).astype(np.float32)
                continue
            # Parameters of the remaining nodes become buffers.
            for i, v in zip(ins, vals):
                if v is not None and i not in self._buf:
                    key = f"c{n_buf}"
                    n_buf += 1
                    self.register_buffer(key, torch.from_numpy(np.array(v)), persistent=False)
                    self._buf[i] = key
            self.nodes.append((node.op_type, ins, list(node.output), _attrs(node)))
        self.input_name = model.graph.input[0].name
        self.output_name = model.graph.output[0].name
        self.logits = find_logits(model)
        self._plans: dict = {}
        for p in self.parameters():
            p.requires_grad_(False)

    def _plan(self, feeds: tuple, outputs: tuple) -> list:
        key = (feeds, outputs)
        if key in self._plans:
            return self._plans[key]
        producer = {o: k for k, (_, _, outs, _) in enumerate(self.nodes) for o in outs}
        need: set[int] = set()
        stack = list(outputs)
        seen = set(feeds)
        while stack:
            t = stack.pop()
            if t in seen or t in self._buf or t not in producer:
                if t not in seen and t not in self._buf and t not in producer:
                    raise KeyError(f"tensor {t} has no value: feed it")
                continue
            seen.add(t)
            k = producer[t]
            if k not in need:
                need.add(k)
                stack.extend(self.nodes[k][1])
        plan = sorted(need)
        self._plans[key] = plan
        return plan

    def _val(self, env, name):
        if name in env:
            return env[name]
        return getattr(self, self._buf[name])

    def run(self, feeds: dict, outputs: list[str]) -> list[torch.Tensor]:
        env = dict(feeds)
        for k in self._plan(tuple(sorted(feeds)), tuple(outputs)):
            op, ins, outs, at = self.nodes[k]
            v = [self._val(env, i) if i else None for i in ins]
            if op == "QuantizeLinear":
                # Followed by its DequantizeLinear: evaluate the pair as fake quantisation
                # and let the DQ pass its input through.
                x, s, z = v
                if self.fake_quant:
                    y = FakeQuant.apply(x, s.float(), z.float())
                else:
                    y = x
            elif op == "DequantizeLinear":
                y = v[0]
            elif op == "Conv":
                x, w = v[0], v[1]
                b = v[2] if len(v) > 2 else None
                pads = at.get("pads", [0, 0, 0, 0])
                t, l, bo, r = pads[0], pads[1], pads[2], pads[3]
                if any(pads):
                    x = F.pad(x, (l, r, t, bo))
                y = F.conv2d(
                    x, w, b, stride=tuple(at.get("strides", [1, 1])), groups=at.get("group", 1)
                )
            elif op == "Clip":
                y = torch.clamp(v[0], float(v[1]), float(v[2]))
            elif op == "Add":
                y = v[0] + v[1]
            elif op == "AveragePool":
                # The graph pools 7x7 over a 7x7 map: a global average (any input size).
                y = v[0].mean(dim=(2, 3), keepdim=True)
            elif op == "Transpose":
                y = v[0].permute(*at["perm"])
            elif op == "Reshape":
                shape = [int(s) for s in v[1].tolist()]
                shape[0] = v[0].shape[0]
                y = v[0].reshape(shape)
            elif op == "Softmax":
                y = torch.softmax(v[0], dim=at.get("axis", -1))
            else:
                raise NotImplementedError(op)
            env[outs[0]] = y
        return [env[o] for o in outputs]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a (N, 3, 224, 224) input in -1..1."""
        return self.run({self.input_name: x}, [self.logits])[0]

    def tail(self, cut: str, features: torch.Tensor) -> torch.Tensor:
        """Logits from the tensor named `cut` (a stem's output)."""
        return self.run({cut: features}, [self.logits])[0]
