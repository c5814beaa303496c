"""The residue audit finds what should not be on disk — and is clean after a proper erasure (promises 6, 10)."""

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import delete, text

from privacy.lifecycle import retention
from privacy.lifecycle.erasure import erase_now
from privacy.lifecycle.residue import audit_residue
from privacy.store.database import DataKey
from tests.postgres import database_name
from tests.privacy.helpers import DAY, HOUR, MARKER, consented_session, generate, make_env

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.databases("sqlite", "postgresql")


@pytest.fixture
def env(tmp_path, database_url):
    env = make_env(tmp_path / "data", database_url=database_url)
    session_id = consented_session(env)
    generate(env, session_id)
    env.session_id = session_id
    yield env
    env.close()


def audit_of(env, **kwargs):
    return audit_residue(env.settings, env.db, env.vault, env.clock(), **kwargs)


def test_a_live_session_in_the_vault_is_clean(env):
    report = audit_of(env)
    assert report.clean, report.summary()
    assert report.files_scanned >= 10  # blobs, keys and database files were all looked at


def test_a_plaintext_photo_in_the_data_root_is_found(env, face_bytes):
    (env.data_dir / "debug").mkdir()
    (env.data_dir / "debug" / "IMG_1234_Jane.jpg").write_bytes(face_bytes("obama_small.jpg"))
    report = audit_of(env)
    assert report.kinds() == {"plaintext_image"}
    # Where it is, without the person's own file name (a report is shared with operators and CI logs).
    assert report.findings[0].where.startswith("debug/…/file-")
    assert "Jane" not in report.to_json() and "Jane" not in report.summary()


def test_an_image_inside_another_file_is_found(env, face_bytes):
    (env.data_dir / "dump.bin").write_bytes(b"header" * 100 + face_bytes("obama_small.jpg"))
    assert audit_of(env).kinds() == {"plaintext_image"}


def test_a_plaintext_image_in_the_vault_is_found(env, face_bytes):
    (env.settings.blob_dir / ("0" * 32)).write_bytes(face_bytes("obama_small.jpg"))
    assert {"plaintext_image", "orphan_blob"} == audit_of(env).kinds()


def test_a_cached_upload_in_a_temp_dir_is_found(env, tmp_path, face_bytes):
    cache = tmp_path / "gradio-cache" / "f00d"
    cache.mkdir(parents=True)
    (cache / "image.png").write_bytes(face_bytes("obama_small.jpg"))
    assert audit_of(env).clean  # not scanned unless named
    assert audit_of(env, extra_dirs=[tmp_path / "gradio-cache"]).kinds() == {"plaintext_image"}


def test_an_orphan_blob_without_an_index_row_is_found(env):
    (env.settings.blob_dir / ("a" * 32)).write_bytes(b"HSV1" + os.urandom(64))
    report = audit_of(env)
    assert report.kinds() == {"orphan_blob"} and "without an index row" in report.findings[0].detail


def test_a_blob_whose_key_is_gone_is_found(env):
    with env.db.session.begin() as s:
        s.execute(delete(DataKey).where(DataKey.category == "headshots"))
    env.db.flush_erased_pages()  # the key rows gone for good (PostgreSQL: vacuumed): only their blobs are left
    report = audit_of(env)
    assert report.kinds() == {"orphan_blob"}
    assert len(report.findings) == 3  # two headshots and the report


def test_an_index_row_without_its_file_is_found(env):
    ref = env.vault.blobs(env.session_id, "photo")[0]
    (env.settings.blob_dir / ref.id).unlink()
    assert audit_of(env).kinds() == {"dangling_index"}


def test_a_half_written_vault_file_is_found(env):
    (env.settings.blob_dir / ".deadbeef.tmp").write_bytes(b"HSV1" + os.urandom(32))
    assert audit_of(env).kinds() == {"stale_temp"}


def test_an_old_file_in_the_gradio_temp_dir_is_stale(env):
    temp = env.settings.gradio_temp_dir
    temp.mkdir()
    (temp / "fresh.txt").write_bytes(b"x")
    old = temp / "old.txt"
    old.write_bytes(b"x")
    os.utime(old, (env.clock() - 25 * HOUR, env.clock() - 25 * HOUR))
    report = audit_of(env)
    assert report.kinds() == {"stale_temp"} and report.findings[0].where.startswith("gradio-tmp/…/file-")
    assert "old.txt" not in report.to_json()


