"""The web boundary: the one ASGI layer every request crosses before Gradio or the studio sees it.

The Gradio protocol is an API anyone can speak, so nothing here trusts the caller. In order:

1. **Who is asking.** The network address is the TCP peer (or, behind a trusted proxy, the
   forwarded client; `web.boundary.client_address`), kept only as a salted hash. The client is the
   signed `hs_client` cookie (`ClientIds`); a request without a valid one gets a fresh cookie,
   but may only load pages: every call that acts (upload, queue, cancel, the event streams)
   needs the cookie the page load issued.
2. **One way in.** Only the routes the page itself uses are open (`ROUTES`); the rest of
   Gradio's surface (`/run/`, `/call/`, `/api/`, `/file=`, component and stream routes, login,
   monitoring, ...) answers 404. GPU work therefore starts only through the queue.
3. **Whose session.** Gradio's `session_hash` is chosen by the browser and travels in URLs, so it
   proves nothing. The first client to use a hash owns it (`SessionOwners`); the same hash from
   any other client is refused on every route that carries one (join, event stream, heartbeat,
   cancel, reset), so a borrowed hash can neither read, act, cancel nor run the unload handler.
4. **Which files.** Uploads go to `web.boundary.uploads` (sealed, owned, referenced by an opaque id);
   in a queue join, every object that names a `path` must be a reference of this client's, which
   is rewritten to the sealed file for Gradio; any other path (a server file, a device, another
   client's upload, a URL) refuses the whole request before anything is opened.
5. **How much.** Queue joins, uploads and `/media` are charged to the client *and* the address
   (`web.boundary.rate_limit`; the address's limits in Redis for every replica in queue mode,
   `web.boundary.shared_limits`); uploads by their byte size, checked from `Content-Length` before
   reading, and each browser and address holds only its share of the sealed uploads waiting
   (`web.boundary.fair_share`). Open event streams are capped per address.
6. **What the browser is told.** A nonce-based Content-Security-Policy, frame-ancestors,
   `Referrer-Policy: no-referrer`, `Cache-Control: no-store` on everything but versioned static
   assets, `nosniff`, a `Secure` cookie over HTTPS; forwarded host/proto headers are dropped
   unless they come from a trusted proxy, so they are never reflected into the page's config.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qs

from web.boundary.client_address import AddressKeys, IPNetwork, client_address, is_trusted_proxy
from web.boundary.fair_share import ConsentedBrowsers
from web.boundary.rate_limit import (
    ADDRESS_MEDIA_LIMIT,
    ADDRESS_REQUEST_LIMIT,
    CLIENT_MEDIA_LIMIT,
    CLIENT_REQUEST_LIMIT,
    Limit,
    RateLimiter,
)
from web.boundary.shared_limits import Limiter, MakeLimiter, in_process
from web.boundary.uploads import UploadLimits, UploadRefused, UploadStore, receive_files
from web.boundary.web_access import CLIENT_COOKIE, ClientIds

ADDRESS_HEADER = b"x-headshot-address"  # set here only: the hashed address, for the handlers' limits
ISSUED_HEADER = b"x-headshot-client-issued"  # set here only: this request came without a valid cookie
_INTERNAL_HEADERS = {ADDRESS_HEADER, ISSUED_HEADER}
_FORWARDED_HEADERS = {b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-port",
                      b"x-forwarded-prefix", b"forwarded", b"x-real-ip"}

API = "/gradio_api"
# (method, path pattern, kind). kind: "page" needs no cookie; "act" needs the page's cookie.
ROUTES: tuple[tuple[str, re.Pattern, str], ...] = tuple((m, re.compile(p), k) for m, p, k in (
    ("GET", r"/", "page"),
    ("GET", r"/healthz", "page"),
    ("GET", r"/metrics", "page"),  # Prometheus: counts and durations only (HEADSHOT_METRICS; 404 when off)
    ("GET", r"/privacy", "page"),
    ("GET", r"/receipt-key\.pem", "page"),  # the public key deletion receipts are signed with
    ("GET", r"/studio\.js", "static"),
    ("GET", r"/media/[A-Za-z0-9_-]{16,64}", "media"),  # the token itself is checked against the cookie
    ("GET", r"/config/?", "page"),
    ("GET", API + r"/info/?", "page"),  # the API's description (no data): gradio_client needs it
    ("GET", r"/(assets|static|svelte)/[A-Za-z0-9_./@-]+", "static"),
    ("GET", r"/(favicon\.ico|robots\.txt|manifest\.json)", "static"),
    ("GET", r"(/gradio_api)?/theme\.css", "page"),
    ("GET", API + r"/startup-events", "page"),
    ("GET", API + r"/upload_progress", "upload_progress"),
    ("POST", API + r"/upload", "upload"),
    ("POST", API + r"/queue/join", "join"),
    ("GET", API + r"/queue/data", "stream"),
    ("GET", API + r"/heartbeat/[^/]+", "stream"),
    ("POST", API + r"/cancel", "small"),
    ("POST", API + r"/reset/?", "act"),  # a no-op in Gradio 6 (cancel does the work), kept for the page
))
SESSION_HASH = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
MAX_JOIN_BYTES = 256 * 1024  # a join carries checkbox values and upload references, never file bytes
MAX_STREAMS_PER_ADDRESS = 200


class ListeningPages:
    """The session hashes whose page has its event stream open right now (counted: a page may reopen it).

    Instant headshots that are not kept exist only in the answer to the page that asked; Gradio keeps an answer
    nobody reads in memory for as long as it remembers the session. So the handler hands them over only while
    this says the page is listening, and drops them otherwise (web.handlers: `_follow`). One object, made by
    app.build_app and given to both the Boundary (which writes it) and the handlers (which read it). Until a
    Boundary is built with it, nothing is known and every page counts as listening.
    """

    def __init__(self) -> None:
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()
        self.enabled = False

    def opened(self, session_hash: str) -> None:
        with self._lock:
            self._open[session_hash] = self._open.get(session_hash, 0) + 1

    def closed(self, session_hash: str) -> None:
        with self._lock:
            left = self._open.get(session_hash, 1) - 1
            if left:
                self._open[session_hash] = left
            else:
                self._open.pop(session_hash, None)

    def listening(self, session_hash: str | None) -> bool:
        with self._lock:
            return not self.enabled or bool(session_hash and self._open.get(session_hash))


class SessionOwners:
    """Which client first used each Gradio session hash. Bounded: the least recently used are forgotten."""

    def __init__(self, max_sessions: int = 200_000) -> None:
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self.max_sessions = max_sessions

    def claim(self, session_hash: str, client: str) -> bool:
        """True if `client` owns (or now takes) `session_hash`."""
        with self._lock:
            owner = self._owners.get(session_hash)
            if owner is None:
                self._owners[session_hash] = client
                if len(self._owners) > self.max_sessions:
                    self._owners.popitem(last=False)
                return True
            self._owners.move_to_end(session_hash)
            return secrets.compare_digest(owner, client)

    def known(self, session_hash: str) -> bool:
        """True if some client has claimed `session_hash` (claims nothing)."""
        with self._lock:
            return session_hash in self._owners


@dataclass
class Boundary:
    """ASGI middleware; see the module docstring. `app` is the rest of the server."""

    app: Any
    clients: ClientIds
    uploads: UploadStore
    upload_limits: UploadLimits
    upload_budget: Limit
    trusted_proxies: tuple[IPNetwork, ...] = ()
    frame_ancestors: str = "'none'"
    addresses: AddressKeys = field(default_factory=AddressKeys)
    owners: SessionOwners = field(default_factory=SessionOwners)
    people_per_address: int = 1  # HEADSHOT_PEOPLE_PER_ADDRESS: multiplies each per-address limit
    listening: ListeningPages = field(default_factory=ListeningPages)  # the pages reading their events, for handlers
    # The browsers whose page gave consent (the handlers add them); the others may hold only a couple of uploads
    # (web.boundary.uploads). None: not known here, every browser counts as consented.
    consented: ConsentedBrowsers | None = None
    # Where per-address limits are kept: this process, or Redis for every replica (web.boundary.shared_limits).
    limiters: MakeLimiter = in_process

    def __post_init__(self) -> None:
        people = self.people_per_address
        self.address_requests = self.limiters(ADDRESS_REQUEST_LIMIT.times(people), "requests")
        self.client_requests = RateLimiter(CLIENT_REQUEST_LIMIT)
        self.address_media = self.limiters(ADDRESS_MEDIA_LIMIT.times(people), "media")
        self.client_media = RateLimiter(CLIENT_MEDIA_LIMIT)
        self.address_bytes = self.limiters(self.upload_budget.times(people), "upload-bytes")
        self.client_bytes = RateLimiter(self.upload_budget)
        self.max_streams_per_address = MAX_STREAMS_PER_ADDRESS * people
        self._streams: dict[str, int] = {}
        self._streams_lock = threading.Lock()
        self.listening.enabled = True

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":  # no websocket route is used by the page
            return
        method, path = scope.get("method", "GET"), scope.get("path", "")
        route = self._route(method, path)
        https = self._is_https(scope)
        send = self._with_headers(send, https=https, static=route == "static")
        if route is None:
            return await _respond(send, 404, "Not found.")
        headers = self._clean_headers(scope)
        address = self.addresses.key(self._address(scope))
        client = self.clients.check(_cookie(headers, CLIENT_COOKIE))
        if client is None and route not in ("page", "static", "media"):
            return await _respond(send, 403, "Please reload the studio page.")
        if client is None:
            client = self.clients.issue()
            headers = [(k, v) for k, v in headers if k != b"cookie"] + [
                (b"cookie", f"{CLIENT_COOKIE}={client}".encode()), (ISSUED_HEADER, b"1")]
            send = _setting_cookie(send, client, secure=https)
        headers.append((ADDRESS_HEADER, address.encode()))
        scope = {**scope, "headers": headers}

        # Stream opens count too: each may claim a new session hash, and a refused one is cheap to answer.
        if route in ("upload", "join", "small", "stream") and (wait := self._charge_request(client, address)):
            # Retry-After: the page tries a refused join again after it (web/studio.js), so a busy page meets
            # the limit as a pause, not as a click that did nothing; a flood meets it as refusals.
            return await _respond(send, 429, "Too many requests from this network in a short time. "
                                  "Please wait a moment.", retry_after=wait)
        if route == "media" and (wait := self._charge_media(client, address)):
            # A person's downloads are a few a click; a loop of them meets this (web.media shares the slots too).
            return await _respond(send, 429, "Too many downloads from this network in a short time. "
                                  "Please wait a moment.", retry_after=wait)
        if route == "upload":
            return await self._upload(scope, receive, send, client, address)
        if route in ("join", "small"):
            return await self._call_with_body(scope, receive, send, client, rewrite_files=route == "join")
        if route == "upload_progress":
            # Our upload route answers only when the whole upload is sealed; the page's progress stream
            # is told at once that there is nothing to follow (Gradio's would look up its own tracker).
            return await _respond(send, 200, b'data: {"msg": "done"}\n\n', content_type=b"text/event-stream")
        if route == "stream":
            return await self._stream(scope, receive, send, client, address)
        return await self.app(scope, receive, send)

    # --- routes --------------------------------------------------------------------------------------
    def _route(self, method: str, path: str) -> str | None:
        for allowed_method, pattern, kind in ROUTES:
            if (method == allowed_method or (method == "HEAD" and allowed_method == "GET")) and pattern.fullmatch(path):
                return kind
        return None

    async def _call_with_body(self, scope: dict, receive: Callable, send: Callable, client: str, *,
                              rewrite_files: bool) -> None:
        try:
            body = await _read_body(receive, MAX_JOIN_BYTES)
        except _Disconnected:
            return None
        if body is None:
            return await _respond(send, 413, "Request too large.")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than any page sends
            return await _respond(send, 400, "Malformed request.")
        if not isinstance(payload, dict):
            return await _respond(send, 400, "Malformed request.")
        session_hash = payload.get("session_hash")
        if not isinstance(session_hash, str) or not SESSION_HASH.match(session_hash) \
                or not self.owners.claim(session_hash, client):
            return await _respond(send, 403, "This session belongs to another browser. Please reload the page.")
        if rewrite_files:
            try:
                payload["data"] = self._own_files(payload.get("data"), client)
                payload["event_data"] = self._own_files(payload.get("event_data"), client)
            except PermissionError:
                return await _respond(send, 403, "This file was not uploaded here. Please upload it again.")
            except RecursionError:
                return await _respond(send, 400, "Malformed request.")
        return await self.app(_with_body_length(scope, body := json.dumps(payload).encode()),
                              _replay(body, receive), send)

    def _own_files(self, value: Any, client: str) -> Any:
        """Every object naming a `path` must be this client's upload reference: rewritten, or refused."""
        if isinstance(value, list):
            return [self._own_files(v, client) for v in value]
        if isinstance(value, dict):
            if "path" in value or "url" in value:
                real = self.uploads.path_for(value.get("path"), client)
                if real is None:
                    raise PermissionError("not an upload of this client")
                # The handler needs the bytes only: no original file name, no URL stays in server state.
                return {"path": real, "url": None, "orig_name": "upload", "size": value.get("size")
                        if isinstance(value.get("size"), int) else None, "mime_type": None, "is_stream": False,
                        "meta": {"_type": "gradio.FileData"}}
            return {k: self._own_files(v, client) for k, v in value.items()}
        return value

    async def _stream(self, scope: dict, receive: Callable, send: Callable, client: str, address: str) -> None:
        session_hash = self._hash_in_stream_route(scope)
        if session_hash is None or not SESSION_HASH.match(session_hash):
            return await _respond(send, 403, "This session belongs to another browser. Please reload the page.")
        # The cap before the claim: refused streams must not add owners (which could push out real ones).
        with self._streams_lock:
            refused = self._streams.get(address, 0) >= self.max_streams_per_address
            if not refused:
                self._streams[address] = self._streams.get(address, 0) + 1
        if refused:
            return await _respond(send, 429, "Too many open connections from this network.")
        if scope.get("path", "").endswith("/queue/data") and not self.owners.known(session_hash):
            # Events are read only after a join claimed the hash: a stream for any other hash has nothing to
            # read, and answering it here spares Gradio's traceback for it in the log (and the claim).
            self._release_stream(address)
            return await _respond(send, 404, "There is nothing to read for this page. Please reload it.")
        if not self.owners.claim(session_hash, client):
            self._release_stream(address)
            return await _respond(send, 403, "This session belongs to another browser. Please reload the page.")
        events = scope.get("path", "").endswith("/queue/data")
        if events:
            self.listening.opened(session_hash)
        try:
            await _quietly_ended(self.app, scope, receive, send)
        finally:
            if events:
                self.listening.closed(session_hash)
            self._release_stream(address)

    def _release_stream(self, address: str) -> None:
        with self._streams_lock:
            left = self._streams.get(address, 1) - 1
            if left:
                self._streams[address] = left
            else:
                self._streams.pop(address, None)

    @staticmethod
    def _hash_in_stream_route(scope: dict) -> str | None:
        path = scope.get("path", "")
        if path.startswith(API + "/heartbeat/"):
            return path.rsplit("/", 1)[1]
        # Blank values kept: `?session_hash=mine&session_hash=` must not pass one hash here and another to Gradio.
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        values = query.get("session_hash", [])
        return values[0] if len(values) == 1 else None

    async def _upload(self, scope: dict, receive: Callable, send: Callable, client: str, address: str) -> None:
        length = _content_length(scope["headers"])
        limits = self.upload_limits
        if length is None:
            return await _respond(send, 411, "Please send the upload with its length.")
        if length > limits.max_request_bytes:
            return await _respond(send, 413, "These files are too large to send at once. "
                                  "Please send fewer or smaller photos.")
        for limiter, key in ((self.address_bytes, address), (self.client_bytes, client)):
            wait = limiter.try_take(key, cost=length)
            if wait:
                return await _respond(send, 429, f"Too much uploaded from this network in a short time. "
                                                 f"Please try again in {max(1, round(wait))} s.", retry_after=wait)
        refs: list[str] = []
        done = False

        async def seal(data: bytes) -> None:
            import anyio
            consented = self.consented is None or client in self.consented
            refs.append(await anyio.to_thread.run_sync(
                lambda: self.uploads.put(client, data, address=address, consented=consented)))

        try:
            await receive_files(_body_chunks(receive), _header(scope["headers"], b"content-type") or "",
                                UploadLimits(limits.max_file_bytes, limits.max_files,
                                             min(length, limits.max_request_bytes), limits.stall_seconds,
                                             limits.timeout_seconds), seal)
            done = True
        except UploadRefused as exc:
            return await _respond(send, exc.status, exc.message)
        except _Disconnected:
            return None
        finally:
            if not done:  # cut off, refused or dropped: nothing of it stays, not even ciphertext
                self.uploads.discard(refs)
        body = json.dumps(refs).encode()
        await _respond(send, 200, body, content_type=b"application/json")

    # --- who, and how much -------------------------------------------------------------------------
    def _address(self, scope: dict) -> str:
        peer = (scope.get("client") or (None, None))[0]
        forwarded = _header(scope.get("headers", []), b"x-forwarded-for")
        return client_address(peer, forwarded, self.trusted_proxies)

    def _from_trusted_proxy(self, scope: dict) -> bool:
        return is_trusted_proxy((scope.get("client") or (None, None))[0], self.trusted_proxies)

    def _is_https(self, scope: dict) -> bool:
        if scope.get("scheme") == "https":
            return True
        return self._from_trusted_proxy(scope) and \
            (_header(scope.get("headers", []), b"x-forwarded-proto") or "").split(",")[0].strip() == "https"

    def _clean_headers(self, scope: dict) -> list[tuple[bytes, bytes]]:
        drop = set(_INTERNAL_HEADERS)
        if not self._from_trusted_proxy(scope):
            drop |= _FORWARDED_HEADERS  # never reflected into Gradio's config root, never believed
        return [(k, v) for k, v in scope.get("headers", []) if k.lower() not in drop]

    def _charge_request(self, client: str, address: str) -> float:
        """0.0 when the request may go on, else the seconds until its address and browser could pay for it."""
        return _charge(self.address_requests, address, self.client_requests, client)

    def _charge_media(self, client: str, address: str) -> float:
        return _charge(self.address_media, address, self.client_media, client)

    # --- what the browser is told ---------------------------------------------------------------------
    def _with_headers(self, send: Callable, *, https: bool, static: bool) -> Callable:
        nonce = secrets.token_urlsafe(16)
        frame = self.frame_ancestors or "'none'"
        # 'unsafe-eval': Gradio 6's gr.HTML renders its template (and js_on_load) with `new Function`; the
        # page cannot show a single result without it. What stays closed is the usual XSS path: no inline
        # script runs without this response's nonce, and no script loads from anywhere but this origin.
        csp = (f"default-src 'self'; script-src 'self' 'nonce-{nonce}' 'unsafe-eval'; "
               "style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data: blob:; media-src 'self' data: blob:; font-src 'self' data:; "
               f"connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
               f"form-action 'self'; frame-ancestors {frame}")
        html: dict[str, Any] = {}

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"cache-control", b"x-frame-options", b"content-security-policy")]
                headers += [(b"content-security-policy", csp.encode()), (b"referrer-policy", b"no-referrer"),
                            (b"x-content-type-options", b"nosniff"), (b"cross-origin-opener-policy", b"same-origin"),
                            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
                            (b"cache-control", b"public, max-age=86400" if static else b"no-store")]
                if frame == "'none'":
                    headers.append((b"x-frame-options", b"DENY"))
                if https:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                if (_header(headers, b"content-type") or "").startswith("text/html"):
                    html["start"] = {**message, "headers": headers}  # held until the body has its nonces
                    html["body"] = b""
                    return
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and "start" in html:
                html["body"] += message.get("body", b"")
                if message.get("more_body"):
                    return
                body = _add_nonces(html["body"], nonce)
                start = html.pop("start")
                start["headers"] = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"] + [
                    (b"content-length", str(len(body)).encode())]
                await send(start)
                message = {"type": "http.response.body", "body": body}
            await send(message)

        return send_with_headers


