"""Shared test setup: the real model weights (ARTCLOAK_MODELS, set by .ci/run) must be there."""
import os
from pathlib import Path

import pytest

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models" / "taesd"


def pytest_configure(config):
    os.environ.setdefault("ARTCLOAK_MODELS", str(SHARED_MODELS))


@pytest.fixture(scope="session")
def models_dir() -> Path:
    d = Path(os.environ["ARTCLOAK_MODELS"].split(os.pathsep)[0])
    assert (d / "taef2_encoder.pth").is_file(), f"real weights missing in {d}: CI must provide them"
    return d
