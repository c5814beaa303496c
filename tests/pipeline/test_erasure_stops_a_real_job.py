"""Erasing a session while its job trains a real (tiny) model stops that job within one training step,
and the next person's job starts at once: the GPU line, the studio and the erasure hook wired as app.py does.
"""

from __future__ import annotations

import statistics
import threading
import time

import pytest

import pipeline.engine as engine_module
from settings import load_settings
from studio.jobs import CANCELLED, RUNNING, GpuLine, JobRecords
from studio.service import Studio
from tests.pipeline.helpers import session_with_photos


class StepClock:
    """When each training step of each session started (`train_lora`'s step hook)."""

    def __init__(self) -> None:
        self.starts: dict[str, list[float]] = {}
        self.lock = threading.Lock()

    def hook_for(self, session_id: str):
        def hook(_step: int) -> None:
            with self.lock:
                self.starts.setdefault(session_id, []).append(time.perf_counter())
        return hook


@pytest.fixture
def wired(tmp_path, monkeypatch):
    settings = load_settings({
        "HEADSHOT_DATA_DIR": str(tmp_path), "HEADSHOT_BASE_MODEL": "tiny-sd", "HEADSHOT_DEVICE": "cpu",
        "HEADSHOT_MIN_PHOTOS": "1", "HEADSHOT_TRAIN_STEPS": "400", "HEADSHOT_LIKENESS_THRESHOLD": "0",
    })
    studio = Studio(settings)
    clock = StepClock()
    running_session = threading.local()
    real_train = engine_module.train_lora

    def timed_train(*args, **kwargs):
        return real_train(*args, step_hook=clock.hook_for(running_session.id), **kwargs)

    monkeypatch.setattr(engine_module, "train_lora", timed_train)

    def run(job, report):
        running_session.id = job.session_id
        return studio.make_headshots(job.session_id, job.style_ids, job.count, progress=report, cancel=job.cancel,
                                     owner_key=job.owner_key)

    line = GpuLine(run, capacity=4, records=JobRecords(studio.db))
    studio.erasure.hooks.append(line.cancel_session)  # as app.py wires it
    yield studio, line, clock
    line.close()
    studio.close()


def wait_for(predicate, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def test_erasure_during_training_stops_the_job_within_one_step_and_the_next_job_starts(wired, faces_dir):
    studio, line, clock = wired
    first, first_key = session_with_photos(studio, faces_dir)
    second, second_key = session_with_photos(studio, faces_dir)
    running = line.submit(first, ["linkedin_classic"], 1, owner_key=first_key)
    waiting = line.submit(second, ["linkedin_classic"], 1, owner_key=second_key)
    wait_for(lambda: len(clock.starts.get(first, [])) >= 10)  # well inside training

    studio.delete_now(first)  # the person's "Delete everything now"
    erased_at = time.perf_counter()
    wait_for(running.finished.is_set)
    stopped_at = time.perf_counter()
    wait_for(lambda: waiting.state == RUNNING and clock.starts.get(second))
    next_started_at = clock.starts[second][0]

    steps = clock.starts[first]
    step_seconds = statistics.median(b - a for a, b in zip(steps, steps[1:]))
    assert running.state == CANCELLED
    assert not [t for t in steps if t > erased_at]  # no training step began after the erasure returned
    assert len(steps) < 400
    print(f"\nerasure → job stopped: {(stopped_at - erased_at) * 1e3:.0f} ms; → next job's first step: "
          f"{(next_started_at - erased_at) * 1e3:.0f} ms; one training step: {step_seconds * 1e3:.0f} ms")
    line.cancel(second)
    wait_for(waiting.finished.is_set)
