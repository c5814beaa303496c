"""File modes: the data root, key and blob directories 0700; the database, its WAL and every secret key 0600.

Built for real (database, vault, receipt, master and C2PA keys) under a permissive 0022 umask,
the one most machines have, so nothing passes just because the test runner's umask is strict.
"""

import os
import stat
from pathlib import Path

import pytest

from privacy.marks.content_credentials import load_identity
from privacy.records.receipts import PUBLIC_KEY_NAME
from privacy.store.database import Database
from privacy.store.master_key import load_master_key
from privacy.store.private_dirs import ensure_private_dir, make_private_dirs
from settings import SettingsError
from tests.privacy.helpers import consented_session, make_env

SECRET_KEY_FILES = {"master.key", "receipt_ed25519.pem", "c2pa-ca.key", "c2pa-signer.key"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def studio_floor(tmp_path):
    """A fresh data root with everything the studio writes at start and on first use."""
    data = tmp_path / "data"
    env = make_env(data)
    load_master_key("", env.settings.key_file)
    load_identity(data / "keys")  # the local C2PA CA and signer
    consented_session(env, photos=1)  # writes rows (so SQLite has its -wal and -shm open) and blobs
    yield env
    env.close()


def test_data_root_key_and_blob_directories_are_created_owner_only(studio_floor):
    data = studio_floor.data_dir
    assert mode(data) == 0o700
    assert mode(data / "keys") == 0o700
    assert mode(studio_floor.settings.blob_dir) == 0o700


def test_database_and_its_write_ahead_log_are_owner_only(studio_floor):
    data = studio_floor.data_dir
    files = [data / "studio.db", data / "studio.db-wal", data / "studio.db-shm"]
    assert all(f.exists() for f in files), sorted(p.name for p in data.iterdir())
    assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}


def test_every_secret_key_file_is_owner_only_and_only_public_files_are_wider(studio_floor):
    keys = studio_floor.data_dir / "keys"
    modes = {p.name: mode(p) for p in keys.iterdir()}
    assert SECRET_KEY_FILES <= set(modes)
    assert {name: modes[name] for name in SECRET_KEY_FILES} == {name: 0o600 for name in SECRET_KEY_FILES}
    assert modes[PUBLIC_KEY_NAME] == 0o644  # published on purpose: third parties verify receipts with it
    for name, m in modes.items():
        if m & 0o077:  # anything others may read must be a public key or certificate
            assert b"PRIVATE" not in (keys / name).read_bytes(), name


def test_sealed_blobs_are_owner_only(studio_floor):
    blobs = [p for p in studio_floor.settings.blob_dir.rglob("*") if p.is_file()]
    assert blobs and all(mode(p) == 0o600 for p in blobs)


def test_an_existing_data_root_with_wide_modes_is_tightened(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    ensure_private_dir(data)
    assert mode(data) == 0o700


def test_missing_parents_of_a_private_dir_are_created_owner_only_and_existing_ones_left_alone(tmp_path):
    os.chmod(tmp_path, 0o755)
    ensure_private_dir(tmp_path / "a" / "b" / "keys")
    assert [mode(p) for p in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "keys")] == [0o700] * 3
    assert mode(tmp_path) == 0o755  # not ours: an operator's folder (even /srv or /tmp) is never changed


def test_a_private_dir_that_is_a_file_is_a_settings_error(tmp_path):
    (tmp_path / "data").write_bytes(b"")
    with pytest.raises(SettingsError):
        ensure_private_dir(tmp_path / "data")


def test_existing_database_files_with_wide_modes_are_tightened_before_sqlite_opens_them(tmp_path):
    db_file = tmp_path / "studio.db"
    for f in (db_file, tmp_path / "studio.db-wal", tmp_path / "studio.db-shm"):
        f.write_bytes(b"")
        os.chmod(f, 0o644)
    db = Database(f"sqlite:///{db_file}")
    try:
        assert {f.name: mode(f) for f in tmp_path.iterdir()} == {
            "studio.db": 0o600, "studio.db-wal": 0o600, "studio.db-shm": 0o600,
            "studio.db-schema.lock": 0o600}  # held while one process migrates (privacy.store.schema_migrations)
    finally:
        db.dispose()


def test_the_folder_of_an_operator_chosen_database_is_created_private_but_an_existing_one_is_kept(tmp_path):
    os.chmod(tmp_path, 0o755)
    db = Database(f"sqlite:///{tmp_path / 'new' / 'studio.db'}")
    db.dispose()
    assert mode(tmp_path / "new") == 0o700 and mode(tmp_path) == 0o755


def test_sqlite_in_memory_creates_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Database("sqlite:///:memory:").dispose()
    assert list(tmp_path.iterdir()) == []


def test_make_private_dirs_leaves_an_existing_directory_alone(tmp_path):
    os.chmod(tmp_path, 0o755)
    make_private_dirs(tmp_path)
    assert mode(tmp_path) == 0o755
