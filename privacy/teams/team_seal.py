"""Team encryption: a key pair per team whose private half only the admin key unwraps, and shares sealed to it.

Keys and what holds them:

    admin key        128 random bits in the admin's private link (privacy.store.return_keys.BearerKey);
                     the server stores only its HKDF locator, to find the team
    team key pair    X25519; the public key is stored as is, the private key only wrapped:
                     AES-256-GCM under HKDF-SHA256(admin key, WRAP_LABEL), aad = team id
    a share          sealed to the team's public key; nothing on the server opens it

So the server, even holding the data directory, the database and the master key, has no key
that opens a share: the master key wraps no team key at all, and the wrap key is derived from
an admin key it never stored (tests/privacy/test_teams_at_rest.py tries every key it has).

The sealing is RFC 9180 HPKE in base mode, single shot, suite DHKEM(X25519, HKDF-SHA256) /
HKDF-SHA256 / AES-256-GCM, as implemented by `cryptography.hazmat.primitives.hpke.Suite`
(new in cryptography 46; version 50 is pinned). The standard construction is exactly the
one we would otherwise hand-build: a fresh ephemeral X25519 key per share, HKDF-SHA256 over
the shared secret with the ephemeral and the team's public key as KEM context, then
AES-256-GCM; taking it from the library removes the chance of a home-made mistake in the key
schedule, and the ciphertext is readable by any RFC 9180 implementation given the private
key (an admin's own tools included: the at-rest test opens a real share with the RFC's steps
written out by hand). The `info` string binds each ciphertext to its team,
its share id and what it holds (the image or the display name): it enters the key schedule,
so a sealed blob moved to another share or team, or a sealed name put in place of an image,
fails to open just as a wrong associated-data string would. (The library's public API takes
`info` but not per-message associated data; with one message per context, `info` is the
binding RFC 9180 itself recommends for application context.)

Why HKDF and not a slow KDF for the wrap key: as for return keys, the admin key is 128
uniformly random bits, not a password; a slow KDF would add nothing but cost.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from privacy.store.return_keys import BearerKey

SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
SHARE_MAGIC = b"HST1"  # starts every sealed share file, as the vault's MAGIC starts its blobs
NONCE_BYTES = 12
WRAP_LABEL = b"headshot-studio/team-admin/private-key-wrap/v1"
IMAGE, NAME = "image", "name"


@dataclass(frozen=True, repr=False)
class AdminKey(BearerKey):
    """The team admin's key: finds the team (locator) and unwraps its private key (wrap key); never stored."""

    LOCATOR_LABEL = b"headshot-studio/team-admin/locator/v1"
    CHECK_LABEL = b"headshot-studio/team-admin/check"
    LINK_PARAM = "team_admin"

    @property
    def wrap_key(self) -> bytes:
        return self.derive(WRAP_LABEL)


@dataclass(frozen=True, repr=False)
class InviteToken(BearerKey):
    """An invite link's secret: the server keeps its locator only, so a database copy invites nobody."""

    LOCATOR_LABEL = b"headshot-studio/team-invite/locator/v1"
    CHECK_LABEL = b"headshot-studio/team-invite/check"
    LINK_PARAM = "team_invite"


@dataclass(frozen=True)
class TeamKeys:
    """What the database stores of a team's key pair: the public key, and the private key wrapped."""

    public: bytes   # raw X25519, 32 bytes
    wrapped: bytes  # nonce | AES-256-GCM(wrap key, raw private key, aad = team id)


def new_team_keys(team_id: str, admin_key: AdminKey) -> TeamKeys:
    private = X25519PrivateKey.generate()
    nonce = secrets.token_bytes(NONCE_BYTES)
    wrapped = nonce + AESGCM(admin_key.wrap_key).encrypt(nonce, _raw_private(private), _wrap_aad(team_id))
    return TeamKeys(_raw_public(private.public_key()), wrapped)


def unwrap_private_key(team_id: str, wrapped: bytes, admin_key: AdminKey) -> X25519PrivateKey | None:
    """The team's private key, or None when this admin key does not unwrap it."""
    try:
        raw = AESGCM(admin_key.wrap_key).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _wrap_aad(team_id))
    except InvalidTag:
        return None
    return X25519PrivateKey.from_private_bytes(raw)


def seal(public: bytes, plaintext: bytes, team_id: str, share_id: str, part: str) -> bytes:
    """HPKE-seal `plaintext` (the image, or the display name) of one share to the team's public key."""
    return SHARE_MAGIC + SUITE.encrypt(plaintext, X25519PublicKey.from_public_bytes(public),
                                       info=_info(team_id, share_id, part))


def open_sealed(private: X25519PrivateKey, sealed: bytes, team_id: str, share_id: str, part: str) -> bytes:
    """Open what `seal` made; raises InvalidTag for another team's key, another share's blob, or tampering."""
    if not sealed.startswith(SHARE_MAGIC):
        raise InvalidTag()
    return SUITE.decrypt(sealed[len(SHARE_MAGIC):], private, info=_info(team_id, share_id, part))


def _info(team_id: str, share_id: str, part: str) -> bytes:
    return f"headshot-studio/team-share/v1|{team_id}|{share_id}|{part}".encode()


def _wrap_aad(team_id: str) -> bytes:
    return f"team-private-key|{team_id}".encode()


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _raw_private(key: X25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
