"""Who may read which file over the web: client cookies, per-client media grants, the closed file route.

The web layer's half of promise 8 (results are private to their session). No gradio import here:
`PrivateFiles` is plain ASGI middleware, and the rest is standard library.

* `ClientIds`      a random, HMAC-signed per-browser id in an HttpOnly cookie
* `MediaGrants`    unguessable tokens for one client's own headshots/ZIP/export, useless without its cookie
* `UploadClaims`   how many handlers still have to read a (content-addressed) cached upload
* `PrivateFiles`   issues the cookie, refuses Gradio's `/file=` route into the data root, counts uploads
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from privacy.export import image_extension

CLIENT_COOKIE = "hs_client"
ISSUED_HEADER = b"x-headshot-client-issued"  # set by PrivateFiles on a request that came without a cookie


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


class UploadClaims:
    """How many handlers still have to read each cached upload, and since when.

    Gradio's upload route caches a file under the hash of its content, so two sessions that send
    the same file at the same moment share one cached path: the first handler to finish must not
    delete it under the second. The upload route's answer (the cached paths) is counted here by
    `PrivateFiles`; a handler's `release` returns the paths nobody else still waits for, and
    `expire` those no handler came for (a bare call to the upload route, a closed tab).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._waiting: dict[str, tuple[int, float]] = {}  # real path -> (readers still to come, first claimed)
        self._lock = threading.Lock()
        self._clock = clock

    def claim(self, paths: list[str]) -> None:
        with self._lock:
            for path in paths:
                key = os.path.realpath(path)
                count, since = self._waiting.get(key, (0, self._clock()))
                self._waiting[key] = (count + 1, since)

    def release(self, paths: list[str]) -> list[str]:
        free = []
        with self._lock:
            for path in paths:
                key = os.path.realpath(path)
                count, since = self._waiting.get(key, (0, 0.0))
                if count > 1:
                    self._waiting[key] = (count - 1, since)
                else:
                    self._waiting.pop(key, None)
                    free.append(path)
        return free

    def expire(self, older_than: float) -> list[str]:
        """Forget, and return, the paths claimed more than `older_than` seconds ago."""
        cutoff = self._clock() - older_than
        with self._lock:
            stale = [key for key, (_, since) in self._waiting.items() if since <= cutoff]
            for key in stale:
                del self._waiting[key]
        return stale


def remove_cached(paths: list[str], cache_dir: Path) -> None:
    """Delete cached uploads (and their per-upload folder); never anything outside `cache_dir`."""
    cache_root = os.path.realpath(cache_dir)
    for path in paths:
        real = os.path.realpath(path)
        if not real.startswith(cache_root + os.sep):
            continue
        try:
            os.remove(real)
            parent = os.path.dirname(real)
            if parent != cache_root:
                os.rmdir(parent)  # fails harmlessly if something else is still in it
        except OSError:
            pass


class PrivateFiles:
    """ASGI middleware: gives every browser a client cookie, and refuses `/file=` requests into the data root.

    Gradio's cache (GRADIO_TEMP_DIR) is inside the data root and holds uploads for the seconds
    between upload and ingest; Gradio serves cached files to anyone who knows the URL, so that
    route is closed for the whole data root. (The data root cannot simply go in `blocked_paths`:
    Gradio also applies that list to incoming uploads, which would then all be refused.)
    """

    def __init__(self, app: Any, *, clients: ClientIds, data_root: Path, claims: UploadClaims | None = None):
        self.app = app
        self.clients = clients
        self.data_root = os.path.realpath(data_root)
        self.claims = claims

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self._is_private_file(scope.get("path", "")):
            from starlette.responses import PlainTextResponse
            return await PlainTextResponse("Not found.", status_code=404)(scope, receive, send)
        if self.claims is not None and scope.get("path", "").endswith("/upload"):
            send = self._counting_uploads(send)
        headers = [(k, v) for k, v in scope.get("headers", []) if k != ISSUED_HEADER]  # only we set that one
        if self.clients.check(_cookie(headers, CLIENT_COOKIE)) is not None:
            return await self.app({**scope, "headers": headers}, receive, send)
        # A first visit (or a forged cookie): issue one and let the handlers already see it, marked as
        # new so that rate limits fall back to the network address (dropping the cookie must not reset them).
        issued = self.clients.issue()
        headers = [(k, v) for k, v in headers if k != b"cookie"] + [
            (b"cookie", f"{CLIENT_COOKIE}={issued}".encode()), (ISSUED_HEADER, b"1")]
        set_cookie = f"{CLIENT_COOKIE}={issued}; Path=/; HttpOnly; SameSite=Strict".encode()

        async def send_with_cookie(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", set_cookie)]}
            await send(message)

        return await self.app({**scope, "headers": headers}, receive, send_with_cookie)

    def _counting_uploads(self, send: Callable) -> Callable:
        """Pass the upload route's answer through, and count the cached paths it lists (see UploadClaims)."""
        body: list[bytes] = []
        status: list[int] = []

        async def counting_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status.append(message.get("status", 0))
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body") and status == [200]:
                    try:
                        paths = json.loads(b"".join(body))
                    except ValueError:
                        paths = None
                    if isinstance(paths, list) and all(isinstance(p, str) for p in paths):
                        self.claims.claim(paths)
            await send(message)

        return counting_send

    # Gradio serves files by path on two routes: `/file=PATH` and the older `/file/PATH`
    # (gradio/routes.py `file` and `file_deprecated`), both with and without the `/gradio_api` prefix.
    FILE_ROUTE_MARKERS = ("file=", "/file/")

    def _is_private_file(self, path: str) -> bool:
        for marker in self.FILE_ROUTE_MARKERS:
            if marker not in path:
                continue
            target = path.split(marker, 1)[1]
            # Both readings of the target: as Gradio resolves it (relative to the working directory,
            # or absolute), and as an absolute path whose leading slash the route swallowed.
            for candidate in (target if os.path.isabs(target) else os.path.join(os.getcwd(), target), "/" + target):
                resolved = os.path.realpath(candidate)
                if resolved == self.data_root or resolved.startswith(self.data_root + os.sep):
                    return True
        return False


def _cookie(headers: list[tuple[bytes, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name:
                    return v
    return None


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
