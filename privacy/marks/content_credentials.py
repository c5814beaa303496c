"""C2PA content credentials: the signing certificate, signing a headshot's manifest, and reading one back.

The certificate comes from configuration (a PEM chain + key) or, by default, from a
local CA and signer generated on first start under DATA_DIR/keys (keys 0600). The CA
is the trust anchor `read_credentials` checks against; the signer is short-lived and
renewed (same CA) when it gets close to expiry, so verification of earlier headshots
keeps working. Everything is signed and read in memory (BytesIO streams): no image
bytes ever touch a temp file.

Manifests are written for people who should learn nothing about the person pictured:
no thumbnail (c2pa-rs would otherwise embed a copy of the face), no ingredients, no
title, no time finer than the claim signature's own, no author.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from errors import OperatorError
from privacy.store.key_files import replace_key_file

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
TRAINING_MINING_LABEL = "cawg.training-mining"
TRAINING_MINING_USES = ("cawg.data_mining", "cawg.ai_inference", "cawg.ai_generative_training", "cawg.ai_training")

CA_VALIDITY = dt.timedelta(days=20 * 365)
SIGNER_VALIDITY = dt.timedelta(days=365)
RENEW_WITHIN = dt.timedelta(days=30)  # a signer this close to expiry is replaced at start-up

_ORG = "Headshot Studio (local)"


class CredentialsError(OperatorError):
    """The C2PA certificate or key is missing, malformed, expired, or rejected by the signer."""


@dataclass(frozen=True)
class SigningIdentity:
    """PEM material for signing: the chain (signer first) and key, and the anchor verification trusts."""

    chain_pem: bytes
    key_pem: bytes = field(repr=False)  # never printed: it is a private key
    anchor_pem: bytes

    @property
    def signer_certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificates(self.chain_pem)[0]


@dataclass(frozen=True)
class CredentialReading:
    """What an image's C2PA manifest store says, reduced to what verify reports."""

    present: bool
    state: str  # absent | invalid | tampered | valid | trusted
    source_type: str | None = None
    claim_generator: str | None = None
    training_mining: dict[str, str] | None = None
    failures: tuple[str, ...] = ()


