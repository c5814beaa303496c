"""Deciding for the jobs whose worker died: run again, or interrupted for the owner to resume.

Every process of a queue-mode deployment looks: each GPU worker (`studio.workers.JobWorker`) and each web replica
(`studio.workers.QueuedLine`), so that a job whose workers are all gone is still decided within one check, and the
page watching it says so instead of showing the last progress it saw. They decide by the same rule and never both:
whoever clears the dead attempt's token in its claim row decides, once (`JobClaims.reap`, one conditional UPDATE).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from errors import SessionGone
from studio.job_claims import JobClaims
from studio.jobs import INTERRUPTED, QUEUED

log = logging.getLogger(__name__)

OUTPUT_KINDS = ("adapter", "headshot", "report")  # what a job seals


class Reaper:
    """`enqueue(job_id)` sends a message again for a job to be run again; `metrics` counts the decisions (or None)."""

    def __init__(self, studio: Any, claims: JobClaims, *, enqueue: Callable[[str], None], stale_seconds: float,
                 attempts: int) -> None:
        self.studio, self.claims, self.enqueue = studio, claims, enqueue
        self.stale_seconds, self.attempts = stale_seconds, attempts

    @property
    def check_seconds(self) -> float:
        """How often to look: a third of the stale time, so a dead attempt is decided within 4/3 of it."""
        return max(1.0, self.stale_seconds / 3)

    def reap(self, metrics: Any = None) -> list[tuple[str, str]]:
        """Decide for the jobs of dead workers, and send a message again for those to be run again: (job id, state)."""
        decided = self.claims.reap(self.stale_seconds, self.attempts)
        for job_id, state, session_id, first_started_at in decided:
            log.warning("job %s lost its worker: %s", job_id, "queued again" if state == QUEUED else "interrupted")
            if metrics is not None:
                metrics.lost.labels(decision=state).inc()
                if state == INTERRUPTED:
                    metrics.interrupted.inc()
            if state == QUEUED:
                self.enqueue(job_id)
            else:  # no re-run will discard what the lost attempt sealed before it went silent: it goes now
                try:
                    self.discard_outputs_since(session_id, first_started_at)
                except SessionGone:
                    pass
        return [(job_id, state) for job_id, state, _, _ in decided]

    def discard_outputs_since(self, session_id: str, since: float) -> None:
        """What an earlier attempt sealed goes before its job runs again or is marked interrupted (idempotent
        sealing: studio/workers.py)."""
        earlier = [b.id for b in self.studio.vault.blobs(session_id)
                   if b.kind in OUTPUT_KINDS and b.created_at >= since]
        if earlier:
            self.studio.vault.discard(session_id, earlier)
            log.info("discarded %d outputs of an earlier attempt", len(earlier))
