"""Return keys: the owner's private way back to a session. The server keeps a locator, never the key.

At consent the studio draws 128 random bits, the return key, and hands them to the owner once:
as a private link whose key sits in the URL fragment (`/#key=…`, which browsers never send to
a server, so it reaches no access log and no Referer) and as a short code to write down
(Crockford base32, grouped, with a check character pair against typos).

From the key, HKDF-SHA256 derives two values with different labels:

* the **locator**, stored in the database, which finds the session when the key is presented;
* the **owner key**, never stored, which wraps the session's headshots key (`privacy.store.vault`), so
  stored headshots are unreadable to anyone without the return key: the operator, a thief with
  the disk and the master key, a backup.

Why HKDF and not a slow KDF such as scrypt or Argon2id: slow KDFs protect secrets people choose,
which can be guessed. This key is 128 uniformly random bits, so the locator can only be inverted
by trying 2^128 keys whatever the KDF; a slow one would add nothing but a CPU cost an attacker
could make the server pay on every guess.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 16  # 128 bits
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
_CONFUSABLE = str.maketrans({"I": "1", "L": "1", "O": "0"})
CODE_CHARS = 26  # ceil(128 / 5)
CHECK_CHARS = 2
GROUP = 4
LOCATOR_LABEL = b"headshot-studio/return-key/locator/v1"
OWNER_KEY_LABEL = b"headshot-studio/return-key/headshots-wrap/v1"


@dataclass(frozen=True)
class BearerKey:
    """128 random bits handed to their holder once; the server keeps only labelled HKDF derivations of them.

    Subclasses name their labels, so that the same bits can never serve two purposes: a return key's
    locator is not a team admin key's locator (privacy.teams.team_seal), nor an invite's.
    """

    raw: bytes
    LOCATOR_LABEL: ClassVar[bytes]
    CHECK_LABEL: ClassVar[bytes]
    LINK_PARAM: ClassVar[str]  # the name in a private link's fragment: `/#<LINK_PARAM>=<code>`

    def __post_init__(self) -> None:
        if len(self.raw) != KEY_BYTES:
            raise ValueError("a bearer key is 16 bytes")

    @classmethod
    def new(cls):
        return cls(secrets.token_bytes(KEY_BYTES))

    @property
    def code(self) -> str:
        """28 characters in groups of four, e.g. `7K2Q-…`: what a person copies or writes down."""
        chars = _encode(self.raw) + _check(self.raw, self.CHECK_LABEL)
        return "-".join(chars[i:i + GROUP] for i in range(0, len(chars), GROUP))

    @property
    def locator(self) -> str:
        return self.derive(self.LOCATOR_LABEL).hex()

    def derive(self, label: bytes) -> bytes:
        """A 32-byte key for one purpose (`label`), never stored: e.g. the key that wraps what only the holder opens."""
        return _derive(self.raw, label)

    def link(self, base_url: str) -> str:
        """The private link. The key sits in the fragment, which browsers never send to a server."""
        return f"{base_url.rstrip('/')}/#{self.LINK_PARAM}={self.code}"

    def __repr__(self) -> str:  # never show key material
        return f"{type(self).__name__}(…)"


@dataclass(frozen=True, repr=False)
class ReturnKey(BearerKey):
    LOCATOR_LABEL = LOCATOR_LABEL
    CHECK_LABEL = b"headshot-studio/return-key/check"
    LINK_PARAM = "key"

    @property
    def owner_key(self) -> bytes:
        return self.derive(OWNER_KEY_LABEL)


K = TypeVar("K", bound=BearerKey)


def parse_return_key(text: str | None) -> ReturnKey | None:
    """A code as typed or pasted (any case, with or without dashes, or a whole link); None if it is not one."""
    return parse_bearer_key(text, ReturnKey)


def parse_bearer_key(text: str | None, kind: type[K]) -> K | None:
    """A key of `kind` as typed or pasted (code or whole link); None if it is not one (typo, or another kind's
    check)."""
    if not text or len(text) > 400:
        return None
    match = re.search(rf"(?<![A-Za-z_]){kind.LINK_PARAM}=([0-9A-Za-z-]+)", text)
    candidate = (match.group(1) if match else text).upper().translate(_CONFUSABLE)
    chars = re.sub(r"[\s-]", "", candidate)
    if len(chars) != CODE_CHARS + CHECK_CHARS or any(c not in ALPHABET for c in chars):
        return None
    raw = _decode(chars[:CODE_CHARS])
    if raw is None or not hmac.compare_digest(_check(raw, kind.CHECK_LABEL), chars[CODE_CHARS:]):
        return None
    return kind(raw)


def _derive(raw: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(raw)


def _encode(raw: bytes) -> str:
    number = int.from_bytes(raw, "big") << (CODE_CHARS * 5 - KEY_BYTES * 8)  # pad to a whole character
    return "".join(ALPHABET[(number >> (5 * (CODE_CHARS - 1 - i))) & 31] for i in range(CODE_CHARS))


def _decode(chars: str) -> bytes | None:
    number = 0
    for c in chars:
        number = (number << 5) | ALPHABET.index(c)
    padding = CODE_CHARS * 5 - KEY_BYTES * 8
    if number & ((1 << padding) - 1):
        return None
    return (number >> padding).to_bytes(KEY_BYTES, "big")


def _check(raw: bytes, label: bytes) -> str:
    digest = hashlib.sha256(label + raw).digest()
    return ALPHABET[digest[0] & 31] + ALPHABET[digest[1] & 31]
