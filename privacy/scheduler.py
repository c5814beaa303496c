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

The job store keeps text references ("privacy.scheduler:run_sweep"), not closures, so
the job function finds its `ErasureContext` in this module's registry, filled by
`start_scheduler(ctx)`. A second scheduler (another worker, a reload) would run every
job twice: an exclusive `flock` on DATA_DIR/scheduler.lock, held for the life of the
process, lets only the first one start.
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

from privacy import retention, team_shares
from privacy.erasure import ErasureContext

log = logging.getLogger(__name__)

SWEEP_JOB_ID = "retention-sweep"
SWEEP_FUNC = "privacy.scheduler:run_sweep"
JOB_TABLE = "retention_jobs"
LOCK_NAME = "scheduler.lock"
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


def start_scheduler(ctx: ErasureContext, *, background: bool = True) -> SchedulerStart:
    """Take the deployment's scheduler lock, sweep once now, then (if `background`) start the timed jobs.

    Returns running=False, and starts nothing, when another process or instance holds the lock.
    """
    with _guard:
        if "ctx" in _registry:
            log.warning("retention scheduler already started in this process; not starting a second one")
            return SchedulerStart(False, "already running in this process")
        lock_fd = _try_lock(ctx.settings.data_dir / LOCK_NAME)
        if lock_fd is None:
            log.warning("retention scheduler runs in another process of this deployment; this one runs none")
            return SchedulerStart(False, "another process holds the scheduler lock")
        _registry.update(ctx=ctx, lock_fd=lock_fd)
    try:
        # A crash (SIGKILL, power cut) can cut a seal or a shred in half: finish those first.
        ctx.vault.recover(unindexed_before=time.time())
        team_shares.recover(ctx.db, team_shares.share_dir(ctx.settings.data_dir), time.time())
        startup = run_sweep()  # erase what came due while we were down, before serving anyone
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
        stop_scheduler()
        raise
    log.info("retention scheduler started")
    return SchedulerStart(True, "started", startup)


def stop_scheduler() -> None:
    """Stop the jobs (waiting for a running sweep), clear the registry and release the lock."""
    with _guard:
        scheduler = _registry.pop("scheduler", None)
        lock_fd = _registry.pop("lock_fd", None)
        _registry.pop("ctx", None)
    if scheduler is not None and scheduler.running:
        scheduler.shutdown(wait=True)
    if lock_fd is not None:
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
        os.close(lock_fd)


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


def _try_lock(path) -> int | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        # flock locks belong to the open file description: a second open() in this same process,
        # or any other process, is refused until this fd is closed — or the process dies (SIGKILL too).
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
