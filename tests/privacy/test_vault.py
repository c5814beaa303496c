"""The vault: sealed bytes round-trip, erasure crypto-shreds them, and nothing is sealed without consent."""

import shutil

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select

from errors import ConsentRequired, SessionGone
from privacy.store.database import BlobRow, DataKey
from privacy.store.vault import HEADSHOTS, IDENTITY, MAGIC, NONCE_BYTES, Vault
from tests.privacy.helpers import MARKER, consented_session, fake_jpeg

pytestmark = pytest.mark.databases("sqlite", "postgresql")


def test_sealed_blob_round_trips_and_is_ciphertext_on_disk(env):
    session_id = consented_session(env, photos=0, adapter=False)
    ref = env.vault.seal(session_id, "photo", fake_jpeg())
    on_disk = (env.settings.blob_dir / ref.id).read_bytes()
    assert on_disk.startswith(MAGIC)
    assert MARKER not in on_disk and b"JFIF" not in on_disk
    assert env.vault.open(session_id, ref.id) == fake_jpeg()
    assert ref.category == IDENTITY and ref.size == len(on_disk)


def test_another_sessions_blob_cannot_be_opened(env):
    a = consented_session(env, photos=1, adapter=False)
    b = consented_session(env, photos=0, adapter=False)
    blob = env.vault.blobs(a, "photo")[0]
    with pytest.raises(SessionGone):
        env.vault.open(b, blob.id)


def test_leftover_ciphertext_cannot_be_decrypted_after_erase_even_with_the_master_key(env, tmp_path, database_files):
    session_id = consented_session(env, photos=2)
    refs = env.vault.blobs(session_id)
    backup = tmp_path / "backup"
    shutil.copytree(env.settings.blob_dir, backup)  # a copy made before erasure, e.g. a backup
    with env.db.session() as s:
        rows = {r.id: (r.category, r.kind) for r in s.scalars(select(BlobRow))}
        wrapped = s.get(DataKey, (session_id, IDENTITY)).wrapped
    # Positive control: with the wrapped key and the master key, the copies do decrypt.
    master = AESGCM(b"m" * 32)
    data_key = master.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], f"key|{session_id}|{IDENTITY}".encode())
    first = (backup / refs[0].id).read_bytes()
    AESGCM(data_key).decrypt(first[len(MAGIC):len(MAGIC) + NONCE_BYTES], first[len(MAGIC) + NONCE_BYTES:],
                             f"blob|{session_id}|{refs[0].id}|{refs[0].kind}".encode())
    del data_key

    result = env.vault.shred(session_id)
    env.db.flush_erased_pages()

    assert result.keys_destroyed == 1 and len(result.blobs) == len(refs)
    assert list(env.settings.blob_dir.iterdir()) == []
    assert not env.vault.has_key(session_id, IDENTITY)
    # The wrapped key is gone from the database files too (SQLite: secure_delete zeroes it, the WAL
    # is truncated; PostgreSQL: VACUUM FULL rewrote the table): no copy of the disk holds what the
    # master key would need to unwrap.
    db_files = database_files()
    assert db_files and not any(wrapped in p.read_bytes() for p in db_files)
    # Put the copies back, index rows too: still unreadable, the data key no longer exists.
    with env.db.session.begin() as s:
        for ref in refs:
            shutil.copy(backup / ref.id, env.settings.blob_dir / ref.id)
            s.add(BlobRow(id=ref.id, session_id=session_id, category=rows[ref.id][0], kind=rows[ref.id][1],
                          size=ref.size, digest=ref.digest, created_at=ref.created_at))
    reopened = Vault(env.db, env.settings.blob_dir, b"m" * 32, env.clock)  # the same master key
    for ref in refs:
        with pytest.raises(SessionGone):
            reopened.open(session_id, ref.id)


def test_shredding_identity_leaves_headshots_readable(env):
    session_id = consented_session(env, photos=1)
    headshot = env.vault.seal(session_id, "headshot", b"\x89PNG\r\n\x1a\nheadshot")
    env.vault.shred(session_id, [IDENTITY])
    assert env.vault.open(session_id, headshot.id) == b"\x89PNG\r\n\x1a\nheadshot"
    assert [r.kind for r in env.vault.blobs(session_id)] == ["headshot"]
    with env.db.session() as s:
        assert set(s.scalars(select(DataKey.category).where(DataKey.session_id == session_id))) == {HEADSHOTS}


def test_seal_without_consent_raises_and_leaves_no_file(env):
    session_id = env.vault.new_session()
    with pytest.raises(ConsentRequired):
        env.vault.seal(session_id, "photo", fake_jpeg())
    assert list(env.settings.blob_dir.iterdir()) == []
    assert env.vault.blobs(session_id) == []
    assert not env.vault.has_key(session_id, IDENTITY)


def test_a_key_handed_to_its_owner_leaves_no_master_wrapped_copy_in_the_database_files(env, database_files):
    session_id = consented_session(env, photos=0, adapter=False)
    ref = env.vault.seal(session_id, "headshot", b"\x89PNG\r\n\x1a\nheadshot")
    with env.db.session() as s:
        wrapped = s.get(DataKey, (session_id, HEADSHOTS)).wrapped
    assert env.vault.hand_to_owner(session_id, HEADSHOTS, b"o" * 32)
    # The master key alone must open nothing of it any more: not even from a copy of the database's files.
    assert not any(wrapped in p.read_bytes() for p in database_files())
    assert env.vault.open(session_id, ref.id, owner_key=b"o" * 32) == b"\x89PNG\r\n\x1a\nheadshot"


def test_two_pages_handing_the_same_key_to_its_owner_at_once_hand_it_over_once(env):
    """A queued job's watcher and the owner's return may hand over together: one wins, the other finds nothing to
    hand, and neither fails (before the session's lock, the second added a duplicate owner key and crashed)."""
    import threading

    session_id = consented_session(env, photos=0, adapter=False)
    ref = env.vault.seal(session_id, "headshot", b"\x89PNG\r\n\x1a\nheadshot")
    start, results, errors = threading.Barrier(4), [], []

    def hand_over():
        start.wait()
        try:
            results.append(env.vault.hand_to_owner(session_id, HEADSHOTS, b"o" * 32))
        except Exception as exc:  # the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=hand_over) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [] and sorted(results) == [False, False, False, True]
    assert env.vault.open(session_id, ref.id, owner_key=b"o" * 32) == b"\x89PNG\r\n\x1a\nheadshot"
