"""The encrypted session vault: seal bytes under a per-session key, open them, crypto-shred them.

Each session has its own AES-256-GCM data keys, one per category of data:

    identity   — the screened photos, their face embeddings, the trained adapter
    headshots  — the generated headshots, their report and the person's favourites among them

so that each category can be erased on its own schedule by destroying its key
(promises 4, 6, 7). A data key is stored wrapped either by the master key (`data_keys`)
or, once handed to its owner (`hand_to_owner`), by the owner's key derived from the return
key (`owner_keys`, privacy.store.return_keys), never both: the server alone can then no longer
open that category. Blob files hold ciphertext only:
`MAGIC | nonce | AES-GCM(data key, plaintext, aad=blob identity)`.

Erasure (`shred`): the wrapped keys and the blobs' index rows are deleted in one transaction,
then the blob files are removed. Once it commits nothing of the session can be decrypted,
even from a copy or backup of the blob files; a crash before the files go leaves unindexed
noise that `recover` removes at the next start.

Seals and erasures of a session are ordered by the session's lock (`Database.lock_session`),
taken first in each: an erasure finds every seal committed before it, and a seal that comes
after finds the session gone or its category erased. So a job still running when its session is
erased (its cancellation arrives within a step) cannot leave a blob behind the erasure.

Nothing is ever sealed for a session without a consent record (promise 13/18): `seal`
checks it on every call.

A caller may fence its seals (`sealing_only_while`): a check run inside each seal's own
transaction, before any byte is written, that refuses the seal when it fails. A queue worker
fences a job's seals with its claim on the job (studio.workers), so an attempt that lost its
claim (silent past the stale time and re-run elsewhere) seals nothing, atomically with the
decision that took the claim away.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select

from errors import Cancelled, ConsentRequired, OwnerKeyRequired, SessionGone, VaultIntegrityError
from privacy.store.database import BlobRow, ConsentRow, Database, DataKey, OwnerKey, SessionRow
from privacy.store.private_dirs import ensure_private_dir

MAGIC = b"HSV1"
NONCE_BYTES = 12
IDENTITY, HEADSHOTS = "identity", "headshots"
CATEGORY_OF_KIND = {
    "photo": IDENTITY,
    "embedding": IDENTITY,
    "adapter": IDENTITY,
    "headshot": HEADSHOTS,
    "report": HEADSHOTS,
    "favourites": HEADSHOTS,  # which headshots the person starred (studio.favourites): erased with them
}
ALL_CATEGORIES = (IDENTITY, HEADSHOTS)
CATEGORY_NAMES = {IDENTITY: "photos, face measurements, trained model",
                  HEADSHOTS: "headshots, their report and your favourites"}
MASTER, OWNER, DESTROYED = "the studio's master key", "your private key (the studio has no copy)", "none: destroyed"
# Which key wraps each category's data key at each stage of a session: what `hand_to_owner` and
# `shred` do, stated once. The privacy policy prints this table (privacy.records.notice), and the at-rest
# test checks the database of a real run against it.
KEY_HOLDERS: tuple[tuple[str, dict[str, str]], ...] = (
    ("while your headshots are being made", {IDENTITY: MASTER, HEADSHOTS: MASTER}),
    ("once they are made", {IDENTITY: MASTER, HEADSHOTS: OWNER}),
    ("after the identity data's erasure time", {IDENTITY: DESTROYED, HEADSHOTS: OWNER}),
    ("after erasure of everything (schedule or delete-now)", {IDENTITY: DESTROYED, HEADSHOTS: DESTROYED}),
)

Clock = Callable[[], float]
# The fence of the seals made in this context (thread): see the module docstring and `sealing_only_while`.
_SEAL_FENCE: ContextVar[Callable[[Any], bool] | None] = ContextVar("seal_fence", default=None)


@contextmanager
def sealing_only_while(check: Callable[[Any], bool]) -> Iterator[None]:
    """Within the block, every seal first calls `check(db_session)` in its own transaction, and is refused
    (Cancelled: nothing written) when it returns False. `check` should write (a conditional UPDATE) so that
    it takes the row lock that orders it against whoever may take the right to seal away."""
    token = _SEAL_FENCE.set(check)
    try:
        yield
    finally:
        _SEAL_FENCE.reset(token)


@dataclass(frozen=True)
class BlobRef:
    """What the rest of the studio knows of a sealed blob: an id and its kind, never a path."""

    id: str
    kind: str
    category: str
    size: int
    digest: str
    created_at: float


@dataclass
class ShredResult:
    """What one shred erased: the keys and blobs (privacy/lifecycle/erasure.py turns them into a receipt)."""

    categories: list[str] = field(default_factory=list)
    keys_destroyed: int = 0
    blobs: list[BlobRef] = field(default_factory=list)

    def plus(self, later: "ShredResult") -> "ShredResult":
        """This shred and a later one of the same session, as one (e.g. a seal that landed between them)."""
        return ShredResult(categories=self.categories, keys_destroyed=self.keys_destroyed + later.keys_destroyed,
                           blobs=self.blobs + later.blobs)


class Vault:
    def __init__(self, db: Database, blob_dir: Path, master_key: bytes, clock: Clock = time.time):
        if len(master_key) != 32:
            raise ValueError("the master key must be 32 bytes")
        self.db = db
        self.blob_dir = Path(blob_dir)
        ensure_private_dir(self.blob_dir)  # the data root above it too, if this creates it
        self._master = AESGCM(master_key)
        self.clock = clock

    # --- sessions -------------------------------------------------------------------------
    def new_session(self) -> str:
        """Create an empty session and return its id (a bearer secret: never log it)."""
        session_id = secrets.token_urlsafe(24)
        with self.db.session.begin() as s:
            s.add(SessionRow(id=session_id, audit_id=secrets.token_hex(8), created_at=self.clock()))
        return session_id

    def audit_id(self, session_id: str) -> str:
        with self.db.session() as s:
            row = s.get(SessionRow, session_id)
            if row is None:
                raise SessionGone()
            return row.audit_id

    # --- sealing --------------------------------------------------------------------------
    def seal(self, session_id: str, kind: str, plaintext: bytes, *, owner_key: bytes | None = None) -> BlobRef:
        """Encrypt `plaintext` under the session's key for `kind`'s category and store it.

        `owner_key` is needed once that category's key has been handed to its owner.
        """
        category = CATEGORY_OF_KIND[kind]
        blob_id = secrets.token_hex(16)
        try:
            return self._seal(session_id, blob_id, kind, category, plaintext, owner_key)
        except BaseException:
            (self.blob_dir / blob_id).unlink(missing_ok=True)  # never leave a blob without its index row
            raise

    def _seal(self, session_id: str, blob_id: str, kind: str, category: str, plaintext: bytes,
              owner_key: bytes | None) -> BlobRef:
        fence = _SEAL_FENCE.get()
        with self.db.session.begin() as s:
            # The session's lock first (see the module docstring), then a fence's own row: an erasure takes them
            # in the same order (it locks the session, then deletes the fence's row by cascade), so the two wait
            # for each other instead of deadlocking, as they would if the fence's row were locked first.
            session = self.db.lock_session(s, session_id, for_erasure=False)
            if session is None:
                raise SessionGone()
            if s.get(ConsentRow, session_id) is None:
                raise ConsentRequired()
            if category == IDENTITY and _identity_expired(session, self.clock()):
                # Photos, embeddings and adapters never outlive their erasure time (promises 3, 4):
                # not even one sealed a moment after it, e.g. by a training run that ran past it.
                raise SessionGone("Your photos and trained model for this session have been erased on schedule. "
                                  "Start a new session to upload photos again.")
            if fence is not None and not fence(s):  # e.g. a job attempt that is no longer its job's
                raise Cancelled("This run was taken over by another; nothing of it was kept.")
            data_key = self._data_key(s, session_id, category, create=True, owner_key=owner_key)
            nonce = secrets.token_bytes(NONCE_BYTES)
            ciphertext = MAGIC + nonce + AESGCM(data_key).encrypt(nonce, plaintext, _aad(session_id, blob_id, kind))
            _write_atomically(self.blob_dir / blob_id, ciphertext)
            ref = BlobRef(blob_id, kind, category, len(ciphertext), hashlib.sha256(ciphertext).hexdigest(),
                          self.clock())
            s.add(BlobRow(id=ref.id, session_id=session_id, category=category, kind=kind, size=ref.size,
                          digest=ref.digest, created_at=ref.created_at))
        return ref

    def open(self, session_id: str, blob_id: str, *, owner_key: bytes | None = None) -> bytes:
        """Decrypt one blob of this session. Another session's blob id is refused like a missing one."""
        with self.db.session() as s:
            row = s.get(BlobRow, blob_id)
            if row is None or row.session_id != session_id:
                raise SessionGone("That file is no longer available; it may have been erased.")
            data_key = self._data_key(s, session_id, row.category, create=False, owner_key=owner_key)
            kind = row.kind
        try:
            ciphertext = (self.blob_dir / blob_id).read_bytes()
        except FileNotFoundError:
            raise SessionGone("That file is no longer available; it may have been erased.") from None
        return _decrypt(data_key, ciphertext, _aad(session_id, blob_id, kind))

    def blobs(self, session_id: str, kind: str | None = None) -> list[BlobRef]:
        with self.db.session() as s:
            query = select(BlobRow).where(BlobRow.session_id == session_id).order_by(BlobRow.created_at, BlobRow.id)
            if kind is not None:
                query = query.where(BlobRow.kind == kind)
            return [_ref(row) for row in s.scalars(query)]

    # --- erasure --------------------------------------------------------------------------
    def shred(self, session_id: str, categories: Iterable[str] = ALL_CATEGORIES, *, flush: bool = True) -> ShredResult:
        """Crypto-shred the given categories of a session: keys and index rows, then files. Idempotent.

        `flush=False` leaves the database's pages to the caller (privacy/lifecycle/erasure.py flushes them once,
        after deleting the session's other rows too).
        """
        with self.db.session.begin() as s:
            result = self.shred_within(s, session_id, categories)
        self.remove_files(result.blobs)  # after the commit: the keys are gone, the files are unreadable noise
        if flush:
            self.db.flush_erased_pages()  # no page of the database keeps the destroyed keys
        return result

    def shred_within(self, s, session_id: str, categories: Iterable[str]) -> ShredResult:
        """`shred`'s database part inside the caller's transaction, under the session's lock (taken here):
        the caller goes on to change the session in the same transaction, and removes the files
        (`remove_files`) once it commits."""
        categories = list(categories)
        result = ShredResult(categories=categories)
        self.db.lock_session(s, session_id, for_erasure=True)
        result.keys_destroyed = s.execute(
            delete(DataKey).where(DataKey.session_id == session_id, DataKey.category.in_(categories))).rowcount
        result.keys_destroyed += s.execute(
            delete(OwnerKey).where(OwnerKey.session_id == session_id, OwnerKey.category.in_(categories))).rowcount
        rows = list(s.scalars(select(BlobRow).where(BlobRow.session_id == session_id,
                                                    BlobRow.category.in_(categories))))
        result.blobs = [_ref(row) for row in rows]
        if rows:
            s.execute(delete(BlobRow).where(BlobRow.id.in_([r.id for r in rows])))
        return result

    def remove_files(self, blobs: Iterable[BlobRef]) -> None:
        for blob in blobs:
            _remove(self.blob_dir / blob.id)  # already gone: a concurrent erasure got there first

    def recover(self, *, unindexed_before: float | None = None) -> int:
        """Finish what a crash cut short; returns the number of files removed.

        Always: blobs whose key is destroyed (a shred killed between its two steps) go, file and row.
        With `unindexed_before` (wall-clock seconds; the scheduler passes its start time, before
        serving): vault files without an index row and half-written `.tmp` files last modified
        before then go too (a seal killed between writing its file and committing its row). Later
        files may belong to a seal in flight, whose row is about to be committed.
        """
        removed = 0
        with self.db.session.begin() as s:
            keyless = list(s.scalars(select(BlobRow.id).where(
                ~select(DataKey.session_id).where(
                    DataKey.session_id == BlobRow.session_id, DataKey.category == BlobRow.category).exists(),
                ~select(OwnerKey.session_id).where(
                    OwnerKey.session_id == BlobRow.session_id, OwnerKey.category == BlobRow.category).exists())))
            for blob_id in keyless:
                removed += _remove(self.blob_dir / blob_id)
            if keyless:
                s.execute(delete(BlobRow).where(BlobRow.id.in_(keyless)))
            indexed = set(s.scalars(select(BlobRow.id)))
        if keyless:
            self.db.flush_erased_pages()
        if unindexed_before is not None:
            for path in self.blob_dir.iterdir():
                if path.is_file() and path.name not in indexed and path.stat().st_mtime < unindexed_before:
                    removed += _remove(path)
        return removed

    def has_key(self, session_id: str, category: str) -> bool:
        with self.db.session() as s:
            return (s.get(DataKey, (session_id, category)) is not None
                    or s.get(OwnerKey, (session_id, category)) is not None)

    def held_by_owner(self, session_id: str, category: str) -> bool:
        with self.db.session() as s:
            return s.get(OwnerKey, (session_id, category)) is not None

    def hand_to_owner(self, session_id: str, category: str, owner_key: bytes) -> bool:
        """Re-wrap a category's data key with the owner's key and delete the master-wrapped copy, in one step.

        Afterwards nothing the server holds (database, blob files, master key) opens that category;
        only the return key does. False if there was no master-wrapped key to hand over.
        """
        with self.db.session.begin() as s:
            # Two of the owner's pages (a watcher's refresh, a return) may hand over at once: the session's
            # exclusive lock orders them, so the second finds the master-wrapped key gone instead of adding a
            # second owner key (the shared form would let both read it on PostgreSQL).
            self.db.lock_session(s, session_id, for_erasure=True)
            row = s.get(DataKey, (session_id, category))
            if row is None:
                return False
            data_key = self._unwrap_master(row, session_id, category)
            if s.get(OwnerKey, (session_id, category)) is not None:
                # Both exist only if a key was created while the owner's was held: never overwrite theirs.
                raise VaultIntegrityError("A category has an owner-held key and a master-held key at once.")
            s.add(OwnerKey(session_id=session_id, category=category,
                           wrapped=_wrap(AESGCM(owner_key), data_key, _owner_aad(session_id, category)),
                           created_at=self.clock()))
            s.delete(row)
        # The master-wrapped copy would open the category again: no page of the database may keep it.
        self.db.flush_erased_pages()
        return True

    def lend_to_studio(self, session_id: str, category: str, owner_key: bytes) -> bool:
        """The reverse of `hand_to_owner`, with the owner present: re-wrap an owner-held key with the master key.

        Queue mode (studio.workers) needs it: a GPU worker seals new headshots beside the owner's earlier
        ones, and the owner's key never travels to a worker. The headshots are then master-held "while
        your headshots are being made" (KEY_HOLDERS), until a page of the owner hands them back.
        False if the category was not owner-held. Raises OwnerKeyRequired for a wrong owner key.
        """
        with self.db.session.begin() as s:
            self.db.lock_session(s, session_id, for_erasure=True)  # ordered with a hand-over, as there
            held = s.get(OwnerKey, (session_id, category))
            if held is None:
                return False
            data_key = _unwrap_owner(held, owner_key, session_id, category)
            nonce = secrets.token_bytes(NONCE_BYTES)
            s.add(DataKey(session_id=session_id, category=category, created_at=self.clock(),
                          wrapped=nonce + self._master.encrypt(nonce, data_key,
                                                               f"key|{session_id}|{category}".encode())))
            s.delete(held)
        return True

    def discard(self, session_id: str, blob_ids: Iterable[str]) -> int:
        """Remove single blobs of a session (files, then rows); their category's key stays for the others.

        For outputs a crashed job attempt sealed before its re-run seals them again (studio.workers).
        """
        ids = list(blob_ids)
        with self.db.session.begin() as s:
            rows = list(s.scalars(select(BlobRow).where(BlobRow.session_id == session_id, BlobRow.id.in_(ids))))
            for row in rows:
                _remove(self.blob_dir / row.id)
            if rows:
                s.execute(delete(BlobRow).where(BlobRow.id.in_([r.id for r in rows])))
        return len(rows)

    # --- keys -----------------------------------------------------------------------------
    def _data_key(self, s, session_id: str, category: str, *, create: bool, owner_key: bytes | None = None) -> bytes:
        row = s.get(DataKey, (session_id, category))
        aad = f"key|{session_id}|{category}".encode()
        if row is None:
            held = s.get(OwnerKey, (session_id, category))
            if held is not None:
                return _unwrap_owner(held, owner_key, session_id, category)
            if not create:
                raise SessionGone("That file is no longer available; it has been erased.")
            key = AESGCM.generate_key(bit_length=256)
            nonce = secrets.token_bytes(NONCE_BYTES)
            s.add(DataKey(session_id=session_id, category=category,
                          wrapped=nonce + self._master.encrypt(nonce, key, aad), created_at=self.clock()))
            s.flush()
            return key
        return self._unwrap_master(row, session_id, category)

    def _unwrap_master(self, row: DataKey, session_id: str, category: str) -> bytes:
        aad = f"key|{session_id}|{category}".encode()
        try:
            return self._master.decrypt(row.wrapped[:NONCE_BYTES], row.wrapped[NONCE_BYTES:], aad)
        except InvalidTag:
            raise VaultIntegrityError("A session key failed to unwrap: "
                                      "wrong master key or tampered database.") from None


