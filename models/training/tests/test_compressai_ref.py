"""The CompressAI reference tools (icm_training.compressai_seed, icm_training.compressai_kodak)
on tiny models (N=8, M=12) and two small pictures cropped from ../shared's Kodak, which also
serve as the training pictures:

- compressai_seed, 2 steps of 64x64 crops, in each format (train, zoo, legacy): the file reads
  back with torch.load, carries the CDF buffers of both entropy models, has the training
  dict's keys (train, legacy; legacy not zip-serialised), its sidecar JSON; the three runs
  (same seed) give the same tensors, another seed other ones;
- compressai_kodak on both families (the 2-step model with y scaled up by 20, so that the
  symbols are not all 0 and some take CompressAI's escape): finite bpp and PSNR;
  decompress's x_hat equals the eval-mode forward's (the same rounding); the saved symbols
  and scale indexes, decoded by hand through h_s and g_s, give the written reconstruction;
  the latents have CompressAI's shapes; the padding of a picture that is no multiple of 64;
  a second run is identical;
- each command once as documented (`python -m`).

Without torch or CompressAI the tests are skipped; without ../shared's Kodak too, except when
CI=true, where that is a failure.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("compressai")
from PIL import Image  # noqa: E402

from icm_training import SHARED  # noqa: E402
from icm_training import compressai_kodak, compressai_seed  # noqa: E402

KODAK = SHARED / "data" / "kodak"
TRAINING = Path(__file__).resolve().parents[1]  # models/training
CDF_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length")


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    """Two crops of Kodak: 128x128 and 160x96 (the latter padded to 192x128 by the coder)."""
    if not (KODAK / "kodim01.png").is_file() or not (KODAK / "kodim23.png").is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{KODAK} not found (CI=true requires it)")
        pytest.skip(f"{KODAK} not found (../shared is absent)")
    d = tmp_path_factory.mktemp("pictures")
    with Image.open(KODAK / "kodim01.png") as im:
        im.convert("RGB").crop((300, 200, 428, 328)).save(d / "a.png")
    with Image.open(KODAK / "kodim23.png") as im:
        im.convert("RGB").crop((250, 150, 410, 246)).save(d / "b.png")
    return d


def seed(pictures: Path, out: Path, arch="bmshj2018-hyperprior", fmt="train", seed_=0, steps=2):
    return compressai_seed.main([
        "--arch", arch, "--N", "8", "--M", "12", "--steps", str(steps), "--seed", str(seed_),
        "--batch", "1", "--crop", "64", "--threads", "1", "--train-dir", str(pictures),
        "--format", fmt, "-o", str(out),
    ])


def state_dict_of(path: Path) -> dict:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    return obj["state_dict"] if "state_dict" in obj else obj


def test_seed_formats(pictures, tmp_path):
    sds = {}
    for fmt in ("train", "zoo", "legacy"):
        out = tmp_path / f"{fmt}.pth.tar"
        summary = seed(pictures, out, fmt=fmt)
        assert summary["final"]["averaged_over_steps"] == 2
        assert all(math.isfinite(v) for v in summary["final"].values())
        side = json.loads((tmp_path / f"{fmt}.json").read_text())
        assert side["args"]["format"] == fmt and side["args"]["steps"] == 2
        assert zipfile.is_zipfile(out) == (fmt != "legacy")
        obj = torch.load(out, map_location="cpu", weights_only=True)
        if fmt == "zoo":
            assert "g_a.0.weight" in obj
        else:
            assert {"epoch", "state_dict", "loss", "optimizer", "aux_optimizer"} <= set(obj)
            assert obj["optimizer"]["state"] and obj["aux_optimizer"]["state"]  # trained
        sd = state_dict_of(out)
        for mod in ("entropy_bottleneck", "gaussian_conditional"):
            for b in CDF_BUFFERS:
                assert sd[f"{mod}.{b}"].numel() > 0, f"{fmt}: {mod}.{b} empty"
        assert sd["entropy_bottleneck._quantized_cdf"].shape[0] == 8
        assert sd["gaussian_conditional._quantized_cdf"].shape[0] == 64  # CompressAI's scale table
        sds[fmt] = sd
    # same seed: the same tensors whatever the format
    for fmt in ("zoo", "legacy"):
        assert sds[fmt].keys() == sds["train"].keys()
        for k, v in sds["train"].items():
            assert torch.equal(v, sds[fmt][k]), f"{fmt}: {k} differs"
    other = state_dict_of(tmp_path / "zoo.pth.tar")
    seed(pictures, tmp_path / "other.pth.tar", fmt="zoo", seed_=1)
    assert not torch.equal(other["g_a.0.weight"], state_dict_of(tmp_path / "other.pth.tar")["g_a.0.weight"])


@pytest.mark.parametrize("arch", compressai_seed.ARCHS)
def test_kodak(pictures, tmp_path, arch):
    trained = tmp_path / "trained.pth.tar"
    seed(pictures, trained, arch=arch, fmt="legacy" if arch == "mbt2018-mean" else "train")
    # a 2-step model codes (nearly) all-zero symbols: y scaled up by 20 (and g_s's input down)
    # gives symbols of all sizes, escapes included
    sd = state_dict_of(trained)
    for k in ("g_a.6.weight", "g_a.6.bias"):
        sd[k] = sd[k] * 20
    sd["g_s.0.weight"] = sd["g_s.0.weight"] / 20
    ckpt = tmp_path / "ckpt.pth.tar"
    torch.save(sd, ckpt)
    args = [str(ckpt), "--arch", arch, "--images", str(pictures), "--threads", "1", "--forward"]
    res = compressai_kodak.main(args + ["-o", str(tmp_path / "r.json"), "--recon", str(tmp_path / "rec"),
                                        "--latents", str(tmp_path / "lat")])
    assert res["N"] == 8 and res["M"] == 12 and res["stored_cdfs"] and not res["updated"]
    assert json.loads((tmp_path / "r.json").read_text())["per_image"] == res["per_image"]
    assert [r["name"] for r in res["per_image"]] == ["a.png", "b.png"]
    for r in res["per_image"]:
        assert r["bytes"] == r["bytes_y"] + r["bytes_z"] > 0
        assert math.isfinite(r["bpp"]) and math.isfinite(r["psnr"]) and r["psnr"] > 0
        assert r["bpp"] == r["bytes"] * 8 / (r["width"] * r["height"])
        # decompress rounds as the eval-mode forward does (y_hat = means + round(y - means))
        assert r["forward_max_abs_diff"] < 1e-5
        assert r["z_escapes"] == 0 and r["y_escapes"] > 0  # CompressAI's escape coding is exercised
        rec = np.asarray(Image.open(tmp_path / "rec" / r["name"]))
        src = np.asarray(Image.open(pictures / r["name"]).convert("RGB"))
        assert rec.shape == src.shape and rec.dtype == np.uint8
        assert r["psnr"] == pytest.approx(compressai_kodak.psnr(src, rec))
    b = res["per_image"][1]
    assert (b["width"], b["height"], b["padded"]) == (160, 96, [32, 32])
    lat = tmp_path / "lat"
    for name, (h, w) in (("a", (128, 128)), ("b", (128, 192))):
        z = np.load(lat / f"{name}.z_symbols.npy")
        y = np.load(lat / f"{name}.y_symbols.npy")
        idx = np.load(lat / f"{name}.scale_index.npy")
        assert z.dtype == y.dtype == idx.dtype == np.int32
        assert z.shape == (1, 8, h // 64, w // 64)
        assert y.shape == idx.shape == (1, 12, h // 16, w // 16)
        assert 0 <= idx.min() and idx.max() <= 63
        assert np.count_nonzero(y) > y.size // 4
    # the symbols are those the strings carry: decoding them with the model reproduces x_hat
    net, _ = compressai_kodak.load_model(str(ckpt), arch)
    x, _pad = compressai_kodak.to_input(np.asarray(Image.open(pictures / "b.png").convert("RGB")))
    with torch.inference_mode():
        z_hat = torch.from_numpy(np.load(lat / "b.z_symbols.npy")).float() + \
            net.entropy_bottleneck._get_medians().reshape(1, -1, 1, 1)
        params = net.h_s(z_hat)
        y_hat = torch.from_numpy(np.load(lat / "b.y_symbols.npy")).float()
        if arch == "mbt2018-mean":
            scales, means = params.chunk(2, 1)
            y_hat = y_hat + means
        else:
            scales = params
        assert torch.equal(net.gaussian_conditional.build_indexes(scales),
                           torch.from_numpy(np.load(lat / "b.scale_index.npy")))
        img = (net.g_s(y_hat).clamp(0, 1)[0, :, :96, :160] * 255).round().to(torch.uint8).permute(1, 2, 0)
    assert np.array_equal(img.numpy(), np.asarray(Image.open(tmp_path / "rec" / "b.png")))
    # deterministic: a second run gives the same bytes, PSNR and symbols
    again = compressai_kodak.main(args + ["-o", str(tmp_path / "r2.json"), "--latents", str(tmp_path / "lat2")])
    for r1, r2 in zip(res["per_image"], again["per_image"]):
        assert (r1["bytes"], r1["psnr"]) == (r2["bytes"], r2["psnr"])
    for f in lat.iterdir():
        assert np.array_equal(np.load(f), np.load(tmp_path / "lat2" / f.name))


def test_commands(pictures, tmp_path):
    """Both commands as documented: python -m icm_training.<module>."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(TRAINING)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))}
    ckpt = tmp_path / "m.pth.tar"
    subprocess.run([sys.executable, "-m", "icm_training.compressai_seed", "--arch", "mbt2018-mean",
                    "--N", "8", "--M", "12", "--steps", "0", "--crop", "64", "--batch", "1",
                    "--train-dir", str(pictures), "--format", "zoo", "-o", str(ckpt)],
                   check=True, env=env, capture_output=True, text=True)
    assert json.loads((tmp_path / "m.json").read_text())["final"]["averaged_over_steps"] == 0
    p = subprocess.run([sys.executable, "-m", "icm_training.compressai_kodak", str(ckpt), "--arch",
                        "mbt2018-mean", "--images", str(pictures), "--threads", "1", "-o",
                        str(tmp_path / "r.json")], check=True, env=env, capture_output=True, text=True)
    assert "mean over 2:" in p.stdout
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["count"] == 2 and math.isfinite(res["mean"]["bpp"]) and math.isfinite(res["mean"]["psnr"])
