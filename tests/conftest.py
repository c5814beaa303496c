"""Test-wide setup: offline, one torch thread, nothing phones home.

These variables must be set before torch, huggingface_hub or gradio are imported,
which is why they live at the top of the root conftest (pytest imports it first).
"""

import inspect
import os
import re
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


# --- two tiers: `pytest -m "not slow"` for the minutes-long loop, the README's command for all -----------
# A test is in the slow tier when it needs a whole process or service of its own: a browser, a spawned
# server (every fixture below starts one, directly or through another fixture), PostgreSQL or Redis, or a
# module that spawns Pythons itself (SLOW_MODULES). Everything else runs in-process on the tiny models.
SLOW_FIXTURES = frozenset({
    "browser", "browsers", "server", "instant_server", "zero_gpu_server", "slow_journey_server", "readme_demo",
    "team_server", "queue_server", "two_apps", "postgres_server", "redis_server", "zerogpu_space",
})
SLOW_MODULES = frozenset({
    "tests/app/",  # the studio as a served app: every module starts `python app.py` (or two)
    "tests/hardening/",  # an instrumented server, kill points, restarts, storage faults
    "tests/bench/",  # each bench script run as the README says, in a process of its own
    "tests/test_ship.py", "tests/test_startup_checks.py", "tests/pipeline/test_cli_run.py",
    "tests/privacy/test_cli_check.py", "tests/pipeline/test_workers_on_redis.py",
    "tests/pipeline/test_erasure_stops_a_real_job.py", "tests/privacy/test_file_modes.py",
    # Re-screens the whole recorded corpus (~100 files, ~25 s); tests/privacy/test_screening.py covers each verdict.
    "tests/privacy/test_screening_verdicts.py",
})
# A test elsewhere that spawns a process itself: its body calls subprocess or one of these helpers.
SPAWNING_CALLS = re.compile(r"\bsubprocess\.|\bsys\.executable\b|\b(run_cli|run_script|_cli|start_server)\(")
# What stays fast even inside a slow folder: pure functions of those modules, no process of their own.
FAST_EXCEPTIONS = frozenset({"tests/app/test_line_words.py", "tests/app/test_style_cards.py",
                             "tests/app/test_visitor_markup.py", "tests/app/test_favourites_markup.py",
                             "tests/app/test_team_markup.py", "tests/app/test_photo_words.py"})


def pytest_ignore_collect(collection_path, config):
    """In a `-m "not slow"` run, folders whose every test is slow are not even imported (their imports cost
    seconds of collection: browsers, servers, the bench scripts)."""
    if config.getoption("markexpr", "").replace(" ", "") != "notslow":
        return None
    where = Path(collection_path).resolve()
    if where.is_file() and where.relative_to(ROOT).as_posix() in FAST_EXCEPTIONS:
        return None
    for folder in ("tests/app", "tests/hardening", "tests/bench"):
        if where.is_relative_to(ROOT / folder) and where.suffix == ".py" and where.name.startswith("test_"):
            return True
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        where = Path(str(item.fspath)).resolve().relative_to(ROOT).as_posix()
        in_slow_module = any(where == m or (m.endswith("/") and where.startswith(m)) for m in SLOW_MODULES)
        postgres = getattr(item, "callspec", None) is not None and item.callspec.params.get("database_url") == \
            "postgresql"
        if where in FAST_EXCEPTIONS and not (SLOW_FIXTURES & set(item.fixturenames)):
            continue
        if in_slow_module or postgres or "browser" in item.keywords or SLOW_FIXTURES & set(item.fixturenames) \
                or _spawns(item):
            item.add_marker(pytest.mark.slow)


def _spawns(item) -> bool:
    function = getattr(item, "function", None)
    try:
        return function is not None and bool(SPAWNING_CALLS.search(inspect.getsource(function)))
    except (OSError, TypeError):
        return False


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
