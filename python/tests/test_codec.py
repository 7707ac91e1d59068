"""encode, decode, decode_latents, info and Model against the icm command: the same bytes,
pixels, latents and fields for the same picture, model and options."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import icm
from helpers import REPO, picture, read_ppm, run_cli, vectors, write_ppm

# (name, width, height, encode keyword arguments, the icm encode options that match them)
CASES = [
    ("default", 96, 64, {}, []),
    ("odd-q1", 37, 23, {"quality": 1}, ["--quality", "1"]),
    ("tiles64", 200, 140, {"tile": 64}, ["--tile", "64"]),
    ("tiles128x64-str", 300, 130, {"tile": "128x64"}, ["--tile", "128x64"]),
    ("tiles-tuple", 150, 100, {"tile": (128, 64)}, ["--tile", "128x64"]),
    ("no-checksums", 70, 50, {"checksums": False}, ["--no-checksums"]),
    ("zoo-name", 64, 64, {"model": "icm-psnr-q5"}, ["--model", "icm-psnr-q5"]),
    ("effort1", 80, 64, {"quality": 1, "effort": 1}, ["--quality", "1", "--effort", "1"]),
    ("step", 96, 64, {"quality": 2, "step": 1.5}, ["--quality", "2", "--step", "1.5"]),
    ("quality-2.5", 96, 64, {"quality": 2.5}, ["--quality", "2.5"]),
    ("bpp", 128, 96, {"bpp": 0.5}, ["--bpp", "0.5"]),
    ("size", 128, 96, {"size": 700, "model": "icm-psnr-q4"}, ["--bytes", "700", "--model", "icm-psnr-q4"]),
]


@pytest.fixture(scope="module")
def coded(cli, tmp_path_factory):
    """Every case encoded by the CLI: {name: (picture, stream file, stream bytes)}."""
    d = tmp_path_factory.mktemp("coded")
    out = {}
    for name, w, h, _, args in CASES:
        img = picture(w, h, seed=len(out))
        src = write_ppm(d / f"{name}.ppm", img)
        stream = d / f"{name}.icm"
        run_cli(cli, "encode", src, "-o", stream, *args, "--model-dir", REPO / "models")
        out[name] = (img, stream, stream.read_bytes())
    return out


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_encode_gives_the_bytes_of_the_cli(coded, case):
    name, _, _, kwargs, _ = case
    img, _, want = coded[name]
    assert icm.encode(img, **kwargs) == want


def test_encode_with_a_model_file_gives_the_bytes_of_the_cli(cli, tmp_path, small_model):
    img = picture(130, 70, seed=7)
    src = write_ppm(tmp_path / "p.ppm", img)
    run_cli(cli, "encode", src, "-o", tmp_path / "p.icm", "--model", small_model)
    want = (tmp_path / "p.icm").read_bytes()
    assert icm.encode(img, model=small_model) == want
    assert icm.encode(img, model=str(small_model)) == want
    assert icm.encode(img, model=icm.Model.load(small_model)) == want


def test_encode_does_not_depend_on_threads_or_strides():
    img = picture(160, 90, seed=3)
    ref = icm.encode(img, tile=64)
    assert icm.encode(img, tile=64, threads=1) == ref
    assert icm.encode(img, tile=64, threads=3) == ref
    flipped = np.ascontiguousarray(img[:, ::-1])
    assert icm.encode(img[:, ::-1], tile=64) == icm.encode(flipped, tile=64)
    fortran = np.asfortranarray(img)
    assert icm.encode(fortran, tile=64) == ref


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_decode_gives_the_pixels_of_the_cli(cli, coded, tmp_path, name):
    _, stream, data = coded[name]
    out = tmp_path / "d.ppm"
    run_cli(cli, "decode", stream, "-o", out, "--model-dir", REPO / "models")
    got = icm.decode(data)
    assert got.dtype == np.uint8 and got.flags.c_contiguous and got.flags.writeable
    np.testing.assert_array_equal(got, read_ppm(out))


@pytest.mark.parametrize("name", ["default", "tiles64", "tiles128x64-str"])
def test_latents_are_those_of_the_cli(cli, coded, tmp_path, name):
    _, stream, data = coded[name]
    npy, raw = tmp_path / "y.npy", tmp_path / "lat.raw"
    r = run_cli(
        cli, "decode", stream, "--latents", npy, "--latents-raw", raw, "--hash",
        "--model-dir", REPO / "models",
    )
    lat = icm.decode_latents(data)
    want_y = np.load(npy)
    assert lat["y"].dtype == np.int32 and want_y.dtype == np.int32
    np.testing.assert_array_equal(lat["y"], want_y)
    assert f"latents sha256 {lat['sha256']}" in r.stdout.decode()
    assert hashlib.sha256(raw.read_bytes()).hexdigest() == lat["sha256"]
    info = icm.info(data)
    m = icm.Model.load(info["model"])
    rows, cols = -(-info["height"] // 64), -(-info["width"] // 64)
    assert lat["z"].shape == (m.N, rows, cols) and lat["z"].dtype == np.int32
    assert lat["y"].shape == (m.M, 4 * rows, 4 * cols)


def test_latents_of_one_tile_are_the_annex_a_serialisation(coded):
    # one tile: the mosaics are the tile's z^ and y^, whose serialisation Annex A hashes
    _, _, data = coded["default"]
    lat = icm.decode_latents(data)
    raw = lat["z"].astype("<i4").tobytes() + lat["y"].astype("<i4").tobytes()
    assert hashlib.sha256(raw).hexdigest() == lat["sha256"]


@pytest.mark.parametrize("name", ["default", "tiles64", "no-checksums"])
def test_info_gives_the_fields_of_the_cli(cli, coded, name):
    _, stream, data = coded[name]
    want = json.loads(run_cli(cli, "info", stream, "--json").stdout)
    assert icm.info(data) == want


def test_decodable_vectors_give_their_recorded_latents():
    for v in vectors():
        if "latents_sha256" not in v:
            continue
        data = (REPO / v["stream"]).read_bytes()
        lat = icm.decode_latents(data, model=REPO / v["model"])
        assert lat["sha256"] == v["latents_sha256"], v["name"]


def test_zoo_streams_decode_with_the_models_built_in(monkeypatch):
    """No model directory: the streams' models come from the zoo in the package."""
    monkeypatch.delenv("ICM_MODEL_DIR", raising=False)
    zoo = [v for v in vectors() if v["name"].startswith("v1-zoo-")]
    assert len(zoo) == 6
    for v in zoo:
        data = (REPO / v["stream"]).read_bytes()
        assert icm.decode_latents(data)["sha256"] == v["latents_sha256"], v["name"]
        assert icm.decode(data).shape == (v["height"], v["width"], 3)


