"""Queue mode: studio jobs enqueued on Celery (Redis broker) and run by GPU worker processes.

    web replica                          broker (Redis)            GPU worker (`python cli.py worker`)
    QueuedLine.submit: row `queued` ──▶  message: the job id  ──▶  JobWorker.execute: claim, run, seal, end

With `HEADSHOT_QUEUE_URL` unset the studio keeps its in-process `studio.jobs.GpuLine`; set, the app
wires a `QueuedLine` in its place, behind the same five calls the handlers make (submit, job_of,
place_in_line, cancel, cancel_session). What a job is lives in the `jobs` table of the shared
database; the message carries the job's id and nothing else, and the worker reads the sealed
photos through the same vault on the shared database and blob directory.

The owner's key never leaves the web process. An in-process job seals the headshots with it; a
worker cannot, so it seals them under the session's master-wrapped headshot key, and a web
replica hands that key to the owner (`Vault.hand_to_owner`) as soon as one of the owner's pages
is present: the page watching the job, or any page that presents the return key later
(`QueuedLine.job_of`, which `attach` calls). A session whose headshots are already owner-held
is lent back to the studio at submission (`Vault.lend_to_studio`), with the owner present: the
new headshots are sealed beside the old ones, under the key KEY_HOLDERS calls the studio's
"while your headshots are being made". Instant jobs (photos in memory only) stay in the web process's own `GpuLine`.

What a person can trust (`JobWorker`, `JobClaims`):
- at most once at a time: a worker starts a job only by the conditional UPDATE queued→running of
  its row (one winner, on SQLite and PostgreSQL alike); a duplicate or late message finds the row
  no longer queued and is dropped;
- at least once, to completion, unless cancelled or erased: Celery acknowledges a message only
  after the job ends (`acks_late`, `reject_on_worker_lost`), and Redis gives an unacknowledged one
  to another worker after the visibility timeout (HEADSHOT_JOB_VISIBILITY_SECONDS, longer than a job);
- a worker killed mid-job stops writing its heartbeat; any other worker's reaper then re-queues the
  job (a new message, same id) while attempts remain (HEADSHOT_JOB_ATTEMPTS), else marks it
  interrupted, as a restart of the in-process line does. One conditional UPDATE decides, so a job
  is re-run or interrupted, never both;
- idempotent sealing: every seal of an attempt is fenced by its claim (`privacy.store.vault.sealing_only_while`
  with `JobClaims.holds`): inside the seal's own transaction, a conditional UPDATE of the claim row that
  matches only while the token is still this attempt's. The reaper takes a claim away with a conditional
  UPDATE of the same row, so the two are ordered by the row's lock (PostgreSQL) or the write lock (SQLite):
  a seal either commits before the reaper decides, or finds the claim gone and writes nothing. So an
  attempt that was silent past the stale time but alive (paused by the OS, cut off from the database)
  seals nothing once it wakes, and stops. What it sealed before the decision is discarded: by the re-run,
  first (the session's adapter, headshot and report blobs sealed since the job first started: no edit of
  the set and no other job of the session can run meanwhile), or by the reaper when it marks the job
  interrupted. A crash or a pause never leaves headshots twice;
- cancellation and erasure reach the worker within one training step: its watcher writes the
  heartbeat every half second with an UPDATE that succeeds only while the row is still running
  and still this attempt's; when it fails (cancelled, erased: the row is gone, or reaped) it sets
  the cancel Event the engine checks between steps;
- a job whose session was erased while queued never starts: its row went with the session;
- a lost message does not wait the visibility timeout: a broker that loses its messages (Redis
  restarted without persistence, flushed) leaves queued rows that no message names. Each worker's
  reaper compares the queued rows with the job ids the broker holds (`broker_job_ids`: the queue's
  list and the unacknowledged set) and sends a message again for a row missing at two checks in a
  row (a message being handed to a worker, or a row committed a moment before its message was
  sent, is missing at one only). A duplicate message can never run a job twice: it finds the row
  no longer queued, as a late one does;
- the place in line is the count of queued studio rows created before the job: what the broker
  holds, in order. The wait the page shows (`JobClaims.wait_seconds`) is `studio.jobs.wait_estimate`
  on the same rows: the queued jobs ahead, what is left of the running ones (their claims' progress),
  the live workers (those whose heartbeat is fresh), and the median duration of recent finished jobs
  (claim's first start to the row's end).

Nothing personal goes to the broker, the logs or the rows: job ids, worker names, counts, times.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
import time
from typing import Any, Callable

from errors import Busy, SessionGone, UserError
from privacy.store.vault import HEADSHOTS, sealing_only_while
from studio.job_claims import JobClaims
from studio.jobs import (
    CANCELLED,
    DONE,
    MODEL_UNAVAILABLE_WORDS,
    QUEUED,
    RUNNING,
    GpuLine,
    Job,
    JobRecords,
    _report,
    run_to_outcome,
)
from studio.reaper import Reaper

log = logging.getLogger(__name__)

TASK_NAME = "headshots.run_job"
QUEUE_NAME = "headshots"
HEARTBEAT_SECONDS = 0.5  # how often a running job's worker proves it is alive and reads whether to stop
WAIT_CACHE_SECONDS = 5.0  # how long a queued job's estimated wait is shown before it is estimated again


def celery_app(queue_url: str, *, visibility_seconds: float) -> Any:
    """The Celery application of web replicas and workers alike: the broker and the job semantics above."""
    from celery import Celery

    app = Celery("headshots", broker=queue_url)
    app.conf.update(
        task_acks_late=True,  # acknowledged when the job ends: a worker that dies first leaves it to another
        task_reject_on_worker_lost=True,  # a pool child killed mid-job: its message goes back, not away
        worker_prefetch_multiplier=1,  # one GPU, one job: a worker never holds a second job others could run
        worker_concurrency=1,
        broker_transport_options={"visibility_timeout": visibility_seconds},
        task_ignore_result=True,  # the jobs table is the result store; no result backend
        task_default_queue=QUEUE_NAME,
        task_serializer="json", accept_content=["json"],
        worker_hijack_root_logger=False, worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
        worker_send_task_events=False, task_send_sent_event=False,
    )
    return app


def broker_job_ids(app: Any) -> set[str]:
    """The job ids the broker holds now: messages waiting in the queue's lists and those handed to a worker
    and not yet acknowledged (kombu's Redis transport keeps them in its `unacked` hash until the ack)."""
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        client = channel.client
        # One list per priority step (kombu's own naming, `_q_for_pri`); only the plain one is used today.
        raw = [m for step in channel.priority_steps for m in client.lrange(channel._q_for_pri(QUEUE_NAME, step), 0, -1)]
        unacked = client.hvals(channel.unacked_key)
    ids = {_job_id_of(message) for message in raw}
    ids |= {_job_id_of(entry, unacked=True) for entry in unacked}
    ids.discard(None)
    return ids  # type: ignore[return-value]


def _job_id_of(payload: bytes, *, unacked: bool = False) -> str | None:
    """The job id a kombu message names (its body: [[job id], {}, {...}]); None for anything else."""
    try:
        message = json.loads(payload)
        if unacked:  # [message, exchange, routing key]
            message = message[0]
        if message.get("headers", {}).get("task") != TASK_NAME:
            return None
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(args[0])[:32] if args else None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None


def worker_name() -> str:
    """A worker's name in claims and logs: host and process id, never anything of a person."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}"


class JobWorker:
    """One GPU's worker: runs the jobs its messages name, one at a time, and reaps the jobs of dead workers.

    `run(job, progress)` is the GPU part (`run_studio_job`); `enqueue(job_id)` sends a message again for a
    re-run or a lost message; `in_broker()` is the set of job ids the broker holds (`broker_job_ids`), None
    where lost messages are not looked for. All are arguments so that the tests drive a worker without a broker.
    """

    def __init__(self, studio: Any, run: Callable[[Job, Callable[[Any], None]], Any], *,
                 enqueue: Callable[[str], None], name: str | None = None, stale_seconds: float = 60.0,
                 attempts: int = 2, heartbeat_seconds: float = HEARTBEAT_SECONDS, metrics: Any = None,
                 in_broker: Callable[[], set[str]] | None = None) -> None:
        self.studio, self._run, self.enqueue, self.metrics = studio, run, enqueue, metrics
        self.in_broker = in_broker
        self._missing: set[str] = set()  # queued jobs the broker did not hold at the last check
        self.name = name or worker_name()
        self.records = JobRecords(studio.db)
        self.claims = JobClaims(studio.db)
        self.stale_seconds, self.attempts, self.heartbeat_seconds = stale_seconds, attempts, heartbeat_seconds
        self.reaper = Reaper(studio, self.claims, enqueue=enqueue, stale_seconds=stale_seconds, attempts=attempts)

    def execute(self, job_id: str) -> str:
        """Run one job if it is still queued; returns the state it ended in, or "skipped"."""
        claimed = self.claims.claim(job_id, self.name)
        if claimed is None:
            log.info("job %s skipped: no longer queued", job_id)
            return "skipped"
        token, attempt, first_started_at = claimed
        job = self.records.load(job_id)
        if job is None:  # erased between the claim and this read
            return "skipped"
        log.info("job %s started on %s (attempt %d)", job_id, self.name, attempt)
        started = time.monotonic()
        if self.metrics is not None:
            self.metrics.waits.observe(max(0.0, self.claims.clock() - self.claims.created_at(job_id)))
        if attempt > 1:
            self._discard_earlier_outputs(job.session_id, first_started_at)
        job.state, job.started = RUNNING, time.monotonic()
        stop = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(job, token, stop), name="job-watch", daemon=True)
        watcher.start()
        try:
            # Every seal of this attempt only while it holds its claim (idempotent sealing: the module docstring).
            with sealing_only_while(lambda s: self.claims.holds(s, job_id, token)):
                _, state, error = run_to_outcome(lambda: self._run(job, lambda p: _report(job, p)))
        finally:
            stop.set()
            watcher.join()
        if job.cancel.is_set() and state != DONE:
            state = CANCELLED
        ended = self.claims.finish(job_id, token, state, error)
        if self.metrics is not None:
            self.metrics.durations.labels(outcome=state if ended else "stopped").observe(time.monotonic() - started)
        log.info("job %s ended on %s: %s%s", job_id, self.name, state, "" if ended else " (no longer its own)")
        if not ended:  # cancelled or erased meanwhile (the row says so), or reaped as dead: not this attempt's
            return CANCELLED if job.cancel.is_set() else "superseded"
        return state

    def _watch(self, job: Job, token: str, stop: threading.Event) -> None:
        written = None
        while not stop.wait(self.heartbeat_seconds):
            try:
                if not self.claims.beat(job.id, token, job, stage_changed=job.stage != written):
                    job.cancel.set()  # cancelled, erased, or reaped: the engine stops at its next step
                    return
                written = job.stage
            except Exception as exc:  # a database blip: the next beat tries again; the reaper judges silence
                log.warning("job %s heartbeat failed: %s", job.id, type(exc).__name__)

    def _discard_earlier_outputs(self, session_id: str, since: float) -> None:
        self.reaper.discard_outputs_since(session_id, since)

    def reap(self) -> list[tuple[str, str]]:
        """Decide for the jobs of dead workers (studio.reaper), as every web replica does too: (job id, state)."""
        return self.reaper.reap(self.metrics)

    @property
    def check_seconds(self) -> float:
        """How often the reaper looks for dead workers and lost messages."""
        return self.reaper.check_seconds

    def republish_lost(self) -> list[str]:
        """Send a message again for each queued job the broker has lost (see the module docstring): missing at
        this check and the one before, and queued for longer than one check. Returns their ids."""
        if self.in_broker is None:
            return []
        queued = self.claims.queued_before(self.claims.clock() - self.check_seconds)  # rows first, then messages:
        missing = queued - self.in_broker() if queued else set()  # a row claimed meanwhile is not queued next time
        lost, self._missing = sorted(missing & self._missing), missing
        for job_id in lost:
            log.warning("job %s: its message was lost by the broker; sent again", job_id)
            self.enqueue(job_id)
            if self.metrics is not None:
                self.metrics.republished.inc()
        self._missing -= set(lost)
        return lost

    def say_connected(self) -> None:
        """Tell the pages that a worker is here to take jobs (`JobClaims.workers_connected`)."""
        self.claims.worker_seen(self.name)

    def reap_forever(self, stop: threading.Event) -> None:
        while not stop.wait(self.check_seconds):
            for check in (self.say_connected, self.reap, self.republish_lost):
                try:
                    check()
                except Exception as exc:  # a database or broker blip: the next check tries again
                    log.warning("reaper: %s", type(exc).__name__)


def run_studio_job(studio: Any, job: Job, progress: Callable[[Any], None]) -> Any:
    """The GPU part of a queued job: as studio.gpu_call.run, without the owner's key (see the module docstring)."""
    if job.reuse_adapter:
        return studio.more_like_this(job.session_id, job.style_ids, job.count, progress=progress, cancel=job.cancel,
                                     model_id=job.model_id)
    return studio.make_headshots(job.session_id, job.style_ids, job.count, progress=progress, cancel=job.cancel,
                                 model_id=job.model_id)


def queued_line(studio: Any, settings: Any, *, local: GpuLine,
                owner_key_of: Callable[[str], bytes | None]) -> "QueuedLine":
    """A web replica's line in queue mode, as the app wires it: messages to the Celery broker of HEADSHOT_QUEUE_URL."""
    broker = celery_app(settings.queue_url, visibility_seconds=settings.job_visibility_seconds)
    return QueuedLine(studio, send=lambda job_id: broker.send_task(TASK_NAME, args=[job_id], queue=QUEUE_NAME),
                      local=local, capacity=settings.queue_size, owner_key_of=owner_key_of,
                      stale_seconds=settings.worker_stale_seconds, attempts=settings.job_attempts)


class QueuedLine:
    """The web side of queue mode, with `GpuLine`'s interface: see the module docstring.

    `local` is this process's own `GpuLine`, for Instant jobs; `send(job_id)` enqueues a message;
    `owner_key_of(session_id)` is the owner's key while one of their pages is open (privacy.store.owner_presence).
    """

    def __init__(self, studio: Any, *, send: Callable[[str], None], local: GpuLine, capacity: int,
                 owner_key_of: Callable[[str], bytes | None], poll_seconds: float = HEARTBEAT_SECONDS,
                 stale_seconds: float = 60.0, attempts: int = 2) -> None:
        self.studio, self.vault, self._send, self.local = studio, studio.vault, send, local
        self.stale_seconds = stale_seconds  # a worker silent this long is not counted in the wait
        self.capacity, self._owner_key_of, self.poll_seconds = capacity, owner_key_of, poll_seconds
        self.records = JobRecords(studio.db)
        self.claims = JobClaims(studio.db)
        self._watched: dict[str, Job] = {}  # job id -> the view handed to pages, refreshed from the database
        self._waits: dict[str, tuple[float, float | None]] = {}  # job id -> (when, estimated wait) for its pages
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._refresher = threading.Thread(target=self._refresh_forever, name="queue-watch", daemon=True)
        self._refresher.start()
        # A web replica reaps too: with every worker gone, a job is still decided within one check, by the same
        # one-winner rule as the workers' (studio.reaper), and its page says so.
        self.reaper = Reaper(studio, self.claims, enqueue=send, stale_seconds=stale_seconds, attempts=attempts)
        self._connected: tuple[float, int] | None = None  # (when, workers connected), for the pages asking
        self.metrics: Any = None  # the app's metrics (studio.line_metrics): counts what this replica's reaper decides
        threading.Thread(target=self._reap_forever, name="queue-reaper", daemon=True).start()

    def submit(self, session_id: str, style_ids: list[str], count: int, *, owner_key: bytes | None = None,
               model_id: str | None = None, reuse_adapter: bool = False, instant: bool = False, keep: bool = True,
               photos: list | None = None) -> Job:
        if instant:  # photos in memory only: they never go into a message
            return self.local.submit(session_id, style_ids, count, owner_key=owner_key, model_id=model_id,
                                     instant=True, keep=keep, photos=photos)
        current = self.job_of(session_id)
        if current is not None and current.active:
            return current
        if self.claims.waiting() >= self.capacity:
            raise Busy(f"The studio's GPU line is full ({self.capacity} people waiting). "
                       "Please try again in a few minutes; nothing of yours was changed.")
        if owner_key is not None:  # earlier headshots are owner-held: lent back while the new ones are made
            self.vault.lend_to_studio(session_id, HEADSHOTS, owner_key)
        job = Job(session_id, list(style_ids), int(count), model_id=model_id, reuse_adapter=bool(reuse_adapter))
        self.records.save(job)
        try:
            self._send(job.id)
        except Exception as exc:
            log.error("job %s could not be enqueued: %s", job.id, type(exc).__name__)
            self.claims.cancel(session_id)
            raise UserError("The studio's GPU queue cannot be reached right now. Nothing was started; "
                            "your photos are still here. Please try again in a few minutes.",
                            code="queue_unavailable") from None
        with self._lock:
            self._watched[job.id] = job
        return job

    def job_of(self, session_id: str) -> Job | None:
        live = self.local.live_job(session_id)
        recorded = self.records.latest(session_id)
        if live is not None and (recorded is None or recorded.id == live.id):
            return live
        if recorded is None:
            return None
        with self._lock:
            view = self._watched.setdefault(recorded.id, recorded)
        self._refresh(view)
        if not view.active:
            self._hand_over(session_id)  # the owner's page is here (attach, watch): their headshots go to them
        return view

    def take_turn(self, job: Job) -> Callable[[], None] | None:
        return self.local.take_turn(job)  # only this process's own line runs jobs here (Instant ones)

    def place_in_line(self, job: Job) -> tuple[int, int] | None:
        if job.instant:
            return self.local.place_in_line(job)
        return self.claims.place_in_line(job.id)

    def depth(self) -> int:
        """Jobs waiting: the studio jobs queued for any worker (the jobs table), and this process's Instant ones."""
        return self.claims.waiting() + self.local.depth()

    def running(self) -> int:
        """Jobs running: studio jobs on any worker (the jobs table), and this process's Instant one."""
        return self.claims.running() + self.local.running()

    def wait_seconds(self, job: Job) -> float | None:
        if job.instant:
            return self.local.wait_seconds(job)
        # Every waiting page asks twice a second; the estimate moves slowly and costs four queries: kept a while.
        now = time.monotonic()
        with self._lock:
            cached = self._waits.get(job.id)
        if cached is not None and now - cached[0] < WAIT_CACHE_SECONDS:
            return cached[1]
        estimate = self.claims.wait_seconds(job.id, self.stale_seconds)
        with self._lock:
            if len(self._waits) > 10_000:
                self._waits.clear()
            self._waits[job.id] = (now, estimate)
        return estimate

    def workers_connected(self) -> int:
        """GPU workers connected now (a worker says so every third of the stale time); read at most every few
        seconds, however many pages ask."""
        now = time.monotonic()
        cached = self._connected
        if cached is None or now - cached[0] >= WAIT_CACHE_SECONDS:
            cached = self._connected = (now, self.claims.workers_connected(self.stale_seconds))
        return cached[1]

    def cancel(self, session_id: str) -> bool:
        live = self.local.live_job(session_id)
        if live is not None and live.active:
            return self.local.cancel(session_id)
        return self.claims.cancel(session_id) > 0

    def cancel_session(self, session_id: str) -> None:
        """Erasure hook: nothing of an erased session may run or wait (its rows go with the session too)."""
        self.local.cancel_session(session_id)
        self.claims.cancel(session_id)
        with self._lock:
            for job_id in [i for i, j in self._watched.items() if j.session_id == session_id]:
                self._watched.pop(job_id).cancel.set()

    def close(self) -> None:
        self._closed.set()
        self.local.close()

    # --- the views pages watch --------------------------------------------------------------------
    def _refresh(self, view: Job) -> None:
        seen = self.claims.progress(view.id)
        if seen is None:  # erased: the row went with the session
            view.state, view.error = CANCELLED, None
        else:
            view.state, view.stage, view.fraction, view.eta_seconds, code = seen
            if view.state in (QUEUED, RUNNING, DONE, CANCELLED):
                # Queued again after its worker was lost, the row says so until a worker claims it: the page
                # tells the person what happened (web.line_words).
                lost = view.state == QUEUED and code == WORKER_LOST
                view.error = UserError(_ERROR_WORDS[REQUEUED], code=WORKER_LOST) if lost else None
            elif code and (view.error is None or view.error.code != code):
                view.error = UserError(_ERROR_WORDS.get(code, _ERROR_WORDS["internal_error"]), code=code)
        if not view.active and not view.finished.is_set():
            if view.state == DONE:
                view.fraction, view.eta_seconds = 1.0, 0.0
            view.finished.set()

    def _refresh_forever(self) -> None:
        while not self._closed.wait(self.poll_seconds):
            with self._lock:
                views = [j for j in self._watched.values() if not j.finished.is_set()]
            for view in views:
                try:
                    self._refresh(view)
                    if view.finished.is_set():
                        self._hand_over(view.session_id)
                except Exception as exc:
                    log.warning("job %s not refreshed: %s", view.id, type(exc).__name__)
            with self._lock:
                if len(self._watched) > 10_000:  # forget ended views; a page asking again reads the row
                    self._watched = {i: j for i, j in self._watched.items() if j.active}

    def _reap_forever(self) -> None:
        while not self._closed.wait(self.reaper.check_seconds):
            try:
                self.reaper.reap(self.metrics)
            except Exception as exc:  # a database or broker blip: the next check tries again
                log.warning("reaper: %s", type(exc).__name__)

    def _hand_over(self, session_id: str) -> None:
        """Give the session's headshot key to its owner, if one of their pages is open and no job is sealing."""
        owner_key = self._owner_key_of(session_id)
        if owner_key is None:
            return
        latest = self.records.latest(session_id)
        if latest is not None and latest.active:
            return
        try:
            if self.vault.hand_to_owner(session_id, HEADSHOTS, owner_key):
                log.info("headshots handed to their owner after a queued job")
        except SessionGone:
            pass


# What a page shows for a queued job that failed on a worker: the worker's words stay on the worker
# (they may be long); the row keeps only the code, and these say what to do next.
_ERROR_WORDS = {
    "internal_error": "Something went wrong on our side while making your headshots. Nothing you sent was kept "
                      "outside your encrypted session. Please try again.",
    "model_unavailable": MODEL_UNAVAILABLE_WORDS["studio"],  # a queued job is a Studio job
    "out_of_memory": "The GPU ran out of memory while making your headshots. Please try again with fewer styles.",
    "no_photos": "Please upload your photos first; none are stored for this session.",
    "owner_key_required": "Please open your private link (or enter your code) on this page first, then try again.",
    "worker_lost": "The studio's GPU worker stopped while making your headshots, so that run stopped. "
                   "Press “Resume” to start it again; your photos are still here.",
    "requeued": "The GPU worker making your headshots stopped, so your job went back in line and starts again "
                "by itself, from the beginning.",
}
WORKER_LOST, REQUEUED = "worker_lost", "requeued"