def _owner_aad(session_id: str, category: str) -> bytes:
    return f"owner-key|{session_id}|{category}".encode()


def _wrap(aead: AESGCM, key: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + aead.encrypt(nonce, key, aad)


def _unwrap_owner(row: OwnerKey, owner_key: bytes | None, session_id: str, category: str) -> bytes:
    if owner_key is None:
        raise OwnerKeyRequired()
    try:
        return AESGCM(owner_key).decrypt(row.wrapped[:NONCE_BYTES], row.wrapped[NONCE_BYTES:],
                                         _owner_aad(session_id, category))
    except InvalidTag:
        raise OwnerKeyRequired() from None  # a wrong return key is treated like none: the owner must bring theirs


def _identity_expired(session: SessionRow, now: float) -> bool:
    return session.identity_erased_at is not None or (
        session.identity_expires_at is not None and session.identity_expires_at <= now)


def _aad(session_id: str, blob_id: str, kind: str) -> bytes:
    # Binding the ciphertext to its owner and kind: a blob cannot be swapped into another session.
    return f"blob|{session_id}|{blob_id}|{kind}".encode()


def _decrypt(data_key: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    if not ciphertext.startswith(MAGIC):
        raise VaultIntegrityError("A stored blob is not in the vault format.")
    nonce = ciphertext[len(MAGIC):len(MAGIC) + NONCE_BYTES]
    try:
        return AESGCM(data_key).decrypt(nonce, ciphertext[len(MAGIC) + NONCE_BYTES:], aad)
    except InvalidTag:
        raise VaultIntegrityError("A stored blob failed authentication: it was modified or corrupted.") from None


def _ref(row: BlobRow) -> BlobRef:
    return BlobRef(row.id, row.kind, row.category, row.size, row.digest, row.created_at)


def _remove(path: Path) -> int:
    try:
        path.unlink()
        return 1
    except FileNotFoundError:
        return 0


def _write_atomically(path: Path, data: bytes) -> None:
    """Write via a temp file + rename, so a crash never leaves a half-written blob under its real name."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
