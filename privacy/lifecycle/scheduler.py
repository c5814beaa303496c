"""The retention scheduler: one APScheduler per deployment, guarded by a lock, sweeping at start-up and on time.

Why both an interval sweep and exact-time jobs: the interval sweep (every
`sweep_interval_minutes`) is the backstop that needs no bookkeeping and catches
everything, but alone it would erase up to one interval late. So each sweep also sets a
date job at the exact time of every expiry falling before the sweep after next (job id
`expire-<audit_id>-<category>`: the pseudonym, never the session id). Both kinds live in
the SQLAlchemy job store in the studio's own database, so they survive restarts, and
`misfire_grace_time=None` runs the ones missed while the process was down as soon as it
is back — after the synchronous start-up sweep has already erased whatever came due
(promise 20). Jobs carry no arguments: each just runs a sweep, which decides from the
database what is due.

The job store keeps text references ("privacy.lifecycle.scheduler:run_sweep"), not closures, so
the job function finds its `ErasureContext` in this module's registry, filled by
`start_scheduler(ctx)`. A second scheduler (another worker, a reload, another machine on
the same database) would run every job twice, so one lock per deployment, held for the
scheduler's life, lets only one start:

    SQLite       an exclusive `flock` on DATA_DIR/scheduler.lock (the processes share the file)
    PostgreSQL   a session-level advisory lock (`pg_try_advisory_lock`) on a connection of its
                 own: every process on the database sees it, on whatever machine it runs

Either is released by the holder's stop or its death (SIGKILL included: the kernel closes the
file, or the socket, and the server ends the session). A process that finds the lock taken
runs nothing and stands by: every `retry_seconds` (default: the sweep interval) it tries the
lock again, and once the holder is gone it takes over, sweeping at once. So retention never
waits for someone to restart a worker, and two schedulers never run at once.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from privacy.lifecycle import retention
from privacy.lifecycle.erasure import ErasureContext
from privacy.store.database import Database
from privacy.teams import team_shares

log = logging.getLogger(__name__)

SWEEP_JOB_ID = "retention-sweep"
SWEEP_FUNC = "privacy.lifecycle.scheduler:run_sweep"
JOB_TABLE = "retention_jobs"
LOCK_NAME = "scheduler.lock"
ADVISORY_LOCK_KEY = int.from_bytes(b"hs-sched", "big")  # PostgreSQL's advisory locks are named by a 64-bit key
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}

# The registry the job functions read: set by start_scheduler, cleared by stop_scheduler.
_registry: dict[str, object] = {}
_guard = threading.Lock()
_sweep_state = {"running": False, "pending": False}


@dataclass(frozen=True)
class SchedulerStart:
    """Whether this process runs the scheduler, and what its start-up sweep erased."""

    running: bool
    reason: str
    startup_sweep: retention.SweepResult | None = None

    def __bool__(self) -> bool:
        return self.running


def start_scheduler(ctx: ErasureContext, *, background: bool = True,
                    retry_seconds: float | None = None) -> SchedulerStart:
    """Take the deployment's scheduler lock, sweep once now, then (if `background`) start the timed jobs.

    When another process or instance holds the lock: returns running=False and runs nothing now;
    with `background`, stands by to take over (module docstring), trying every `retry_seconds`.
    """
    with _guard:
        if "ctx" in _registry or "standby" in _registry:
            log.warning("retention scheduler already started in this process; not starting a second one")
            return SchedulerStart(False, "already running in this process" if "ctx" in _registry
                                  else "already standing by in this process")
        lock = _lock_for(ctx)
        if not lock.acquire():
            log.warning("retention scheduler runs in another process of this deployment; this one stands by")
            if background:
                _registry["standby"] = _Standby(ctx, retry_seconds or _interval(ctx))
            return SchedulerStart(False, "another process holds the scheduler lock"
                                  + ("; standing by to take over" if background else ""))
        _registry.update(ctx=ctx, lock=lock)
    # Before serving anyone: no seal of this process is in flight, so any unindexed file is a crash's.
    return _run(ctx, background, unindexed_before=time.time())


def stop_scheduler() -> None:
    """Stop standing by, stop the jobs (waiting for a running sweep), clear the registry and release the lock."""
    with _guard:
        standby = _registry.pop("standby", None)
    if standby is not None:
        standby.stop()  # waits for a takeover under way, so that what it started is stopped below
    _stop_running()


def _run(ctx: ErasureContext, background: bool, unindexed_before: float) -> SchedulerStart:
    """With the lock held: finish what a crash cut short, sweep, then start the timed jobs."""
    try:
        # A crash (SIGKILL, power cut) can cut a seal or a shred in half: finish those first.
        ctx.vault.recover(unindexed_before=unindexed_before)
        team_shares.recover(ctx.db, team_shares.share_dir(ctx.settings.data_dir), unindexed_before)
        startup = run_sweep()  # erase what came due while no scheduler ran
        if background:
            scheduler = BackgroundScheduler(
                jobstores={"default": SQLAlchemyJobStore(engine=ctx.db.engine, tablename=JOB_TABLE)},
                job_defaults=JOB_DEFAULTS, timezone=timezone.utc)
            scheduler.start()
            scheduler.add_job(SWEEP_FUNC, "interval", seconds=_interval(ctx), id=SWEEP_JOB_ID,
                              replace_existing=True, **JOB_DEFAULTS)
            _registry["scheduler"] = scheduler
            _schedule_exact_expiries(ctx, scheduler, ctx.clock())
    except BaseException:
        _stop_running()
        raise
    log.info("retention scheduler started")
    return SchedulerStart(True, "started", startup)


def _stop_running() -> None:
    with _guard:
        scheduler = _registry.pop("scheduler", None)
        lock = _registry.pop("lock", None)
        _registry.pop("ctx", None)
    if scheduler is not None and scheduler.running:
        scheduler.shutdown(wait=True)
    if lock is not None:
        lock.release()  # type: ignore[attr-defined]


class _Standby:
    """A process that found the lock taken: tries it again every `retry_seconds` and takes over once it is free."""

    def __init__(self, ctx: ErasureContext, retry_seconds: float):
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(ctx, retry_seconds), name="retention-standby",
                                        daemon=True)
        self._thread.start()

    def _loop(self, ctx: ErasureContext, retry_seconds: float) -> None:
        while not self._stopped.wait(retry_seconds):
            try:
                if _take_over(ctx, self._stopped):
                    return
            except Exception as exc:  # a database down for a moment: try again next time
                log.error("retention scheduler takeover failed: %s", type(exc).__name__)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join()


def _take_over(ctx: ErasureContext, stopped: threading.Event) -> bool:
    with _guard:
        if stopped.is_set():
            return True
        lock = _lock_for(ctx)
        if not lock.acquire():
            return False
        _registry.update(ctx=ctx, lock=lock)
    # This process is serving already: a seal of its own may be between writing its file and
    # committing its row, so only unindexed files older than the grace are a crash's leftovers.
    _run(ctx, background=True, unindexed_before=time.time() - ORPHAN_GRACE_SECONDS)
    log.info("retention scheduler taken over from a process that stopped")
    return True


def scheduled_jobs() -> list[tuple[str, datetime | None]]:
    """(job id, next run time) of the running scheduler's jobs; empty when none runs here."""
    scheduler = _registry.get("scheduler")
    if scheduler is None:
        return []
    return [(job.id, job.next_run_time) for job in scheduler.get_jobs()]  # type: ignore[attr-defined]


