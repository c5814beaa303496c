"""The database's schema, brought to the newest revision at start-up by one process at a time (Alembic).

Every process that opens the database (`Database`) runs `upgrade_to_head` before anything else touches it.
Only one migrates: the others wait on the schema lock, then find the schema at head and do nothing.

    PostgreSQL   a transaction-level advisory lock (`pg_advisory_xact_lock`) taken in the migrating
                 transaction itself: every process on the database, on whatever machine, waits for it,
                 and the lock ends with the commit (or a crash: the server ends the session)
    SQLite       an exclusive `flock` on `<database file>-schema.lock` beside it (the processes share it;
                 not the database file itself, whose POSIX locks SQLite's own would lose when we close it)

This is the scheduler's kind of lock (privacy/lifecycle/scheduler.py) on a key of its own: the scheduler's is
held for its holder's whole life, and a second process must not wait that long to serve.

A database the releases before migrations made (tables from `create_all`, no `alembic_version`) is upgraded
from the start: the baseline revision creates only the tables it lacks (migrations/versions/0001_baseline.py).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

SCRIPTS = Path(__file__).resolve().parent / "migrations"
SCHEMA_LOCK_KEY = 0x68656164_73686f74  # "headshot": PostgreSQL's advisory locks are named by a 64-bit key
SQLITE_LOCK_SUFFIX = "-schema.lock"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine, sqlite_path: Path | None = None) -> None:
    """Bring the schema to the newest revision, or wait while another process does (module docstring)."""
    lock_fd = _lock_sqlite(sqlite_path) if sqlite_path is not None else None
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            if current_revision(connection) != head_revision():
                command.upgrade(alembic_config(connection), "head")
    finally:
        if lock_fd is not None:
            os.close(lock_fd)  # closing the file releases its flock


def _lock_sqlite(database: Path) -> int:
    fd = os.open(database.with_name(database.name + SQLITE_LOCK_SUFFIX), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # waits while another process migrates
    return fd
