"""The training recipe end to end on CPU, on a few pictures of ../shared/data/train (or
$ICM_TRAIN_SRC), each command run as documented (`python -m icm_training.<module>`) from the
repository root:

- the zoo: make_manifest --check; prepare_data on 4 pictures; train from scratch for 2
  steps (64x64 crops) and from the shipped icm-psnr-q1 for 1; export of that checkpoint,
  `icm model build`, `icm encode` + `icm decode` with the built model, and the model file
  loaded back into PyTorch against the export;
- the machine fine-tune: train_machine from icm-psnr-q1 for 2 steps, resumed for a third,
  a step with --task-loss outputs, one with --whole --train-parts synthesis, the export,
  the build and probe_features (needs ../shared's YOLOX-Nano);
- the stems (needs ../shared's classifier or detector, and onnxruntime): the DCT stems on
  4 pictures, the latent classifier stem on 3 pictures at two zoo qualities, the latent
  detection stem on 3 pictures at six, each cached, trained, resumed, exported, continued
  and composed with the shared network (scripts/compose_*_tasks.py --check).

What ../shared lacks skips the tests that need it, except when CI=true, where that is a
failure. The Rust release binary is built once (cargo build --release --bin icm).
"""
from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from icm_training import CLASSIFIER, DETECTOR, ROOT, SHARED

Q1 = ROOT / "models" / "icm-psnr-q1.safetensors"
SRC = Path(os.environ.get("ICM_TRAIN_SRC") or SHARED / "data" / "train")


def require(path: Path, what: str) -> Path:
    """`path`, or a skip of the test when it is absent (a failure when CI=true)."""
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} {path} not found (CI=true requires it)")
        pytest.skip(f"{what} {path} not found (../shared is absent)")
    return path


def command(*argv, env: dict | None = None) -> str:
    """Runs a command from the repository root and returns its output (stdout and stderr);
    fails the test with its last lines unless it exits 0."""
    argv = [str(a) for a in argv]
    r = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    print(f"$ {' '.join(argv)}\n{r.stdout}")
    if r.returncode != 0:
        tail = "\n".join(r.stdout.splitlines()[-40:])
        pytest.fail(f"{' '.join(argv)} exited {r.returncode}; last lines:\n{tail}")
    return r.stdout


def recipe(module: str, *args, env: dict | None = None) -> str:
    """`python -m icm_training.<module> args...` (command)."""
    return command(sys.executable, "-m", f"icm_training.{module}", *args, env=env)


