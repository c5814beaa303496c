"""`python app.py` with test instrumentation: all logging at DEBUG, and optional pauses at named phases.

    python tests/hardening/instrumented_app.py        (same environment as app.py, plus:)

    HARDENING_ARM     a file; while it names a phase (one per line), the server stops there
    HARDENING_BEACON  a file; a phase's name is appended to it when the server reaches it
    HARDENING_PAUSE_S how long a phase waits (default 300 s: the test SIGKILLs the process first)

Phases, each at the most fragile moment of its step:

    upload      a blob file renamed into the vault, its index row not yet committed
    training    inside the LoRA training loop, before a step
    generating  the adapter is sealed; generation of the first headshot is about to start
    erasure     the session's keys are destroyed (committed); its blob files are not yet removed

Only timing is added: the code that runs is the app's own. Nothing here is imported by the app.
"""

from __future__ import annotations

import logging
import os
import pathlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _armed(phase: str) -> bool:
    arm = os.environ.get("HARDENING_ARM")
    try:
        return bool(arm) and phase in Path(arm).read_text().split()
    except FileNotFoundError:
        return False


def checkpoint(phase: str) -> None:
    """Announce `phase` on the beacon and wait there, if the test armed it."""
    if not _armed(phase):
        return
    arm = Path(os.environ["HARDENING_ARM"])
    arm.write_text("\n".join(p for p in arm.read_text().split() if p != phase))  # fire once
    with open(os.environ["HARDENING_BEACON"], "a") as beacon:
        beacon.write(phase + "\n")
    time.sleep(float(os.environ.get("HARDENING_PAUSE_S", "300")))


def install() -> None:
    import pipeline.engine
    import pipeline.train_lora
    import privacy.store.vault

    write_atomically = privacy.store.vault._write_atomically

    def paused_write(path: Path, data: bytes) -> None:
        write_atomically(path, data)
        checkpoint("upload")

    privacy.store.vault._write_atomically = paused_write

    run_steps = pipeline.train_lora.run_steps

    def paused_steps(*args, step_hook=None, **kwargs):
        def hook(step: int) -> None:
            checkpoint("training")
            if step_hook is not None:
                step_hook(step)
        return run_steps(*args, step_hook=hook, **kwargs)

    pipeline.train_lora.run_steps = paused_steps

    generate = pipeline.engine.generate

    def paused_generate(*args, **kwargs):
        checkpoint("generating")
        return generate(*args, **kwargs)

    pipeline.engine.generate = paused_generate

    unlink = pathlib.Path.unlink

    def paused_unlink(self: pathlib.Path, missing_ok: bool = False) -> None:
        # Vault.shred removes blob files only after the deletion of their keys and index rows is committed.
        if self.parent.name == "vault" and not self.name.startswith("."):
            checkpoint("erasure")
        return unlink(self, missing_ok=missing_ok)

    pathlib.Path.unlink = paused_unlink


def main() -> int:
    # Before app.main's own basicConfig (a no-op once the root logger has a handler): everything, DEBUG up.
    logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if os.environ.get("HARDENING_ARM"):
        install()
    import app
    return app.main()


if __name__ == "__main__":
    sys.exit(main())