ORPHAN_GRACE_SECONDS = 60


def run_sweep() -> retention.SweepResult | None:
    """The job function (referenced as text by the job store). Never two sweeps at once.

    A call arriving while a sweep runs (an exact-time job firing during the interval sweep)
    does not run beside it: it asks the running one to go round once more, so nothing due
    at that moment is left for the next interval.
    """
    ctx = _registry.get("ctx")
    if not isinstance(ctx, ErasureContext):
        log.warning("retention job fired in a process without a started scheduler; skipped")
        return None
    lock = _registry.get("lock")
    if isinstance(lock, AdvisoryLock) and not lock.still_held() and not lock.acquire():
        # The lock's connection was cut (a database restart) and another process took the lock meanwhile.
        log.error("retention scheduler lost its lock to another process; this sweep is skipped")
        return None
    with _guard:
        if _sweep_state["running"]:
            _sweep_state["pending"] = True
            return None
        _sweep_state["running"] = True
    try:
        while True:
            now = ctx.clock()
            result = retention.sweep(ctx, now)
            # A seal that raced an erasure can leave a keyless or unindexed blob: unreadable noise, but
            # the residue audit must not wait for a restart to see it gone. A seal commits its row
            # milliseconds after writing its file, so a minute-old unindexed file is nobody's.
            ctx.vault.recover(unindexed_before=time.time() - ORPHAN_GRACE_SECONDS)
            team_shares.recover(ctx.db, team_shares.share_dir(ctx.settings.data_dir),
                                time.time() - ORPHAN_GRACE_SECONDS)
            scheduler = _registry.get("scheduler")
            if scheduler is not None:
                _schedule_exact_expiries(ctx, scheduler, now)  # type: ignore[arg-type]
            with _guard:
                if not _sweep_state["pending"]:
                    _sweep_state["running"] = False
                    return result
                _sweep_state["pending"] = False
    except BaseException:
        with _guard:
            _sweep_state.update(running=False, pending=False)
        raise


