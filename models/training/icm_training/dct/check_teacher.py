"""Checks the PyTorch rebuild of the shared classifier (stems.onnx_torch.OnnxNet) against
onnxruntime on pictures of the ImageNet sample: top-1 agreement, logit and probability
differences, and the DCT stems' cut tensor. Exits non-zero when they disagree by more than
the rounding noise of the fake-quantised graph: onnxruntime itself gives logits 2-3
quantisation steps (0.0989 each) apart between its optimisation levels (all vs. none), so
the check asks for top-1 agreement on at least 95 % of the images and probabilities within
0.1.

    python -m icm_training.dct.check_teacher [--images 20]
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from .. import SHARED
from ..stems.classifier import DCT_CUT, DEFAULT_TEACHER, centre_geometry, crop_of, network_input, ort_teacher
from ..stems.images import list_images, load_rgb
from ..stems.onnx_torch import OnnxNet, find_tensor


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--teacher", default=DEFAULT_TEACHER)
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--data", default=str(SHARED / "data" / "imagenet-val-sample"))
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    files = list_images(args.data)[: args.images]
    sess, _, _ = ort_teacher(DCT_CUT, args.teacher)
    net = OnnxNet(args.teacher).eval()
    cut = find_tensor(net.model, DCT_CUT.suffix, "Conv")
    agree, max_dl, max_dp, max_df = 0, 0.0, 0.0, 0.0
    t_ort = t_torch = 0.0
    for f in files:
        img = load_rgb(f)
        x = network_input(crop_of(img, centre_geometry(img.shape[1], img.shape[0])))[None]
        t = time.time()
        prob, feat, logit = sess.run(None, {"input": x})
        t_ort += time.time() - t
        t = time.time()
        with torch.no_grad():
            tf, tl = net.run({net.input_name: torch.from_numpy(x)}, [cut, net.logits])
        t_torch += time.time() - t
        tl = tl.numpy()
        agree += int(tl.argmax() == logit.argmax())
        max_dl = max(max_dl, float(np.abs(tl - logit).max()))
        p = torch.softmax(torch.from_numpy(tl), -1).numpy()
        q = torch.softmax(torch.from_numpy(logit), -1).numpy()
        max_dp = max(max_dp, float(np.abs(p - q).max()))
        max_df = max(max_df, float(np.abs(tf.numpy() - feat).max()))
    n = len(files)
    print(
        f"{n} images: top-1 agreement {agree}/{n}, max |logit diff| {max_dl:.4f} "
        f"(one quantisation step of the logits is 0.0989), max |prob diff| {max_dp:.5f}, "
        f"max |cut tensor diff| {max_df:.5f}; onnxruntime {1000 * t_ort / n:.1f} ms, "
        f"torch {1000 * t_torch / n:.1f} ms per image"
    )
    ok = agree >= 0.95 * n and max_dp < 0.1
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
