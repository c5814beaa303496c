"""Debian's Redis for the queue tests: found on this machine, or installed with apt when the tests run as root.

As tests/postgres.py does for PostgreSQL: on a fresh Debian machine the README's test command alone
is enough (CI runs as root and gets the `redis-server` package the first time); not root and not
installed, the queue tests are skipped with the command to run.

`RedisServer` is a throwaway broker: `redis-server` listening on 127.0.0.1 at a free port, its
working directory a temp directory, nothing saved to disk (no RDB, no AOF), stopped and removed at the end.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.postgres import apt_install, may_install

INSTALL = "apt-get install -y redis-server"
WAIT_SECONDS = 30


class RedisUnavailable(RuntimeError):
    """Redis is not installed and this process may not install it (not root, or no apt)."""


def find_or_install_redis() -> Path:
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    if not may_install():
        raise RedisUnavailable(f"Redis is not installed and these tests may not install it: run `sudo {INSTALL}`.")
    installed = apt_install("redis-server")
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError(f"apt-get could not install Redis (exit {installed.returncode}): "
                           f"{installed.stderr.strip()[-500:]}")
    return Path(found)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, binary: Path) -> None:
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="headshot-redis-"))
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        for attempt in range(3):  # a free port can be taken between asking and binding
            self.port = _free_port()
            log = open(self.root / "server.log", "ab")
            self.process = subprocess.Popen(
                [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
                 "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no"],
                cwd=self.root, stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + WAIT_SECONDS
            while time.monotonic() < deadline and self.process.poll() is None:
                if self._pong():
                    return self
                time.sleep(0.1)
            self.stop_process()
        raise RuntimeError("Redis did not start: " + (self.root / "server.log").read_text(errors="replace")[-800:])

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop_process(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def stop(self) -> None:
        try:
            self.stop_process()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
