"""Shared fixtures for the privacy tests."""

import pytest

from tests.privacy.helpers import make_env


@pytest.fixture
def env(tmp_path, database_url):
    """A studio floor (database, vault, erasure context) on a fake clock, with default retention:
    uploads 1 h, hard cap 24 h, headshots 7 d, audit 90 d. SQLite, or PostgreSQL in a module
    marked `databases(...)` (tests/conftest.py)."""
    env = make_env(tmp_path / "data", database_url=database_url)
    yield env
    env.close()


@pytest.fixture
def database_files(request, env, database_url):
    """Call it for the files that hold the test's database, to search them byte by byte: SQLite's
    studio.db and its side files, or the PostgreSQL database's directory after a CHECKPOINT."""
    def files():
        if not database_url:
            return sorted(p for p in env.data_dir.iterdir() if p.name.startswith("studio.db"))
        return request.getfixturevalue("postgres_server").database_files(database_url)
    return files
