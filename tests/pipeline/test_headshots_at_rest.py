"""Headshots at rest open only with their owner's return key: a copy of everything the server holds is not enough.

The attacker here has it all: a copy of the data directory (every blob file), the database and
the master key, taken after a real (tiny-model) run. They run the studio's own code on the copy.
The positive control is the same code on the same copy with the return key: it opens every headshot.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from errors import OwnerKeyRequired
from privacy.lifecycle.consent import Attestations
from privacy.store.database import Database
from privacy.store.master_key import load_master_key
from privacy.store.return_keys import ReturnKey
from privacy.store.vault import HEADSHOTS, IDENTITY, KEY_HOLDERS, MAGIC, MASTER, NONCE_BYTES, OWNER, Vault
from settings import load_settings
from studio.service import Studio

CONSENT = Attestations(own_photos=True, adult=True, purpose=True)


@pytest.fixture(scope="module")
def after_a_run(tmp_path_factory, faces_dir):
    """A session that consented, uploaded and got its headshots, then the whole data root copied."""
    data_dir = tmp_path_factory.mktemp("studio-at-rest")
    settings = load_settings({
        "HEADSHOT_DATA_DIR": str(data_dir), "HEADSHOT_BASE_MODEL": "tiny-sd", "HEADSHOT_DEVICE": "cpu",
        "HEADSHOT_MIN_PHOTOS": "1", "HEADSHOT_TRAIN_STEPS": "2", "HEADSHOT_LIKENESS_THRESHOLD": "0",
    })
    studio = Studio(settings)
    session_id = studio.start_session()
    studio.give_consent(session_id, CONSENT)
    key = studio.issue_return_key(session_id)
    assert studio.upload(session_id, [(faces_dir / "obama_1.jpg").read_bytes(),
                                      (faces_dir / "obama_4.jpg").read_bytes()]).acceptable
    run = studio.make_headshots(session_id, ["linkedin_classic"], 2, owner_key=key.owner_key)
    served = {shot.blob_id: studio.headshot_bytes(session_id, shot.blob_id, key.owner_key) for shot in run.delivered}
    studio.close()
    stolen = tmp_path_factory.mktemp("stolen") / "data"
    shutil.copytree(data_dir, stolen)  # blobs, studio.db (+ WAL), keys/master.key: everything
    return stolen, session_id, key, served


def _vault_on(copy: Path) -> Vault:
    db = Database(f"sqlite:///{copy / 'studio.db'}")
    return Vault(db, copy / "vault", load_master_key("", copy / "keys" / "master.key"))


def test_the_copy_holds_the_headshots_but_no_master_wrapped_key_for_them(after_a_run):
    stolen, session_id, _, served = after_a_run
    assert len(served) == 2 and all((stolen / "vault" / blob_id).exists() for blob_id in served)
    with sqlite3.connect(stolen / "studio.db") as db:
        master_wrapped = {c for (c,) in db.execute("SELECT category FROM data_keys WHERE session_id = ?",
                                                   (session_id,))}
        owner_wrapped = {c for (c,) in db.execute("SELECT category FROM owner_keys WHERE session_id = ?",
                                                  (session_id,))}
    # Identity data stays under the master key for its short processing window; headshots are the owner's alone,
    # as the policy's table (generated from privacy.store.vault.KEY_HOLDERS) tells the person.
    assert master_wrapped == {IDENTITY} and owner_wrapped == {HEADSHOTS}
    once_made = dict(KEY_HOLDERS)["once they are made"]
    assert {c for c, holder in once_made.items() if holder == MASTER} == master_wrapped
    assert {c for c, holder in once_made.items() if holder == OWNER} == owner_wrapped


def test_without_the_return_key_the_studios_own_code_opens_no_headshot(after_a_run):
    stolen, session_id, _, served = after_a_run
    vault = _vault_on(stolen)
    for kind in ("headshot", "report"):
        refs = vault.blobs(session_id, kind)
        assert refs
        for ref in refs:
            with pytest.raises(OwnerKeyRequired):
                vault.open(session_id, ref.id)
            with pytest.raises(OwnerKeyRequired):  # nor with a key for some other session
                vault.open(session_id, ref.id, owner_key=ReturnKey.new().owner_key)
    # The master key still opens what it is meant to: the identity data, until its erasure time.
    assert vault.open(session_id, vault.blobs(session_id, "photo")[0].id).startswith(b"\x89PNG")


def test_no_key_the_copy_holds_decrypts_a_headshot_blob(after_a_run):
    """Beyond the studio's code: every key recoverable from the copy, tried on every headshot blob, fails."""
    stolen, session_id, _, served = after_a_run
    master = AESGCM(load_master_key("", stolen / "keys" / "master.key"))
    with sqlite3.connect(stolen / "studio.db") as db:
        rows = db.execute("SELECT session_id, category, wrapped FROM data_keys").fetchall()
    recoverable = [master.decrypt(w[:NONCE_BYTES], w[NONCE_BYTES:], f"key|{sid}|{cat}".encode())
                   for sid, cat, w in rows]
    assert recoverable  # the identity key: the attack is real, the copy does yield keys
    for blob_id in served:
        blob = (stolen / "vault" / blob_id).read_bytes()
        assert blob.startswith(MAGIC)
        nonce, body = blob[len(MAGIC):len(MAGIC) + NONCE_BYTES], blob[len(MAGIC) + NONCE_BYTES:]
        aad = f"blob|{session_id}|{blob_id}|headshot".encode()
        for data_key in recoverable:
            with pytest.raises(InvalidTag):
                AESGCM(data_key).decrypt(nonce, body, aad)


def test_with_the_return_key_the_same_code_on_the_same_copy_opens_every_headshot(after_a_run):
    """The positive control: what failed above fails for want of the key, not because the copy is broken."""
    stolen, session_id, key, served = after_a_run
    vault = _vault_on(stolen)
    opened = {ref.id: vault.open(session_id, ref.id, owner_key=key.owner_key)
              for ref in vault.blobs(session_id, "headshot")}
    assert opened == served


def test_the_database_holds_no_value_the_key_can_be_recomputed_from(after_a_run):
    """Only the locator is derived from the key: HKDF-SHA256 of 128 random bits, so inverting it means trying 2^128
    keys.

    Neither the key, its code, nor the owner key appears anywhere in the copy (database, WAL, blob files).
    """
    stolen, session_id, key, _ = after_a_run
    everything = b"".join(p.read_bytes() for p in sorted(stolen.rglob("*")) if p.is_file())
    code = key.code.encode()
    for secret in (key.raw, key.raw.hex().encode(), code, code.replace(b"-", b""), key.owner_key,
                   key.owner_key.hex().encode()):
        assert secret not in everything
    with sqlite3.connect(stolen / "studio.db") as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(return_keys)")]
        stored = db.execute("SELECT locator FROM return_keys WHERE session_id = ?", (session_id,)).fetchone()
    assert sorted(columns) == ["created_at", "erased_at", "locator", "session_id"]
    assert stored == (key.locator,) and bytes.fromhex(key.locator) != key.owner_key
