"""The metadata database: sessions, wrapped keys, blob index, consent, audit, erasure records.

No image data, embedding or plaintext key is ever stored here: blobs live encrypted on
disk (privacy/store/vault.py) and their data keys are stored only wrapped by the master key.
Two databases are supported, each made to forget erased rows byte for byte:

    SQLite (default)   `secure_delete` zeroes freed content; the write-ahead log is checkpointed
                       and truncated after each erasure (`flush_erased_pages`)
    PostgreSQL         (`postgresql+psycopg://…`) a DELETE only marks a row version dead, and a
                       plain VACUUM leaves its bytes in the page's free space; so after each
                       erasure the tables that held it are rewritten (`VACUUM FULL`, outside a
                       transaction), which also rebuilds their indexes

Times are UNIX seconds (float) from an injected clock, so tests can move time without sleeping.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy import Boolean, Float, ForeignKey, Integer, LargeBinary, String, Text, create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from privacy.store.private_dirs import make_private_dirs
from privacy.store.schema_migrations import upgrade_to_head

log = logging.getLogger(__name__)

PRIVATE_FILE_MODE = 0o600
# Files SQLite keeps beside the database; each holds pages of it (erased rows included, until a checkpoint).
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
# PostgreSQL: tables whose rows hold no session id or key (pseudonymous events, erasure records),
# large after months of use, and only ever purged whole rows: a plain VACUUM after erasure removes
# their dead rows without rewriting them. Every other table is rewritten (see the module docstring).
APPEND_MOSTLY_TABLES = ("audit_events", "erasures")
VACUUM_LOCK_TIMEOUT = "10s"


class Base(DeclarativeBase):
    pass


class SessionRow(Base):
    """One person's visit. `id` is a bearer secret (never logged); `audit_id` is its pseudonym."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    audit_id: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[float] = mapped_column(Float)
    consented_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    generated_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # When uploads, embeddings and adapter must be gone, and when the headshots must be gone.
    identity_expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    headshots_expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    identity_erased_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class DataKey(Base):
    """A session's data key for one category, wrapped (AES-256-GCM) by the master key."""

    __tablename__ = "data_keys"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    category: Mapped[str] = mapped_column(String(16), primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float)


class OwnerKey(Base):
    """A session's data key for one category wrapped by the owner's key (from the return key), not the master key.

    Once a category's key is here, nobody without the return key can open its blobs: the row in
    `data_keys` is deleted in the same transaction (privacy.store.vault.Vault.hand_to_owner).
    """

    __tablename__ = "owner_keys"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    category: Mapped[str] = mapped_column(String(16), primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float)


class ReturnKeyRow(Base):
    """Finds a session from its owner's return key (privacy.store.return_keys): an HKDF locator, never the key.

    Kept after the session is erased (session_id emptied, erased_at set), for as long as the erasure
    record, so that a returning owner learns that, and when, the data was erased, and nothing else.
    """

    __tablename__ = "return_keys"
    locator: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    created_at: Mapped[float] = mapped_column(Float)
    erased_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class BlobRow(Base):
    """Index of one encrypted file under the blob directory."""

    __tablename__ = "blobs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    category: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(Integer)  # ciphertext bytes on disk
    digest: Mapped[str] = mapped_column(String(64))  # sha256 of the ciphertext, for receipts
    created_at: Mapped[float] = mapped_column(Float)


class ConsentRow(Base):
    """What the person attested, when, and under which version of the notice."""

    __tablename__ = "consents"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    policy_version: Mapped[str] = mapped_column(String(64))
    given_at: Mapped[float] = mapped_column(Float)
    own_photos: Mapped[bool] = mapped_column(Boolean)
    adult: Mapped[bool] = mapped_column(Boolean)
    purpose: Mapped[bool] = mapped_column(Boolean)


