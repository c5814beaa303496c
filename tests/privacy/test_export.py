"""Export: the owner downloads their headshots, consent record, audit trail and, if asked, their adapter
(promise 17)."""

import io
import json
import zipfile

import pytest

from errors import SessionGone
from privacy.lifecycle import retention
from privacy.lifecycle.erasure import erase_now
from privacy.lifecycle.export import ADAPTER_DIR, NoAdapter, export_session
from privacy.records import audit
from privacy.records.notice import policy_version
from tests.privacy.helpers import HOUR, consented_session, generate


def open_zip(data: bytes) -> zipfile.ZipFile:
    zf = zipfile.ZipFile(io.BytesIO(data))
    assert zf.testzip() is None
    return zf


def test_export_holds_headshots_consent_and_audit_trail_but_not_the_adapter_by_default(env):
    session_id = consented_session(env)
    generate(env, session_id, headshots=2)
    headshots = [env.vault.open(session_id, r.id) for r in env.vault.blobs(session_id, "headshot")]

    zf = open_zip(export_session(env.ctx, session_id))

    assert sorted(zf.namelist()) == ["audit_events.json", "consent.json", "headshots/headshot_01.png",
                                     "headshots/headshot_02.png", "report.json"]
    assert [zf.read(f"headshots/headshot_0{i}.png") for i in (1, 2)] == headshots
    consent = json.loads(zf.read("consent.json"))
    assert consent["policy_version"] == policy_version(env.settings)
    assert consent["attestations"] == {"own_photos": True, "adult": True, "purpose": True}
    trail = json.loads(zf.read("audit_events.json"))
    assert trail["audit_id"] == env.vault.audit_id(session_id)
    assert trail["events"][-1]["event"] == "data_exported"
    assert trail["events"][-1]["detail"] == {"headshots": 2, "adapter": False}


def test_adapter_is_exported_only_on_request_as_the_converters_files(env):
    session_id = consented_session(env)
    generate(env, session_id)
    assert not any(n.startswith(ADAPTER_DIR) for n in open_zip(export_session(env.ctx, session_id)).namelist())
    converted = []

    def to_files(adapter_bytes: bytes) -> dict[str, bytes]:
        converted.append(adapter_bytes)
        return {"lora.safetensors": b"lora:" + adapter_bytes, "emb.safetensors": b"emb"}

    zf = open_zip(export_session(env.ctx, session_id, include_adapter=True, adapter_files=to_files))
    [adapter] = env.vault.blobs(session_id, "adapter")
    assert converted == [env.vault.open(session_id, adapter.id)]
    assert zf.read(ADAPTER_DIR + "lora.safetensors") == b"lora:" + converted[0]
    assert zf.read(ADAPTER_DIR + "emb.safetensors") == b"emb"
    events = audit.events_for(env.db, env.vault.audit_id(session_id))
    assert events[-1]["detail"] == {"headshots": 2, "adapter": True}


def test_adapter_export_after_identity_erasure_says_there_is_none(env):
    session_id = consented_session(env)
    generate(env, session_id)
    env.clock.advance(HOUR)
    retention.sweep(env.ctx, env.clock())
    with pytest.raises(NoAdapter):
        export_session(env.ctx, session_id, include_adapter=True, adapter_files=lambda b: {"x": b})
    assert "headshots/headshot_01.png" in open_zip(export_session(env.ctx, session_id)).namelist()


def test_export_of_an_erased_session_is_refused(env):
    session_id = consented_session(env)
    erase_now(env.ctx, session_id)
    with pytest.raises(SessionGone):
        export_session(env.ctx, session_id)
