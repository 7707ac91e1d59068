"""The stem toolkit (icm_training.stems) without ../shared: stems exported to ONNX and read
back, caches written (resumed, refused with other settings) and read, and short resumable
training runs of the latent classifier and detector stems on synthetic caches."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from icm_training.dct import export_stem
from icm_training.dct.stem import Stem
from icm_training.latent import export_det_stem, export_latent_stem
from icm_training.latent.stem import DetStem, LatentStem
from icm_training.latent.train import main as train_latent
from icm_training.latent.train_det import main as train_det
from icm_training.stems.cache import CacheWriter, read_crop_cache, read_letterbox_cache
from icm_training.stems.export import load_stem


def randomised(stem):
    """`stem` with random batch-norm statistics (so that folding matters), in eval mode."""
    for m in stem.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 2)
            m.bias.data.uniform_(-1, 1)
    stem.mean.uniform_(-5, 5)
    stem.inv_std.uniform_(0.1, 1)
    return stem.eval()


def checkpoint(tmp_path, stem, **more):
    path = tmp_path / "ckpt.pt"
    torch.save({"model": stem.state_dict(), "summary": {"steps": 1}, **more}, path)
    return str(path)


@pytest.mark.parametrize("domain", ["dct", "latents"])
def test_stem_export_reads_back(tmp_path, domain):
    torch.manual_seed(0)
    if domain == "dct":
        channels = [0, 1, 8, 64, 128]
        stem, back, x = randomised(Stem(channels)), Stem(channels), torch.randn(2, 5, 28, 28) * 50
        ck = checkpoint(tmp_path, stem, channels=channels)
        main, expect = export_stem.main, {"icm.channels": json.dumps(channels)}
    else:
        stem, back, x = randomised(LatentStem()), LatentStem(), torch.randn(2, 192, 14, 14) * 2
        ck = checkpoint(tmp_path, stem)
        main, expect = export_latent_stem.main, {"icm.input": "latents"}
    out = str(tmp_path / "stem.onnx")
    assert main(["--ckpt", ck, "--out", out]) == 0
    load_stem(back, out, expect)
    with torch.no_grad():
        torch.testing.assert_close(back.eval()(x), stem(x), rtol=1e-4, atol=1e-3)
    with pytest.raises(SystemExit):
        load_stem(back, out, {"icm.input": "something else"})


def test_detection_stem_export(tmp_path):
    torch.manual_seed(0)
    ck = checkpoint(tmp_path, randomised(DetStem()))
    assert export_det_stem.main(["--ckpt", ck, "--out", str(tmp_path / "det.onnx")]) == 0


def write_crop_cache(path, pictures=4, crops=2, qualities=(1, 6), finish=True):
    """A latent crop cache of random arrays (picture 0 held out)."""
    m, nq = pictures * crops, len(qualities)
    rng = np.random.default_rng(0)
    w = CacheWriter(str(path), {
        "crop_feat": (np.float16, (m, 64, 14, 14)), "crop_logits": (np.float16, (m, 1001)),
        "crop_image": (np.int32, (m,)), "latents": (np.float16, (m * nq, 192, 14, 14)),
        "sample_crop": (np.int32, (m * nq,)), "sample_q": (np.uint8, (m * nq,)),
    }, settings={"files": pictures, "crops": crops, "qualities": list(qualities)})
    w["crop_feat"][:] = rng.standard_normal(w["crop_feat"].shape)
    w["latents"][:] = rng.standard_normal(w["latents"].shape)
    w["crop_image"][:] = np.arange(m) // crops
    w["sample_crop"][:] = np.arange(m * nq) // nq
    w["sample_q"][:] = np.tile(qualities, m)
    w.progress(pictures)
    if finish:
        w.finish({"val_images": [0], "crops": crops, "qualities": list(qualities), "samples": m * nq})


def test_crop_cache(tmp_path):
    write_crop_cache(tmp_path, finish=False)
    with pytest.raises(SystemExit):
        read_crop_cache(str(tmp_path), "latents")  # not finished
    c = read_crop_cache(str(tmp_path), "latents", partial=True)
    assert list(c["val_idx"]) == [0, 1, 2, 3] and len(c["train_idx"]) == 12
    w = CacheWriter(str(tmp_path), {"sample_q": (np.uint8, (16,))},
                    settings={"files": 4, "crops": 2, "qualities": [1, 6]})
    assert w.done == 4 and list(w["sample_q"][:4]) == [1, 6, 1, 6]
    with pytest.raises(SystemExit):
        CacheWriter(str(tmp_path), {}, settings={"files": 5, "crops": 2, "qualities": [1, 6]})


def test_classifier_training_resumes(tmp_path, capsys):
    write_crop_cache(tmp_path / "cache")
    args = ["--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "s"), "--feat-steps", "3",
            "--batch", "2", "--val-samples", "0", "--threads", "1"]
    assert train_latent([*args, "--max-steps", "2"]) == 0
    assert train_latent(args) == 0
    assert "resuming" in capsys.readouterr().out
    ck = torch.load(tmp_path / "s" / "ckpt.pt", weights_only=False)
    assert ck["step"] == 3 and ck["summary"]["final"] and ck["log"][-1]["phase"] == "feature"


def test_detector_training_resumes(tmp_path, capsys):
    pictures, q = 4, 2
    rng = np.random.default_rng(0)
    w = CacheWriter(str(tmp_path / "cache"), {
        "dark3": (np.float16, (pictures, 64, 52, 52)), "dark4": (np.float16, (pictures, 128, 26, 26)),
        "dark5": (np.float16, (pictures, 256, 13, 13)), "x": (np.float16, (pictures, q, 193, 26, 26)),
    }, settings={"pictures": pictures, "geometries": 1})
    for a in w.arrays.values():
        a[:] = rng.standard_normal(a.shape)
    w.progress(pictures)
    c = read_letterbox_cache(str(tmp_path / "cache"), ("dark3", "dark4", "dark5"))
    assert list(c["val_idx"]) == [0] and list(c["train_idx"]) == [1, 2, 3]
    args = ["--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "d"), "--steps", "2", "--batch", "2",
            "--val-every", "1", "--val-samples", "1", "--threads", "1"]
    assert train_det([*args, "--max-steps", "1"]) == 0
    assert train_det(args) == 0
    out = capsys.readouterr().out
    assert "resuming" in out and '"val_dark5"' in out
    assert torch.load(tmp_path / "d" / "ckpt.pt", weights_only=False)["step"] == 2