class AuditEventRow(Base):
    """Append-only event keyed by the session's pseudonym; `detail` holds counts, never content."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    audit_id: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    event: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="{}")


class ErasureRow(Base):
    """The minimal record left after a session is erased: that it happened, when, by whom."""

    __tablename__ = "erasures"
    audit_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    erased_at: Mapped[float] = mapped_column(Float)
    by: Mapped[str] = mapped_column(String(16))  # "user" | "schedule"
    receipt_digest: Mapped[str] = mapped_column(String(64))
    # sha256 of the (random, 192-bit) session id: lets a repeated delete-now find this record and
    # return the same receipt, without keeping the session id itself (privacy/lifecycle/erasure.py).
    session_digest: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    receipt: Mapped[str | None] = mapped_column(Text, nullable=True)  # the signed receipt (no personal data)


# --- teams (privacy/teams/teams.py, privacy/teams/team_shares.py) -------------------------------------------
# A team's rows all cascade from `teams`, so deleting the team row deletes everything of it in one
# statement; a member's rows cascade from their session too, so erasing the session erases them.


class TeamRow(Base):
    """A team. The admin key is never stored: only its locator, and the private key wrapped by it
    (privacy.teams.team_seal)."""

    __tablename__ = "teams"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    audit_id: Mapped[str] = mapped_column(String(32), unique=True)  # the team's pseudonym in audit and receipt
    name: Mapped[str] = mapped_column(String(120))  # a company's name, given by the operator
    admin_locator: Mapped[str] = mapped_column(String(64), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # raw X25519
    wrapped_private_key: Mapped[bytes] = mapped_column(LargeBinary)
    look_version: Mapped[int] = mapped_column(Integer)  # the current look; older ones stay for runs that used them
    created_at: Mapped[float] = mapped_column(Float)


class TeamLookRow(Base):
    """One version of a team's brand look; never updated, only added to (privacy.teams.team_look)."""

    __tablename__ = "team_looks"
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    style_id: Mapped[str] = mapped_column(String(64))
    background: Mapped[str] = mapped_column(String(7))  # "#rrggbb"
    outfits: Mapped[str] = mapped_column(Text)  # JSON list of outfit ids
    size: Mapped[int] = mapped_column(Integer)
    retention_days: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)


class TeamInviteRow(Base):
    """An invite link: its token's locator (never the token), a label for the admin, and its limits."""

    __tablename__ = "team_invites"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # what the admin revokes by; not a secret
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    locator: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    max_uses: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class TeamMemberRow(Base):
    """A session that joined a team through an invite: one team per session, gone with the session."""

    __tablename__ = "team_members"
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[str] = mapped_column(String(32), unique=True)  # groups shares for the admin; not the session id
    look_version: Mapped[int] = mapped_column(Integer)  # the look when they joined
    joined_at: Mapped[float] = mapped_column(Float)


class TeamRunRow(Base):
    """Which look version a member's run used: a later change of look applies to new runs only."""

    __tablename__ = "team_runs"
    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    look_version: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[float] = mapped_column(Float)


class TeamShareRow(Base):
    """A headshot a member shared, sealed to the team's public key (file under DATA_DIR/team-shares).

    After withdrawal or expiry the file is unlinked and every personal column emptied: what is left
    (style preset, dates, who erased it) is the line "erased at" of the admin's CSV, and nothing more.
    """

    __tablename__ = "team_shares"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    # The sharing session, so it can withdraw; emptied when the share is erased or the session is.
    session_id: Mapped[str | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"), nullable=True,
                                                   index=True)
    member_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sealed_name: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # HPKE-sealed to the team
    style_id: Mapped[str] = mapped_column(String(64))
    look_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)  # ciphertext bytes on disk
    shared_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    erased_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    erased_by: Mapped[str | None] = mapped_column(String(16), nullable=True)  # "member" | "schedule"


class OperatorKeyRow(Base):
    """The operator key's verifier (its HKDF locator, privacy.teams.operator_keys), never the key: at most one row."""

    __tablename__ = "operator_keys"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # always "operator": one key at a time
    verifier: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
# --- end teams ------------------------------------------------------------------------------------


