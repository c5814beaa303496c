"""Start, kill and restart the real studio server (`instrumented_app.py` → `app.main`) on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).with_name("instrumented_app.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def studio_environment(data_dir: Path, port: int, temp_dir: Path, **settings: str) -> dict[str, str]:
    """The server's environment: tiny model, CPU, small sizes, its own TMPDIR (so the byte scan can look there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEADSHOT_", "GRADIO_", "HARDENING_"))}
    env.update({
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "HEADSHOT_DATA_DIR": str(data_dir),
        "HEADSHOT_BASE_MODEL": "tiny-sd",
        "HEADSHOT_DEVICE": "cpu",
        # Random tiny models draw no face: every likeness is 0, so with threshold 0 every headshot is kept.
        "HEADSHOT_LIKENESS_THRESHOLD": "0",
        "HEADSHOT_MIN_PHOTOS": "2",
        "HEADSHOT_TRAIN_STEPS": "2",
        "HEADSHOT_IMAGES_PER_STYLE": "2",
        "TMPDIR": str(temp_dir),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    })
    env.update({f"HEADSHOT_{k.upper()}": v for k, v in settings.items()})
    return env


@dataclass
class StudioServer:
    """One data root, served by a succession of processes (a kill and a restart keep the data root)."""

    data_dir: Path
    log: Path
    temp_dir: Path
    arm: Path | None = None  # see instrumented_app.py
    beacon: Path | None = None
    settings: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = studio_environment(self.data_dir, self.port, self.temp_dir, **self.settings)
        if self.arm is not None:
            env.update(HARDENING_ARM=str(self.arm), HARDENING_BEACON=str(self.beacon))
        return env

    def start(self, timeout: float = 180) -> "StudioServer":
        self.port = free_port()
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, str(LAUNCHER)], cwd=ROOT, stdout=out,
                                         stderr=subprocess.STDOUT, env=self.env)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the studio server exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the studio server did not start:\n{self.log_text()[-3000:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no finally, no flush — a power cut as far as the process knows."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)  # Gradio may wait on open client streams; the data root is ours to drop
            except subprocess.TimeoutExpired:
                self.kill()

    def arm_phases(self, *phases: str) -> None:
        assert self.arm is not None, "start the server with an arm file to use pauses"
        self.arm.write_text("\n".join(phases))

    def wait_for_phase(self, phase: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.beacon is not None and self.beacon.exists() and phase in self.beacon.read_text().split():
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server died before {phase}:\n{self.log_text()[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"the server never reached {phase}:\n{self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def files(self, under: Path | None = None) -> list[Path]:
        base = under or self.data_dir
        return sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """`python cli.py ...` against this data root."""
        env = studio_environment(self.data_dir, self.port, self.temp_dir, **self.settings)
        return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
