"""Errors: every must-fail conformance vector raises the exception class of its error class
of spec 13, with the field and offset the Rust error names; hostile input (truncated,
mutated, random streams) raises icm.Error and never crashes the interpreter."""

import random

import numpy as np
import pytest

import icm
from helpers import REPO, picture, vectors

CLASSES = {
    "bad-magic": icm.BadMagicError,
    "unsupported-version": icm.UnsupportedVersionError,
    "truncated": icm.TruncatedError,
    "invalid-field": icm.InvalidFieldError,
    "unknown-required-chunk": icm.UnknownRequiredChunkError,
    "tile-count": icm.TileCountError,
    "trailing-data": icm.TrailingDataError,
    "checksum-mismatch": icm.ChecksumMismatchError,
    "model-mismatch": icm.ModelMismatchError,
    "corrupt-payload": icm.CorruptPayloadError,
    "invalid-model": icm.InvalidModelError,
}
MUST_FAIL = [v for v in vectors() if "error_class" in v]


def refusal(v, decoder):
    """The exception the package raises for vector v: the model first (spec 13.1), then the
    stream."""
    with pytest.raises(icm.Error) as e:
        model = icm.Model.load(REPO / v["model"])
        decoder((REPO / v["stream"]).read_bytes(), model=model)
    return e.value


def test_the_suite_has_must_fail_vectors_of_every_class():
    assert len(MUST_FAIL) >= 40
    assert {v["error_class"] for v in MUST_FAIL} <= set(CLASSES)


@pytest.mark.parametrize("v", MUST_FAIL, ids=[v["name"] for v in MUST_FAIL])
def test_must_fail_vectors_raise_their_class(v):
    want = CLASSES[v["error_class"]]
    for decoder in (icm.decode, icm.decode_latents):
        e = refusal(v, decoder)
        assert type(e) is want, f"{v['name']}: {type(e).__name__}: {e}"
        assert e.error_class == v["error_class"]
        assert str(e)


def test_container_errors_name_field_and_offset():
    by_name = {v["name"]: v for v in MUST_FAIL}
    e = refusal(by_name["x-width-0"], icm.decode)
    assert (e.field, e.offset) == ("width", 8)  # spec 13.1's example
    e = refusal(by_name["x-order-width-0-cut-20"], icm.decode)
    assert (e.field, e.offset) == ("width", 8)
    e = refusal(by_name["x-bad-magic"], icm.decode)
    assert (e.field, e.offset) == ("magic", 0)
    e = refusal(by_name["x-major-2"], icm.decode)
    assert (e.field, e.offset) == ("major_version", 4)
    e = refusal(by_name["x-tile-index"], icm.decode)
    assert e.field == "tile_index" and e.offset > 0
    e = refusal(by_name["x-trailing-data"], icm.decode)
    assert e.offset == (REPO / by_name["x-trailing-data"]["stream"]).stat().st_size - 1
    e = refusal(by_name["x-corrupt-y"], icm.decode)
    assert e.field == "y_payload" and e.tile is not None and e.offset is not None
    e = refusal(by_name["x-wrong-model"], icm.decode)
    assert e.field == "model_sha256"
    for v in MUST_FAIL:
        if v["error_class"] == "invalid-model":
            e = refusal(v, icm.decode)
            assert e.path is not None and e.path.endswith(".safetensors"), v["name"]


def test_invalid_model_files_name_the_file_and_tensor():
    broken = [v for v in MUST_FAIL if v["name"].startswith("x-model-") and v["error_class"] == "invalid-model"]
    assert broken
    named = 0
    for v in broken:
        with pytest.raises(icm.InvalidModelError) as e:
            icm.Model.load(REPO / v["model"])
        assert e.value.path == str(REPO / v["model"])
        named += e.value.field is not None
    assert named > 0


def test_the_hierarchy():
    for cls in CLASSES.values():
        assert issubclass(cls, icm.Error)
    assert len(set(CLASSES.values())) == len(CLASSES)
    assert issubclass(icm.IoError, OSError) and issubclass(icm.IoError, icm.Error)
    assert issubclass(icm.UsageError, ValueError)
    assert issubclass(icm.BdRateError, ValueError)
    assert issubclass(icm.ModelError, LookupError)
    assert issubclass(icm.LimitError, icm.Error)


@pytest.fixture(scope="module")
def streams():
    """Two small streams of the small seeded model: with and without tile checksums (the
    checksums catch most mutations before the entropy decoder sees them)."""
    model = icm.Model.load(REPO / "conformance/models/test-seed1-small.safetensors")
    img = picture(150, 90, seed=5)
    return model, [icm.encode(img, model=model, tile=64, checksums=c) for c in (True, False)]


def outcome(decoder, data, model):
    """'ok' or the exception class's name; anything else than icm.Error propagates."""
    try:
        out = decoder(data, model=model, max_pixels=1 << 22, max_memory=1 << 28)
    except icm.Error as e:
        assert str(e)
        return type(e).__name__
    if decoder is icm.decode:
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    return "ok"


def test_every_truncation_raises(streams):
    model, (data, _) = streams
    for n in range(len(data)):
        for decoder in (icm.decode_latents, icm.info):
            with pytest.raises(icm.Error):
                if decoder is icm.info:
                    decoder(data[:n])
                else:
                    decoder(data[:n], model=model)
    with pytest.raises(icm.TruncatedError):
        icm.decode(data[: len(data) // 2], model=model)


def test_mutated_streams_raise_or_decode(streams):
    model, pair = streams
    rng = random.Random(20261207)
    seen = set()
    for data in pair:
        for _ in range(300):
            b = bytearray(data)
            for _ in range(rng.choice((1, 1, 2, 8))):
                i = rng.randrange(len(b))
                b[i] = rng.randrange(256) if rng.random() < 0.5 else b[i] ^ (1 << rng.randrange(8))
            for decoder in (icm.decode_latents, icm.decode):
                seen.add(outcome(decoder, bytes(b), model))
        # cut, spliced and repeated pieces
        for _ in range(100):
            i, j = sorted(rng.randrange(len(data)) for _ in range(2))
            b = data[:i] + data[j:] + data[i:j] * rng.randrange(3)
            seen.add(outcome(icm.decode_latents, b, model))
    assert "ok" in seen and len(seen) >= 4, seen


def test_random_bytes_and_huge_headers_raise(streams):
    model, (data, _) = streams
    rng = random.Random(7)
    for n in (0, 1, 4, 16, 64, 1000):
        with pytest.raises(icm.Error):
            icm.decode(bytes(rng.randrange(256) for _ in range(n)), model=model)
    # the header of the level-2 vector of 32768x1 with limits that refuse it before any work
    v = next(v for v in vectors() if v["name"] == "v1-level2-32768x1")
    big = (REPO / v["stream"]).read_bytes()
    with pytest.raises(icm.LimitError):
        icm.decode(big, model=REPO / v["model"], max_pixels=1 << 14)