# --- the certificate ------------------------------------------------------------------------
def load_identity(keys_dir: Path, *, cert_file: Path | None = None, key_file: Path | None = None,
                  now: dt.datetime | None = None) -> SigningIdentity:
    """The configured signing identity, or the local CA + signer under `keys_dir` (created or renewed)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if cert_file is not None and key_file is not None:
        return _configured_identity(cert_file, key_file, now)
    return _local_identity(keys_dir, now)


def load_anchor(keys_dir: Path, *, cert_file: Path | None = None) -> bytes | None:
    """The trust anchor PEM, without creating or renewing anything (for read-only verification)."""
    try:
        if cert_file is not None:
            chain = x509.load_pem_x509_certificates(cert_file.read_bytes())
            return chain[-1].public_bytes(serialization.Encoding.PEM)
        return (keys_dir / "c2pa-ca.pem").read_bytes()
    except (OSError, ValueError):
        return None


def _configured_identity(cert_file: Path, key_file: Path, now: dt.datetime) -> SigningIdentity:
    try:
        chain_pem, key_pem = cert_file.read_bytes(), key_file.read_bytes()
        chain = x509.load_pem_x509_certificates(chain_pem)
        serialization.load_pem_private_key(key_pem, password=None)
    except (OSError, ValueError) as exc:
        raise CredentialsError("HEADSHOT_C2PA_CERT_FILE / HEADSHOT_C2PA_KEY_FILE cannot be read as a PEM "
                               f"certificate chain and unencrypted PEM key ({type(exc).__name__}).") from None
    if chain[0].not_valid_after_utc <= now:
        raise CredentialsError("The configured C2PA signing certificate has expired; renew HEADSHOT_C2PA_CERT_FILE.")
    # The last certificate of the configured chain is the anchor verify trusts: include the root.
    return SigningIdentity(chain_pem, key_pem, chain[-1].public_bytes(serialization.Encoding.PEM))


def _local_identity(keys_dir: Path, now: dt.datetime) -> SigningIdentity:
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_key_path, ca_path = keys_dir / "c2pa-ca.key", keys_dir / "c2pa-ca.pem"
    key_path, cert_path = keys_dir / "c2pa-signer.key", keys_dir / "c2pa-signer.pem"
    if not ca_path.exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _make_ca(ca_key, now)
        replace_key_file(ca_key_path, _key_pem(ca_key))
        ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
    if ca_cert.not_valid_after_utc <= now + RENEW_WITHIN:
        # Replacing the CA would silently make every earlier headshot "untrusted"; an operator decides.
        raise CredentialsError(f"The local C2PA CA in {keys_dir.name}/ expires soon or has expired; move the "
                               "c2pa-ca.* files aside to create a new one "
                               "(earlier headshots stop verifying as trusted).")
    signer_cert = x509.load_pem_x509_certificate(cert_path.read_bytes()) if cert_path.exists() else None
    stale = (signer_cert is None or not key_path.exists()
             or signer_cert.not_valid_after_utc <= now + RENEW_WITHIN
             or signer_cert.issuer != ca_cert.subject)
    if stale:
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        key = ec.generate_private_key(ec.SECP256R1())
        signer_cert = _make_signer(key, ca_cert, ca_key, now)  # type: ignore[arg-type]
        replace_key_file(key_path, _key_pem(key))
        cert_path.write_bytes(signer_cert.public_bytes(serialization.Encoding.PEM))
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    chain = signer_cert.public_bytes(serialization.Encoding.PEM) + ca_pem
    return SigningIdentity(chain, key_path.read_bytes(), ca_pem)


def _make_ca(key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Headshot Studio local C2PA root")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, hashes.SHA256()))


def _make_signer(key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate,
                 ca_key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    # C2PA's certificate profile: end-entity, digitalSignature, an allowed EKU (emailProtection), AKI.
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Headshot Studio C2PA signer")])
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (x509.CertificateBuilder().subject_name(name).issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + SIGNER_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


# --- signing --------------------------------------------------------------------------------
def manifest_definition(*, generator_name: str, generator_version: str,
                        parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest every headshot gets: created by a trained model, not to be mined or trained on."""
    created: dict[str, Any] = {
        "action": "c2pa.created",
        "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
        "softwareAgent": {"name": generator_name, "version": generator_version},
    }
    if parameters:
        created["parameters"] = parameters
    return {
        "claim_generator_info": [{"name": generator_name, "version": generator_version}],
        "format": "image/jpeg",
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": [created]}},
            {"label": TRAINING_MINING_LABEL,
             "data": {"entries": {use: {"use": "notAllowed"} for use in TRAINING_MINING_USES}}},
        ],
    }


