"""Delete-now: keys first, then blobs, cache files and rows; a signed receipt; idempotent and race-safe (promise 5)."""

import threading
import time

import pytest
from sqlalchemy import func, select

from errors import SessionGone
from privacy.lifecycle import retention
from privacy.lifecycle.erasure import ErasureContext, erase_categories, erase_now
from privacy.lifecycle.residue import audit_residue
from privacy.records import audit
from privacy.records.receipts import PUBLIC_KEY_NAME, verify_receipt
from privacy.store.database import AuditEventRow, BlobRow, ConsentRow, Database, DataKey, ErasureRow, SessionRow
from privacy.store.vault import IDENTITY, Vault, sealing_only_while
from tests.privacy.helpers import DAY, MARKER, consented_session, files_under, generate

pytestmark = pytest.mark.databases("sqlite", "postgresql")


def row_counts(db):
    with db.session() as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t))
                for t in (SessionRow, DataKey, BlobRow, ConsentRow, ErasureRow)}


def test_delete_now_leaves_nothing_the_residue_audit_or_a_byte_search_finds(env, database_files):
    cache = env.data_dir / "gradio-tmp" / "upload-cache"
    cache.mkdir(parents=True)
    (cache / "selfie.jpg").write_bytes(b"\xff\xd8\xff\xe0" + MARKER)  # what Gradio would have cached
    env.ctx.hooks.append(lambda session_id: (cache / "selfie.jpg").unlink(missing_ok=True))
    session_id = consented_session(env, photos=3)
    generate(env, session_id)
    assert not audit_residue(env.settings, env.db, env.vault, env.clock()).clean  # the cached upload is seen

    receipt = erase_now(env.ctx, session_id)

    report = audit_residue(env.settings, env.db, env.vault, env.clock())
    assert report.clean, report.summary()
    # Byte by byte: the data root and the database's own files (on PostgreSQL, its table files).
    scanned = b"".join(p.read_bytes() for p in [*files_under(env.data_dir), *database_files()])
    assert MARKER not in scanned and session_id.encode() not in scanned
    assert list(env.settings.blob_dir.iterdir()) == []
    assert row_counts(env.db) == {"sessions": 0, "data_keys": 0, "blobs": 0, "consents": 0, "erasures": 1}
    if env.db.dialect == "sqlite":
        assert (env.data_dir / "studio.db-wal").stat().st_size == 0  # checkpointed: no copy of erased rows in the log
    assert verify_receipt(receipt.to_json(), (env.data_dir / "keys" / PUBLIC_KEY_NAME).read_bytes()).valid


def test_receipt_lists_what_was_erased_with_counts_sizes_and_digests(env):
    session_id = consented_session(env, photos=2)
    generate(env, session_id, headshots=3)
    sealed = {ref.digest: ref for ref in env.vault.blobs(session_id)}
    audit_id = env.vault.audit_id(session_id)

    receipt = erase_now(env.ctx, session_id)

    body = receipt.payload
    assert body["audit_id"] == audit_id and session_id not in receipt.to_json().decode()
    assert body["by"] == "user" and body["erased_at"] == "2023-11-14T22:13:20Z"
    assert body["keys_destroyed"] == 2
    counts = {kind: entry["count"] for kinds in body["categories"].values() for kind, entry in kinds.items()}
    assert counts == {"photo": 2, "embedding": 2, "adapter": 1, "headshot": 3, "report": 1}
    digests = [d for kinds in body["categories"].values() for e in kinds.values() for d in e["sha256"]]
    assert sorted(digests) == sorted(sealed)
    assert body["categories"]["identity"]["photo"]["bytes"] == sum(
        r.size for r in sealed.values() if r.kind == "photo")
    with env.db.session() as s:
        assert s.get(ErasureRow, audit_id).receipt_digest == receipt.digest


def test_delete_now_twice_returns_the_same_receipt(env):
    session_id = consented_session(env)
    first = erase_now(env.ctx, session_id)
    second = erase_now(env.ctx, session_id)
    assert second.repeated and not first.repeated
    assert second.payload == first.payload and second.signature == first.signature


def test_delete_now_of_an_unknown_session_says_session_gone(env):
    with pytest.raises(SessionGone):
        erase_now(env.ctx, "no-such-session")


def test_concurrent_delete_now_and_scheduled_sweep_erase_once(env):
    session_id = consented_session(env)
    generate(env, session_id)
    env.clock.advance(8 * DAY)  # the schedule wants it gone too
    # A second context on its own engine stands in for another process sharing the database.
    other_db = Database(env.settings.database)
    other = ErasureContext(db=other_db, vault=Vault(other_db, env.settings.blob_dir, b"m" * 32, env.clock),
                           signer=env.ctx.signer, settings=env.settings, clock=env.clock)
    receipts, errors = [], []
    start = threading.Barrier(5)

    def run(fn):
        try:
            start.wait()
            receipts.append(fn())
        except Exception as exc:  # noqa: BLE001 — any exception is a failure of the test
            errors.append(exc)

    jobs = [lambda: erase_now(env.ctx, session_id), lambda: erase_now(env.ctx, session_id),
            lambda: erase_now(other, session_id), lambda: erase_now(other, session_id, by="schedule"),
            lambda: retention.sweep(env.ctx, env.clock())]
    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other_db.dispose()

    assert errors == []
    ids = {r.receipt_id for r in receipts if not isinstance(r, retention.SweepResult)}
    assert len(ids) == 1  # everyone got the one receipt that was recorded
    assert row_counts(env.db)["erasures"] == 1 and row_counts(env.db)["sessions"] == 0
    with env.db.session() as s:
        details = list(s.scalars(select(AuditEventRow.detail).where(AuditEventRow.event == audit.ERASED)))
    # One full erasure; the sweep may legitimately have erased the identity category just before it.
    assert sum('"identity,headshots"' in d for d in details) == 1 and len(details) <= 2


