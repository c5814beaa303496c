"""Retention: when each category of a session expires, and the sweep that erases whatever is due.

The schedule (promises 3, 4, 7), from the running settings:

    consent            identity (photos, embeddings, adapter) due at consent + hard cap
    headshots made     identity due at min(that, generation + upload retention);
                       headshots due at generation + headshot retention
    nothing left       the session is erased entirely: only the erasure record remains
    audit period over  audit events and erasure records purged

`sweep` is idempotent and driven by an injected `now`, so it runs the same at start-up
(erasures that came due while the process was down, promise 20), on the scheduler's
timer, and in tests that move the clock instead of sleeping.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import delete, or_, select

from errors import SessionGone
from privacy.lifecycle.erasure import BY_SCHEDULE, ErasureContext, erase_categories, erase_now
from privacy.records import audit
from privacy.store.database import BlobRow, Database, DataKey, ErasureRow, OwnerKey, ReturnKeyRow, SessionRow
from privacy.store.vault import HEADSHOTS, IDENTITY
from privacy.teams import team_shares
from settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionPolicy:
    upload_retention_seconds: float   # identity data, counted from generation
    session_hard_cap_seconds: float   # identity data, counted from consent (and unconsented sessions from creation)
    headshot_retention_seconds: float  # headshots, counted from generation
    audit_retention_seconds: float    # audit events and erasure records

    @classmethod
    def from_settings(cls, s: Settings) -> "RetentionPolicy":
        return cls(upload_retention_seconds=s.upload_retention_seconds,
                   session_hard_cap_seconds=s.session_hard_cap_seconds,
                   headshot_retention_seconds=s.headshot_retention_seconds,
                   audit_retention_seconds=s.audit_retention_days * 86400)


@dataclass(frozen=True)
class Expiry:
    """What the UI counts down to. Times are UNIX seconds; `left` lists the categories still stored."""

    identity_expires_at: float | None
    headshots_expires_at: float | None
    left: tuple[str, ...]

    def seconds_left(self, category: str, now: float) -> float | None:
        at = self.identity_expires_at if category == IDENTITY else self.headshots_expires_at
        return None if at is None or category not in self.left else max(0.0, at - now)


@dataclass
class SweepResult:
    identity_erased: int = 0      # sessions whose photos, embeddings and adapter were erased
    headshots_erased: int = 0     # sessions whose headshots were erased
    sessions_erased: int = 0      # sessions erased entirely (an erasure record left)
    unconsented_removed: int = 0  # sessions that never consented and timed out (nothing was stored)
    events_purged: int = 0
    records_purged: int = 0
    failures: int = 0
    team_shares_erased: int = 0   # headshots shared with a team, past the team's retention
    receipts: list[str] = field(default_factory=list)  # receipt ids of the full erasures

    @property
    def erased_anything(self) -> bool:
        return bool(self.identity_erased or self.headshots_erased or self.sessions_erased or self.unconsented_removed
                    or self.team_shares_erased)


def on_consent(db: Database, session_id: str, now: float, policy: RetentionPolicy) -> None:
    """Start the hard-cap clock: identity data may not outlive consent + hard cap."""
    with db.session.begin() as s:
        row = _session(s, session_id)
        row.identity_expires_at = _earliest(row.identity_expires_at, now + policy.session_hard_cap_seconds)


def on_generated(db: Database, session_id: str, now: float, policy: RetentionPolicy) -> None:
    """Headshots exist: identity data goes after the upload retention, headshots after theirs."""
    with db.session.begin() as s:
        row = _session(s, session_id)
        row.generated_at = now
        row.identity_expires_at = _earliest(row.identity_expires_at, now + policy.upload_retention_seconds)
        row.headshots_expires_at = now + policy.headshot_retention_seconds


def expiry_of(db: Database, session_id: str) -> Expiry:
    with db.session() as s:
        row = _session(s, session_id)
        return Expiry(row.identity_expires_at, row.headshots_expires_at, _categories_left(s, session_id))


def sweep(ctx: ErasureContext, now: float) -> SweepResult:
    """Erase every category that is due at `now`, in every session; purge what outlived the audit period."""
    policy = RetentionPolicy.from_settings(ctx.settings)
    result = SweepResult()
    with ctx.db.session() as s:
        # Due: not erased yet, or erased but holding identity data again (a seal that raced the
        # erasure): what counts is whether an identity key or blob exists, not the erased mark.
        still_holds_identity = or_(
            select(DataKey.session_id).where(DataKey.session_id == SessionRow.id,
                                             DataKey.category == IDENTITY).exists(),
            select(BlobRow.id).where(BlobRow.session_id == SessionRow.id, BlobRow.category == IDENTITY).exists())
        due_identity = list(s.scalars(select(SessionRow.id).where(
            SessionRow.identity_expires_at <= now,
            or_(SessionRow.identity_erased_at.is_(None), still_holds_identity))))
        due_headshots = set(s.scalars(select(SessionRow.id).where(SessionRow.headshots_expires_at <= now)))
        unconsented = list(s.scalars(select(SessionRow.id).where(
            SessionRow.consented_at.is_(None), SessionRow.created_at <= now - policy.session_hard_cap_seconds)))
    for session_id in due_identity:
        try:
            erase_categories(ctx, session_id, [IDENTITY], by=BY_SCHEDULE)
            result.identity_erased += 1
        except Exception as exc:  # one broken session must not stop the sweep for everyone else
            result.failures += 1
            log.error("scheduled identity erasure failed: %s", type(exc).__name__)
    # A session is erased entirely once its headshots are due, or once its identity data is gone
    # and it never had headshots (or they were erased): keeping an empty shell helps nobody.
    with ctx.db.session() as s:
        identity_gone = set(s.scalars(select(SessionRow.id).where(SessionRow.identity_erased_at.is_not(None))))
        empty = set(s.scalars(select(SessionRow.id).where(
            SessionRow.identity_erased_at.is_not(None),
            ~select(BlobRow.id).where(BlobRow.session_id == SessionRow.id).exists(),
            ~select(DataKey.session_id).where(DataKey.session_id == SessionRow.id).exists(),
            ~select(OwnerKey.session_id).where(OwnerKey.session_id == SessionRow.id).exists())))
    # Only when an operator sets the headshot period shorter than the upload period can headshots
    # fall due while identity data may still be kept: then the headshots go alone.
    for session_id in sorted(due_headshots - identity_gone):
        try:
            erase_categories(ctx, session_id, [HEADSHOTS], by=BY_SCHEDULE)
            result.headshots_erased += 1
        except Exception as exc:
            result.failures += 1
            log.error("scheduled headshot erasure failed: %s", type(exc).__name__)
    for session_id in sorted((due_headshots & identity_gone) | empty):
        try:
            receipt = erase_now(ctx, session_id, by=BY_SCHEDULE)
        except SessionGone:
            continue  # erased by its owner meanwhile
        except Exception as exc:
            result.failures += 1
            log.error("scheduled erasure failed: %s", type(exc).__name__)
            continue
        if not receipt.repeated:
            result.sessions_erased += 1
            result.headshots_erased += session_id in due_headshots
            result.receipts.append(receipt.receipt_id)
    result.unconsented_removed = _remove_unconsented(ctx.db, unconsented)
    # Headshots shared with a team follow the team's retention (privacy.teams.team_shares), not the session's.
    result.team_shares_erased = team_shares.sweep(ctx.db, team_shares.share_dir(ctx.settings.data_dir), now,
                                                  policy.audit_retention_seconds)
    result.events_purged = audit.purge_old_events(ctx.db, now, policy.audit_retention_seconds)
    with ctx.db.session.begin() as s:
        result.records_purged = s.execute(
            delete(ErasureRow).where(ErasureRow.erased_at < now - policy.audit_retention_seconds)).rowcount
        s.execute(delete(ReturnKeyRow).where(ReturnKeyRow.erased_at < now - policy.audit_retention_seconds))
    if result.erased_anything or result.events_purged or result.records_purged:
        ctx.db.flush_erased_pages()
        log.info("retention sweep: %s", result)
    return result


def next_expiries(db: Database, after: float, until: float) -> list[tuple[str, str, float]]:
    """(audit_id, category, time) of every expiry in (after, until]: the scheduler sets exact-time jobs for them."""
    with db.session() as s:
        rows = s.execute(select(SessionRow.audit_id, SessionRow.identity_expires_at, SessionRow.headshots_expires_at,
                                SessionRow.identity_erased_at).where(or_(
                                    SessionRow.identity_expires_at.between(after, until),
                                    SessionRow.headshots_expires_at.between(after, until))))
        found = []
        for audit_id, identity_at, headshots_at, identity_erased_at in rows:
            if identity_at is not None and after < identity_at <= until and identity_erased_at is None:
                found.append((audit_id, IDENTITY, identity_at))
            if headshots_at is not None and after < headshots_at <= until:
                found.append((audit_id, HEADSHOTS, headshots_at))
        return found


def _remove_unconsented(db: Database, session_ids: list[str]) -> int:
    # Without consent the vault stores nothing (seal checks it), so there is nothing to shred or
    # receipt: the bare session row goes, re-checked in the same statement in case consent arrived.
    if not session_ids:
        return 0
    with db.session.begin() as s:
        return s.execute(delete(SessionRow).where(SessionRow.id.in_(session_ids),
                                                  SessionRow.consented_at.is_(None))).rowcount


def _session(s, session_id: str) -> SessionRow:
    row = s.get(SessionRow, session_id)
    if row is None:
        raise SessionGone()
    return row


def _categories_left(s, session_id: str) -> tuple[str, ...]:
    with_blobs = set(s.scalars(select(BlobRow.category).where(BlobRow.session_id == session_id).distinct()))
    with_keys = set(s.scalars(select(DataKey.category).where(DataKey.session_id == session_id)))
    with_keys |= set(s.scalars(select(OwnerKey.category).where(OwnerKey.session_id == session_id)))
    return tuple(c for c in (IDENTITY, HEADSHOTS) if c in with_blobs | with_keys)


def _earliest(existing: float | None, candidate: float) -> float:
    return candidate if existing is None else min(existing, candidate)
