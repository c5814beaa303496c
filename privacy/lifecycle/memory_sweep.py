"""An erasure made by another process reaches this process's memory within seconds.

An erasure runs its in-memory steps (`ErasureContext.hooks`: media links, the held owner key, a photo
draft, the in-process job) in the process that erases. With several web replicas, a delete-now made
through one replica, or the retention schedule run by whichever holds the scheduler lock, leaves what
the other replicas hold of the session in their memory: its keys are destroyed, so none of it opens
anything in the vault, but a photo draft (screened photos, sealed under a key in memory) would stay
until its own expiry.

So every process asks the database, every few seconds, which of the sessions its memory holds are
gone (erased) or have lost their identity data (erased on schedule, or past their erasure time), and
runs the same steps for them here: all the erasure hooks for a session gone, the identity ones (the
photo draft) for identity data gone. One indexed query per sweep, for the ids held, nothing else.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol

from sqlalchemy import select

from privacy.lifecycle.erasure import run_hooks
from privacy.store.database import Database, SessionRow

log = logging.getLogger(__name__)

SWEEP_SECONDS = 10.0
_IDS_PER_QUERY = 500  # under every database's limit on bound parameters


class HoldsSessions(Protocol):
    def held_sessions(self) -> set[str]:
        """The ids of the sessions this holder keeps something of in memory now."""


@dataclass
class SweepResult:
    gone: set[str] = field(default_factory=set)            # erased elsewhere: every hook ran here
    identity_gone: set[str] = field(default_factory=set)   # identity data erased: the identity hooks ran


@dataclass
class MemorySweep:
    """`holders` say what they keep; `hooks` are the erasure's in-memory steps; `identity_hooks` those that hold
    identity data (photos) and must forget it when only that category is erased."""

    db: Database
    holders: list[HoldsSessions]
    hooks: list[Callable[[str], None]]
    identity_hooks: list[Callable[[str], None]]
    clock: Callable[[], float] = time.time

    def run_once(self) -> SweepResult:
        held: set[str] = set()
        for holder in self.holders:
            held |= holder.held_sessions()
        result = SweepResult()
        if not held:
            return result
        now, found = self.clock(), {}
        for chunk in _chunks(sorted(held), _IDS_PER_QUERY):
            with self.db.session() as s:
                for session_id, erased_at, expires_at in s.execute(
                        select(SessionRow.id, SessionRow.identity_erased_at, SessionRow.identity_expires_at)
                        .where(SessionRow.id.in_(chunk))):
                    found[session_id] = erased_at is not None or (expires_at is not None and expires_at <= now)
        result.gone = held - set(found)
        result.identity_gone = {session_id for session_id, identity_over in found.items() if identity_over}
        for session_id in result.gone:
            run_hooks(self.hooks, session_id)
        for session_id in result.identity_gone:
            run_hooks(self.identity_hooks, session_id)
        if result.gone or result.identity_gone:
            # Counts only: which sessions is nobody's business in a log.
            log.info("memory sweep: forgot %d erased session(s) and the photos of %d more, erased by another process",
                     len(result.gone), len(result.identity_gone))
        return result


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
