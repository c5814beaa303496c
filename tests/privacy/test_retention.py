"""Retention: each category is erased at its stated time (promises 3, 4, 7), moved by an injected clock."""

import pytest
from sqlalchemy import func, select

from errors import SessionGone
from privacy.lifecycle import retention
from privacy.records import audit
from privacy.store.database import AuditEventRow, ConsentRow, ErasureRow, SessionRow
from privacy.store.vault import HEADSHOTS, IDENTITY
from tests.privacy.helpers import DAY, HOUR, T0, consented_session, generate, make_env

pytestmark = pytest.mark.databases("sqlite", "postgresql")


def kinds_left(env, session_id):
    return sorted({ref.kind for ref in env.vault.blobs(session_id)})


def erasure_records(env):
    with env.db.session() as s:
        return list(s.scalars(select(ErasureRow)))


def test_retention_policy_comes_from_the_running_settings(tmp_path):
    env = make_env(tmp_path, upload_retention_hours="2", session_hard_cap_hours="12", headshot_retention_days="3")
    assert env.policy == retention.RetentionPolicy(2 * HOUR, 12 * HOUR, 3 * DAY, 90 * DAY)
    env.close()


def test_consent_starts_the_hard_cap_and_generation_the_shorter_clocks(env):
    session_id = consented_session(env)
    assert retention.expiry_of(env.db, session_id).identity_expires_at == T0 + 24 * HOUR
    env.clock.advance(2 * HOUR)
    generate(env, session_id)
    expiry = retention.expiry_of(env.db, session_id)
    assert expiry.identity_expires_at == T0 + 3 * HOUR
    assert expiry.headshots_expires_at == T0 + 2 * HOUR + 7 * DAY
    assert expiry.left == (IDENTITY, HEADSHOTS)
    assert expiry.seconds_left(IDENTITY, env.clock()) == HOUR


def test_generation_never_extends_the_hard_cap(env):
    session_id = consented_session(env)
    env.clock.advance(23.5 * HOUR)
    generate(env, session_id)
    assert retention.expiry_of(env.db, session_id).identity_expires_at == T0 + 24 * HOUR


def test_categories_left_at_each_stage(env):
    session_id = consented_session(env, photos=2)
    generate(env, session_id, headshots=3)
    audit_id = env.vault.audit_id(session_id)
    generated_at = env.clock()

    env.clock.now = generated_at + HOUR - 1  # just before the upload retention ends: everything is there
    assert not retention.sweep(env.ctx, env.clock()).erased_anything
    assert kinds_left(env, session_id) == ["adapter", "embedding", "headshot", "photo", "report"]

    env.clock.now = generated_at + HOUR  # upload retention over: only the headshots remain
    result = retention.sweep(env.ctx, env.clock())
    assert result.identity_erased == 1 and result.sessions_erased == 0
    assert kinds_left(env, session_id) == ["headshot", "report"]
    assert not env.vault.has_key(session_id, IDENTITY) and env.vault.has_key(session_id, HEADSHOTS)
    assert retention.expiry_of(env.db, session_id).left == (HEADSHOTS,)

    env.clock.now = generated_at + 7 * DAY - 1
    assert not retention.sweep(env.ctx, env.clock()).erased_anything
    assert kinds_left(env, session_id) == ["headshot", "report"]

    env.clock.now = generated_at + 7 * DAY  # headshot retention over: nothing but the erasure record
    result = retention.sweep(env.ctx, env.clock())
    assert result.sessions_erased == 1 and result.headshots_erased == 1
    with pytest.raises(SessionGone):
        retention.expiry_of(env.db, session_id)
    assert list(env.settings.blob_dir.iterdir()) == []
    with env.db.session() as s:
        assert s.scalar(select(func.count()).select_from(SessionRow)) == 0
        assert s.scalar(select(func.count()).select_from(ConsentRow)) == 0
    [record] = erasure_records(env)
    assert (record.audit_id, record.by, record.erased_at) == (audit_id, "schedule", generated_at + 7 * DAY)
    erased = [e["detail"] for e in audit.events_for(env.db, audit_id) if e["event"] == audit.ERASED]
    assert erased == [{"by": "schedule", "categories": "identity"},
                      {"by": "schedule", "categories": "identity,headshots"}]


