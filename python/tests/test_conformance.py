"""conformance: the runner's results as data, those of `icm conformance --json`."""

import json

import pytest

import icm
from helpers import REPO, run_cli, vectors


def test_the_built_in_decoder_passes_the_suite_as_the_cli_reports(cli):
    report = icm.conformance(REPO)
    assert report["failed"] == 0, [v for v in report["vectors"] if not v["passed"]]
    assert report["passed"] == len(vectors())
    assert report["class_checked"] == sum("error_class" in v for v in vectors())
    want = json.loads(run_cli(cli, "conformance", REPO, "--json").stdout)
    assert report == want


def test_the_default_suite_is_the_repository_built_from():
    assert icm.conformance(filter="v1-1x1")["passed"] == 1


def test_filter_and_a_decoder_command(cli, tmp_path):
    decoder = f"'{cli}' decode {{in}} --model {{model}} --latents-raw {{out_latents}} -o {{out_image}}"
    report = icm.conformance(REPO, decoder, filter="v1-17x33")
    assert [v["name"] for v in report["vectors"]] == ["v1-17x33"]
    assert report["passed"] == 1
    report = icm.conformance(REPO, decoder, filter="x-truncated-2")
    assert report["passed"] == 1 and report["class_checked"] == 1
    report = icm.conformance(REPO, "true", filter="x-bad-magic")
    assert report["failed"] == 1 and "exited 0" in report["vectors"][0]["detail"]
    want = json.loads(
        run_cli(cli, "conformance", REPO, "--json", "--decoder", decoder, "--filter", "x-order").stdout
    )
    assert icm.conformance(REPO, decoder, filter="x-order") == want


def test_a_folder_without_a_suite_raises(tmp_path):
    with pytest.raises(icm.IoError):
        icm.conformance(tmp_path)
