"""The GPU part of a job as one call whose arguments and result can cross a process boundary.

On a ZeroGPU Space `spaces.GPU` runs the decorated call in a forked worker process and sends its
arguments, and everything it gives back, through pickling queues (spaces/zero/wrappers.py). So the
call takes only plain data (`GpuOrder`: ids, style references, a count, the owner's key bytes, and
for Instant the screened photos, numbers in memory), and finds the studio (its loaded model, vault
and database) through `serve`, module-level state set once at assembly that a forked worker inherits.

    run(order, progress, cancel)   the call itself, in this process (the GPU line on a dedicated GPU)
    stream(order)                  the same call as a generator, for `spaces.GPU` (the worker's side):
                                   yields EngineProgress (None as a heartbeat), then one `Finished`
    follow(call, order, ...)       the web process's side: reports the progress, honours the cancel,
                                   returns the result or raises the error the worker sent

Cancel crosses the boundary with spaces' own mechanism for generators: closing the generator on the
web side sets the worker's stop event, which the worker checks after each item it yields; the
heartbeat (at most HEARTBEAT_SECONDS apart) makes it look at least that often, and the studio's own
cancel event then stops the run at its next training or denoising step. What comes back is picklable:
a `HeadshotRun` whose outputs carry no pixels (the page counts them; kept headshots are sealed in
the vault, unstored ones travel as marked bytes), and the studio's own errors, which the page words.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

from errors import Cancelled, StudioError

if TYPE_CHECKING:
    from studio.jobs import Job
    from studio.runs import HeadshotRun
    from studio.service import Studio

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 0.5  # the longest a worker goes without looking at spaces' stop event

_served: "Studio | None" = None
_served_in: int | None = None  # the process id that `serve` ran in: another one is a forked worker


@dataclass(frozen=True)
class GpuOrder:
    """What one GPU call needs, all of it picklable: no studio, no event, no callback."""

    session_id: str
    style_ids: tuple[str, ...]
    count: int
    owner_key: bytes | None = dataclasses.field(default=None, repr=False)  # seals the headshots for their owner
    model_id: str | None = None  # None: the configured base model
    reuse_adapter: bool = False  # "more like this": the session's trained adapter, no training
    instant: bool = False  # Instant mode: the face adapter on `photos`, no training
    keep: bool = True  # Instant: seal the headshots for their owner (False: hand them over, store nothing)
    # Instant: privacy.intake.screening.ScreenedPhoto, in memory
    photos: tuple = dataclasses.field(default=(), repr=False)

    @classmethod
    def of(cls, job: "Job") -> "GpuOrder":
        return cls(job.session_id, tuple(job.style_ids), int(job.count), owner_key=job.owner_key,
                   model_id=job.model_id, reuse_adapter=job.reuse_adapter, instant=job.instant, keep=job.keep,
                   photos=tuple(job.photos))


@dataclass(frozen=True)
class Finished:
    """The last item of `stream`: the run, or the studio error the person is told."""

    run: "HeadshotRun | None" = None
    error: StudioError | None = None


class WorkerFailed(RuntimeError):
    """The call failed in the worker with an exception that is not the studio's own (its type name only:
    messages may carry values a person sent)."""


def serve(studio: "Studio") -> None:
    """Make `studio` the one the GPU call uses, here and in any worker forked from this process later."""
    global _served, _served_in
    _served, _served_in = studio, os.getpid()


def studio() -> "Studio":
    """The served studio; in a forked worker, first given connections and locks of its own (`Studio.forked`)."""
    global _served_in
    if _served is None:
        raise RuntimeError("no studio is served: the app calls gpu_call.serve(studio) when it assembles")
    if _served_in != os.getpid():  # the first call in a worker forked from the web process
        _served.forked()
        _served_in = os.getpid()
    return _served


def run(order: GpuOrder, progress: Callable[[Any], None] | None = None,
        cancel: threading.Event | None = None) -> "HeadshotRun":
    """The GPU part of a job, in this process: train and generate, "more like this", or Instant."""
    served = studio()
    if order.instant:
        return served.instant.instant_from_screened(order.session_id, list(order.photos), list(order.style_ids),
                                                    order.count, keep=order.keep, owner_key=order.owner_key,
                                                    progress=progress, cancel=cancel, model_id=order.model_id)
    if order.reuse_adapter:
        return served.more_like_this(order.session_id, list(order.style_ids), order.count, progress=progress,
                                     cancel=cancel, owner_key=order.owner_key, model_id=order.model_id)
    return served.make_headshots(order.session_id, list(order.style_ids), order.count, progress=progress,
                                 cancel=cancel, owner_key=order.owner_key, model_id=order.model_id)


def planned_seconds(order: GpuOrder) -> float:
    """Seconds of GPU to ask ZeroGPU for (spaces calls it with the call's own arguments)."""
    from pipeline.recipe.options import images_made, recipe_from_settings
    from studio.zerogpu import instant_gpu_duration
    served = studio()
    n_images = len(order.style_ids) * order.count
    if order.instant:  # no training: adapter, encoder and the images (every candidate, and the face-detail pass)
        base = served.base_model(order.model_id)
        made = images_made(recipe_from_settings(served.settings.for_model(base.is_demo)), n_images)
        return instant_gpu_duration(made, base.family)
    return training_seconds(served, order.session_id, n_images, order.model_id)


def training_seconds(served: "Studio", session_id: str, n_images: int, model_id: str | None) -> int:
    """Seconds of GPU a Studio job (train on the session's photos, then `n_images`) is planned to need, with the
    steps the run will really train (a demo model's fewer): what ZeroGPU is asked for, and what admission checks."""
    from pipeline.recipe.options import images_made, recipe_from_settings
    from studio.zerogpu import gpu_duration
    base = served.base_model(model_id)
    n_photos = max(1, len(served.vault.blobs(session_id, "photo")))
    run = served.settings.for_model(base.is_demo)
    return gpu_duration(n_photos, images_made(recipe_from_settings(run), n_images), base.family,
                        train_steps=run.train_steps)


def stream(order: GpuOrder) -> Iterator[Any]:
    """`run` as a generator, for `spaces.GPU` (see the module docstring): runs in the worker.

    The run goes on in a thread of its own; this generator hands on its progress as it comes. When spaces
    closes the generator (the web side cancelled), the run's cancel event is set and the run is waited for.
    """
    events: queue.SimpleQueue = queue.SimpleQueue()
    cancel = threading.Event()
    end = object()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["run"] = _without_pixels(run(order, progress=events.put, cancel=cancel))
        except StudioError as exc:  # words for the person, or for the operator's log: they cross as they are
            outcome["error"] = exc
        except Exception as exc:  # type only: messages may carry values a person sent
            log.error("GPU call failed in the worker: %s", type(exc).__name__)
            outcome["failed"] = type(exc).__name__
        finally:
            events.put(end)

    worker = threading.Thread(target=work, name="gpu-call", daemon=True)
    worker.start()
    try:
        while True:
            try:
                item = events.get(timeout=HEARTBEAT_SECONDS)
            except queue.Empty:
                item = None  # a heartbeat: spaces looks at its stop event after each item
            if item is end:
                break
            yield item
    finally:
        cancel.set()  # closed by spaces (a cancel), or finished: either way nothing more runs
        worker.join()
    if "failed" in outcome:
        raise WorkerFailed(outcome["failed"])
    yield Finished(outcome.get("run"), outcome.get("error"))


def follow(call: Callable[[GpuOrder], Iterator[Any]], order: GpuOrder, progress: Callable[[Any], None],
           cancel: threading.Event) -> "HeadshotRun":
    """Run `call` (`stream` under `spaces.GPU`) and give back what `run` would, in the web process.

    Each item the worker sends is a chance to see `cancel`: the stream is then closed, which stops the
    worker (spaces waits for it to end before the close returns), and Cancelled is raised as `run` would.
    """
    items = call(order)
    try:
        for item in items:
            if cancel.is_set():
                raise Cancelled()
            if isinstance(item, Finished):
                if item.error is not None:
                    raise item.error
                return item.run  # type: ignore[return-value]
            if item is not None:
                progress(item)
    finally:
        items.close()
    raise RuntimeError("the GPU call ended without a result")


def _without_pixels(run: "HeadshotRun") -> "HeadshotRun":
    """The run as the page needs it: every output's description, no output's pixels (kept headshots are in the
    vault, unstored ones in `unstored` as marked bytes); the held-back images stay in the worker and go with it."""
    return dataclasses.replace(run, all_outputs=[dataclasses.replace(out, image=None) for out in run.all_outputs])