_SCRIPT_TAG = re.compile(rb"<script(?![^>]*\bnonce=)")


def _add_nonces(html: bytes, nonce: str) -> bytes:
    """Mark the page's own scripts (Gradio's inline config and loader) as allowed by this response's CSP."""
    return _SCRIPT_TAG.sub(b'<script nonce="' + nonce.encode() + b'"', html)


# --- small ASGI helpers ---------------------------------------------------------------------------------

def _charge(addresses: Limiter, address: str, clients: Limiter, client: str) -> float:
    """One token of the address's and of the browser's: 0.0, or the seconds until both could pay (nothing spent)."""
    wait = addresses.try_take(address)
    if wait:
        return wait
    wait = clients.try_take(client)
    if wait:
        addresses.refund(address, 1)
    return wait


class _Disconnected(Exception):
    pass


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _cookie(headers: list[tuple[bytes, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name:
                    return v
    return None


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    value = _header(headers, b"content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _setting_cookie(send: Callable, value: str, *, secure: bool) -> Callable:
    cookie = f"{CLIENT_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")

    async def send_with_cookie(message: dict) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode())]}
        await send(message)

    return send_with_cookie


async def _quietly_ended(app: Any, scope: dict, receive: Callable, send: Callable) -> None:
    """Run an event-stream route; Gradio's "session not found" inside it ends the stream instead of escaping.

    Gradio 6.31 forgets a session's messages when its stream disconnects mid-event (a page closed during an
    Instant job, which is then cancelled). A stream opened again for that hash gets Gradio's own
    `session_not_found` message and then an HTTPException raised *after* the 200 was sent, which the server
    logged as a full traceback and which cut the response off mid-body: any client could write tracebacks
    into the log at will (tests/app/test_instant_attacks.py). The message stands; the stream now ends cleanly.
    """
    from starlette.exceptions import HTTPException

    state = {"started": False, "ended": False}

    async def tracked(message: dict) -> None:
        if message["type"] == "http.response.start":
            state["started"] = True
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            state["ended"] = True
        await send(message)

    try:
        await app(scope, receive, tracked)
    except Exception as exc:
        # Starlette re-raises it as "Caught handled exception, but response already started." (a RuntimeError
        # caused by the HTTPException): only that, or the bare HTTPException, is Gradio's "not found".
        if not isinstance(exc, HTTPException) and not isinstance(exc.__cause__, HTTPException):
            raise
        if not state["started"]:
            return await _respond(send, 404, "There is nothing to read for this page. Please reload it.")
        if not state["ended"]:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _respond(send: Callable, status: int, body: str | bytes, content_type: bytes = b"text/plain; charset=utf-8",
                   *, retry_after: float | None = None) -> None:
    data = body.encode() if isinstance(body, str) else body
    if content_type.startswith(b"text/plain") and status >= 400:
        data = json.dumps({"detail": data.decode()}).encode()  # Gradio's clients read errors as {"detail": ...}
        content_type = b"application/json"
    headers = [(b"content-type", content_type), (b"content-length", str(len(data)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(max(1, math.ceil(retry_after))).encode()))  # whole seconds (RFC 9110)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _read_body(receive: Callable, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _body_chunks(receive: Callable):
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected()
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body"):
            return


def _replay(body: bytes, receive: Callable) -> Callable:
    sent = [False]

    async def replay() -> dict:
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # afterwards: the real channel, so a disconnect is still seen

    return replay


def _with_body_length(scope: dict, body: bytes) -> dict:
    headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
    return {**scope, "headers": headers + [(b"content-length", str(len(body)).encode())]}
