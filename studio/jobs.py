"""The GPU line: one headshot job at a time, in arrival order, with a bounded number waiting.

A job enters the line only through `GpuLine.submit`, after the caller has admitted it (consent
given, photos sealed, rate limits passed: see `Studio.check_ready_to_generate`), so a stranger can
neither queue GPU work nor fill the line. The line is the studio's own, not Gradio's queue: web
requests only watch a job's progress, so no page event ever holds the GPU, and consent, upload,
delete and verify never wait behind a training run.

Erasing a session (`cancel_session`, an erasure hook) drops its waiting job and stops its running
one at the next training or denoising step, so the GPU goes to the next person at once.

A waiting job's wait is estimated from the line itself (`wait_estimate`): the work ahead of it
(each job waiting before it, and what is left of each running one, in jobs of their kind)
divided by the number of workers, times the median duration of recent jobs of each kind. None,
and the page says nothing, while a kind ahead has no finished job to go by.

A job belongs to its session, not to the page that asked for it: it runs to its end whether or
not any page watches. Its state is kept in the database (`JobRecords`: no personal data, style
ids and counts only), so a page that comes back with the return key finds it, and a server that
restarts marks what it was running or holding as *interrupted*, to be resumed by the owner (the
owner's key, needed to seal the headshots, lived only in the old process's memory).

A "more like this" job (`reuse_adapter`) generates from the session's trained adapter without
training. The flag is kept in the job's row inside its `style_ids` JSON (`{"styles": [...],
"reuse_adapter": true}`; a plain list for a full run, as before), so no column and no migration
is needed, and an interrupted "more" job reads back as one and resumes as one.

An Instant job (`instant`) carries the person's screened photos in memory only (`Job.photos`:
never recorded, dropped when the job ends), and whether its headshots are kept (`keep`). Its row
says only `{"styles": [...], "instant": true, "keep": ...}`. A restart loses the photos with the
process, by design: an interrupted Instant job cannot be resumed, only started again with new
uploads. A job whose headshots are not kept can only be delivered to the page that asked for it,
so that page cancels it when it goes away (web.handlers).

On a ZeroGPU Space (`in_request`) the line keeps its order and its admission, but does not run a job
in its own thread: `spaces.GPU` charges the GPU to the visitor whose Gradio request makes the call
(it reads the request's headers), and a thread outside any request has none. When a job's turn comes,
the first page following it takes the turn (`take_turn`) and runs the job in its own request, on a
thread of its own, so the job still runs to its end whatever becomes of that page. A turn no page
takes within TURN_TAKEN_WITHIN_SECONDS ends the job with words saying why, and the line moves on.
"""

from __future__ import annotations

import json
import logging
import secrets
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy import select, update

from errors import Busy, Cancelled, FaceAdapterUnavailable, ModelUnavailable, UserError
from studio.job_tables import JobRow

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED = (
    "queued", "running", "done", "failed", "cancelled", "interrupted")
# In-request line (ZeroGPU): how long a job's turn waits for a page following it. Pages look at their job
# every half second (web.handlers); this leaves time for a reloaded page to find its job again.
TURN_TAKEN_WITHIN_SECONDS = 15.0


@dataclass
class Job:
    session_id: str
    style_ids: list[str]
    count: int
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    state: str = QUEUED
    stage: str = "waiting"
    fraction: float = 0.0
    eta_seconds: float | None = None
    result: Any = None
    error: UserError | None = None  # what the person is told when the job did not finish
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished_at: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    owner_key: bytes | None = field(default=None, repr=False)  # in memory only: seals the headshots for their owner
    model_id: str | None = None  # None: the configured base model; else the demo model the person chose
    reuse_adapter: bool = False  # "more like this": generate with the session's trained adapter, no training
    instant: bool = False  # Instant mode: the face adapter on `photos`, no training
    keep: bool = True  # Instant mode: seal the headshots for their owner (False: hand them to the page, store nothing)
    photos: list = field(default_factory=list, repr=False)  # Instant: screened photos, in memory only

    @property
    def kind(self) -> str:
        """"studio" (train, then generate), "more" (the trained adapter again) or "instant" (the face adapter)."""
        return "instant" if self.instant else "more" if self.reuse_adapter else "studio"

    @property
    def active(self) -> bool:
        return self.state in (QUEUED, RUNNING)

    def hand_over_unstored(self) -> list:
        """An Instant job's unstored headshots, taken out of the job: handed over once, then held by nothing here."""
        run = self.result
        if run is None or not self.instant or self.keep:
            return []
        unstored, run.unstored = list(run.unstored), []
        run.all_outputs.clear()  # the held-back images too: nothing of the run stays in memory
        return unstored

    def refuse_resume_if_instant(self) -> None:
        if self.instant:  # its photos lived only in the memory of the process that restarted
            raise UserError("Instant headshots cannot be resumed: your photos were never stored. Choose them "
                            "again and press “Make”.", code="nothing_to_resume")


