"""Hardening tests: `extended` variants skipped unless HEADSHOT_TEST_SLOW=1; one instrumented server shared by a run.

The default suite runs every category (corpus, fuzz, faults, kills, leaks, load) at small
sizes; `extended` only makes them longer. The shared `studio` server logs at DEBUG into a file
that test_log_leaks searches, and has its own TMPDIR that test_byte_scan scans.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hardening.server import StudioServer

SLOW = os.environ.get("HEADSHOT_TEST_SLOW") == "1"


def pytest_collection_modifyitems(config, items):
    if SLOW:
        return
    skip = pytest.mark.skip(reason="extended variant: set HEADSHOT_TEST_SLOW=1 to run it")
    for item in items:
        if "extended" in item.keywords and "tests/hardening" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def studio(tmp_path_factory) -> StudioServer:
    root = tmp_path_factory.mktemp("hardening-studio")
    # The load runs stand in for many visitors behind one reverse proxy on 127.0.0.1, each with its own
    # X-Forwarded-For: the per-address limits then see them as the different people they are.
    server = StudioServer(data_dir=root / "data", log=root / "server.log", temp_dir=root / "tmp",
                          settings={"trusted_proxies": "127.0.0.1"})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def faces(faces_dir) -> Path:
    return faces_dir
