"""Deletion receipts: the deployment's Ed25519 key, and signing and checking receipts with it.

A receipt is one JSON object with sorted keys: what was erased (categories, counts,
ciphertext bytes and sha256 digests), when, by whom, under which policy version, for
which *pseudonymous* session (the audit id, never the session id), the signer's public
key and its fingerprint, and `signature`: base64 Ed25519 over the canonical JSON of
every other field. Anyone holding the deployment's public key (`receipt_public.pem`
under DATA_DIR/keys, publishable) can check it with `python cli.py verify-receipt`.

Checking fails closed, with three verdicts (`ReceiptCheck.status`):

    VALID       well-formed, and signed by the deployment key the caller gave
    UNVERIFIED  well-formed and self-consistent, but checked only against the key inside the
                receipt: anyone can make such a receipt with a key of their own
    INVALID     anything else: not UTF-8, not strict JSON (duplicate keys, NaN), fields missing or
                unknown, bytes not in one of the studio's own renderings, or a bad signature

Only the studio's exact renderings are accepted (canonical JSON, or the pretty download form,
each with or without one trailing newline): a parser that reads a receipt differently from ours
(duplicate keys!) could otherwise be shown a different receipt than the one that verified.

The private key is generated on first start, mode 0600, beside the master key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from privacy.store.key_files import create_key_file
from privacy.store.private_dirs import ensure_private_dir
from settings import Settings, SettingsError

PRIVATE_KEY_NAME = "receipt_ed25519.pem"
PUBLIC_KEY_NAME = "receipt_public.pem"
RECEIPT_VERSION = 1
_FIELDS = frozenset({"version", "receipt_id", "audit_id", "erased_at", "by", "policy_version", "categories",
                     "keys_destroyed", "earlier", "public_key", "public_key_fingerprint", "identity_data_stored"})
# Fields a receipt signed before they existed lacks; it stays valid without them.
_LATER_FIELDS = frozenset({"identity_data_stored"})


def iso_utc(t: float) -> str:
    """A receipt's (and an export's, a CSV's) time: UTC, to the second, with a Z."""
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def canonical_json(obj: Any) -> bytes:
    """The signed form: sorted keys, no whitespace, ASCII only."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def download_json(obj: Any) -> bytes:
    """The form a person downloads and sees: sorted keys, two-space indent, one trailing newline."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False).encode() + b"\n"


def _studio_renderings(obj: Any) -> set[bytes]:
    """Every byte form the studio writes a receipt in. The <pre> on the page may lose the final newline."""
    forms = {canonical_json(obj), download_json(obj).removesuffix(b"\n")}
    return forms | {form + b"\n" for form in forms}


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: Ed25519PublicKey) -> str:
    """sha256 of the raw 32-byte public key, hex: short enough to read out, publish or compare."""
    return hashlib.sha256(_raw_public(key)).hexdigest()


@dataclass(frozen=True)
class Receipt:
    """A signed receipt. `repeated` (not signed) is True when erasure had already happened and this is its record."""

    payload: dict[str, Any]
    signature: str
    repeated: bool = False

    @property
    def receipt_id(self) -> str:
        return self.payload["receipt_id"]

    def to_json(self) -> bytes:
        """The receipt as a person downloads it (pretty, sorted keys): one of the forms verification accepts."""
        return download_json({**self.payload, "signature": self.signature})

    @property
    def digest(self) -> str:
        return hashlib.sha256(canonical_json({**self.payload, "signature": self.signature})).hexdigest()

    @classmethod
    def from_json(cls, data: bytes, *, repeated: bool = False) -> "Receipt":
        obj = json.loads(data)
        signature = obj.pop("signature")
        return cls(obj, signature, repeated)


class ReceiptSigner:
    """Holds the deployment's private key; signs receipt payloads."""

    def __init__(self, private_key: Ed25519PrivateKey):
        self._key = private_key
        self.public_key = private_key.public_key()
        self.fingerprint = fingerprint(self.public_key)

    @property
    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, payload: dict[str, Any]) -> Receipt:
        body = {**payload, "version": RECEIPT_VERSION,
                "public_key": base64.b64encode(_raw_public(self.public_key)).decode(),
                "public_key_fingerprint": self.fingerprint}
        unknown = set(body) - _FIELDS
        if unknown:
            raise ValueError(f"unexpected receipt fields {sorted(unknown)}")
        return Receipt(body, base64.b64encode(self._key.sign(canonical_json(body))).decode())

    def __repr__(self) -> str:  # never show key material
        return f"ReceiptSigner(fingerprint={self.fingerprint[:16]}…)"


def key_dir(settings: Settings) -> Path:
    return settings.data_dir / "keys"


