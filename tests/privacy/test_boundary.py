"""The boundary middleware on its own, with a stand-in for Gradio behind it: what it lets through, and how."""

import asyncio
import json
import math
import time

import pytest

from web.boundary.client_address import client_address, parse_networks
from web.boundary.middleware import ADDRESS_HEADER, ISSUED_HEADER, Boundary
from web.boundary.rate_limit import ADDRESS_REQUEST_LIMIT, Limit
from web.boundary.uploads import UploadLimits, UploadStore
from web.boundary.web_access import CLIENT_COOKIE, ClientIds


class Downstream:
    """Gradio's place: records what reached it and answers 200 (HTML for the page)."""

    def __init__(self) -> None:
        self.seen: list[dict] = []

    async def __call__(self, scope, receive, send):
        message = await receive() if scope.get("method") == "POST" else {"body": b""}
        self.seen.append({"path": scope["path"], "headers": dict(scope["headers"]), "body": message.get("body", b"")})
        html = scope["path"] == "/"
        body = b"<html><script>window.x=1</script><script src='a.js'></script></html>" if html else b"{}"
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/html; charset=utf-8" if html else b"application/json"),
            (b"cache-control", b"max-age=3600")]})
        await send({"type": "http.response.body", "body": body})


CLIENTS = ClientIds()


def make_boundary(tmp_path, **kwargs):
    store = UploadStore(tmp_path / "sealed", grace_seconds=60)
    store.purge()
    downstream = Downstream()
    limits = UploadLimits(max_file_bytes=1_000_000, max_files=4, max_request_bytes=2_000_000, stall_seconds=2,
                          timeout_seconds=10)
    boundary = Boundary(downstream, clients=CLIENTS, uploads=store, upload_limits=limits,
                        upload_budget=Limit(capacity=3_000_000, refill_per_second=50_000), **kwargs)
    return boundary, downstream, store


