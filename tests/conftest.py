"""Test-wide setup: offline, one torch thread, nothing phones home.

These variables must be set before torch, huggingface_hub or gradio are imported,
which is why they live at the top of the root conftest (pytest imports it first).
"""

import os
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"  # a busy core otherwise makes torch on CPU ~60x slower
os.environ["MKL_NUM_THREADS"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
for name in list(os.environ):
    if name.startswith("HEADSHOT_"):  # the developer's own settings must not leak into tests
        del os.environ[name]

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402

FACES = ROOT / "tests" / "fixtures" / "faces"


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    return FACES


@pytest.fixture
def face_bytes():
    """Read a fixture photo's bytes by file name, e.g. face_bytes('obama_1.jpg')."""
    return lambda name: (FACES / name).read_bytes()
