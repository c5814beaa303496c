"""A real studio server for the app tests: `python app.py` in a subprocess, on a free loopback port.

One server per test session (start-up imports torch and builds the tiny model: seconds, not
milliseconds), with its own temporary data root so the tests can look at every file it leaves.
"""

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


@dataclass(frozen=True)
class Server:
    url: str
    data_dir: Path
    log: Path
    pid: int = 0

    @property
    def gradio_temp_dir(self) -> Path:
        return self.data_dir / "gradio-tmp"

    def files(self, under: Path | None = None) -> list[Path]:
        base = under or self.data_dir
        return sorted(p for p in base.rglob("*") if p.is_file())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_environment(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEADSHOT_", "GRADIO_"))}
    env.update({
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "HEADSHOT_DATA_DIR": str(data_dir),
        "HEADSHOT_BASE_MODEL": "tiny-sd",
        "HEADSHOT_FACE_ADAPTER": "tiny-ip-adapter",  # Instant mode's random-weight face adapter, for the tiny model
        # Random tiny models draw no face, so every likeness score is 0; with threshold 0 nothing
        # is held back and the gallery has something to show. The threshold itself is tested in pipeline/.
        "HEADSHOT_LIKENESS_THRESHOLD": "0",
        # The fixtures hold only a few acceptable photos of one person.
        "HEADSHOT_MIN_PHOTOS": "2",
        "HEADSHOT_TRAIN_STEPS": "2",
        "HEADSHOT_IMAGES_PER_STYLE": "2",
        "HEADSHOT_DEVICE": "cpu",
        # An upload no handler reads is deleted after this grace; short, so a test can watch it go.
        "HEADSHOT_UPLOAD_GRACE_SECONDS": "5",
        # An upload that sends nothing for this long is cut off (the dropped-upload attack waits for it).
        "HEADSHOT_UPLOAD_STALL_SECONDS": "2",
        # Half-sent request headers are closed after this long (the slow-headers attack waits for it).
        "HEADSHOT_HEADER_TIMEOUT_SECONDS": "3",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def start_server(tmp_path_factory, *, script: Path = ROOT / "app.py", environ: dict[str, str] | None = None,
                 **overrides: str):
    """`python app.py` on a free port with its own data root; `overrides` are extra HEADSHOT_* settings,
    `environ` other variables, `script` what runs instead of app.py (e.g. tests/app/zerogpu_space.py)."""
    data_dir = tmp_path_factory.mktemp("studio-data")
    port = _free_port()
    log = tmp_path_factory.mktemp("studio-log") / "server.log"
    env = server_environment(data_dir, port)
    env.update({f"HEADSHOT_{k.upper()}": v for k, v in overrides.items()})
    env.update(environ or {})
    if env["HEADSHOT_BASE_MODEL"] not in ("tiny-sd", "tiny-sdxl") and "face_adapter" not in overrides:
        # The random-weight face adapter serves only the demo models (start-up refuses the pair); a real
        # model's studio keeps the real default, and the demo a person may choose brings its own.
        del env["HEADSHOT_FACE_ADAPTER"]
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env=env)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(proc, url, log, seconds=90, what="the studio server", kill=proc.kill)
    return Server(url, data_dir, log, proc.pid), proc


def wait_until_healthy(proc, url: str, log: Path, *, seconds: float, what: str, kill) -> None:
    """Until `url`/healthz answers 200; fails the test, with the log's tail, if `proc` exits or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            kill()
            pytest.fail(f"{what} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    server, proc = start_server(tmp_path_factory)
    yield server
    stop_server(proc)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def consent_in(page, url: str) -> None:
    """Open the studio in `page` and tick the three statements; returns once the key panel shows."""
    page.goto(url)
    page.wait_for_selector("#hs-consent-own")
    for box in ("own", "adult", "purpose"):
        page.locator(f"#hs-consent-{box} input").check()
    page.wait_for_selector("#hs-returnkey[data-code]", timeout=15_000)


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium per browser test module (tests/app/chromium.py finds or installs it).

    Module scope, not session: Playwright's sync API runs an event loop in this thread while it is
    open, and later tests that call asyncio.run must not find one running.
    """
    from playwright.sync_api import sync_playwright

    from tests.app.chromium import LAUNCH_ARGS, find_or_install_chromium
    try:
        executable = find_or_install_chromium()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(executable), args=LAUNCH_ARGS)
        yield browser
        browser.close()


# --- shared by the attack suites (raw HTTP against the real server) ------------------------------------

@pytest.fixture
def browsers(server):
    """Make raw-protocol browsers (tests/app/raw_gradio.py), each with its own cookie, session hash and loopback
    address; all closed after the test."""
    from tests.app.raw_gradio import RawBrowser
    made = []

    def make(address: str = "127.0.0.1", **kwargs):
        browser = RawBrowser(server.url, address=address, **kwargs)
        browser.open_page()
        made.append(browser)
        return browser

    yield make
    for browser in made:
        browser.close()


@pytest.fixture
def clean_log(server):
    """The test's part of the server log holds no traceback and no image data (a caller's error is a message)."""
    start = server.log.stat().st_size
    yield
    time.sleep(0.3)  # the log is written by another process
    with open(server.log, "rb") as log:
        log.seek(start)
        added = log.read().decode("utf-8", "replace")
    assert "Traceback" not in added, added[-4000:]
    assert "base64," not in added and "data:image" not in added


def healthy(server, within: float = 2.0) -> bool:
    """Whether the server answers /healthz within `within` seconds."""
    try:
        return httpx.get(f"{server.url}/healthz", timeout=within).status_code == 200
    except httpx.HTTPError:
        return False
