"""Disk full and a read-only vault: the person gets a clear error, and nothing half-written is left behind.

"Nothing half-written": no vault temp file, no index row without its file, no file without
its row, and no part of the set that failed (the photos sealed before the disk filled up
are erased again). The real faults use a small tmpfs mounted over the vault directory
(root only); the monkeypatched fault runs everywhere.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time

import pytest

import privacy.store.vault
from errors import UserError
from privacy.lifecycle.consent import Attestations
from privacy.lifecycle.residue import audit_residue
from settings import load_settings
from studio.service import Studio

CONSENT = Attestations(own_photos=True, adult=True, purpose=True)
PHOTOS = ("obama_1.jpg", "obama_2.jpg", "obama_4.jpg")


def _studio(data_dir) -> Studio:
    return Studio(load_settings({"HEADSHOT_DATA_DIR": str(data_dir), "HEADSHOT_MIN_PHOTOS": "2",
                                 "HEADSHOT_BASE_MODEL": "tiny-sd"}))


def _mount_tmpfs(path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def _assert_nothing_half_written(studio: Studio, session_id: str) -> None:
    assert studio.vault.blobs(session_id) == []
    assert [p.name for p in studio.vault.blob_dir.iterdir()] == []  # no temp file, no orphan
    report = audit_residue(studio.settings, studio.db, studio.vault, time.time())
    assert report.clean, report.summary()


def _upload_fails_clearly(studio: Studio, files: list[bytes]) -> str:
    session_id = studio.start_session()
    studio.give_consent(session_id, CONSENT)
    with pytest.raises(UserError) as caught:
        studio.upload(session_id, files)
    assert caught.value.code == "storage_unavailable"
    assert "Nothing of this upload was kept" in caught.value.message and "/" not in caught.value.message
    return session_id


@pytest.fixture
def photos(faces_dir) -> list[bytes]:
    return [(faces_dir / name).read_bytes() for name in PHOTOS]


def test_disk_full_in_the_middle_of_a_set_keeps_nothing_of_it(tmp_path, photos, monkeypatch):
    studio = _studio(tmp_path / "data")
    real_write, calls = privacy.store.vault._write_atomically, []

    def fills_up(path, data):
        calls.append(path)
        if len(calls) == 4:  # two photos and their embeddings are sealed; the third photo hits a full disk
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data[: len(data) // 2])  # half a file, as a real ENOSPC leaves it
            try:
                raise OSError(errno.ENOSPC, "No space left on device")
            finally:
                tmp.unlink()  # what _write_atomically's own cleanup does
        return real_write(path, data)

    monkeypatch.setattr(privacy.store.vault, "_write_atomically", fills_up)
    try:
        session_id = _upload_fails_clearly(studio, photos)
        assert len(calls) == 4
        _assert_nothing_half_written(studio, session_id)
    finally:
        studio.close()


@pytest.fixture
def vault_on_tmpfs(tmp_path):
    vault = tmp_path / "data" / "vault"
    if not _mount_tmpfs(vault, "2m"):
        pytest.skip("cannot mount a tmpfs here (not root, or no mount permission); the monkeypatched fault still runs")
    yield vault
    subprocess.run(["umount", "-l", str(vault)], check=False)


def test_a_really_full_disk_gives_a_clear_error_and_leaves_nothing(vault_on_tmpfs, photos, monkeypatch):
    # Three photos stored at up to 1536 px need more than the 2 MB this disk has: the set
    # fills it part-way, after at least one photo is sealed.
    studio = _studio(vault_on_tmpfs.parent)
    real_write, written = privacy.store.vault._write_atomically, []

    def counting(path, data):  # observes only: the real write, the real ENOSPC
        real_write(path, data)
        written.append(len(data))

    monkeypatch.setattr(privacy.store.vault, "_write_atomically", counting)
    try:
        session_id = _upload_fails_clearly(studio, photos)
        assert len(written) >= 1  # something of the set was sealed before the disk was full ...
        _assert_nothing_half_written(studio, session_id)  # ... and is gone again
    finally:
        studio.close()


def test_a_read_only_vault_gives_a_clear_error_and_leaves_nothing(vault_on_tmpfs, photos):
    studio = _studio(vault_on_tmpfs.parent)
    try:
        assert subprocess.run(["mount", "-o", "remount,ro", str(vault_on_tmpfs)]).returncode == 0
        session_id = _upload_fails_clearly(studio, photos)
        assert studio.vault.blobs(session_id) == [] and list(vault_on_tmpfs.iterdir()) == []
        subprocess.run(["mount", "-o", "remount,rw", str(vault_on_tmpfs)], check=True)
        _assert_nothing_half_written(studio, session_id)
    finally:
        studio.close()