def test_data_past_its_expiry_is_found_until_the_sweep_runs(env):
    env.clock.advance(8 * DAY)
    report = audit_of(env)
    assert report.kinds() == {"expired_key", "session_past_expiry"}
    assert len([f for f in report.findings if f.kind == "expired_key"]) == 2
    retention.sweep(env.ctx, env.clock())
    assert audit_of(env).clean


@pytest.mark.databases("sqlite")
def test_unzeroed_free_pages_are_found_and_secure_delete_leaves_none(env):
    payload = (MARKER * 200).decode()
    with env.db.engine.begin() as conn:  # the studio's hardened connection: secure_delete on
        conn.execute(text("CREATE TABLE scratch (v TEXT)"))
        for _ in range(20):
            conn.execute(text("INSERT INTO scratch VALUES (:v)"), {"v": payload})
        conn.execute(text("DELETE FROM scratch"))
    env.db.flush_erased_pages()
    assert audit_of(env).clean
    assert MARKER not in (env.data_dir / "studio.db").read_bytes()

    raw = sqlite3.connect(env.data_dir / "studio.db")  # a careless writer: secure_delete off
    raw.execute("PRAGMA secure_delete=OFF")
    for _ in range(20):
        raw.execute("INSERT INTO scratch VALUES (?)", (payload,))
    raw.commit()
    raw.execute("DELETE FROM scratch")
    raw.commit()
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    assert MARKER in (env.data_dir / "studio.db").read_bytes()
    assert audit_of(env).kinds() == {"dirty_free_page"}


@pytest.mark.databases("postgresql")
def test_erased_rows_are_found_until_vacuumed_and_then_no_byte_of_them_is_left(env, database_files):
    with env.db.session() as s:
        wrapped = s.get(DataKey, (env.session_id, "headshots")).wrapped
    with env.db.session.begin() as s:  # a careless writer: a DELETE without the VACUUM after erasure
        s.execute(delete(DataKey).where(DataKey.category == "headshots"))
    assert any(wrapped in p.read_bytes() for p in database_files())  # a DELETE only marks the row dead
    assert "dead_rows" in audit_of(env).kinds()

    with env.db.autocommit_connection() as conn:
        conn.execute(text("VACUUM data_keys"))
    # Why the studio rewrites the table instead: a plain VACUUM frees the dead row (the audit's count
    # is zero) but leaves its bytes in the page's free space, for any copy of the disk to read.
    assert "dead_rows" not in audit_of(env).kinds()
    assert any(wrapped in p.read_bytes() for p in database_files())

    env.db.flush_erased_pages()  # what every erasure runs
    assert not any(wrapped in p.read_bytes() for p in database_files())


@pytest.mark.databases("postgresql")
def test_without_pgstattuple_dead_rows_are_counted_from_the_statistics(env, postgres_server):
    postgres_server.execute(database_name(env.settings.database_url), "DROP EXTENSION pgstattuple")
    with env.db.autocommit_connection() as conn:
        conn.execute(text("DELETE FROM consents"))  # a careless writer again: no VACUUM after it
        conn.execute(text("SELECT pg_stat_force_next_flush()"))  # its count reaches the statistics at once
    deadline = time.monotonic() + 10
    while "dead_rows" not in audit_of(env).kinds() and time.monotonic() < deadline:
        time.sleep(0.1)
    [finding] = [f for f in audit_of(env).findings if f.kind == "dead_rows"]
    assert finding.where == "consents" and "statistics" in finding.detail
    env.db.flush_erased_pages()
    assert "dead_rows" not in audit_of(env).kinds()


def run_cli(*args, data_dir, database_url=""):
    env = {**os.environ, "HEADSHOT_DATA_DIR": str(data_dir), "HEADSHOT_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def test_cli_audit_exits_zero_only_when_clean(env, face_bytes):
    erase_now(env.ctx, env.session_id)
    clean = run_cli("audit", "--json", data_dir=env.data_dir, database_url=env.settings.database_url)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert json.loads(clean.stdout)["clean"] is True

    (env.data_dir / "leak.jpg").write_bytes(face_bytes("obama_small.jpg"))
    dirty = run_cli("audit", data_dir=env.data_dir, database_url=env.settings.database_url)
    assert dirty.returncode == 1
    assert "plaintext_image: leak.jpg" in dirty.stdout
