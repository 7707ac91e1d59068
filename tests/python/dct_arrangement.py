"""Writes JPEGs and their Annex B frequency tensors as icm_training.dct.inputs arranges them
(what the DCT stems were trained on; the training package is models/training, installed in
the project venv by scripts/setup_test_env.sh), for tests/it/dct_task.rs to compare with
`icm dct`.

    python tests/python/dct_arrangement.py OUT_DIR

OUT_DIR/<name>.jpg and OUT_DIR/<name>.npy (int32, (C, ceil(H/8), ceil(W/8))), for Pillow
(libjpeg-turbo) files: 4:2:0 224x224 (as in training), 4:2:2 and 4:4:4 of odd sizes, and
grayscale.
"""
import os
import sys

import numpy as np
from PIL import Image

from icm_training.dct.inputs import frequency_tensor


def picture(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // max(1, w - 1)), (y * 255 // max(1, h - 1)), ((x + y) * 3) % 256], -1)
    return np.clip(base + rng.integers(-40, 41, (h, w, 3)), 0, 255).astype(np.uint8)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    cases = [
        ("s420_q75", 224, 224, 2, 75, "RGB"),
        ("s422_q30", 45, 77, 1, 30, "RGB"),
        ("s444_q90", 64, 40, 0, 90, "RGB"),
        ("grey_q50", 17, 33, 0, 50, "L"),
    ]
    for k, (name, h, w, sub, q, mode) in enumerate(cases):
        img = Image.fromarray(picture(h, w, k))
        if mode == "L":
            img = img.convert("L")
        path = os.path.join(out, name + ".jpg")
        img.save(path, "JPEG", quality=q, subsampling=sub)
        np.save(os.path.join(out, name + ".npy"), frequency_tensor(path).astype(np.int32))
        print(name, frequency_tensor(path).shape)


if __name__ == "__main__":
    main()
