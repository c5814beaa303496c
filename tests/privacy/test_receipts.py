"""Deletion receipts: signed with the deployment's Ed25519 key; any change breaks the signature."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from privacy.erasure import erase_now
from privacy.receipts import PRIVATE_KEY_NAME, PUBLIC_KEY_NAME, load_receipt_signer, verify_receipt
from tests.privacy.helpers import consented_session, generate, make_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    """One erased session's receipt and the deployment's public key (module-scoped: built once)."""
    env = make_env(tmp_path_factory.mktemp("receipts") / "data")
    session_id = consented_session(env, photos=2)
    generate(env, session_id)
    receipt = erase_now(env.ctx, session_id)
    env.close()
    return env, receipt.to_json(), (env.data_dir / "keys" / PUBLIC_KEY_NAME).read_bytes()


def tampered(data: bytes, change) -> bytes:
    obj = json.loads(data)
    change(obj)
    return json.dumps(obj, indent=2).encode()


def test_deployment_key_is_created_once_private_and_published(tmp_path):
    env = make_env(tmp_path)
    keys = tmp_path / "keys"
    assert stat.S_IMODE((keys / PRIVATE_KEY_NAME).stat().st_mode) == 0o600
    assert b"PUBLIC KEY" in (keys / PUBLIC_KEY_NAME).read_bytes()
    assert load_receipt_signer(env.settings).fingerprint == env.ctx.signer.fingerprint  # same key on restart
    assert "PRIVATE" not in repr(env.ctx.signer)
    env.close()


def test_untouched_receipt_verifies_against_the_deployment_key(signed):
    _, data, public_pem = signed
    check = verify_receipt(data, public_pem)
    assert check.valid and check.key == "given"
    assert check.receipt["by"] == "user"


@pytest.mark.parametrize("change", [
    lambda r: r.update(by="schedule"),
    lambda r: r.update(erased_at="2030-01-01T00:00:00Z"),
    lambda r: r["categories"]["identity"]["photo"].update(count=1),
    lambda r: r["categories"]["identity"]["photo"]["sha256"].pop(),
    lambda r: r.update(audit_id="0" * 16),
    lambda r: r.update(signature=r["signature"][:-4] + "AAA="),
], ids=["by", "time", "count", "digest", "audit_id", "signature"])
def test_tampered_receipt_fails_verification(signed, change):
    _, data, public_pem = signed
    check = verify_receipt(tampered(data, change), public_pem)
    assert not check.valid
    assert not verify_receipt(tampered(data, change)).valid  # also against the embedded key


def test_receipt_signed_by_another_deployment_fails_against_ours(signed, tmp_path):
    _, _, public_pem = signed
    other = make_env(tmp_path)
    foreign = erase_now(other.ctx, consented_session(other)).to_json()
    other.close()
    assert verify_receipt(foreign).valid  # self-consistent...
    check = verify_receipt(foreign, public_pem)  # ...but not ours
    assert not check.valid and "different key" in check.reason


def test_resigning_with_a_swapped_embedded_key_fails(signed, tmp_path):
    _, data, public_pem = signed
    other = make_env(tmp_path)
    forged = other.ctx.signer.sign({k: v for k, v in json.loads(data).items()
                                    if k not in ("signature", "version", "public_key", "public_key_fingerprint")})
    other.close()
    assert not verify_receipt(forged.to_json(), public_pem).valid


@pytest.mark.parametrize("garbage", [b"", b"\xff\xfe\x00", b"[]", b"null", b'{"signature": 5}',
                                     b'{"signature": "x"}', b"not json at all"])
def test_garbage_is_invalid_and_never_raises(garbage):
    assert not verify_receipt(garbage).valid


def run_cli(*args, data_dir):
    env = {**os.environ, "HEADSHOT_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def test_cli_verify_receipt_accepts_a_good_receipt_and_rejects_a_tampered_one(signed, tmp_path):
    env, data, _ = signed
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_bytes(data)
    bad.write_bytes(tampered(data, lambda r: r.update(by="schedule")))
    ok = run_cli("verify-receipt", str(good), data_dir=env.data_dir)
    assert ok.returncode == 0 and ok.stdout.startswith("VALID"), ok.stderr
    no = run_cli("verify-receipt", str(bad), "--json", data_dir=env.data_dir)
    assert no.returncode == 1 and json.loads(no.stdout)["valid"] is False
    missing = run_cli("verify-receipt", str(tmp_path / "nope.json"), data_dir=env.data_dir)
    assert missing.returncode == 2