def test_session_that_never_generates_is_erased_at_the_hard_cap(env):
    session_id = consented_session(env)
    env.clock.now = T0 + 24 * HOUR - 1
    retention.sweep(env.ctx, env.clock())
    assert kinds_left(env, session_id) == ["adapter", "embedding", "photo"]
    env.clock.now = T0 + 24 * HOUR
    result = retention.sweep(env.ctx, env.clock())
    assert result.identity_erased == 1 and result.sessions_erased == 1
    assert env.vault.blobs(session_id) == []
    assert [r.by for r in erasure_records(env)] == ["schedule"]


def test_unconsented_sessions_are_removed_after_the_hard_cap(env):
    old = env.vault.new_session()
    env.clock.advance(2 * HOUR)
    young = env.vault.new_session()
    env.clock.now = T0 + 24 * HOUR
    assert retention.sweep(env.ctx, env.clock()).unconsented_removed == 1
    with env.db.session() as s:
        assert s.get(SessionRow, old) is None and s.get(SessionRow, young) is not None
    assert erasure_records(env) == []  # nothing was ever stored for them: nothing to record


def test_audit_events_and_erasure_records_are_purged_after_the_audit_period(env):
    session_id = consented_session(env)
    audit_id = env.vault.audit_id(session_id)
    audit.record_event(env.db, audit_id, audit.CONSENT_GIVEN, env.clock())
    env.clock.now = T0 + 24 * HOUR
    retention.sweep(env.ctx, env.clock())
    assert len(erasure_records(env)) == 1 and audit.events_for(env.db, audit_id)

    env.clock.now = T0 + 24 * HOUR + 90 * DAY + 1
    result = retention.sweep(env.ctx, env.clock())
    assert result.events_purged >= 2 and result.records_purged == 1
    assert audit.events_for(env.db, audit_id) == [] and erasure_records(env) == []
    with env.db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEventRow)) == 0


def test_headshots_shorter_lived_than_uploads_are_erased_alone(tmp_path, database_url):
    env = make_env(tmp_path, upload_retention_hours="2", headshot_retention_days="0.05",  # 1.2 h
                   database_url=database_url)
    session_id = consented_session(env)
    generate(env, session_id)
    env.clock.advance(1.2 * HOUR)
    result = retention.sweep(env.ctx, env.clock())
    assert result.headshots_erased == 1 and result.sessions_erased == 0
    assert kinds_left(env, session_id) == ["adapter", "embedding", "photo"]
    env.clock.advance(0.8 * HOUR)
    assert retention.sweep(env.ctx, env.clock()).sessions_erased == 1
    assert env.vault.blobs(session_id) == []
    env.close()


def test_sweep_is_idempotent(env):
    session_id = consented_session(env)
    generate(env, session_id)
    env.clock.advance(8 * DAY)
    first = retention.sweep(env.ctx, env.clock())
    second = retention.sweep(env.ctx, env.clock())
    assert first.sessions_erased == 1 and not second.erased_anything and second.failures == 0
    assert len(erasure_records(env)) == 1


def test_identity_data_cannot_be_sealed_after_its_erasure_time(env):
    session_id = consented_session(env, photos=1)
    generate(env, session_id)
    env.clock.advance(HOUR)  # the upload retention is over, even before any sweep ran
    with pytest.raises(SessionGone, match="erased on schedule"):
        env.vault.seal(session_id, "photo", b"a late photo")
    with pytest.raises(SessionGone):
        env.vault.seal(session_id, "adapter", b"an adapter from a training run that ran past it")
    env.vault.seal(session_id, "headshot", b"headshots still belong to their owner")  # a different clock


def test_identity_data_that_raced_its_erasure_is_erased_by_the_next_sweep(env):
    session_id = consented_session(env, photos=1)
    generate(env, session_id)
    late = env.vault.seal(session_id, "adapter", b"sealed just before the erasure mark was set")
    with env.db.session.begin() as s:  # the sweep's erasure committed its mark after this seal
        s.get(SessionRow, session_id).identity_erased_at = env.clock()
    env.clock.advance(HOUR)
    retention.sweep(env.ctx, env.clock())
    assert late.id not in {ref.id for ref in env.vault.blobs(session_id)}
    assert kinds_left(env, session_id) == ["headshot", "report"]
    assert not env.vault.has_key(session_id, IDENTITY)
