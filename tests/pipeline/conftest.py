"""Shared, expensive-once fixtures for the pipeline tests: tiny base models, screened fixture photos."""

from __future__ import annotations

import pytest

from pipeline.models import load_base
from privacy.screening import ScreenedPhoto
from tests.pipeline.helpers import screen


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
