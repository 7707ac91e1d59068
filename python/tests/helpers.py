"""Helpers of the icm package's tests: the rule for a test that cannot run here, running
the icm command, pictures and PPM files, the conformance vectors."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def cannot_run(why: str) -> None:
    """Skip the test, or fail it under CI=true, where everything it needs is installed."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the test cannot run: {why}")
    pytest.skip(why)


def run_cli(cli: Path, *args, **kw) -> subprocess.CompletedProcess:
    """Runs the icm command; fails the test with its stderr when it fails."""
    r = subprocess.run([str(cli), *map(str, args)], capture_output=True, **kw)
    if r.returncode != 0:
        pytest.fail(f"icm {' '.join(map(str, args))} failed: {r.stderr.decode(errors='replace')}")
    return r


def picture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A deterministic RGB picture: smooth gradients, edges and some noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 127 + 100 * np.sin(x / 11.0 + seed) * np.cos(y / 7.0)
    g = 255 * y / max(height - 1, 1)
    b = np.where(((x // 16 + y // 16) % 2) == 0, 200.0, 40.0)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 8, (height, width, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def write_ppm(path: Path, img: np.ndarray) -> Path:
    h, w, _ = img.shape
    path.write_bytes(b"P6\n%d %d\n255\n" % (w, h) + np.ascontiguousarray(img).tobytes())
    return path


def read_ppm(path: Path) -> np.ndarray:
    data = path.read_bytes()
    parts = data.split(maxsplit=4)
    assert parts[0] == b"P6" and parts[3] == b"255", parts[:4]
    w, h = int(parts[1]), int(parts[2])
    return np.frombuffer(parts[4], dtype=np.uint8).reshape(h, w, 3)


def vectors():
    """The conformance vectors (conformance/vectors.json)."""
    return json.loads((REPO / "conformance/vectors.json").read_text())["vectors"]