def jpegs(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.jpg"))


@pytest.fixture(scope="session")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("smoke")


@pytest.fixture
def train_src() -> Path:
    return require(SRC, "training images")


@pytest.fixture
def classifier() -> Path:
    return require(CLASSIFIER, "classifier")


@pytest.fixture
def detector() -> Path:
    return require(DETECTOR, "detector")


@pytest.fixture(scope="session")
def icm_bin() -> Path:
    """The release binary of this checkout, built once."""
    command("cargo", "build", "--release", "--quiet", "--bin", "icm")
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    return (target if target.is_absolute() else ROOT / target) / "release" / "icm"


@pytest.fixture(scope="session")
def train_data(work) -> Path:
    """prepare_data's copy of the first 4 pictures of the training set."""
    src = require(SRC, "training images")
    files = sorted(str(p) for p in src.rglob("*") if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:4]
    assert len(files) == 4, f"found {len(files)} images under {src}, need 4"
    (work / "src").mkdir()
    for f in files:
        shutil.copy(f, work / "src")
    recipe("prepare_data", "--src", work / "src", "--out", work / "train")
    return work / "train"


@pytest.fixture(scope="session")
def init_run(train_data, work):
    """One step continuing icm-psnr-q1 (a real model: export.py rejects a from-scratch one,
    whose initial bottleneck density puts ~0.5 % of its mass outside -64..64): (checkpoint,
    log)."""
    out = work / "init_out"
    log = recipe("train", "--data", train_data, "--quality", 1, "--init-model", Q1, "--max-steps", 1,
                 "--batch", 2, "--crop", 64, "--device", "cpu", "--out", out)
    return out / "ckpt_q1.pt", log


@pytest.fixture(scope="session")
def export_file(init_run, train_data, work) -> Path:
    out = work / "export.safetensors"
    recipe("export", "--ckpt", init_run[0], "--out", out, "--data", train_data, "--crops", 8)
    return out


@pytest.fixture(scope="session")
def model_file(export_file, icm_bin, work) -> Path:
    out = work / "M.safetensors"
    command(icm_bin, "model", "build", export_file, "-o", out, "--name", "smoke")
    return out


# ---------------------------------------------------------------------------------- zoo
def test_environment():
    """The packages of models/training/requirements.txt import."""
    names = ("torch", "torchvision", "compressai", "pytorch_msssim", "numpy", "PIL", "safetensors", "matplotlib")
    m = {n: importlib.import_module(n) for n in names}
    print(*(f"{n} {m[n].__version__}" for n in ("torch", "compressai", "numpy")))


def test_manifest():
    recipe("make_manifest", "--check")


def test_prepare_data(train_data):
    assert len(jpegs(train_data)) >= 2


def test_train_from_scratch(train_data, work):
    out = work / "train_out"
    recipe("train", "--data", train_data, "--quality", 6, "--max-steps", 2, "--batch", 2, "--crop", 64,
           "--device", "cpu", "--out", out)
    assert (out / "ckpt_q6.pt").stat().st_size and (out / "losses_q6.csv").stat().st_size


def test_train_init_model(init_run):
    import torch

    ckpt, log = init_run
    assert "initialised from model file" in log
    ck = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert ck["steps"] == 78620 + 1 and ck["parents"] == ["icm-psnr-q1:q1@78620"], (ck["steps"], ck["parents"])


def test_export(export_file):
    assert export_file.stat().st_size


def test_model_build(model_file):
    assert model_file.stat().st_size


def test_encode_decode(model_file, train_data, icm_bin, work):
    """A 150x100 crop (not a multiple of 64: the padding) coded and decoded with the model."""
    from PIL import Image

    src, stream, dec = work / "in.png", work / "in.icm", work / "out.png"
    Image.open(jpegs(train_data)[0]).convert("RGB").crop((0, 0, 150, 100)).save(src)
    command(icm_bin, "encode", src, "-o", stream, "--model", model_file)
    command(icm_bin, "decode", stream, "-o", dec, "--model", model_file)
    a = np.asarray(Image.open(src).convert("RGB"), dtype=np.float64)
    b = np.asarray(Image.open(dec).convert("RGB"), dtype=np.float64)
    assert a.shape == b.shape
    psnr = 10 * np.log10(255 ** 2 / max(((a - b) ** 2).mean(), 1e-12))
    print(f"{8 * stream.stat().st_size / (a.shape[0] * a.shape[1]):.3f} bpp, PSNR {psnr:.2f} dB")
    assert psnr > 20, "reconstruction too poor for a model continued from icm-psnr-q1"


def test_model_file_roundtrip(model_file, export_file):
    """The model file read back into PyTorch matches the export it was built from: h_s within
    half an int8 step, the rest within f16 rounding."""
    from icm_training.train import compare_with_export, load_model_file

    model, meta = load_model_file(str(model_file))
    assert meta["name"] == "smoke", meta
    bad = []
    for k, (d, ref) in compare_with_export(model, str(export_file)).items():
        print(f"  {k:40s} {d:.3e} (max |ref| {ref:.3e})")
        if "quant. steps" in k:
            ok = d <= 0.5 + 1e-3
        elif k.startswith("h_s "):
            ok = d <= 0.05 * ref + 1e-3
        elif k.endswith("output"):
            ok = d <= 1e-2 * ref + 1e-4
        else:  # f16 storage: relative error <= 2^-11 per value; F32 tensors exact
            ok = d <= 2e-3 * ref + 1e-6
        if not ok:
            bad.append(k)
    assert not bad, f"too far from the export: {bad}"


# ------------------------------------------------------------------------ machine zoo
def test_machine_training(detector, train_data, icm_bin, work):
    """train_machine (YOLOX-Nano distillation) from icm-psnr-q1: 2 steps, a resumed third
    (neck-feature loss), one step of the output loss, one on whole letterboxed pictures
    training g_s only (nothing else may move), the export and build of the checkpoint, and
    probe_features on the built model."""
    import torch

    from icm_training.model import IcmHyperprior
    from icm_training.train import load_model_file

    d = work / "machine"
    common = ["--data", train_data, "--init-model", Q1, "--quality", 1, "--device", "cpu", "--threads", 2]
    crops = ["--batch", 2, "--crop", 64]
    recipe("train_machine", *common, *crops, "--max-steps", 2, "--log-every", 1, "--out", d)
    log = recipe("train_machine", *common, *crops, "--max-steps", 3, "--log-every", 1, "--out", d)
    assert re.search("resumed .* at machine step 2", log)
    assert sum(line[:1].isdigit() for line in (d / "losses_q1.csv").read_text().splitlines()) == 3
    recipe("train_machine", *common, *crops, "--max-steps", 1, "--task-loss", "outputs", "--out", d / "outputs")
    assert (d / "outputs" / "ckpt_q1.pt").stat().st_size
    recipe("train_machine", *common, "--max-steps", 1, "--batch", 1, "--whole", "--train-parts", "synthesis",
           "--out", d / "whole")
    ck = torch.load(d / "whole" / "ckpt_q1.pt", map_location="cpu", weights_only=False)["state_dict"]
    start = IcmHyperprior()
    load_model_file(str(Q1), start)
    moved = {k.split(".")[0] for k, v in start.state_dict().items()
             if v.is_floating_point() and not torch.equal(v, ck[k])}
    assert moved == {"g_s"}, f"--train-parts synthesis changed {sorted(moved)}"
    recipe("export", "--ckpt", d / "ckpt_q1.pt", "--out", d / "export.safetensors", "--data", train_data,
           "--crops", 8)
    command(icm_bin, "model", "build", d / "export.safetensors", "-o", d / "M.safetensors", "--name", "smoke-machine")
    probe = recipe("probe_features", "--models", Q1, d / "M.safetensors", "--images", jpegs(train_data)[0],
                   "--icm", icm_bin)
    assert probe.count("feature loss") == 2


# ------------------------------------------------------------------------------- stems
def test_dct_stems(train_src, classifier, work):
    """The teacher rebuild against onnxruntime, the cache, the gated 192-channel stem, the
    selection, a 24-channel stem with its KL phase, its export, a continuation from the
    export, and the composition with the shared classifier."""
    d = work / "dct"
    recipe("dct.check_teacher", "--images", 3, "--data", SHARED / "data" / "imagenet-val-sample")
    recipe("dct.build_cache", "--src", train_src, "--out", d / "cache", "--limit", 4, "--crops", 2, "--codings", 1,
           "--val-every", 2)
    run = ["--cache", d / "cache", "--batch", 2]
    recipe("dct.train", *run, "--out", d / "gate", "--channels", "all", "--gate", "--feat-epochs", 2,
           "--val-samples", 0, "--threads", 2)
    assert (d / "gate" / "channels.json").stat().st_size and (d / "gate" / "gate_stats.json").stat().st_size
    recipe("dct.train", *run, "--out", d / "s24", "--channels", d / "gate" / "channels.json",
           "--init", d / "gate" / "ckpt.pt", "--feat-epochs", 1, "--kl-epochs", 1, "--val-samples", 2,
           "--threads", 2)
    recipe("dct.export_stem", "--ckpt", d / "s24" / "ckpt.pt", "--out", d / "dct24_stem.onnx")
    log = recipe("dct.train", *run, "--out", d / "s24b", "--channels", d / "gate" / "channels.json",
                 "--init-stem", d / "dct24_stem.onnx", "--feat-epochs", 1, "--max-steps", 1, "--val-samples", 0)
    assert "initialised from exported stem" in log
    command(sys.executable, "scripts/compose_dct_tasks.py", "--stems", d / "dct24_stem.onnx",
            "--out-dir", d / "composed", "--check")
    assert (d / "composed" / "mobilenet_v2_dct24.onnx").stat().st_size


def test_latent_stem(train_src, classifier, icm_bin, work):
    """The cache (icm encode and decode --latents at qualities 1 and 6, the teacher on the
    crops), feature and KL steps, a resumed run, the export, a continuation from the export,
    and the composition."""
    d = work / "latent"
    recipe("latent.build_cache", "--src", train_src, "--out", d / "cache", "--limit", 3, "--crops", 2,
           "--qualities", "1,6", "--val-every", 2, env={"ICM_BIN": str(icm_bin)})
    assert len(list((d / "cache" / "streams").rglob("*.icm"))) == 6
    run = ["--cache", d / "cache", "--batch", 2]
    steps = [*run, "--out", d / "s", "--feat-steps", 2, "--kl-steps", 2, "--val-samples", 4, "--threads", 2]
    recipe("latent.train", *steps, "--max-steps", 3)
    log = recipe("latent.train", *steps)
    assert re.search("resuming .* at step 3", log) and '"phase": "kl"' in log
    recipe("latent.export_latent_stem", "--ckpt", d / "s" / "ckpt.pt", "--out", d / "latent_cls_stem.onnx")
    log = recipe("latent.train", *run, "--out", d / "s2", "--init-stem", d / "latent_cls_stem.onnx",
                 "--feat-steps", 1, "--val-samples", 0)
    assert "initialised from exported stem" in log
    command(sys.executable, "scripts/compose_latent_tasks.py", "--stem", d / "latent_cls_stem.onnx",
            "--out-dir", d / "composed", "--check")
    assert (d / "composed" / "mobilenet_v2_latent.onnx").stat().st_size


def test_latent_detection_stem(train_src, detector, icm_bin, work):
    """The cache (6 codings and 2 letterbox scales a picture, YOLOX-Nano's backbone on
    each), 3 steps, a resumed fourth, a step with the head loss from that checkpoint, the
    export (checked against PyTorch) and the composition with the detector's neck and head
    (run on random input)."""
    d = work / "latent_det"
    recipe("latent.build_det_cache", "--src", train_src, "--out", d / "cache", "--limit", 3,
           env={"ICM_BIN": str(icm_bin)})
    assert len(list((d / "cache" / "streams").rglob("*.icm"))) == 18
    run = ["--cache", d / "cache", "--batch", 2, "--val-samples", 2, "--threads", 2]
    recipe("latent.train_det", *run, "--out", d / "s", "--steps", 4, "--val-every", 2, "--max-steps", 3)
    log = recipe("latent.train_det", *run, "--out", d / "s", "--steps", 4, "--val-every", 2)
    assert re.search("resuming .* at step 3", log) and '"val_dark5"' in log
    log = recipe("latent.train_det", *run, "--out", d / "h", "--init", d / "s" / "ckpt.pt", "--head-weight", 1,
                 "--steps", 1, "--val-every", 1)
    assert "initialised from" in log and '"val_head_box"' in log
    recipe("latent.export_det_stem", "--ckpt", d / "s" / "ckpt.pt", "--out", d / "latent_det_stem.onnx")
    command(sys.executable, "scripts/compose_latent_tasks.py", "--stems", d / "latent_det_stem.onnx",
            "--out-dir", d / "composed", "--check")
    assert (d / "composed" / "yolox_nano_latent.onnx").stat().st_size
