"""Deletion receipts: signed with the deployment's Ed25519 key; any change breaks the signature.

Checking fails closed: VALID only against the deployment's key, UNVERIFIED against the key a
receipt carries, INVALID for anything not byte for byte as the studio wrote it."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from privacy.lifecycle.erasure import erase_now
from privacy.records.receipts import (
    INVALID,
    PRIVATE_KEY_NAME,
    PUBLIC_KEY_NAME,
    UNVERIFIED,
    VALID,
    ReceiptSigner,
    canonical_json,
    load_receipt_signer,
    verify_receipt,
)
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
    assert verify_receipt(foreign).status == UNVERIFIED  # self-consistent, but nobody vouches for its key...
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


def forge(data: bytes) -> bytes:
    """The genuine receipt's claims, re-signed by an attacker's own key (embedded, as the studio embeds its own)."""
    attacker = ReceiptSigner(Ed25519PrivateKey.generate())
    claims = {k: v for k, v in json.loads(data).items()
              if k not in ("signature", "version", "public_key", "public_key_fingerprint")}
    return attacker.sign(claims).to_json()


def test_receipt_checked_only_against_its_own_key_is_unverified_never_valid(signed):
    _, data, _ = signed
    for receipt in (data, forge(data)):  # the genuine one and the forgery are indistinguishable without our key
        check = verify_receipt(receipt)
        assert check.status == UNVERIFIED and check.key == "embedded"
        assert not check.valid and not check
        assert "nobody vouches" in check.reason


def test_forged_receipt_checked_against_the_deployment_key_is_invalid(signed):
    _, data, public_pem = signed
    check = verify_receipt(forge(data), public_pem)
    assert check.status == INVALID and "different key" in check.reason


@pytest.mark.parametrize("rendering", [
    lambda obj: json.dumps(obj, sort_keys=True, indent=2).encode() + b"\n",  # the download
    lambda obj: json.dumps(obj, sort_keys=True, indent=2).encode(),  # copied from the page's <pre>
    lambda obj: canonical_json(obj),
    lambda obj: canonical_json(obj) + b"\n",
], ids=["download", "page", "canonical", "canonical-newline"])
def test_the_studios_own_renderings_are_valid_against_the_deployment_key(signed, rendering):
    _, data, public_pem = signed
    check = verify_receipt(rendering(json.loads(data)), public_pem)
    assert check.status == VALID and check.valid and check


def duplicate_key(data: bytes) -> bytes:
    """A second `by` placed first: Python keeps the last value (the signed one), other parsers the first."""
    return data.replace(b"{", b'{"by":"schedule",', 1)


def nested_duplicate_key(data: bytes) -> bytes:
    return data.replace(b'"categories": {', b'"categories": {"identity": {},', 1)


@pytest.mark.parametrize("change, why", [
    (duplicate_key, "duplicate key"),
    (nested_duplicate_key, "duplicate key"),
    (lambda d: d.replace(b'"earlier": ', b'"earlier": NaN, "x": ', 1), "NaN"),
    (lambda d: d.decode().encode("utf-16"), "UTF-8"),
    (lambda d: b"\xef\xbb\xbf" + d, "UTF-8"),  # a byte-order mark
    (lambda d: d + b"\xff", "UTF-8"),
], ids=["duplicate", "nested-duplicate", "nan", "utf-16", "bom", "stray-byte"])
def test_receipt_that_is_not_strict_utf8_json_is_invalid(signed, change, why):
    _, data, public_pem = signed
    check = verify_receipt(change(data), public_pem)
    assert check.status == INVALID and why in check.reason, check.reason


def reordered(data: bytes) -> bytes:
    obj = json.loads(data)
    return json.dumps(dict(reversed(list(obj.items()))), indent=2).encode() + b"\n"


@pytest.mark.parametrize("change", [
    reordered,
    lambda d: json.dumps(json.loads(d), sort_keys=True, indent=4).encode() + b"\n",
    lambda d: json.dumps(json.loads(d), sort_keys=True).encode(),  # default separators: ", " and ": "
    lambda d: d + b"\n",  # two trailing newlines
    lambda d: d.replace(b"\n", b"\r\n"),
    lambda d: b" " + d,
    lambda d: d.replace(b'"by": "user"', b'"by": "\\u0075ser"'),  # same string, other escape
], ids=["reordered", "indent-4", "spaced", "two-newlines", "crlf", "leading-space", "escaped"])
def test_receipt_not_byte_for_byte_as_written_is_invalid(signed, change):
    _, data, public_pem = signed
    changed = change(data)
    assert json.loads(changed) == json.loads(data)  # the same claims, and a good signature over them...
    check = verify_receipt(changed, public_pem)
    assert check.status == INVALID and "byte for byte" in check.reason  # ...but not the bytes the studio wrote


@pytest.mark.parametrize("change", [
    lambda r: r.update(note="hello"),
    lambda r: r.pop("earlier"),
    lambda r: r.update(version=2),
    lambda r: r.update(version=True),
], ids=["unknown-field", "missing-field", "version-2", "version-true"])
def test_receipt_with_unknown_or_missing_fields_is_invalid(signed, change):
    _, data, public_pem = signed
    assert verify_receipt(tampered(data, change), public_pem).status == INVALID


def test_cli_says_unverified_and_fails_without_the_deployment_key(signed, tmp_path):
    _, data, _ = signed
    forged = tmp_path / "forged.json"
    forged.write_bytes(forge(data))
    no_keys = tmp_path / "fresh-data"  # a data root without receipt_public.pem
    text = run_cli("verify-receipt", str(forged), data_dir=no_keys)
    assert text.returncode == 1 and text.stdout.startswith("UNVERIFIED: "), text.stdout + text.stderr
    assert "--public-key" in text.stdout and "VALID:" not in text.stdout
    as_json = run_cli("verify-receipt", str(forged), "--json", data_dir=no_keys)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) | {"reason": ""} == {"status": "unverified", "valid": False, "key": "embedded",
                                                           "reason": ""}
    assert not no_keys.exists()  # checking a receipt creates no data root


def test_cli_rejects_a_forged_receipt_given_the_deployment_key(signed, tmp_path):
    env, data, _ = signed
    forged = tmp_path / "forged.json"
    forged.write_bytes(forge(data))
    key = env.data_dir / "keys" / PUBLIC_KEY_NAME
    result = run_cli("verify-receipt", str(forged), "--public-key", str(key), data_dir=tmp_path / "elsewhere")
    assert result.returncode == 1 and result.stdout.startswith("INVALID: ")


def test_cli_accepts_a_genuine_receipt_given_the_deployment_key(signed, tmp_path):
    env, data, _ = signed
    good = tmp_path / "good.json"
    good.write_bytes(data)
    key = env.data_dir / "keys" / PUBLIC_KEY_NAME
    result = run_cli("verify-receipt", str(good), "--public-key", str(key), data_dir=tmp_path / "elsewhere")
    assert result.returncode == 0 and result.stdout.startswith("VALID: "), result.stdout + result.stderr
