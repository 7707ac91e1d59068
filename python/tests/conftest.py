"""Fixtures of the icm package's tests: the repository, the icm command (the reference the
package must agree with byte for byte), pictures and streams.

The package is the installed one (scripts/test_python.sh builds the wheel and installs it
into the project venv before pytest runs); the icm command is $ICM_BIN, else the
repository's target/release/icm or target/debug/icm, whichever is newer. A missing piece
skips the tests that need it with a message, except under CI=true, where it fails them
(the rule of tests/it/common.rs).
"""

import os
from pathlib import Path

import pytest

from helpers import REPO, cannot_run

try:
    import icm  # noqa: F401

    _IMPORT_ERROR = None
except ImportError as e:  # the wheel is not installed: every test needs it
    _IMPORT_ERROR = str(e)


@pytest.fixture(autouse=True)
def _needs_package():
    if _IMPORT_ERROR is not None:
        cannot_run(f"the package icm is not installed ({_IMPORT_ERROR}): run scripts/test_python.sh")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def cli() -> Path:
    """The icm command."""
    env = os.environ.get("ICM_BIN")
    if env:
        return Path(env)
    found = [p for p in (REPO / "target/release/icm", REPO / "target/debug/icm") if p.is_file()]
    if not found:
        cannot_run("no icm command: build it with cargo build --release --bin icm, or set ICM_BIN")
    return max(found, key=lambda p: p.stat().st_mtime)


@pytest.fixture(scope="session")
def small_model() -> Path:
    """The seeded model of the conformance vectors: small, so encoding is fast."""
    return REPO / "conformance/models/test-seed1-small.safetensors"
