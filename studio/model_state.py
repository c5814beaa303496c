"""Can the configured base model serve? Checked once at start-up, in the background, and told in words.

The page shows this before consent (web.handlers.model_banner), so nobody uploads photos to a
studio that cannot make their headshots: while the model loads, when it is ready, or when it
is unavailable with the reason and what the operator sets. When it cannot serve, the person
may choose the demo model instead (random weights, the whole private flow, outputs marked DEMO);
the studio never swaps it in by itself.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from errors import StudioError

log = logging.getLogger(__name__)

LOADING, READY, UNAVAILABLE = "loading", "ready", "unavailable"
DEMO_MODEL = "tiny-sd"  # random weights, built locally: always available, never a real headshot


@dataclass(frozen=True)
class ModelState:
    state: str
    model_id: str
    is_demo: bool = False  # the configured model itself is a demo model (tiny-sd / tiny-sdxl)
    reason: str = ""  # for the operator: what failed and what to set (no personal data: configuration only)
    since: float = 0.0

    @property
    def can_serve(self) -> bool:
        """A job may be queued: the model is ready, or still loading (the job waits for it)."""
        return self.state != UNAVAILABLE


class ModelWarmUp:
    """Loads the base model once in a background thread and keeps its state for the page."""

    def __init__(self, model_id: str, load: Callable[[], object], clock: Callable[[], float] = time.time) -> None:
        self._load, self._clock = load, clock
        self._state = ModelState(LOADING, model_id, since=clock())
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loaded_here = False  # `load_here` ran: nothing is left to start

    @property
    def state(self) -> ModelState:
        with self._lock:
            return self._state

    def start(self) -> None:
        if self._thread is None and not self._loaded_here:
            self._thread = threading.Thread(target=self._run, name="model-warm-up", daemon=True)
            self._thread.start()

    def load_here(self) -> ModelState:
        """Load now, in the calling thread, instead of in the background (`start` is then a no-op).

        On ZeroGPU the model must be in memory before spaces' start-up packs the weights, and spaces emulates
        CUDA only in the thread that imported it (its torch modes are thread-local): the main thread."""
        if self._thread is None and not self._loaded_here:
            self._loaded_here = True
            self._run()
        return self.state

    def wait(self, timeout: float | None = None) -> ModelState:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state

    def _run(self) -> None:
        model_id = self._state.model_id
        try:
            base = self._load()
        except StudioError as exc:  # ModelUnavailable and friends: their message names what to set
            self._set(ModelState(UNAVAILABLE, model_id, reason=str(exc), since=self._clock()))
            log.error("base model %r cannot serve: %s", model_id, exc)
            return
        except Exception as exc:  # an unexpected failure: its type only, the message may hold paths
            self._set(ModelState(UNAVAILABLE, model_id, reason=f"Loading failed ({type(exc).__name__}).",
                                 since=self._clock()))
            log.error("base model %r failed to load: %s", model_id, type(exc).__name__)
            return
        self._set(ModelState(READY, model_id, is_demo=bool(getattr(base, "is_demo", False)), since=self._clock()))
        log.info("base model %r ready", model_id)

    def _set(self, state: ModelState) -> None:
        with self._lock:
            self._state = state
