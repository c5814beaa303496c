"""Shared, expensive-once fixtures for the pipeline tests: tiny base models, screened fixture photos."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.models import load_base
from pipeline.tiny import save_tiny_face_adapter
from privacy.intake.screening import ScreenedPhoto
from tests.pipeline.helpers import screen


@pytest.fixture(scope="session")
def adapter_dir(tmp_path_factory) -> Path:
    """A random-weight plus-face IP-Adapter in h94/IP-Adapter's layout (pipeline/tiny.py), for Instant mode."""
    directory = tmp_path_factory.mktemp("ip-adapter")
    save_tiny_face_adapter(directory)
    return directory


@pytest.fixture(scope="session")
def screened_a(faces_dir) -> list[ScreenedPhoto]:
    """Person A, four photos."""
    return [screen(faces_dir / f"obama_{i}.jpg") for i in range(1, 5)]


@pytest.fixture(scope="session")
def screened_b(faces_dir) -> list[ScreenedPhoto]:
    """Person B, two photos."""
    return [screen(faces_dir / f"biden_{i}.jpg") for i in (1, 2)]


@pytest.fixture(scope="module", params=["tiny-sd", "tiny-sdxl"])
def base(request):
    return load_base(request.param, device="cpu")


@pytest.fixture(scope="module")
def tiny_sd():
    return load_base("tiny-sd", device="cpu")


@pytest.fixture(scope="module")
def tiny_sdxl():
    return load_base("tiny-sdxl", device="cpu")
