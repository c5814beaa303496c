"""Property-based fuzzing of the parsers a stranger's bytes reach: ingest, receipt verification, provenance verify.

Small runs here (fast enough for every CI run); `bench/bench_fuzz.py` runs the same
properties for thousands of examples.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privacy.marks.provenance import Provenance
from privacy.records.receipts import ReceiptSigner, verify_receipt
from settings import load_settings
from tests.hardening.fuzz_targets import check_ingest, check_receipt, mutated, receipt_mutations, seed_images

SEEDS = seed_images()
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
SLOW = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


def _signed() -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    signer = ReceiptSigner(Ed25519PrivateKey.generate())
    receipt = signer.sign({"receipt_id": "r1", "audit_id": "a1", "erased_at": "2026-01-01T00:00:00Z", "by": "user",
                           "policy_version": "v1", "categories": {"identity": {}}, "keys_destroyed": 2,
                           "earlier": {}})
    return receipt.to_json(), signer.public_pem


GENUINE, PUBLIC = _signed()


def test_the_seeds_themselves_are_judged_as_expected():
    codes = [check_ingest(seed) for seed in SEEDS]
    assert codes[:5] == ["accepted"] * 5 and codes[5:7] == ["unsupported_type"] * 2 and codes[7] == "accepted"
    assert verify_receipt(GENUINE, PUBLIC).valid


@FAST
@given(data=mutated(SEEDS))
def test_ingest_never_raises_anything_but_photo_rejected(data):
    check_ingest(data)


@FAST
@given(data=st.binary(max_size=512))
def test_ingest_of_random_bytes_is_refused_cleanly(data):
    assert check_ingest(data) != "accepted" or data[:3] == b"\xff\xd8\xff" or data[:4] in (b"\x89PNG", b"RIFF")


@FAST
@given(data=receipt_mutations(GENUINE))
def test_an_altered_receipt_never_verifies_and_never_raises(data):
    check_receipt(data, PUBLIC, GENUINE)


@FAST
@given(data=st.binary(max_size=2048))
def test_receipt_verification_of_garbage_never_raises(data):
    assert not check_receipt(data, PUBLIC, GENUINE).valid


@pytest.fixture(scope="module")
def provenance(tmp_path_factory):
    return Provenance.from_settings(load_settings({"HEADSHOT_DATA_DIR": str(tmp_path_factory.mktemp("prov"))}))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture], database=None)
@given(data=st.one_of(mutated(SEEDS), st.binary(max_size=256)))
def test_provenance_verify_never_raises_and_never_calls_a_stranger_ours(provenance, data):
    report = provenance.verify_image(data)
    assert not report.is_ours  # none of these bytes were ever marked by this studio


@pytest.mark.extended
@SLOW
@given(data=mutated(SEEDS))
def test_ingest_long_fuzz(data):
    check_ingest(data)