def load_receipt_signer(settings: Settings) -> ReceiptSigner:
    """The deployment's signer: its key file under DATA_DIR/keys, created (0600) with its public PEM on first start."""
    directory = key_dir(settings)
    ensure_private_dir(directory)
    path = directory / PRIVATE_KEY_NAME
    if not path.exists():
        _create_private_key(path)
    if path.stat().st_mode & 0o077:
        raise SettingsError("The receipt signing key is readable by other users; run `chmod 600` on it.")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SettingsError("The receipt signing key under DATA_DIR/keys is not an Ed25519 key.")
    signer = ReceiptSigner(key)
    public = directory / PUBLIC_KEY_NAME
    if not public.exists() or public.read_bytes() != signer.public_pem:
        public.write_bytes(signer.public_pem)  # public on purpose: third parties verify with it
        os.chmod(public, 0o644)
    return signer


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except UnsupportedAlgorithm:
        raise ValueError("not an Ed25519 public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def _create_private_key(path: Path) -> None:
    create_key_file(path, Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


VALID, UNVERIFIED, INVALID = "valid", "unverified", "invalid"


@dataclass(frozen=True)
class ReceiptCheck:
    """The verdict on a receipt: `status` is VALID, UNVERIFIED or INVALID (see the module docstring).

    `key` says what the signature was checked against: "given" (the deployment key) or "embedded".
    Truthy only when VALID: an UNVERIFIED receipt proves nothing about who signed it.
    """

    status: str
    reason: str
    key: str = ""
    receipt: dict[str, Any] | None = None

    @property
    def valid(self) -> bool:
        return self.status == VALID

    def __bool__(self) -> bool:
        return self.valid


class _NotStrictJson(ValueError):
    pass


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _NotStrictJson("duplicate key")
    return obj


def _refuse_constant(name: str) -> Any:
    raise _NotStrictJson(f"{name} is not a JSON number")


def _parse_strict(data: bytes) -> Any:
    """JSON as RFC 8259 means it: UTF-8, no duplicate keys, no NaN/Infinity. Raises ValueError."""
    text = data.decode("utf-8")  # strict; json.loads(bytes) would also guess UTF-16/32
    return json.loads(text, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant)


def verify_receipt(data: bytes, public_key: Ed25519PublicKey | bytes | None = None) -> ReceiptCheck:
    """Check a receipt. Never raises: garbage, tampering and wrong keys all give INVALID.

    With `public_key` (a key or PEM bytes: the deployment's published key) the receipt must have
    been signed by it, and a good one is VALID. Without, only the key embedded in the receipt can
    be checked, which proves integrity but not origin: the best verdict is then UNVERIFIED.
    """
    try:
        obj = _parse_strict(data)
    except _NotStrictJson as exc:
        return ReceiptCheck(INVALID, f"not a receipt: the JSON has a {exc}")
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return ReceiptCheck(INVALID, "not a receipt: the file is not UTF-8 JSON")
    fields = set(obj) - {"signature"} if isinstance(obj, dict) and "signature" in obj else None
    if fields is None or not _FIELDS - _LATER_FIELDS <= fields <= _FIELDS:
        return ReceiptCheck(INVALID, "not a receipt: its fields differ from a deletion receipt's")
    if type(obj["version"]) is not int or obj["version"] != RECEIPT_VERSION:  # `True == 1` in Python
        return ReceiptCheck(INVALID, f"not a receipt this studio understands (version {RECEIPT_VERSION} expected)")
    try:
        form_ok = data in _studio_renderings(obj)
    except (ValueError, RecursionError):
        form_ok = False
    if not form_ok:
        return ReceiptCheck(INVALID, "the file is not byte for byte as the studio wrote it "
                                     "(reordered, re-indented or re-encoded)")
    signature_b64 = obj.pop("signature")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        embedded = Ed25519PublicKey.from_public_bytes(base64.b64decode(obj["public_key"], validate=True))
    except (binascii.Error, ValueError, TypeError):
        return ReceiptCheck(INVALID, "malformed signature or public key")
    if fingerprint(embedded) != obj["public_key_fingerprint"]:
        return ReceiptCheck(INVALID, "the public key fingerprint does not match the embedded key")
    source = "embedded"
    if public_key is not None:
        try:
            trusted = load_public_key(public_key) if isinstance(public_key, bytes) else public_key
        except ValueError:
            return ReceiptCheck(INVALID, "the given public key is not an Ed25519 PEM key")
        if fingerprint(trusted) != fingerprint(embedded):
            return ReceiptCheck(INVALID, "signed by a different key than the one given", "given")
        embedded, source = trusted, "given"
    try:
        embedded.verify(signature, canonical_json(obj))
    except InvalidSignature:
        return ReceiptCheck(INVALID, "the signature does not match: the receipt was altered or not signed by "
                                     "this key", source)
    if source == "embedded":
        return ReceiptCheck(UNVERIFIED, "the signature is self-consistent, but nobody vouches for the key inside "
                                        "the receipt (anyone can sign with a key of their own): check it against "
                                        "the studio's published receipt_public.pem", source, obj)
    return ReceiptCheck(VALID, "signature valid, by the given deployment key", source, obj)