def test_model_names_are_looked_up_in_model_dir_and_icm_model_dir(monkeypatch):
    v = next(v for v in vectors() if v["name"] == "v1-17x33")
    data = (REPO / v["stream"]).read_bytes()
    models = REPO / "conformance/models"
    monkeypatch.delenv("ICM_MODEL_DIR", raising=False)
    with pytest.raises(icm.ModelError):
        icm.decode(data)
    assert icm.decode_latents(data, model_dir=models)["sha256"] == v["latents_sha256"]
    monkeypatch.setenv("ICM_MODEL_DIR", str(models))
    assert icm.decode_latents(data)["sha256"] == v["latents_sha256"]
    assert icm.Model.load("test-seed1-small").name == "test-seed1-small"
    # the zoo stays reachable with a model directory that does not have it
    assert icm.Model.load("icm-psnr-q3").name == "icm-psnr-q3"


def test_model_attributes_are_those_of_model_info(cli):
    for q in range(1, 7):
        m = icm.Model.load(f"icm-psnr-q{q}")
        want = json.loads(
            run_cli(cli, "model", "info", f"icm-psnr-q{q}", "--json", "--model-dir", REPO / "models").stdout
        )
        got = {
            "name": m.name, "sha256": m.sha256, "quality": m.quality, "N": m.N, "M": m.M,
            "encoder": m.encoder, "metadata": m.metadata,
        }
        assert got == want
    manifest = json.loads((REPO / "models/MANIFEST.json").read_text())
    assert icm.ZOO == [f"icm-psnr-q{q}" for q in range(1, 7)]
    text = json.dumps(manifest)
    for name in icm.ZOO:
        assert icm.Model.load(name).sha256 in text


def test_a_model_is_loaded_once_and_reused():
    m = icm.Model.load("icm-psnr-q2")
    img = picture(64, 48, seed=11)
    data = icm.encode(img, model=m)
    assert data == icm.encode(img, quality=2)
    np.testing.assert_array_equal(icm.decode(data, model=m), icm.decode(data))
    assert "icm-psnr-q2" in repr(m)


