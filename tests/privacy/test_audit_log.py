"""The audit log holds events and counts under a pseudonym — never names, paths, images or addresses (promise 19)."""

import pytest
from sqlalchemy import select

from privacy.lifecycle.erasure import erase_now
from privacy.lifecycle.export import export_session
from privacy.records import audit
from privacy.store.database import AuditEventRow
from tests.privacy.helpers import MARKER, consented_session, generate


def test_events_are_recorded_in_order_with_their_counts(env):
    session_id = consented_session(env)
    audit_id = env.vault.audit_id(session_id)
    audit.record_event(env.db, audit_id, audit.CONSENT_GIVEN, 10.0)
    audit.record_event(env.db, audit_id, audit.PHOTOS_SCREENED, 11.0, accepted=4, rejected=1)
    audit.record_event(env.db, audit_id, audit.TRAINING_FAILED, 12.0, error="RuntimeError")
    assert audit.events_for(env.db, audit_id) == [
        {"event": "consent_given", "at": 10.0, "detail": {}},
        {"event": "photos_screened", "at": 11.0, "detail": {"accepted": 4, "rejected": 1}},
        {"event": "training_failed", "at": 12.0, "detail": {"error": "RuntimeError"}},
    ]


@pytest.mark.parametrize("details", [
    {"file": "IMG_2041.jpg"},
    {"path": "/data/gradio-tmp/abc/selfie.png"},
    {"note": "Barack Obama at the White House"},
    {"email": "person@example.org"},
    {"ip": "203.0.113.7"},
    {"embedding": [0.12, -0.3, 0.08]},
    {"image": b"\xff\xd8\xff\xe0"},
    {"score": 0.73},
    {"name": "x" * 41},
    {"Bad-Key": 1},
])
def test_values_that_could_carry_personal_data_are_refused(env, details):
    audit_id = env.vault.audit_id(consented_session(env, photos=0, adapter=False))
    with pytest.raises(ValueError) as err:
        audit.record_event(env.db, audit_id, audit.PHOTOS_SCREENED, 1.0, **details)
    for value in details.values():
        assert str(value) not in str(err.value)  # the refusal does not repeat the data either
    assert audit.events_for(env.db, audit_id) == []


def test_a_session_id_is_refused_as_the_audit_key(env):
    session_id = consented_session(env, photos=0, adapter=False)
    with pytest.raises(ValueError):
        audit.record_event(env.db, session_id, audit.CONSENT_GIVEN, 1.0)


def test_unknown_events_are_refused(env):
    with pytest.raises(ValueError):
        audit.record_event(env.db, "0123456789abcdef", "photo_viewed", 1.0)


def test_client_ip_is_kept_only_when_the_operator_enabled_it(env):
    audit_id = "0123456789abcdef"
    audit.record_event(env.db, audit_id, audit.CONSENT_GIVEN, 1.0, client_ip="203.0.113.7")
    audit.record_event(env.db, audit_id, audit.CONSENT_GIVEN, 2.0, client_ip="203.0.113.7", log_client_ip=True)
    assert [e["detail"] for e in audit.events_for(env.db, audit_id)] == [{}, {"client_ip": "203.0.113.7"}]
    with pytest.raises(ValueError):
        audit.record_event(env.db, audit_id, audit.CONSENT_GIVEN, 3.0, client_ip="not an ip", log_client_ip=True)


def test_purge_removes_only_events_older_than_the_period(env):
    audit_id = "0123456789abcdef"
    for at in (100.0, 200.0, 300.0):
        audit.record_event(env.db, audit_id, audit.CONSENT_GIVEN, at)
    assert audit.purge_old_events(env.db, now=350.0, keep_seconds=100.0) == 2
    assert [e["at"] for e in audit.events_for(env.db, audit_id)] == [300.0]


def test_a_whole_session_leaves_no_personal_data_in_the_log(env):
    session_id = consented_session(env)
    audit_id = env.vault.audit_id(session_id)
    audit.record_event(env.db, audit_id, audit.CONSENT_GIVEN, env.clock())
    audit.record_event(env.db, audit_id, audit.PHOTOS_SCREENED, env.clock(), accepted=3, rejected=0)
    audit.record_event(env.db, audit_id, audit.TRAINING_STARTED, env.clock(), photos=3)
    audit.record_event(env.db, audit_id, audit.TRAINING_FINISHED, env.clock())
    generate(env, session_id)
    audit.record_event(env.db, audit_id, audit.HEADSHOTS_GENERATED, env.clock(), count=2, held_back=0)
    export_session(env.ctx, session_id)
    erase_now(env.ctx, session_id)
    with env.db.session() as s:
        rows = list(s.scalars(select(AuditEventRow)))
    log_text = " ".join(f"{r.audit_id} {r.event} {r.detail}" for r in rows)
    assert {r.event for r in rows} == {"consent_given", "photos_screened", "training_started", "training_finished",
                                       "headshots_generated", "data_exported", "erased"}
    assert {r.audit_id for r in rows} == {audit_id}
    for secret in (session_id, MARKER.decode(), ".jpg", ".png", "/", "JFIF", "PNG"):
        assert secret not in log_text