RECENT_JOBS = 20  # finished jobs of a kind whose median duration estimates the next ones' (a few hours' worth)


def wait_estimate(ahead: list[tuple[str, float]], workers: int, medians: dict[str, float]) -> float | None:
    """Seconds until a waiting job starts: (jobs ahead / workers) × the recent median duration, where a job
    ahead is (its kind, the fraction of it left to run: 1 while it waits). None when unknown: no worker, or
    a kind ahead with no recent duration."""
    if workers < 1:
        return None
    if any(kind not in medians for kind, _ in ahead):
        return None
    return sum(max(0.0, min(1.0, left)) * medians[kind] for kind, left in ahead) / workers


def median_durations(durations: list[tuple[str, float]]) -> dict[str, float]:
    """{kind: median seconds} of (kind, seconds) of recent finished jobs."""
    by_kind: dict[str, list[float]] = {}
    for kind, seconds in durations:
        by_kind.setdefault(kind, []).append(seconds)
    return {kind: statistics.median(values) for kind, values in by_kind.items()}


class GpuLine:
    """See the module docstring. `run(job, progress)` does the GPU work and returns the job's result."""

    def __init__(self, run: Callable[[Job, Callable[[Any], None]], Any], *, capacity: int,
                 records: "JobRecords | None" = None, metrics: Any = None, in_request: bool = False) -> None:
        self._run = run
        self.in_request = in_request  # ZeroGPU: a page following the job runs it, in its request (take_turn)
        self._turn: _Turn | None = None  # in_request: the running job's turn, taken by a page or not yet
        self.records = records
        self.metrics = metrics  # studio.line_metrics.LineMetrics: times the jobs this line runs
        self.capacity = capacity  # jobs waiting, not counting the one running
        self._waiting: deque[Job] = deque()
        self._running: Job | None = None
        self._latest: dict[str, Job] = {}  # session id -> its most recent job
        self._recent: deque[tuple[str, float]] = deque(maxlen=RECENT_JOBS * 3)  # (kind, seconds) of ended jobs
        self._lock = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._work, name="gpu-line", daemon=True)
        self._worker.start()

    # --- the web's side -------------------------------------------------------------------------
    def submit(self, session_id: str, style_ids: list[str], count: int, *, owner_key: bytes | None = None,
               model_id: str | None = None, reuse_adapter: bool = False, instant: bool = False, keep: bool = True,
               photos: list | None = None, exclusive: bool = False) -> Job:
        """Queue a job for an admitted session; its job already in line is returned instead of a second one.

        `reuse_adapter`: a "more like this" job (see `Studio.check_ready_to_make_more` for its admission).
        `instant`: an Instant job on `photos` (screened, in memory), its headshots kept or not (`keep`).
        `exclusive`: with a job of the session already in line, refuse (Busy) instead of returning that job.
        An Instant request must never share another request's job: two /instant racing past the handler's
        check both got the first job (tests/app/test_instant_attacks.py), so the second was told "0 headshots
        ready" for photos it had sent, and its page going away cancelled the first page's job.
        """
        with self._lock:
            current = self._latest.get(session_id)
            if current is not None and current.active:
                if exclusive:
                    raise Busy("Your headshots are being made right now. Wait until they are ready, or press "
                               "Cancel, then make more. Nothing was changed.")
                return current
            if len(self._waiting) >= self.capacity:
                raise Busy(f"The studio's GPU line is full ({self.capacity} people waiting). "
                           "Please try again in a few minutes; nothing of yours was changed.")
            job = Job(session_id, list(style_ids), int(count), owner_key=owner_key, model_id=model_id,
                      reuse_adapter=bool(reuse_adapter), instant=bool(instant), keep=bool(keep),
                      photos=list(photos or []))
            if self.records is not None:
                self.records.save(job)
            self._waiting.append(job)
            self._latest[session_id] = job
            self._lock.notify_all()
            return job

    def job_of(self, session_id: str) -> Job | None:
        """The session's latest job: live from memory, or as the database last recorded it (e.g. interrupted)."""
        with self._lock:
            job = self._latest.get(session_id)
        if job is None and self.records is not None:
            job = self.records.latest(session_id)
        return job

    def live_job(self, session_id: str) -> Job | None:
        """The session's latest job of this line, from memory only (never the database's record)."""
        with self._lock:
            return self._latest.get(session_id)

    def place_in_line(self, job: Job) -> tuple[int, int] | None:
        """(position, people waiting) while queued, 1-based; None once it runs or ended."""
        with self._lock:
            for position, waiting in enumerate(self._waiting, start=1):
                if waiting is job:
                    return position, len(self._waiting)
        return None

    def depth(self) -> int:
        """Jobs waiting, not counting the one running."""
        with self._lock:
            return len(self._waiting)

    def running(self) -> int:
        with self._lock:
            return int(self._running is not None)

    def wait_seconds(self, job: Job) -> float | None:
        """Estimated seconds until a waiting job starts (see `wait_estimate`); None once it runs, or unknown."""
        with self._lock:
            ahead = [(self._running.kind, 1.0 - self._running.fraction)] if self._running is not None else []
            for waiting in self._waiting:
                if waiting is job:
                    return wait_estimate(ahead, 1, median_durations(list(self._recent)))
                ahead.append((waiting.kind, 1.0))
            return None

    def typical_seconds(self, kind: str) -> float | None:
        """The median duration of recent finished jobs of `kind` on this line, measured here; None before any."""
        with self._lock:
            return median_durations(list(self._recent)).get(kind)

    def cancel(self, session_id: str) -> bool:
        """The person asked to stop: a waiting job leaves the line, a running one stops at its next step."""
        with self._lock:
            job = self._latest.get(session_id)
            if job is None or not job.active:
                return False
            job.cancel.set()
            if job in self._waiting:
                self._waiting.remove(job)
                self._end(job, CANCELLED, Cancelled())
            return True

    def take_turn(self, job: Job) -> Callable[[], None] | None:
        """In-request line: the running `job`'s run, to the first page that asks (None to every other caller, and
        always on a line that runs its jobs itself). The page starts it on a thread of its own, in its request's
        context, and the line takes the job's outcome from it."""
        with self._lock:
            turn = self._turn
            if turn is None or turn.job is not job or turn.taken:
                return None
            turn.taken = True

        def run_turn() -> None:
            try:
                turn.outcome = self._outcome_of(job)
            finally:
                turn.done.set()
        return run_turn

    def held_sessions(self) -> set[str]:
        """The sessions with a job waiting or running here (their photos may be in memory: Instant mode)."""
        with self._lock:
            return {job.session_id for job in (*self._waiting, self._running) if job is not None}

    def cancel_session(self, session_id: str) -> None:
        """Erasure hook: nothing of an erased session may run or wait; its record is forgotten."""
        self.cancel(session_id)
        with self._lock:
            self._latest.pop(session_id, None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for job in list(self._waiting):
                job.cancel.set()
                self._end(job, CANCELLED, Cancelled())
            self._waiting.clear()
            if self._running is not None:
                self._running.cancel.set()
            self._lock.notify_all()

    # --- the GPU's side -------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                job = self._running = self._waiting.popleft()
                job.state, job.started, job.stage = RUNNING, time.monotonic(), "starting"
            if self.metrics is not None:
                self.metrics.waits.observe(job.started - job.submitted)
            self._save(job)
            if self.in_request:
                result, state, error = self._run_in_a_request(job)
            else:
                result, state, error = self._outcome_of(job)
            if job.cancel.is_set() and job.instant and not job.keep:
                # Its headshots could reach only the page that asked, and that page has gone: nothing is delivered.
                result, state, error = None, CANCELLED, Cancelled()
            with self._lock:
                job.result = result
                self._running = None
                self._end(job, CANCELLED if job.cancel.is_set() and state != DONE else state, error)

    def _outcome_of(self, job: Job) -> tuple[Any, str, UserError | None]:
        """Run the job here and now, reporting its progress on it: (result, end state, what the person is told)."""
        return run_to_outcome(lambda: self._run(job, lambda p: _report(job, p)), instant=job.instant)

    def _run_in_a_request(self, job: Job) -> tuple[Any, str, UserError | None]:
        """The job's outcome, run by the page that takes its turn (`take_turn`), or why nothing ran."""
        turn = _Turn(job)
        deadline = time.monotonic() + TURN_TAKEN_WITHIN_SECONDS
        with self._lock:
            self._turn = turn
            while not turn.taken:
                if job.cancel.is_set() or time.monotonic() > deadline:
                    turn.taken, self._turn = True, None  # too late for any page now
                    if job.cancel.is_set():
                        return None, CANCELLED, Cancelled()
                    return None, FAILED, UserError(
                        "Your turn came while no page of yours was open, so nothing was made: on this free GPU, "
                        "headshots are made only while their page stays open. Press “Make” again.", code="page_gone")
                self._lock.wait(0.1)
        turn.done.wait()
        with self._lock:
            self._turn = None
        assert turn.outcome is not None
        return turn.outcome

    def _end(self, job: Job, state: str, error: UserError | None) -> None:
        job.state, job.error, job.finished_at = state, error, time.monotonic()
        job.owner_key = None  # the owner's key is needed no longer than the job
        job.photos = []  # Instant's photos: no longer than the job either
        if state == DONE:
            job.fraction, job.stage, job.eta_seconds = 1.0, "done", 0.0
            if job.started is not None:
                self._recent.append((job.kind, job.finished_at - job.started))
        if self.metrics is not None and job.started is not None:
            self.metrics.durations.labels(outcome=state).observe(job.finished_at - job.started)
        self._save(job)
        job.finished.set()

    def _save(self, job: Job) -> None:
        if self.records is None:
            return
        try:
            self.records.save(job)
        except Exception as exc:  # e.g. the session was erased a moment ago (its rows are gone): the job's end stands
            log.info("job state not recorded: %s", type(exc).__name__)


@dataclass
class _Turn:
    """A running job of an in-request line: taken by a page or not yet, and what its run came to."""

    job: Job
    taken: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    outcome: tuple[Any, str, UserError | None] | None = None


# What a person is told when a model cannot serve their job, in their mode's words: an Instant job's photos
# were checked in memory and never stored, and it has no trained model; a Studio job's photos stay sealed.
MODEL_UNAVAILABLE_WORDS = {
    "studio": "The studio's model could not be loaded, so no headshots can be made right now. Your photos are "
              "still here; the page shows the model's state.",
    "instant": "The studio's image model could not be loaded, so no instant headshots can be made right now. "
               "Your photos were checked in memory only and nothing of them was kept; the page shows the "
               "model's state.",
    "instant_face_adapter": "Instant mode's face model could not be loaded on this studio, so no instant "
                            "headshots can be made right now. Your photos were checked in memory only and "
                            "nothing of them was kept. Studio mode, which trains a model of your face, may "
                            "still work.",
}


def run_to_outcome(run: Callable[[], Any], *, instant: bool = False) -> tuple[Any, str, UserError | None]:
    """(result, end state, what the person is told) of one job's run: the one way GPU errors become words,
    in the in-process line and on a queue worker (studio.workers) alike."""
    try:
        return run(), DONE, None
    except Cancelled as exc:
        return None, CANCELLED, exc
    except UserError as exc:  # SessionGone, OutOfMemory, ...: the person is told in words
        return None, FAILED, exc
    except ModelUnavailable as exc:  # the operator's problem: its message (configuration only) goes to the log
        log.error("GPU job cannot run: %s", exc)
        words = ("studio" if not instant else
                 "instant_face_adapter" if isinstance(exc, FaceAdapterUnavailable) else "instant")
        return None, FAILED, UserError(MODEL_UNAVAILABLE_WORDS[words], code="model_unavailable")
    except Exception as exc:  # type and frames only: messages may carry values a person sent
        log.error("GPU job failed: %s", type(exc).__name__, exc_info=False)
        return None, FAILED, UserError("Something went wrong on our side while making your headshots. "
                                       "Nothing you sent was kept outside your encrypted session. Please try again.",
                                       code="internal_error")


def _report(job: Job, progress: Any) -> None:
    """Progress from the engine (`pipeline.engine.EngineProgress`), kept for whoever watches the job."""
    job.stage = progress.stage
    job.fraction = min(1.0, max(0.0, float(progress.fraction)))
    job.eta_seconds = progress.eta_seconds


class JobRecords:
    """Jobs' lasting state in the studio database: written at each change of state, read by returning pages."""

    def __init__(self, db: Any, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    def save(self, job: Job) -> None:
        with self.db.session.begin() as s:
            row = s.get(JobRow, job.id)
            if row is None:
                s.add(JobRow(id=job.id, session_id=job.session_id, state=job.state, stage=job.stage,
                             style_ids=_styles_field(job), count=job.count, created_at=self.clock()))
                return
            row.state, row.stage = job.state, job.stage
            if not job.active:
                row.finished_at = self.clock()
                row.error_code = job.error.code if job.error is not None else None

    def latest(self, session_id: str) -> Job | None:
        with self.db.session() as s:
            row = s.scalars(select(JobRow).where(JobRow.session_id == session_id)
                            .order_by(JobRow.created_at.desc()).limit(1)).first()
            return None if row is None else _job_of_row(row)

    def load(self, job_id: str) -> Job | None:
        """One job as its row records it (a queue worker's way in: the message names only the id)."""
        with self.db.session() as s:
            row = s.get(JobRow, job_id)
            return None if row is None else _job_of_row(row)

    def mark_interrupted(self, *, instant_only: bool = False) -> int:
        """At start-up: what the last process was running or holding can no longer finish by itself.

        `instant_only` (queue mode): queued and running studio jobs belong to the workers, not to this
        process; only Instant jobs, whose photos lived in a web process's memory, are lost with one.
        """
        query = update(JobRow).where(JobRow.state.in_([QUEUED, RUNNING]))
        if instant_only:
            query = query.where(JobRow.style_ids.like('%"instant": true%'))
        with self.db.session.begin() as s:
            return s.execute(query.values(state=INTERRUPTED, finished_at=self.clock())).rowcount


def _job_of_row(row: JobRow) -> Job:
    style_ids, flags = _read_styles_field(row.style_ids)
    job = Job(row.session_id, style_ids, row.count, id=row.id, state=row.state, stage=row.stage, **flags)
    if not job.active:
        job.finished.set()
    return job


def _styles_field(job: Job) -> str:
    """The row's `style_ids` text: the list of style ids, or, for a "more like this" or Instant job, the list and
    the job's flags (never its photos)."""
    model = {"model_id": job.model_id} if job.model_id else {}  # the demo model a person chose: a worker needs it
    if job.reuse_adapter:
        return json.dumps({"styles": job.style_ids, "reuse_adapter": True, **model})
    if job.instant:
        return json.dumps({"styles": job.style_ids, "instant": True, "keep": job.keep, **model})
    if model:
        return json.dumps({"styles": job.style_ids, **model})
    return json.dumps(job.style_ids)


def _read_styles_field(text: str) -> tuple[list[str], dict[str, Any]]:
    """(style ids, the Job flags the row records)."""
    value = json.loads(text)
    if isinstance(value, dict):
        return list(value["styles"]), {"reuse_adapter": bool(value.get("reuse_adapter", False)),
                                       "instant": bool(value.get("instant", False)),
                                       "keep": bool(value.get("keep", True)),
                                       "model_id": value.get("model_id") or None}
    return list(value), {}
