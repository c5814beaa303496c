"""Erasure: delete a session now (or some of its categories on schedule) and sign a receipt for it.

Order, for delete-now and for scheduled erasure alike (promises 4–7):
    1. keys and blob index rows deleted (committed) — from here every copy of the ciphertext is noise;
       then the blob files removed
    2. hooks run: the app's Gradio cache files and in-memory state of the session (adapter, references),
       and the session's job cancelled
    3. under the session's lock, in one transaction: whatever a job sealed since step 1 (its cancellation
       arrives within a step) is shredded too, and the session's rows are deleted, except a minimal
       `ErasureRow` holding the signed receipt (delete-now) or with its erasure time set (schedule);
       from this commit on no seal of it can land (privacy/store/vault.py)
    4. the database made to forget the deleted rows: SQLite's write-ahead log checkpointed,
       PostgreSQL's tables vacuumed (privacy/store/database.py, `flush_erased_pages`)

Each session has a lock inside the process, and the database settles races between
processes: the erasure record is keyed by the audit id, so only one erasure inserts it and
every other call returns that same record. A second delete-now therefore gets the same
receipt (marked `repeated`), never a traceback.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from errors import SessionGone
from privacy.records import audit
from privacy.records.notice import policy_version
from privacy.records.receipts import Receipt, ReceiptSigner, iso_utc
from privacy.store.database import ConsentRow, Database, ErasureRow, ReturnKeyRow, SessionRow
from privacy.store.vault import ALL_CATEGORIES, HEADSHOTS, IDENTITY, ShredResult, Vault
from settings import Settings

log = logging.getLogger(__name__)

Hook = Callable[[str], None]
BY_USER, BY_SCHEDULE = "user", "schedule"


@dataclass
class ErasureContext:
    """Everything erasure needs, passed explicitly. `hooks` are called with the session id after its blobs are gone."""

    db: Database
    vault: Vault
    signer: ReceiptSigner
    settings: Settings
    clock: Callable[[], float] = time.time
    hooks: list[Hook] = field(default_factory=list)
    _locks: dict[str, threading.Lock] = field(default_factory=lambda: defaultdict(threading.Lock), repr=False)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def lock_for(self, session_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks[session_id]

    def forget_lock(self, session_id: str) -> None:
        with self._locks_guard:
            self._locks.pop(session_id, None)

    def forked(self) -> None:
        """Fresh session locks in a forked process: one held by another thread at the fork stays held there."""
        self._locks, self._locks_guard = defaultdict(threading.Lock), threading.Lock()


def session_digest(session_id: str) -> str:
    return hashlib.sha256(b"erased-session|" + session_id.encode()).hexdigest()


def erase_now(ctx: ErasureContext, session_id: str, by: str = BY_USER) -> Receipt:
    """Erase everything of a session at once and return its signed receipt. Idempotent.

    Raises SessionGone only for an id that never existed (or whose erasure record has
    itself expired after the audit period).
    """
    if by not in (BY_USER, BY_SCHEDULE):
        raise ValueError(f"by must be 'user' or 'schedule', not {by!r}")
    try:
        with ctx.lock_for(session_id):
            with ctx.db.session() as s:
                row = s.get(SessionRow, session_id)
                if row is None:
                    return _existing_receipt(ctx.db, session_id)
                audit_id, identity_erased_at = row.audit_id, row.identity_erased_at
                consent = s.get(ConsentRow, session_id)
                agreed_version = consent.policy_version if consent else policy_version(ctx.settings)
            shredded = ctx.vault.shred(session_id, ALL_CATEGORIES, flush=False)
            run_hooks(ctx.hooks, session_id)
            now = ctx.clock()
            identity_sealed_before = _identity_ever_stored(ctx.db, audit_id, shredded, identity_erased_at)
            late = ShredResult()
            try:
                with ctx.db.session.begin() as s:
                    # A seal that landed since the shred (a job's step that ended before its cancellation arrived)
                    # is erased in the transaction that deletes the session; once it commits no seal can land.
                    late = ctx.vault.shred_within(s, session_id, ALL_CATEGORIES)
                    shredded = shredded.plus(late)
                    receipt = ctx.signer.sign({
                        "receipt_id": secrets.token_hex(16),
                        "audit_id": audit_id,
                        "erased_at": iso_utc(now),
                        "by": by,
                        "policy_version": agreed_version,
                        "categories": _categories(shredded),
                        "keys_destroyed": shredded.keys_destroyed,
                        # Identity data erased earlier by the schedule is not in `categories` again; say when.
                        "earlier": {IDENTITY: iso_utc(identity_erased_at)} if identity_erased_at is not None else {},
                        # False only for a session that never sealed a photo, a face measurement or a trained
                        # model (Instant mode): then there was none to erase, not merely none left.
                        "identity_data_stored": identity_sealed_before or any(
                            blob.category == IDENTITY for blob in late.blobs),
                    })
                    s.add(ErasureRow(audit_id=audit_id, erased_at=now, by=by, receipt_digest=receipt.digest,
                                     session_digest=session_digest(session_id), receipt=receipt.to_json().decode()))
                    # ON DELETE CASCADE (foreign_keys=ON) takes consent, key, blob and job rows with it.
                    s.execute(delete(SessionRow).where(SessionRow.id == session_id))
                    # The return key's locator stays, pointing at nothing but the time of erasure.
                    s.execute(update(ReturnKeyRow).where(ReturnKeyRow.session_id == session_id)
                              .values(session_id=None, erased_at=now))
            except IntegrityError:
                # Another process erased this session between our read and our write: its record stands.
                return _existing_receipt(ctx.db, session_id)
            ctx.vault.remove_files(late.blobs)
            audit.record_event(ctx.db, audit_id, audit.ERASED, now, by=by,
                               categories=",".join(c for c in ALL_CATEGORIES if c in shredded.categories))
            ctx.db.flush_erased_pages()
    finally:
        # Whatever the outcome the session is gone (or never was): its lock must not outlive it.
        ctx.forget_lock(session_id)
    log.info("session %s erased by %s: %d keys, %d blobs", audit_id, by, shredded.keys_destroyed, len(shredded.blobs))
    return receipt


def erase_categories(ctx: ErasureContext, session_id: str, categories: list[str], by: str = BY_SCHEDULE) -> ShredResult:
    """Erase some categories of a session (e.g. identity when its retention ends); the session lives on."""
    with ctx.lock_for(session_id):
        with ctx.db.session() as s:
            row = s.get(SessionRow, session_id)
            if row is None:
                return ShredResult(categories=list(categories))  # erased entirely meanwhile: nothing to do
            audit_id = row.audit_id
        shredded = ctx.vault.shred(session_id, categories, flush=False)
        run_hooks(ctx.hooks, session_id)
        now = ctx.clock()
        with ctx.db.session.begin() as s:
            # As for delete-now: a seal of these categories that landed since the shred goes too, and none can
            # land once the erasure time is committed (Vault.seal refuses identity data after it).
            late = ctx.vault.shred_within(s, session_id, categories)
            row = s.get(SessionRow, session_id)
            if row is None:
                # Erased entirely meanwhile (another process's delete-now): its record tells the story.
                return shredded
            if IDENTITY in categories and row.identity_erased_at is None:
                row.identity_erased_at = now
            if HEADSHOTS in categories:
                row.headshots_expires_at = None  # nothing left to count down to, nor to erase again
        ctx.vault.remove_files(late.blobs)
        shredded = shredded.plus(late)
        audit.record_event(ctx.db, audit_id, audit.ERASED, now, by=by,
                           categories=",".join(c for c in ALL_CATEGORIES if c in categories))
        ctx.db.flush_erased_pages()
    log.info("session %s: %s erased by %s", audit_id, ",".join(categories), by)
    return shredded


def _identity_ever_stored(db: Database, audit_id: str, shredded: ShredResult, identity_erased_at: float | None) -> bool:
    """Whether this session ever stored identity data: sealed now, erased earlier, or on its audit record.

    The audit record catches a set sealed and then emptied by the person (a photo removed re-seals the
    rest; removing all leaves nothing to shred). Training always follows a sealed set, so a session
    audited before `IDENTITY_SEALED` existed still counts through its training events.
    """
    if identity_erased_at is not None or any(blob.category == IDENTITY for blob in shredded.blobs):
        return True
    return any(e["event"] in (audit.IDENTITY_SEALED, audit.TRAINING_STARTED) for e in audit.events_for(db, audit_id))


def _existing_receipt(db: Database, session_id: str) -> Receipt:
    with db.session() as s:
        row = s.scalars(select(ErasureRow).where(ErasureRow.session_digest == session_digest(session_id))).first()
        if row is None or row.receipt is None:
            raise SessionGone()
        return Receipt.from_json(row.receipt.encode(), repeated=True)


def run_hooks(hooks: Iterable[Hook], session_id: str) -> None:
    """An erasure's in-memory steps for one session (also run by privacy.lifecycle.memory_sweep for another
    process's)."""
    for hook in hooks:
        try:
            hook(session_id)
        except Exception as exc:  # one failing cache cleanup must not stop the erasure; the residue audit will see it
            log.error("erasure hook %s failed: %s", getattr(hook, "__qualname__", "hook"), type(exc).__name__)


def _categories(shredded: ShredResult) -> dict[str, dict]:
    by_category: dict[str, dict] = {c: {} for c in shredded.categories}
    for blob in shredded.blobs:
        entry = by_category[blob.category].setdefault(blob.kind, {"count": 0, "bytes": 0, "sha256": []})
        entry["count"] += 1
        entry["bytes"] += blob.size
        entry["sha256"].append(blob.digest)
    for kinds in by_category.values():
        for entry in kinds.values():
            entry["sha256"].sort()
    return by_category