class ContentCredentials:
    """Signs JPEG bytes with a C2PA manifest and reads manifests back, trusting `identity.anchor_pem`."""

    def __init__(self, identity: SigningIdentity | None, anchor_pem: bytes | None = None):
        """`identity` None: read-only (verify without keys); the anchor defaults to the identity's."""
        self.identity = identity
        anchor_pem = anchor_pem or (identity.anchor_pem if identity else None)
        self._signer_info = None if identity is None else c2pa.C2paSignerInfo(
            c2pa.C2paSigningAlg.ES256, identity.chain_pem, identity.key_pem, None)
        # No thumbnail: c2pa-rs would otherwise embed a small copy of the face in the manifest.
        self._sign_settings = {"builder": {"thumbnail": {"enabled": False}},
                               "verify": {"verify_after_sign": False}}
        # Offline verification only: never fetch remote manifests or OCSP (nothing phones home).
        self._trusted_settings = {"trust": {"trust_anchors": anchor_pem.decode()} if anchor_pem else {},
                                  "verify": {"verify_trust": True, "remote_manifest_fetch": False, "ocsp_fetch": False}}
        self._untrusted_settings = {"verify": {"verify_trust": False, "remote_manifest_fetch": False,
                                               "ocsp_fetch": False}}

    def sign(self, jpeg: bytes, definition: dict[str, Any]) -> bytes:
        """`jpeg` with `definition` signed and embedded; raises CredentialsError if the SDK refuses."""
        if self._signer_info is None:
            raise CredentialsError("This ContentCredentials was built without a signing identity.")
        try:
            with c2pa.Signer.from_info(self._signer_info) as signer, \
                    c2pa.Context.from_dict(self._sign_settings) as context, \
                    c2pa.Builder(definition, context=context) as builder:
                out = io.BytesIO()
                builder.sign(signer, "image/jpeg", io.BytesIO(jpeg), out)
                return out.getvalue()
        except c2pa.C2paError as exc:
            raise CredentialsError(f"C2PA signing failed: {type(exc).__name__}: {exc}") from None

    def read(self, data: bytes, mime: str = "image/jpeg") -> CredentialReading:
        """What `data`'s manifest says and whether it holds: never raises on arbitrary bytes."""
        try:
            trusted = _read_store(data, mime, self._trusted_settings)
            if trusted is None:
                return CredentialReading(present=False, state="absent")
            plain = _read_store(data, mime, self._untrusted_settings) or trusted
        except Exception:  # noqa: BLE001 - the SDK refusing arbitrary bytes must not crash a verify
            # Unparseable: report a manifest only if there are traces of one (a JUMBF "c2pa" box).
            present = b"jumb" in data and b"c2pa" in data
            return CredentialReading(present=present, state="invalid" if present else "absent")
        return _reading(trusted, plain)


def _read_store(data: bytes, mime: str, settings: dict[str, Any]) -> dict[str, Any] | None:
    with c2pa.Context.from_dict(settings) as context:
        reader = c2pa.Reader.try_create(mime, io.BytesIO(data), None, context)
        if reader is None:
            return None
        with reader:
            return json.loads(reader.json())


def _failure_codes(store: dict[str, Any]) -> tuple[str, ...]:
    active = (store.get("validation_results") or {}).get("activeManifest") or {}
    codes = [f.get("code", "") for f in active.get("failure", [])]
    codes += [s.get("code", "") for s in store.get("validation_status", []) or []]
    return tuple(dict.fromkeys(c for c in codes if c))


def _reading(trusted: dict[str, Any], plain: dict[str, Any]) -> CredentialReading:
    manifest = (trusted.get("manifests") or {}).get(trusted.get("active_manifest") or "", {})
    source_type, mining = None, None
    for assertion in manifest.get("assertions", []):
        label, data = assertion.get("label", ""), assertion.get("data") or {}
        if label.startswith("c2pa.actions"):
            for action in data.get("actions", []):
                if action.get("action") == "c2pa.created":
                    source_type = action.get("digitalSourceType")
        elif label == TRAINING_MINING_LABEL:
            mining = {use: entry.get("use") for use, entry in (data.get("entries") or {}).items()}
    generator = next(iter(manifest.get("claim_generator_info") or []), {})
    trusted_failures, plain_failures = _failure_codes(trusted), _failure_codes(plain)
    if trusted.get("validation_state") == "Trusted" and not trusted_failures:
        state = "trusted"
    elif any(".mismatch" in code for code in plain_failures):
        state = "tampered"  # a hash binding fails: the pixels or bytes changed after signing
    elif plain.get("validation_state") in ("Valid", "Trusted") and not plain_failures:
        state = "valid"  # intact and well signed, but not by a certificate our anchor issued
    else:
        state = "invalid"
    name = " ".join(str(generator.get(k, "")) for k in ("name", "version")).strip() or None
    return CredentialReading(present=True, state=state, source_type=source_type, claim_generator=name,
                             training_mining=mining, failures=tuple(dict.fromkeys(trusted_failures + plain_failures)))
