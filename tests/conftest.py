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


# --- the databases: SQLite always, PostgreSQL when a test asks (tests/postgres.py) -------------
def pytest_generate_tests(metafunc):
    # A test marked `databases("sqlite", "postgresql")` (usually a whole module, by `pytestmark`)
    # runs once per database, with ids `sqlite` / `postgresql`, if it uses `database_url`.
    marker = metafunc.definition.get_closest_marker("databases")
    if marker is not None and "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", marker.args, indirect=True)


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL server for the whole run, started when the first test needs it."""
    from tests.postgres import PostgresServer, PostgresUnavailable, find_or_install_postgres
    try:
        bin_dir = find_or_install_postgres()
    except PostgresUnavailable as exc:  # not root and not installed; as root (CI) it is installed or fails
        pytest.skip(str(exc))
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_url(request):
    """HEADSHOT_DATABASE_URL for one test: empty (SQLite in the data root), or a fresh PostgreSQL database."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield ""
        return
    server = request.getfixturevalue("postgres_server")
    url = server.create_database()
    yield url
    server.drop_database(url)


# --- the queue's broker: Redis when a test asks (tests/redis_server.py) --------------------------
@pytest.fixture(scope="session")
def redis_server():
    """One throwaway Redis for the whole run, started when the first test needs it."""
    from tests.redis_server import RedisServer, RedisUnavailable, find_or_install_redis
    try:
        binary = find_or_install_redis()
    except RedisUnavailable as exc:  # not root and not installed; as root (CI) it is installed or fails
        pytest.skip(str(exc))
    server = RedisServer(binary)
    try:
        server.start()
        yield server
    finally:
        server.stop()
