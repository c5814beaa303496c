"""The schema has a path: every process brings the database to the newest Alembic revision at start-up, one at a
time, and a database made by the last release without migrations (its tables from `create_all`, frozen as DDL in
tests/fixtures/schema/) is upgraded in place, its rows kept, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

import studio.job_tables  # noqa: F401  (the job tables join Base.metadata: the models the schema must match)
from privacy.store.database import Base, Database
from privacy.store.schema_migrations import current_revision, head_revision

pytestmark = pytest.mark.databases("sqlite", "postgresql")
SNAPSHOTS = Path(__file__).resolve().parents[1] / "fixtures" / "schema"
JOB_TABLES = ("jobs", "job_claims")


def url_of(database_url: str, tmp_path: Path) -> str:
    return database_url or f"sqlite:///{tmp_path / 'studio.db'}"


def make_like_the_last_release(url: str, *, leave_out: tuple[str, ...] = ()) -> None:
    """The database as the release before migrations left it: its own DDL, then a person's rows in it."""
    engine = create_engine(url)
    dialect = engine.dialect.name
    statements = (SNAPSHOTS / f"release-before-migrations.{dialect}.sql").read_text().split(";\n")
    with engine.begin() as conn:
        for statement in statements:
            body = "\n".join(line for line in statement.splitlines() if not line.startswith("--")).strip()
            if body and not any(f" {table} " in body.split("(", 1)[0] + " " for table in leave_out):
                conn.exec_driver_sql(body)
        conn.execute(text("INSERT INTO sessions (id, audit_id, created_at) VALUES ('s-1', 'a-1', 1.5)"))
        conn.execute(text("INSERT INTO audit_events (audit_id, at, event, detail) "
                          "VALUES ('a-1', 2.5, 'consent', '{}')"))
        if "jobs" not in leave_out:
            conn.execute(text("INSERT INTO jobs (id, session_id, state, stage, style_ids, count, created_at) "
                              "VALUES ('j-1', 's-1', 'done', 'done', '[\"linkedin_classic\"]', 4, 3.5)"))
    engine.dispose()


def schema_differences(db: Database) -> list:
    with db.engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)


def test_a_new_database_is_made_by_the_revisions_and_matches_the_models(database_url, tmp_path):
    db = Database(url_of(database_url, tmp_path))
    try:
        with db.engine.connect() as conn:
            assert current_revision(conn) == head_revision()
        # A model changed without a revision shows here: the revisions, not create_all, make the tables.
        assert schema_differences(db) == []
    finally:
        db.dispose()


def test_a_database_made_by_the_last_release_is_upgraded_in_place_and_keeps_its_rows(database_url, tmp_path):
    url = url_of(database_url, tmp_path)
    make_like_the_last_release(url)
    assert "alembic_version" not in inspect(create_engine(url)).get_table_names()
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            assert current_revision(conn) == head_revision()
            assert conn.execute(text("SELECT id, audit_id, created_at FROM sessions")).all() == [("s-1", "a-1", 1.5)]
            assert conn.execute(text("SELECT event FROM audit_events")).scalars().all() == ["consent"]
            assert conn.execute(text("SELECT id, count FROM jobs")).all() == [("j-1", 4)]
        assert schema_differences(db) == []
    finally:
        db.dispose()


def test_an_older_database_gets_the_tables_added_since(database_url, tmp_path):
    url = url_of(database_url, tmp_path)
    make_like_the_last_release(url, leave_out=JOB_TABLES)  # as before queue mode added the job tables
    db = Database(url)
    try:
        assert set(JOB_TABLES) <= set(inspect(db.engine).get_table_names())
        assert schema_differences(db) == []
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT id FROM sessions")).scalars().all() == ["s-1"]
    finally:
        db.dispose()


def test_processes_opening_a_new_database_at_once_migrate_it_once(database_url, tmp_path):
    url, opened, failures = url_of(database_url, tmp_path), [], []
    start = threading.Barrier(4)

    def open_it() -> None:
        start.wait()
        try:
            opened.append(Database(url))
        except Exception as exc:  # a second CREATE TABLE of the same table, say
            failures.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert failures == [] and len(opened) == 4
        with opened[0].engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
            assert current_revision(conn) == head_revision()
    finally:
        for db in opened:
            db.dispose()