def test_hooks_see_the_session_and_a_failing_hook_does_not_stop_erasure(env):
    seen = []

    def broken(session_id):
        raise RuntimeError("cache dir vanished")

    env.ctx.hooks.extend([broken, seen.append])
    session_id = consented_session(env)
    receipt = erase_now(env.ctx, session_id)
    assert seen == [session_id]
    assert receipt.payload["keys_destroyed"] == 1 and env.vault.blobs(session_id) == []


def test_keys_are_destroyed_before_any_hook_runs(env):
    session_id = consented_session(env)
    state = {}
    env.ctx.hooks.append(lambda sid: state.update(key=env.vault.has_key(sid, "identity"),
                                                  files=len(list(env.settings.blob_dir.iterdir()))))
    erase_now(env.ctx, session_id)
    assert state == {"key": False, "files": 0}


def test_erasure_is_recorded_in_the_audit_log_by_whom(env):
    session_id = consented_session(env)
    audit_id = env.vault.audit_id(session_id)
    erase_now(env.ctx, session_id, by="user")
    [event] = [e for e in audit.events_for(env.db, audit_id) if e["event"] == audit.ERASED]
    assert event["detail"] == {"by": "user", "categories": "identity,headshots"}


def test_erasure_leaves_no_per_session_lock_behind(env):
    session_id = consented_session(env, photos=1)
    erase_now(env.ctx, session_id)
    with pytest.raises(SessionGone):
        erase_now(env.ctx, "never-existed")
    erase_now(env.ctx, session_id)  # repeated: the record's receipt
    assert env.ctx._locks == {}


# --- a job that seals while its session is erased -----------------------------------------------------
# The hooks run between the shred and the deletion of the session: a job whose cancellation has not yet
# arrived seals there, as a job thread of the app or a queue worker would at that moment.

def test_a_headshot_sealed_while_delete_now_runs_is_erased_with_it_and_counted_on_the_receipt(env):
    session_id = consented_session(env, photos=2)
    generate(env, session_id, headshots=2)
    env.ctx.hooks.append(lambda sid: env.vault.seal(sid, "headshot", b"\x89PNG late " + MARKER))

    receipt = erase_now(env.ctx, session_id)

    assert list(env.settings.blob_dir.iterdir()) == []  # no file outlives its index row
    assert row_counts(env.db) == {"sessions": 0, "data_keys": 0, "blobs": 0, "consents": 0, "erasures": 1}
    assert receipt.payload["categories"]["headshots"]["headshot"]["count"] == 3
    report = audit_residue(env.settings, env.db, env.vault, env.clock())
    assert report.clean, report.summary()


def test_an_adapter_sealed_while_the_schedule_erases_identity_data_is_erased_with_it(env):
    session_id = consented_session(env, photos=2, adapter=False)
    generate(env, session_id, headshots=1)
    env.ctx.hooks.append(lambda sid: env.vault.seal(sid, "adapter", b"adapter weights late " + MARKER))

    erase_categories(env.ctx, session_id, [IDENTITY])

    assert sorted(ref.kind for ref in env.vault.blobs(session_id)) == ["headshot", "report"]
    assert not env.vault.has_key(session_id, IDENTITY)
    assert len(list(env.settings.blob_dir.iterdir())) == 2
    with pytest.raises(SessionGone):  # and none lands after it
        env.vault.seal(session_id, "adapter", b"adapter weights later")


def test_a_seal_in_flight_when_delete_now_starts_is_waited_for_and_erased(env):
    """A seal past its checks, holding the session's lock, when another thread erases the session: the erasure
    waits for it and erases what it sealed; nothing is left, file or row, and both end without an error."""
    session_id = consented_session(env, photos=1)
    inside, release, outcome = threading.Event(), threading.Event(), {}

    def hold_the_seal_open(_db_session) -> bool:
        inside.set()
        return release.wait(10)

    def seal():
        try:
            with sealing_only_while(hold_the_seal_open):
                env.vault.seal(session_id, "headshot", b"\x89PNG in flight " + MARKER)
            outcome["seal"] = "sealed"
        except SessionGone:
            outcome["seal"] = "refused"

    sealer = threading.Thread(target=seal)
    sealer.start()
    assert inside.wait(10)
    eraser = threading.Thread(target=lambda: outcome.update(receipt=erase_now(env.ctx, session_id)))
    eraser.start()
    time.sleep(0.3)  # the erasure is now waiting for the seal's lock
    assert "receipt" not in outcome
    release.set()
    sealer.join(10)
    eraser.join(30)

    assert outcome["seal"] == "sealed"  # it held the lock first, so it landed, and was then erased
    assert outcome["receipt"].payload["categories"]["headshots"]["headshot"]["count"] == 1
    assert list(env.settings.blob_dir.iterdir()) == []
    assert row_counts(env.db) == {"sessions": 0, "data_keys": 0, "blobs": 0, "consents": 0, "erasures": 1}
