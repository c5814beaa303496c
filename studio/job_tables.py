"""The job line's tables in the shared database: a job's lasting state and which worker holds it.

They are the studio's, not privacy's: no personal data (style ids, counts, times, an opaque token), tied to
a session by a foreign key that cascades, so erasing the session erases its jobs. They join the one
`Base.metadata`; the schema's revisions (privacy/store/migrations/) create them in every database, and
tests/privacy/test_schema_migrations.py checks that the revisions and these models agree.
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from privacy.store.database import Base


class JobRow(Base):
    """A headshot job's lasting state (studio.jobs): what a returning page, or a restarted server, reads."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16))  # queued | running | done | failed | cancelled | interrupted
    stage: Mapped[str] = mapped_column(String(32), default="waiting")
    # JSON list of style ids (presets, not personal); a "more like this" job: {"styles": [...], "reuse_adapter": true}
    style_ids: Mapped[str] = mapped_column(Text)
    count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(32), nullable=True)


class JobClaimRow(Base):
    """Which worker holds a queued job (studio.workers), and its progress: no personal data, an opaque token.

    A row of its own, not columns of `jobs` (made before the schema had migrations, when only a new table could
    be added to an existing database). The claim itself is the conditional queued→running UPDATE of `jobs.state`.
    """

    __tablename__ = "job_claims"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    worker: Mapped[str] = mapped_column(String(64))  # the worker's name: host and process id, never a person
    token: Mapped[str | None] = mapped_column(String(32), nullable=True)  # this attempt's; None once reaped
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    first_started_at: Mapped[float] = mapped_column(Float)  # outputs sealed after it belong to this job
    heartbeat_at: Mapped[float] = mapped_column(Float)
    fraction: Mapped[float] = mapped_column(Float, default=0.0)
    eta_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)


class WorkerRow(Base):
    """A GPU worker that is connected: its name and when it last said so (every few seconds, busy or idle), so
    that a page can tell a person waiting in line that no worker is there to take the job (studio.workers)."""

    __tablename__ = "workers"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # host and process id, never a person
    seen_at: Mapped[float] = mapped_column(Float, index=True)
