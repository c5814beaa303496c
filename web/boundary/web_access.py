"""Who may read which file over the web: client cookies and per-client media grants.

The web layer's half of promise 8 (results are private to their session); `web.boundary.middleware`
is the middleware that issues the cookie and closes every other route. Standard library only.

* `ClientIds`      a random, HMAC-signed per-browser id in an HttpOnly cookie
* `MediaGrants`    unguessable tokens for one client's own headshots/ZIP/export, useless without its cookie
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass

from privacy.lifecycle.export import image_extension

CLIENT_COOKIE = "hs_client"


# --- who is asking: a signed, random per-browser id ----------------------------------------------

class ClientIds:
    """Issues and checks the client cookie: random, HMAC-signed by a per-process secret, nothing else in it."""

    def __init__(self, secret: bytes | None = None):
        self._secret = secret or secrets.token_bytes(32)

    def issue(self) -> str:
        raw = secrets.token_urlsafe(18)
        return f"{raw}.{self._sign(raw)}"

    def check(self, value: str | None) -> str | None:
        if not value or value.count(".") != 1:
            return None
        raw, mac = value.split(".")
        return value if hmac.compare_digest(mac, self._sign(raw)) else None

    def _sign(self, raw: str) -> str:
        return hmac.new(self._secret, raw.encode(), hashlib.sha256).hexdigest()[:32]


# --- the owner's files, served from the vault on request ------------------------------------------

@dataclass(frozen=True)
class Grant:
    client: str
    session_id: str
    kind: str  # "headshot" | "zip" | "export"
    blob_id: str = ""


class MediaGrants:
    """Unguessable tokens for one client's own files. A token is useless without that client's cookie."""

    def __init__(self, max_grants: int = 100_000):
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()
        self.max_grants = max_grants

    def grant(self, client: str, session_id: str, kind: str, blob_id: str = "") -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            if len(self._grants) >= self.max_grants:  # bounded memory: the oldest grants go first
                for old in list(self._grants)[: self.max_grants // 10]:
                    del self._grants[old]
            self._grants[token] = Grant(client, session_id, kind, blob_id)
        return token

    def resolve(self, token: str, client: str | None) -> Grant | None:
        with self._lock:
            grant = self._grants.get(token)
        if grant is None or client is None or not hmac.compare_digest(grant.client, client):
            return None
        return grant

    def forget_session(self, session_id: str) -> None:
        """An erasure hook: once a session is erased, none of its tokens resolve."""
        with self._lock:
            for token in [t for t, g in self._grants.items() if g.session_id == session_id]:
                del self._grants[token]


MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def media_type(data: bytes) -> str:
    return MEDIA_TYPES.get(image_extension(data), "application/octet-stream")
