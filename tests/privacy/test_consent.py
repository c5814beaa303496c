"""Consent first: nothing is kept before the three attestations are recorded with the policy version."""

import pytest

from errors import ConsentRequired
from privacy.lifecycle.consent import Attestations, get_consent, record_consent, require_consent
from privacy.records.notice import policy_version, short_notice
from privacy.store.database import Database
from privacy.store.vault import Vault
from settings import load_settings

pytestmark = pytest.mark.databases("sqlite", "postgresql")


@pytest.fixture
def env(tmp_path, database_url):
    s = load_settings({"HEADSHOT_DATA_DIR": str(tmp_path), "HEADSHOT_DATABASE_URL": database_url})
    db = Database(s.database)
    vault = Vault(db, s.blob_dir, b"k" * 32, clock=lambda: 1000.0)
    yield s, db, vault
    db.dispose()


@pytest.mark.parametrize("attestations", [
    Attestations(own_photos=False, adult=True, purpose=True),
    Attestations(own_photos=True, adult=False, purpose=True),
    Attestations(own_photos=True, adult=True, purpose=False),
])
def test_consent_needs_every_attestation(env, attestations):
    s, db, vault = env
    session_id = vault.new_session()
    with pytest.raises(ConsentRequired) as err:
        record_consent(db, session_id, attestations, policy_version(s), now=1000.0)
    assert "Nothing has been stored" in err.value.message
    assert get_consent(db, session_id) is None


def test_consent_record_carries_the_policy_version_and_time(env):
    s, db, vault = env
    session_id = vault.new_session()
    record = record_consent(db, session_id, Attestations(True, True, True), policy_version(s), now=1234.5)
    assert record.policy_version == policy_version(s)
    assert record.given_at == 1234.5
    assert record.attestations == Attestations(True, True, True)
    assert require_consent(db, session_id) == record


def test_store_call_without_consent_is_refused_and_leaves_no_file(env):
    s, db, vault = env
    session_id = vault.new_session()
    with pytest.raises(ConsentRequired):
        vault.seal(session_id, "photo", b"\xff\xd8\xff pretend photo")
    assert list(s.blob_dir.iterdir()) == []
    assert vault.blobs(session_id) == []


def test_a_handler_without_a_session_is_refused(env):
    _, db, _ = env
    with pytest.raises(ConsentRequired):
        require_consent(db, None)
    with pytest.raises(ConsentRequired):
        require_consent(db, "not-a-session")


def test_policy_version_changes_when_a_retention_promise_changes(tmp_path):
    a = load_settings({})
    b = load_settings({"HEADSHOT_UPLOAD_RETENTION_HOURS": "2"})
    assert "**1 hour**" in short_notice(a) and "**2 hours**" in short_notice(b)
    assert policy_version(a) != policy_version(b)
