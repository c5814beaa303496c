"""The app's own privacy plumbing, without a browser: cookies, media grants, the file route, start-up errors."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

import app
from privacy import web_access
from settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_a_client_cookie_is_accepted_only_when_this_server_signed_it():
    clients = web_access.ClientIds()
    issued = clients.issue()
    assert clients.check(issued) == issued
    raw, mac = issued.split(".")
    assert clients.check(f"{raw}.{'0' * len(mac)}") is None
    assert clients.check("made-up") is None and clients.check(None) is None
    assert web_access.ClientIds().check(issued) is None  # another process's secret does not sign ours


def test_a_media_token_resolves_only_for_the_client_it_was_granted_to():
    grants = web_access.MediaGrants()
    token = grants.grant("client-a", "session-a", "headshot", "blob-1")
    assert grants.resolve(token, "client-a").blob_id == "blob-1"
    assert grants.resolve(token, "client-b") is None
    assert grants.resolve(token, None) is None
    assert grants.resolve("guessed-token", "client-a") is None


def test_erasing_a_session_revokes_all_its_media_tokens():
    grants = web_access.MediaGrants()
    mine = [grants.grant("c", "s1", "headshot", "b"), grants.grant("c", "s1", "zip")]
    other = grants.grant("c", "s2", "zip")
    grants.forget_session("s1")
    assert all(grants.resolve(t, "c") is None for t in mine)
    assert grants.resolve(other, "c") is not None


def test_file_route_requests_into_the_data_root_are_recognised_however_written(tmp_path):
    middleware = web_access.PrivateFiles(None, clients=web_access.ClientIds(), data_root=tmp_path)
    temp_file = tmp_path / "gradio-tmp" / "abc" / "photo.jpg"
    assert middleware._is_private_file(f"/gradio_api/file={temp_file}")
    assert middleware._is_private_file(f"/gradio_api/file={tmp_path}/gradio-tmp/../vault/x.bin")
    assert middleware._is_private_file(f"/file={temp_file}")
    assert not middleware._is_private_file("/gradio_api/file=/usr/share/some.css")
    assert not middleware._is_private_file(f"/gradio_api/file={tmp_path}-other/x")
    assert not middleware._is_private_file("/gradio_api/queue/join")


def test_gradio_cache_sweep_is_never_slower_than_the_shortest_retention():
    for hours in ("0.05", "1", "72"):
        settings = load_settings({"HEADSHOT_UPLOAD_RETENTION_HOURS": hours, "HEADSHOT_SESSION_HARD_CAP_HOURS": "168"})
        frequency, age = app._delete_cache(settings)
        assert age <= settings.upload_retention_seconds and frequency <= age


def test_everything_in_the_data_root_but_gradio_cache_is_blocked(tmp_path):
    (tmp_path / "vault").mkdir()
    (tmp_path / "gradio-tmp").mkdir()
    (tmp_path / "studio.db").write_bytes(b"")
    (tmp_path / "something-new").mkdir()
    blocked = app._blocked_paths(load_settings({"HEADSHOT_DATA_DIR": str(tmp_path)}))
    assert str(tmp_path / "vault") in blocked and str(tmp_path / "studio.db") in blocked
    assert str(tmp_path / "something-new") in blocked and str(tmp_path / "keys") in blocked
    assert str(tmp_path / "gradio-tmp") not in blocked


def test_screening_feedback_escapes_whatever_a_message_contains():
    class Item:
        accepted, code, message, advice = False, "x", "<img src=x onerror=alert(1)>", "<b>"

    class Report:
        items, acceptable, set_problems = [Item()], False, ()

    rendered = app.render_screening(Report(), [None])
    assert "<img src=x" not in rendered and "&lt;img src=x" in rendered


def test_a_bad_setting_stops_the_app_with_a_message_and_exit_status_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADSHOT_")}
    env.update(HEADSHOT_DATA_DIR=str(tmp_path), HEADSHOT_MAX_UPLOAD_MB="lots")
    result = subprocess.run([sys.executable, str(ROOT / "app.py")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "HEADSHOT_MAX_UPLOAD_MB" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "gradio-tmp").exists()  # nothing was created before the settings were valid


@pytest.mark.parametrize("seconds, shown", [(59, "0 min 59 s"), (3600, "1 h 0 min"), (7 * 86400 + 5, "7 d 0 h 0 min")])
def test_countdowns_read_in_human_units(seconds, shown):
    assert app._duration(seconds) == shown


def _run_middleware(headers: list[tuple[bytes, bytes]], path: str = "/") -> tuple[list, list]:
    seen, sent = [], []

    async def downstream(scope, receive, send):
        seen.extend(scope["headers"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message):
        sent.append(message)

    middleware = web_access.PrivateFiles(downstream, clients=CLIENTS, data_root=Path("/nonexistent-data-root"))
    asyncio.run(middleware({"type": "http", "path": path, "headers": headers}, None, send))
    return seen, sent


CLIENTS = web_access.ClientIds()


def test_a_first_visit_gets_a_cookie_and_is_marked_new_for_rate_limits():
    seen, sent = _run_middleware([])
    cookie = web_access._cookie(seen, web_access.CLIENT_COOKIE)
    assert CLIENTS.check(cookie) == cookie and (web_access.ISSUED_HEADER, b"1") in seen
    assert any(k == b"set-cookie" and b"HttpOnly" in v and b"SameSite=Strict" in v for k, v in sent[0]["headers"])


def test_a_returning_client_keeps_its_cookie_and_cannot_fake_the_new_client_mark():
    cookie = CLIENTS.issue()
    seen, sent = _run_middleware([(b"cookie", f"{web_access.CLIENT_COOKIE}={cookie}".encode()), (web_access.ISSUED_HEADER, b"1")])
    assert web_access._cookie(seen, web_access.CLIENT_COOKIE) == cookie
    assert web_access.ISSUED_HEADER not in [k for k, _ in seen]
    assert not any(k == b"set-cookie" for k, _ in sent[0]["headers"])


def test_a_cached_upload_shared_by_two_handlers_is_freed_only_after_the_last_read():
    claims = web_access.UploadClaims()
    claims.claim(["/tmp/cache/abc/photo.jpg"])
    claims.claim(["/tmp/cache/abc/photo.jpg"])  # the same content, uploaded by a second session
    assert claims.release(["/tmp/cache/abc/photo.jpg"]) == []
    assert claims.release(["/tmp/cache/abc/photo.jpg"]) == ["/tmp/cache/abc/photo.jpg"]
    assert claims.release(["/tmp/cache/never/claimed.jpg"]) == ["/tmp/cache/never/claimed.jpg"]


def test_the_middleware_counts_the_paths_the_upload_route_returns():
    claims = web_access.UploadClaims()

    async def upload_route(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b'["/tmp/cache/x/a.jpg",', "more_body": True})
        await send({"type": "http.response.body", "body": b' "/tmp/cache/y/b.png"]'})

    async def send(message):
        pass

    middleware = web_access.PrivateFiles(upload_route, clients=CLIENTS, data_root=Path("/nonexistent"), claims=claims)
    for _ in range(2):
        asyncio.run(middleware({"type": "http", "path": "/gradio_api/upload", "headers": []}, None, send))
    assert claims.release(["/tmp/cache/x/a.jpg", "/tmp/cache/y/b.png"]) == []
    assert claims.release(["/tmp/cache/x/a.jpg"]) == ["/tmp/cache/x/a.jpg"]


def test_an_upload_no_handler_came_for_expires_after_the_grace():
    now = [100.0]
    claims = web_access.UploadClaims(clock=lambda: now[0])
    claims.claim(["/tmp/cache/a/orphan.jpg"])
    now[0] += 4
    claims.claim(["/tmp/cache/b/fresh.jpg"])
    assert claims.expire(older_than=5) == []
    now[0] += 1
    assert claims.expire(older_than=5) == [os.path.realpath("/tmp/cache/a/orphan.jpg")]
    assert claims.release(["/tmp/cache/b/fresh.jpg"]) == ["/tmp/cache/b/fresh.jpg"]  # still counted until read


def test_remove_cached_never_deletes_outside_the_cache(tmp_path):
    cache, outside = tmp_path / "cache", tmp_path / "keep.txt"
    (cache / "h1").mkdir(parents=True)
    inside = cache / "h1" / "photo.jpg"
    inside.write_bytes(b"x")
    outside.write_bytes(b"y")
    web_access.remove_cached([str(inside), str(outside), str(cache / ".." / "keep.txt")], cache)
    assert not inside.exists() and not (cache / "h1").exists()
    assert outside.read_bytes() == b"y"