def call(boundary, method, path, *, body=b"", headers=(), peer="203.0.113.7", query=b"", scheme="http"):
    sent = []
    chunks = [body]

    async def receive():
        if chunks:
            return {"type": "http.request", "body": chunks.pop(0), "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "query_string": query, "scheme": scheme,
             "headers": [(k.lower(), v) for k, v in headers], "client": (peer, 50000)}
    asyncio.run(boundary(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


def cookie_header(client=None):
    return (b"cookie", f"{CLIENT_COOKIE}={client or CLIENTS.issue()}".encode())


def join(session_hash, data, cookie):
    return json.dumps({"session_hash": session_hash, "fn_index": 1, "trigger_id": 2, "data": data}).encode(), [
        cookie, (b"content-type", b"application/json")]


@pytest.mark.parametrize("method, path", [
    ("POST", "/gradio_api/run/generate"), ("POST", "/gradio_api/call/generate"), ("POST", "/gradio_api/api/generate"),
    ("POST", "/gradio_api/call/v2/generate"), ("GET", "/gradio_api/file=/etc/passwd"), ("GET", "/file=/etc/passwd"),
    ("GET", "/gradio_api/file/etc/passwd"), ("POST", "/gradio_api/component_server"),
    ("GET", "/gradio_api/openapi.json"), ("POST", "/gradio_api/process_recording"), ("GET", "/monitoring"),
    ("POST", "/login"), ("GET", "/gradio_api/proxy=x"),
    ("GET", "/gradio_api/stream/abc/1/1/playlist.m3u8"), ("POST", "/gradio_api/vibe-edit"), ("DELETE", "/"),
])
def test_every_route_the_page_does_not_use_is_closed(tmp_path, method, path):
    boundary, downstream, _ = make_boundary(tmp_path)
    status, _, _ = call(boundary, method, path, headers=[cookie_header()])
    assert status == 404 and downstream.seen == []


def test_a_first_visit_gets_a_signed_http_only_cookie(tmp_path):
    boundary, downstream, _ = make_boundary(tmp_path)
    status, headers, _ = call(boundary, "GET", "/config")
    assert status == 200
    cookie = headers[b"set-cookie"].decode()
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    assert CLIENTS.check(cookie.split(";")[0].split("=", 1)[1]) is not None
    assert downstream.seen[0]["headers"][ISSUED_HEADER] == b"1"


def test_the_cookie_is_secure_over_https(tmp_path):
    boundary, _, _ = make_boundary(tmp_path)
    _, headers, _ = call(boundary, "GET", "/config", scheme="https")
    assert "Secure" in headers[b"set-cookie"].decode()


def test_the_cookie_is_secure_behind_a_trusted_https_proxy_only(tmp_path):
    boundary, _, _ = make_boundary(tmp_path, trusted_proxies=parse_networks("10.0.0.1"))
    proto = (b"x-forwarded-proto", b"https")
    assert "Secure" in call(boundary, "GET", "/config", headers=[proto], peer="10.0.0.1")[1][b"set-cookie"].decode()
    assert "Secure" not in call(boundary, "GET", "/config", headers=[proto], peer="10.0.0.2")[1][b"set-cookie"].decode()


def test_acting_without_the_pages_cookie_is_refused(tmp_path):
    boundary, downstream, _ = make_boundary(tmp_path)
    body, _ = join("abcdefgh12", [], cookie_header())
    for method, path in (("POST", "/gradio_api/queue/join"), ("POST", "/gradio_api/upload"),
                         ("GET", "/gradio_api/heartbeat/abcdefgh12"), ("POST", "/gradio_api/cancel")):
        status, headers, _ = call(boundary, method, path, body=body)
        assert status == 403 and b"set-cookie" not in headers
    assert downstream.seen == []


def test_the_boundarys_own_headers_cannot_be_sent_by_a_client(tmp_path):
    boundary, downstream, _ = make_boundary(tmp_path)
    call(boundary, "GET", "/config", headers=[cookie_header(), (ISSUED_HEADER, b"1"), (ADDRESS_HEADER, b"addr-forged")])
    seen = downstream.seen[0]["headers"]
    assert ISSUED_HEADER not in seen and seen[ADDRESS_HEADER] != b"addr-forged"


def test_forwarded_headers_are_dropped_unless_a_trusted_proxy_sent_them(tmp_path):
    boundary, downstream, _ = make_boundary(tmp_path, trusted_proxies=parse_networks("10.0.0.1"))
    forged = [(b"x-forwarded-host", b"evil.example"), (b"x-forwarded-for", b"1.2.3.4"), cookie_header()]
    call(boundary, "GET", "/config", headers=forged, peer="198.51.100.9")
    assert b"x-forwarded-host" not in downstream.seen[0]["headers"]
    call(boundary, "GET", "/config", headers=forged, peer="10.0.0.1")
    assert downstream.seen[1]["headers"][b"x-forwarded-host"] == b"evil.example"


def test_the_address_is_the_peer_unless_a_trusted_proxy_forwards_it():
    trusted = parse_networks("10.0.0.0/8")
    assert client_address("198.51.100.9", "1.2.3.4", ()) == "198.51.100.9"
    assert client_address("198.51.100.9", "1.2.3.4", trusted) == "198.51.100.9"
    assert client_address("10.0.0.5", "1.2.3.4", trusted) == "1.2.3.4"
    # A client that writes its own X-Forwarded-For through the proxy gets its real (last untrusted) hop.
    assert client_address("10.0.0.5", "6.6.6.6, 1.2.3.4, 10.0.0.9", trusted) == "1.2.3.4"


def test_a_session_hash_belongs_to_the_first_browser_that_used_it(tmp_path):
    boundary, downstream, _ = make_boundary(tmp_path)
    alice, mallory = cookie_header(), cookie_header()
    body, headers = join("alicehash01", [], alice)
    assert call(boundary, "POST", "/gradio_api/queue/join", body=body, headers=headers)[0] == 200
    body, headers = join("alicehash01", [], mallory)
    assert call(boundary, "POST", "/gradio_api/queue/join", body=body, headers=headers)[0] == 403
    assert call(boundary, "GET", "/gradio_api/heartbeat/alicehash01", headers=[mallory])[0] == 403
    assert call(boundary, "GET", "/gradio_api/queue/data", query=b"session_hash=alicehash01",
                headers=[mallory])[0] == 403
    cancel = json.dumps({"session_hash": "alicehash01", "fn_index": 1, "event_id": "e"}).encode()
    assert call(boundary, "POST", "/gradio_api/cancel", body=cancel, headers=[mallory])[0] == 403
    assert call(boundary, "GET", "/gradio_api/heartbeat/alicehash01", headers=[alice])[0] == 200
    assert len(downstream.seen) == 2  # Alice's join and heartbeat; nothing of Mallory's


@pytest.mark.parametrize("file_object", [
    {"path": "/dev/zero", "meta": {"_type": "gradio.FileData"}},
    {"path": "/etc/passwd"},
    {"path": "../../studio.db", "orig_name": "x.jpg"},
    {"path": "http://169.254.169.254/latest/meta-data", "meta": {"_type": "gradio.FileData"}},
    {"url": "http://127.0.0.1:22/"},
    {"path": "upload-guessedreference"},
])
def test_a_join_naming_any_file_but_this_clients_upload_is_refused_before_gradio_sees_it(tmp_path, file_object):
    boundary, downstream, _ = make_boundary(tmp_path)
    cookie = cookie_header()
    for data in ([[file_object], None], [True, {"nested": [file_object]}]):
        body, headers = join("hashhash01", data, cookie)
        status, _, answer = call(boundary, "POST", "/gradio_api/queue/join", body=body, headers=headers)
        assert status == 403 and b"not uploaded here" in answer
    assert downstream.seen == []


def test_another_clients_upload_reference_is_refused(tmp_path):
    boundary, downstream, store = make_boundary(tmp_path)
    alice = CLIENTS.issue()
    ref = store.put(alice, b"photo bytes")
    body, headers = join("mallory0001", [[{"path": ref}]], cookie_header())
    assert call(boundary, "POST", "/gradio_api/queue/join", body=body, headers=headers)[0] == 403
    assert downstream.seen == []


def test_a_clients_own_upload_reference_reaches_gradio_as_the_sealed_path_without_its_name(tmp_path):
    boundary, downstream, store = make_boundary(tmp_path)
    alice = CLIENTS.issue()
    ref = store.put(alice, b"photo bytes")
    body, headers = join("alicehash02", [[{"path": ref, "orig_name": "jane-doe-home.jpg",
                                          "meta": {"_type": "gradio.FileData"}}], None], cookie_header(alice))
    assert call(boundary, "POST", "/gradio_api/queue/join", body=body, headers=headers)[0] == 200
    forwarded = json.loads(downstream.seen[0]["body"])
    [file_data] = forwarded["data"][0]
    assert file_data["path"] == store.path_for(ref, alice) and b"jane-doe" not in downstream.seen[0]["body"]


def test_an_upload_without_a_length_or_over_the_request_limit_is_refused_unread(tmp_path):
    boundary, _, store = make_boundary(tmp_path)
    form = [cookie_header(), (b"content-type", b"multipart/form-data; boundary=x")]
    assert call(boundary, "POST", "/gradio_api/upload", headers=form)[0] == 411
    assert call(boundary, "POST", "/gradio_api/upload", headers=[*form, (b"content-length", b"99999999")])[0] == 413
    assert len(store) == 0


def test_upload_bytes_are_charged_to_the_address_whatever_cookie_comes_with_them(tmp_path):
    boundary, _, _ = make_boundary(tmp_path)
    size = b"1000000"
    statuses = [call(boundary, "POST", "/gradio_api/upload", headers=[
        cookie_header(), (b"content-type", b"multipart/form-data; boundary=x"), (b"content-length", size)],
        body=b"")[0] for _ in range(4)]
    assert statuses[-1] == 429  # a fresh cookie each time, the same address: the 3 MB budget runs out
    other_address = call(boundary, "POST", "/gradio_api/upload", peer="198.51.100.1", headers=[
        cookie_header(), (b"content-type", b"multipart/form-data; boundary=x"), (b"content-length", size)])[0]
    assert other_address != 429


def test_queue_joins_from_one_address_are_limited_however_many_cookies_it_mints(tmp_path):
    boundary, downstream, _ = make_boundary(tmp_path)
    statuses = []
    for i in range(400):
        body, headers = join(f"flood{i:06d}", [], cookie_header())
        statuses.append(call(boundary, "POST", "/gradio_api/queue/join", body=body, headers=headers)[0])
    assert statuses.count(429) > 100 and len(downstream.seen) < 300
    body, headers = join("someoneelse1", [], cookie_header())
    assert call(boundary, "POST", "/gradio_api/queue/join", body=body, headers=headers, peer="198.51.100.2")[0] == 200


def test_every_response_carries_the_security_headers(tmp_path):
    boundary, _, _ = make_boundary(tmp_path)
    for path, route in (("/", "page"), ("/config", "page"), ("/nowhere", "closed")):
        _, headers, _ = call(boundary, "GET", path)
        csp = headers[b"content-security-policy"].decode()
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp and "'unsafe-inline'" not in csp.split(
            "style-src")[0]
        assert headers[b"referrer-policy"] == b"no-referrer" and headers[b"x-frame-options"] == b"DENY"
        assert headers[b"cache-control"] == b"no-store" and headers[b"x-content-type-options"] == b"nosniff"


def test_the_pages_scripts_carry_this_responses_nonce(tmp_path):
    boundary, _, _ = make_boundary(tmp_path)
    _, headers, body = call(boundary, "GET", "/")
    nonce = headers[b"content-security-policy"].decode().split("'nonce-")[1].split("'")[0]
    assert body.count(f'<script nonce="{nonce}"'.encode()) == 2 and b"<script>" not in body
    assert int(headers[b"content-length"]) == len(body)


def test_a_space_may_frame_the_studio_where_configured(tmp_path):
    boundary, _, _ = make_boundary(tmp_path, frame_ancestors="https://huggingface.co")
    _, headers, _ = call(boundary, "GET", "/")
    assert "frame-ancestors https://huggingface.co" in headers[b"content-security-policy"].decode()
    assert b"x-frame-options" not in headers


def test_a_stream_with_two_session_hashes_is_refused(tmp_path):
    boundary, downstream, _ = make_boundary(tmp_path)
    status, _, _ = call(boundary, "GET", "/gradio_api/queue/data", query=b"session_hash=mine12345&session_hash=",
                        headers=[cookie_header()])
    assert status == 403 and downstream.seen == []


def test_a_join_nested_deeper_than_any_page_sends_is_refused_not_crashed(tmp_path):
    boundary, downstream, _ = make_boundary(tmp_path)
    cookie = cookie_header()
    deep = b"[" * 100_000 + b"]" * 100_000
    body = b'{"session_hash": "deephash01", "data": ' + deep + b"}"
    assert len(body) < 256 * 1024  # valid JSON, under the size limit: only its depth is wrong
    status, _, _ = call(boundary, "POST", "/gradio_api/queue/join", body=body, headers=[cookie])
    assert status == 400 and downstream.seen == []


def test_an_event_stream_for_a_hash_no_join_claimed_is_answered_at_once_and_claims_nothing(tmp_path):
    """A flood of fresh hashes on queue/data once made Gradio log a traceback each and filled the owner table."""
    boundary, downstream, _ = make_boundary(tmp_path)
    stranger = cookie_header()
    for i in range(20):
        assert call(boundary, "GET", "/gradio_api/queue/data", query=f"session_hash=fresh{i:05d}x".encode(),
                    headers=[stranger])[0] == 404
    assert downstream.seen == [] and not boundary.owners.known("fresh00000x")


def test_event_streams_are_charged_to_the_request_limit(tmp_path):
    boundary, _, _ = make_boundary(tmp_path)
    flooder = cookie_header()
    statuses = [call(boundary, "GET", f"/gradio_api/heartbeat/beat{i:06d}", headers=[flooder])[0] for i in range(200)]
    assert 429 in statuses and statuses.count(200) <= 120


def test_a_request_over_the_limit_is_told_how_long_to_wait(tmp_path):
    """The page waits the Retry-After and sends a refused join again (web/studio.js): it must be there, in whole
    seconds, and short once the budget is refilling."""
    boundary, _, _ = make_boundary(tmp_path)
    browser = cookie_header()
    answers = [call(boundary, "GET", f"/gradio_api/heartbeat/beat{i:06d}", headers=[browser]) for i in range(80)]
    refused = [headers for status, headers, _ in answers if status == 429]
    assert refused
    waits = {int(dict(headers)[b"retry-after"]) for headers in refused}
    assert waits and all(1 <= wait <= 2 for wait in waits)  # a browser's budget refills at 2 requests a second


@pytest.mark.parametrize("people", [1, 3])
def test_an_office_address_gets_its_limits_times_the_people_the_operator_says_use_it(tmp_path, people):
    """HEADSHOT_PEOPLE_PER_ADDRESS: every browser of the office keeps its own budget, and the address's (which fresh
    cookies do not reset) grows with the people behind it; a stranger's own address stays at the default."""
    boundary, _, _ = make_boundary(tmp_path, people_per_address=people)
    started = time.monotonic()
    office = [call(boundary, "GET", f"/gradio_api/heartbeat/office{i:05d}", headers=[cookie_header()])[0]
              for i in range(1000)]
    refilled = math.ceil(ADDRESS_REQUEST_LIMIT.refill_per_second * people * (time.monotonic() - started))
    assert office.count(429) > 0
    assert 120 * people <= sum(status != 429 for status in office) <= 120 * people + refilled + 1
