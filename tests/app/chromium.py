"""Debian's Chromium for the browser tests: found on this machine, or installed with apt when the tests run as root.

Never `playwright install` (no downloads from Playwright's CDN here): Playwright drives the system
browser. On a fresh Debian machine the README's test command alone is enough, because this
installs the `chromium` package the first time; elsewhere it fails with the command to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
CANDIDATES = ("chromium", "chromium-browser")
INSTALL = "apt-get install -y chromium"


def find_chromium() -> Path | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def find_or_install_chromium() -> Path:
    """The system Chromium; installed once with apt-get if missing and allowed (root, apt present)."""
    found = find_chromium()
    if found is not None:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False, env=env, capture_output=True,
                       timeout=900)
        found = find_chromium()
        if found is not None:
            return found
    raise RuntimeError(f"The browser tests need Debian's Chromium and could not install it: run `sudo {INSTALL}`.")