def test_streams_are_accepted_as_bytes_like(coded):
    _, _, data = coded["default"]
    ref = icm.decode(data)
    for form in (bytearray(data), memoryview(data), np.frombuffer(data, dtype=np.uint8)):
        np.testing.assert_array_equal(icm.decode(form), ref)
    assert icm.info(bytearray(data)) == icm.info(data)
    for bad in ("not bytes", 12, [1, 2, 3], np.zeros(4, dtype=np.float32)):
        with pytest.raises(TypeError):
            icm.decode(bad)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((8, 8, 3), dtype=np.float32),
        np.zeros((8, 8), dtype=np.uint8),
        np.zeros((8, 8, 4), dtype=np.uint8),
        np.zeros((0, 8, 3), dtype=np.uint8),
        [[[0, 0, 0]]],
        "picture.png",
    ],
    ids=["float", "grey", "rgba", "empty", "list", "str"],
)
def test_encode_refuses_what_is_not_an_rgb_uint8_array(bad):
    with pytest.raises(icm.UsageError, match=r"uint8 array of shape \(H, W, 3\)"):
        icm.encode(bad)


@pytest.mark.parametrize("tile", [100, 0, -64, 4096, (64, 100), "64x", "huge"])
def test_encode_refuses_tiles_the_cli_refuses(tile):
    with pytest.raises(icm.UsageError, match="multiples of 64"):
        icm.encode(picture(8, 8), tile=tile)


def test_encode_arguments_are_checked():
    img = picture(8, 8)
    with pytest.raises(icm.UsageError, match="exclude"):
        icm.encode(img, quality=2, model="icm-psnr-q2")
    with pytest.raises(icm.UsageError, match="qualities 1 to 6"):
        icm.encode(img, quality=7)
    with pytest.raises(icm.UsageError):
        icm.encode(img, threads=0)
    with pytest.raises(TypeError):
        icm.encode(img, tile=1.5)
    with pytest.raises(icm.ModelError):
        icm.encode(img, model="no-such-model")
    with pytest.raises(icm.ModelError):
        icm.Model.load(REPO / "no/such/file.safetensors")


def test_effort_arguments_are_checked(small_model):
    img = picture(64, 64, seed=4)
    with pytest.raises(icm.UsageError, match="effort 4"):
        icm.encode(img, effort=4)
    # The seeded model has no lambda entry: the search needs one.
    with pytest.raises(icm.UsageError, match="lambda"):
        icm.encode(img, model=small_model, effort=1)
    with pytest.raises(icm.UsageError, match="lambda"):
        icm.encode(img, effort=1, lambda_=-1.0)
    data = icm.encode(img, model=small_model, effort=1, lambda_=0.01)
    assert icm.decode(data, model=small_model).shape == (64, 64, 3)


def test_limits_refuse_before_decoding(coded):
    _, _, data = coded["tiles64"]  # 200x140
    with pytest.raises(icm.LimitError) as e:
        icm.decode(data, max_pixels=200 * 140 - 1)
    assert e.value.field == "pixels" and e.value.error_class == "limit"
    assert icm.decode(data, max_pixels=200 * 140).shape == (140, 200, 3)
    with pytest.raises(icm.LimitError) as e:
        icm.decode(data, max_memory=100_000)
    assert "memory" in e.value.field
    with pytest.raises(icm.LimitError):
        icm.decode_latents(data, max_memory=1000)
    # a few megabytes decode the picture a tile at a time, to the same pixels
    np.testing.assert_array_equal(icm.decode(data, max_memory=4 << 20), icm.decode(data))


def test_imported_compressai_models_decode_their_vectors():
    """Spec 1.2 models (made by `icm model import`) load with their architecture and decode
    the conformance vectors to the recorded latents."""
    assert icm.Model.load("icm-psnr-q3").architecture == "hyperprior-v1"
    by_name = {v["name"]: v for v in vectors()}
    for tag, arch in [("bmshj2018", "bmshj2018-hyperprior"), ("mbt2018-mean", "mbt2018-mean")]:
        v = by_name[f"v1-2-{tag}-tiles64"]
        m = icm.Model.load(REPO / v["model"])
        assert m.architecture == arch
        data = (REPO / v["stream"]).read_bytes()
        assert icm.decode_latents(data, model=m)["sha256"] == v["latents_sha256"]


def test_rate_control_options():
    img = picture(128, 96, 3)
    assert len(icm.encode(img, bpp=0.5)) <= 768
    assert len(icm.encode(img, size=900)) <= 900
    for bad in (
        {"bpp": 0.5, "quality": 2},
        {"bpp": 0.5, "size": 10},
        {"size": 900, "step": 2},
        {"quality": 2.5, "step": 2},
        {"quality": 6.5},
        {"step": 17},
        {"size": 10},
    ):
        with pytest.raises(icm.UsageError):
            icm.encode(img, **bad)
