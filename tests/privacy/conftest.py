"""Shared fixtures for the privacy tests."""

import pytest

from tests.privacy.helpers import make_env


@pytest.fixture
def env(tmp_path):
    """A studio floor (database, vault, erasure context) on a fake clock, with default retention:
    uploads 1 h, hard cap 24 h, headshots 7 d, audit 90 d."""
    env = make_env(tmp_path / "data")
    yield env
    env.close()