def _schedule_exact_expiries(ctx: ErasureContext, scheduler: BackgroundScheduler, now: float) -> None:
    # Look two intervals ahead: the next sweep will look further, so every expiry gets its job in time.
    for audit_id, category, at in retention.next_expiries(ctx.db, now, now + 2 * _interval(ctx)):
        scheduler.add_job(SWEEP_FUNC, "date", run_date=datetime.fromtimestamp(at, timezone.utc),
                          id=f"expire-{audit_id}-{category}", replace_existing=True, **JOB_DEFAULTS)


def _interval(ctx: ErasureContext) -> float:
    return ctx.settings.sweep_interval_minutes * 60


def _lock_for(ctx: ErasureContext) -> "FileLock | AdvisoryLock":
    if ctx.db.dialect == "postgresql":
        return AdvisoryLock(ctx.db)
    return FileLock(ctx.settings.data_dir / LOCK_NAME)


class FileLock:
    """SQLite: an exclusive flock on a file of the data root, which every process of the deployment shares."""

    def __init__(self, path):
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # flock locks belong to the open file description: a second open() in this same process,
            # or any other process, is refused until this fd is closed — or the process dies (SIGKILL too).
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class AdvisoryLock:
    """PostgreSQL: a session-level advisory lock, held on a connection of its own (autocommit: an open
    transaction would keep VACUUM from removing erased rows) for as long as the scheduler runs."""

    def __init__(self, db: Database):
        self.db = db
        self._conn: Connection | None = None

    def acquire(self) -> bool:
        self.release()  # a connection that was cut holds nothing any more
        conn = self.db.autocommit_connection()
        try:
            taken = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}).scalar()
        except BaseException:
            _discard(conn)
            raise
        if not taken:
            conn.close()
            return False
        self._conn = conn
        return True

    def still_held(self) -> bool:
        """False once the lock's connection is gone (the server then released the lock)."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            return True
        except DBAPIError:
            self.release()
            return False

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            _discard(conn)


def _discard(conn: Connection) -> None:
    # Never back into the pool while it may hold the lock: closing the connection ends the lock with it.
    conn.invalidate()
    conn.close()
