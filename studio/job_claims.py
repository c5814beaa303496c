"""The queue's state in the shared database (`JobClaims`): claims, heartbeats, places in line, the reaper's decisions.

Every decision is one conditional UPDATE of a row, so two processes (workers, or a worker and a web
replica) that decide at once about the same job are ordered by the database: one wins, the other finds the
row changed. What a person can trust of the queue built on it is told in studio/workers.py.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Callable

from sqlalchemy import and_, delete, exists, func, select, update

from errors import UserError
from studio.job_tables import JobClaimRow, JobRow, WorkerRow
from studio.jobs import (
    CANCELLED,
    DONE,
    INTERRUPTED,
    QUEUED,
    RECENT_JOBS,
    RUNNING,
    Job,
    _read_styles_field,
    median_durations,
    wait_estimate,
)

INSTANT_ROW = '%"instant": true%'  # Instant jobs' rows: run by a web process, never by the queue
WORKER_ROWS_KEPT_SECONDS = 86400.0  # a worker gone this long is forgotten (its row names a host and a pid)


def _kind(style_ids_text: str) -> str:
    """A queued row's kind (`Job.kind`): "studio" or "more"."""
    return "more" if _read_styles_field(style_ids_text)[1].get("reuse_adapter") else "studio"



class JobClaims:
    """The queue's state in the shared database: claims, heartbeats, places in line, the reaper's decisions."""

    def __init__(self, db: Any, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    def claim(self, job_id: str, worker: str) -> tuple[str, int, float] | None:
        """Start a queued job for `worker`: (this attempt's token, attempt number, first start), or None when the
        row is not queued any more (started elsewhere, ended, cancelled, erased)."""
        token, now = secrets.token_hex(8), self.clock()
        with self.db.session.begin() as s:
            won = s.execute(update(JobRow).where(JobRow.id == job_id, JobRow.state == QUEUED)
                            .values(state=RUNNING, stage="starting", error_code=None)).rowcount
            if won != 1:
                return None
            claim = s.get(JobClaimRow, job_id)
            if claim is None:
                claim = JobClaimRow(job_id=job_id, worker=worker, token=token, attempts=1, first_started_at=now,
                                    heartbeat_at=now, fraction=0.0)
                s.add(claim)
            else:
                claim.worker, claim.token, claim.heartbeat_at = worker, token, now
                claim.attempts, claim.fraction, claim.eta_seconds = claim.attempts + 1, 0.0, None
            return token, claim.attempts, claim.first_started_at

    def beat(self, job_id: str, token: str, job: Job, *, stage_changed: bool = True) -> bool:
        """Heartbeat and progress of a running attempt; False once the job is no longer this attempt's to run."""
        with self.db.session.begin() as s:
            still = s.execute(update(JobClaimRow).where(
                JobClaimRow.job_id == job_id, JobClaimRow.token == token,
                exists().where(JobRow.id == job_id, JobRow.state == RUNNING))
                .values(heartbeat_at=self.clock(), fraction=job.fraction, eta_seconds=job.eta_seconds)).rowcount
            if still and stage_changed:  # the jobs row only when it says something new (each UPDATE leaves a dead row)
                s.execute(update(JobRow).where(JobRow.id == job_id).values(stage=job.stage[:32]))
        return bool(still)

    def holds(self, s: Any, job_id: str, token: str) -> bool:
        """Inside the caller's transaction `s` (a seal's): whether the attempt of `token` still holds its job.

        An UPDATE, not a SELECT: it takes the claim row's lock until the seal commits, and the reaper's own
        conditional UPDATE of the row waits for it, then sees the token (unchanged) and decides after the seal;
        the other way round, this matches no row. A cancelled job still holds its claim: its run stops at the
        next step, and a seal already under way completes, as in the in-process line.
        """
        return bool(s.execute(update(JobClaimRow).where(JobClaimRow.job_id == job_id, JobClaimRow.token == token)
                              .values(heartbeat_at=self.clock())).rowcount)

    def finish(self, job_id: str, token: str, state: str, error: UserError | None) -> bool:
        """End a running attempt; False when it was not this attempt's any more (cancelled, erased, reaped)."""
        with self.db.session.begin() as s:
            mine = s.execute(update(JobClaimRow).where(JobClaimRow.job_id == job_id, JobClaimRow.token == token)
                             .values(token=None, fraction=1.0 if state == DONE else JobClaimRow.fraction)).rowcount
            if not mine:
                return False
            return bool(s.execute(update(JobRow).where(JobRow.id == job_id, JobRow.state == RUNNING).values(
                state=state, stage="done" if state == DONE else "stopped", finished_at=self.clock(),
                error_code=error.code if error is not None else None)).rowcount)

    def reap(self, stale_seconds: float, attempts: int) -> list[tuple[str, str, str, float]]:
        """Running jobs whose worker stopped beating: (job id, QUEUED or INTERRUPTED, session id, first start):
        QUEUED to run again, INTERRUPTED when no attempt is left."""
        decided = []
        with self.db.session() as s:
            stale = s.execute(select(JobClaimRow.job_id, JobClaimRow.token, JobClaimRow.attempts,
                                     JobRow.session_id, JobClaimRow.first_started_at)
                              .join(JobRow, JobRow.id == JobClaimRow.job_id)
                              .where(JobRow.state == RUNNING, JobClaimRow.token.is_not(None),
                                     JobClaimRow.heartbeat_at < self.clock() - stale_seconds)).all()
        for job_id, token, tries, session_id, first_started_at in stale:
            with self.db.session.begin() as s:
                # The one decision: whoever clears the dead attempt's token decides, and only once; and not if
                # the attempt beat or sealed since it was seen silent (it came back: its work stands).
                if not s.execute(update(JobClaimRow).where(
                        JobClaimRow.job_id == job_id, JobClaimRow.token == token,
                        JobClaimRow.heartbeat_at < self.clock() - stale_seconds).values(token=None)).rowcount:
                    continue
                state = QUEUED if tries < attempts else INTERRUPTED
                # Queued again, the row keeps why, for the pages waiting on it: their job's worker was lost.
                values: dict[str, Any] = {"state": state, "stage": "waiting", "error_code": "worker_lost"}
                if state == INTERRUPTED:
                    values.update(stage="stopped", finished_at=self.clock(), error_code="worker_lost")
                if s.execute(update(JobRow).where(JobRow.id == job_id, JobRow.state == RUNNING)
                             .values(**values)).rowcount:
                    decided.append((job_id, state, session_id, first_started_at))
        return decided

    def progress(self, job_id: str) -> tuple[str, str, float, float | None, str | None] | None:
        """(state, stage, fraction, eta seconds, error code) of a job, for the pages watching it."""
        with self.db.session() as s:
            row = s.execute(select(JobRow.state, JobRow.stage, JobClaimRow.fraction, JobClaimRow.eta_seconds,
                                   JobRow.error_code)
                            .outerjoin(JobClaimRow, JobClaimRow.job_id == JobRow.id)
                            .where(JobRow.id == job_id)).first()
        return None if row is None else (row[0], row[1], row[2] or 0.0, row[3], row[4])

    def place_in_line(self, job_id: str) -> tuple[int, int] | None:
        """(position, people waiting) of a queued studio job, from the rows the broker's messages name, in order."""
        with self.db.session() as s:
            mine = s.execute(select(JobRow.state, JobRow.created_at).where(JobRow.id == job_id)).first()
            if mine is None or mine[0] != QUEUED:
                return None
            waiting = and_(JobRow.state == QUEUED, ~JobRow.style_ids.like(INSTANT_ROW))
            ahead = s.scalar(select(func.count()).select_from(JobRow).where(
                waiting, (JobRow.created_at < mine[1]) | ((JobRow.created_at == mine[1]) & (JobRow.id <= job_id))))
            return int(ahead), int(s.scalar(select(func.count()).select_from(JobRow).where(waiting)))

    def queued_before(self, moment: float) -> set[str]:
        """Ids of the studio jobs queued since before `moment` (each should have a message in the broker)."""
        with self.db.session() as s:
            return set(s.scalars(select(JobRow.id).where(JobRow.state == QUEUED, JobRow.created_at < moment,
                                                         ~JobRow.style_ids.like(INSTANT_ROW))))

    def wait_seconds(self, job_id: str, stale_seconds: float) -> float | None:
        """Estimated seconds until a queued studio job starts on a worker (`studio.jobs.wait_estimate`), or None."""
        now = self.clock()
        with self.db.session() as s:
            mine = s.execute(select(JobRow.state, JobRow.created_at).where(JobRow.id == job_id)).first()
            if mine is None or mine[0] != QUEUED:
                return None
            studio_rows = ~JobRow.style_ids.like(INSTANT_ROW)
            queued_ahead = s.scalars(select(JobRow.style_ids).where(
                JobRow.state == QUEUED, studio_rows,
                (JobRow.created_at < mine[1]) | ((JobRow.created_at == mine[1]) & (JobRow.id < job_id)))).all()
            running = s.execute(select(JobRow.style_ids, JobClaimRow.fraction, JobClaimRow.worker)
                                .join(JobClaimRow, JobClaimRow.job_id == JobRow.id)
                                .where(JobRow.state == RUNNING, studio_rows, JobClaimRow.token.is_not(None),
                                       JobClaimRow.heartbeat_at >= now - stale_seconds)).all()
            recent = s.execute(select(JobRow.style_ids, JobRow.finished_at - JobClaimRow.first_started_at)
                               .join(JobClaimRow, JobClaimRow.job_id == JobRow.id)
                               .where(JobRow.state == DONE, studio_rows, JobRow.finished_at.is_not(None))
                               .order_by(JobRow.finished_at.desc()).limit(RECENT_JOBS * 2)).all()
        ahead = [(_kind(text), 1.0) for text in queued_ahead]
        ahead += [(_kind(text), 1.0 - (fraction or 0.0)) for text, fraction, _ in running]
        medians = median_durations([(_kind(text), float(seconds)) for text, seconds in recent if seconds >= 0])
        return wait_estimate(ahead, len({worker for _, _, worker in running}), medians)

    def created_at(self, job_id: str) -> float:
        with self.db.session() as s:
            return float(s.scalar(select(JobRow.created_at).where(JobRow.id == job_id)) or self.clock())

    def waiting(self) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(JobRow).where(
                JobRow.state == QUEUED, ~JobRow.style_ids.like(INSTANT_ROW))))

    def running(self) -> int:
        """Studio jobs running on any worker."""
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(JobRow).where(
                JobRow.state == RUNNING, ~JobRow.style_ids.like(INSTANT_ROW))))

    def cancel(self, session_id: str, *, except_job: str | None = None) -> int:
        """The person (or erasure) stops the session's queued or running studio job; the worker sees it at its
        next heartbeat, a queued one is never claimed."""
        query = update(JobRow).where(JobRow.session_id == session_id, JobRow.state.in_([QUEUED, RUNNING]),
                                     ~JobRow.style_ids.like(INSTANT_ROW))
        if except_job is not None:
            query = query.where(JobRow.id != except_job)
        with self.db.session.begin() as s:
            return s.execute(query.values(state=CANCELLED, stage="stopped", finished_at=self.clock(),
                                          error_code="cancelled")).rowcount

    def worker_seen(self, name: str) -> None:
        """A worker says it is connected (busy or idle); rows of workers gone a day are dropped on the way."""
        now = self.clock()
        with self.db.session.begin() as s:
            if not s.execute(update(WorkerRow).where(WorkerRow.name == name).values(seen_at=now)).rowcount:
                s.add(WorkerRow(name=name, seen_at=now))
            s.execute(delete(WorkerRow).where(WorkerRow.seen_at < now - WORKER_ROWS_KEPT_SECONDS))

    def worker_gone(self, name: str) -> None:
        """A worker stopping cleanly says so: pages waiting need not wait the stale time to know."""
        with self.db.session.begin() as s:
            s.execute(delete(WorkerRow).where(WorkerRow.name == name))

    def workers_connected(self, stale_seconds: float) -> int:
        """How many workers are connected: said so, or beat for a running job, within `stale_seconds`."""
        since = self.clock() - stale_seconds
        with self.db.session() as s:
            said = s.scalars(select(WorkerRow.name).where(WorkerRow.seen_at >= since)).all()
            busy = s.scalars(select(JobClaimRow.worker).where(JobClaimRow.token.is_not(None),
                                                              JobClaimRow.heartbeat_at >= since)).all()
        return len(set(said) | set(busy))

    def forget_claims(self, job_ids: list[str]) -> None:
        with self.db.session.begin() as s:
            s.execute(delete(JobClaimRow).where(JobClaimRow.job_id.in_(job_ids)))