class Database:
    """An engine plus a session factory, with SQLite or PostgreSQL made to forget erased rows."""

    def __init__(self, url: str):
        self.url = url
        if self.sqlite_path is not None:
            _prepare_private_sqlite_file(self.sqlite_path)
        self.engine: Engine = create_engine(url, connect_args=_connect_args(url),
                                            pool_pre_ping=url.startswith("postgresql"))
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _harden_sqlite)
        # Several processes may start at once: one brings the schema to the newest revision, the others
        # wait for it and find it done (privacy.store.schema_migrations; the tables are the revisions', not
        # create_all's, so that a change of a column has a path).
        upgrade_to_head(self.engine, self.sqlite_path)
        self.session = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """"sqlite" or "postgresql" (or another SQLAlchemy dialect's name)."""
        return self.engine.dialect.name

    @property
    def sqlite_path(self) -> Path | None:
        """The database file, or None (another database, or SQLite in memory)."""
        if not self.url.startswith("sqlite:///"):
            return None
        name = self.url.removeprefix("sqlite:///").split("?", 1)[0]
        return Path(name) if name and name != ":memory:" else None

    def flush_erased_pages(self) -> None:
        """Make the database files forget erased rows: SQLite's log checkpointed, PostgreSQL's tables rewritten."""
        if self.dialect == "sqlite":
            with self.engine.connect() as conn:
                conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        elif self.dialect == "postgresql":
            self._vacuum()

    def _vacuum(self) -> None:
        # VACUUM refuses to run inside a transaction block: an autocommit connection.
        with self.autocommit_connection() as conn:
            # VACUUM FULL waits for every transaction using the table; a stuck one must not hang an
            # erasure. Unfinished, the dead rows stay where the residue audit sees them, and the
            # next erasure's VACUUM removes them.
            conn.execute(text(f"SET lock_timeout = '{VACUUM_LOCK_TIMEOUT}'"))
            tables = [t.name for t in Base.metadata.sorted_tables]
            try:
                conn.execute(text("VACUUM FULL " + ", ".join(t for t in tables if t not in APPEND_MOSTLY_TABLES)))
                # Then a plain VACUUM of every table: the append-mostly ones need no more, and it is what
                # resets the statistics' dead-row counts (VACUUM FULL leaves them), which the residue
                # audit reads where pgstattuple is missing. On the tables just rewritten it has nothing to do.
                conn.execute(text("VACUUM " + ", ".join(tables)))
            except DBAPIError as exc:
                log.error("VACUUM after erasure did not finish (%s); erased rows stay until the next one",
                          type(exc.orig).__name__)

    def lock_session(self, s, session_id: str, *, for_erasure: bool) -> SessionRow | None:
        """Order the caller's transaction against every other writer of this session's blobs; returns its row.

        A seal takes the shared form, an erasure the exclusive one, each before it reads anything, so that
        an erasure sees every seal that committed before it and no seal lands between an erasure's reads
        and its commit (a seal then finds the session gone or its category erased, and writes nothing).
        PostgreSQL: the session row FOR KEY SHARE (seals run side by side) or FOR UPDATE (waits for them).
        SQLite: the database has one writer at a time; a write that changes nothing makes this transaction
        that writer now, from its first statement, so its reads that follow are the latest.
        """
        if self.dialect == "sqlite":
            s.execute(text("UPDATE sessions SET created_at = created_at WHERE id = :id"), {"id": session_id})
        return s.get(SessionRow, session_id, with_for_update=True if for_erasure else {"key_share": True},
                     populate_existing=True)

    def autocommit_connection(self) -> Connection:
        """A connection outside any transaction: for VACUUM, and for session-level locks
        (privacy/lifecycle/scheduler.py)."""
        return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def dispose(self) -> None:
        self.engine.dispose()


def _prepare_private_sqlite_file(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it, and tighten any wider leftovers.

    SQLite's unix VFS creates the -wal, -shm and -journal files with the mode of the database file
    itself (findCreateFileMode in os_unix.c), so a 0600 database makes them 0600 by construction,
    whatever the umask. The alternatives are worse: os.umask is process-wide and would race with
    Gradio's and the scheduler's threads creating files, and a chmod after connecting leaves a
    moment in which the write-ahead log (pages of the database) is readable by everyone.
    """
    make_private_dirs(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)  # an empty file is an empty SQLite database
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)  # an existing file keeps its mode through O_CREAT: tighten it
    finally:
        os.close(fd)
    for suffix in SQLITE_SIDE_FILES:  # left by an earlier run (or version) with wider modes; SQLite reuses them
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.chmod(side, PRIVATE_FILE_MODE)


def _connect_args(url: str) -> dict:
    if url.startswith("sqlite"):
        # Threads of the app and the scheduler share the file; wait for locks instead of failing.
        return {"timeout": 30, "check_same_thread": False}
    if url.startswith("postgresql"):
        # A server that does not answer fails start-up within seconds, naming itself, not after minutes.
        return {"connect_timeout": 10, "application_name": "headshot-studio"}
    return {}


def _harden_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA secure_delete=ON")  # overwrite deleted content with zeros (promise 6)
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
