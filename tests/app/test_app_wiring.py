"""The app's own privacy plumbing, without a browser: cookies, media grants, blocked paths, start-up errors."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import app
from privacy.intake.screening import ReportItem, ScreeningReport, SetProblem
from settings import load_settings
from web.boundary import web_access
from web.page import delete_cache_schedule
from web.render import duration, render_screening

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


def test_gradio_cache_sweep_is_never_slower_than_the_shortest_retention():
    for hours in ("0.05", "1", "72"):
        settings = load_settings({"HEADSHOT_UPLOAD_RETENTION_HOURS": hours, "HEADSHOT_SESSION_HARD_CAP_HOURS": "168"})
        frequency, age = delete_cache_schedule(settings)
        assert age <= settings.upload_retention_seconds and frequency <= age


def test_everything_in_the_data_root_but_gradio_cache_is_blocked(tmp_path):
    (tmp_path / "vault").mkdir()
    (tmp_path / "gradio-tmp").mkdir()
    (tmp_path / "studio.db").write_bytes(b"")
    (tmp_path / "something-new").mkdir()
    blocked = app.blocked_paths(load_settings({"HEADSHOT_DATA_DIR": str(tmp_path)}))
    assert str(tmp_path / "vault") in blocked and str(tmp_path / "studio.db") in blocked
    assert str(tmp_path / "something-new") in blocked and str(tmp_path / "keys") in blocked
    assert str(tmp_path / "gradio-tmp") not in blocked


def test_screening_feedback_escapes_whatever_a_message_contains():
    item = ReportItem(1, False, "x", "<img src=x onerror=alert(1)>", "<b>", photo_id="'><script>")
    problem = SetProblem("too_few_photos", "<script>alert(1)</script>")
    rendered = render_screening(ScreeningReport(items=(item,), set_problems=(problem,)))
    assert "<img src=x" not in rendered and "&lt;img src=x" in rendered
    assert "<script>" not in rendered and "<b>" not in rendered


def test_a_bad_setting_stops_the_app_with_a_message_and_exit_status_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADSHOT_")}
    env.update(HEADSHOT_DATA_DIR=str(tmp_path), HEADSHOT_MAX_UPLOAD_MB="lots")
    result = subprocess.run([sys.executable, str(ROOT / "app.py")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "HEADSHOT_MAX_UPLOAD_MB" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "gradio-tmp").exists()  # nothing was created before the settings were valid


@pytest.mark.parametrize("seconds, shown", [(59, "0 min 59 s"), (3600, "1 h 0 min"), (7 * 86400 + 5, "7 d 0 h 0 min")])
def test_countdowns_read_in_human_units(seconds, shown):
    assert duration(seconds) == shown


def test_a_receipt_says_in_words_when_no_identity_data_was_ever_stored():
    from web.render import receipt_summary
    base = {"erased_at": "2026-12-02T10:00:00Z", "keys_destroyed": 1,
            "categories": {"headshots": {"headshot": {"count": 2}}}}
    assert "was ever stored" in receipt_summary({**base, "identity_data_stored": False})
    assert "was ever stored" not in receipt_summary({**base, "identity_data_stored": True})
    assert "was ever stored" not in receipt_summary(base)  # a receipt from before the field existed
    assert "2 headshots" in receipt_summary(base) and "1 encryption key destroyed" in receipt_summary(base)


@pytest.mark.parametrize("per_style, most", [("1", "1"), ("1", "16"), ("8", "16"), ("16", "16")])
def test_every_allowed_headshots_per_style_setting_builds_a_page(tmp_path, per_style, most):
    # The settings allow 1..16; a slider from 1 to 1 is one Gradio refuses, so 1 once stopped the app at start-up.
    # The slider starts at IMAGES_PER_STYLE and ends at MAX_IMAGES_PER_STYLE.
    from settings import apply_privacy_environment
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HEADSHOT_", "GRADIO_"))}
    environ.update(HEADSHOT_DATA_DIR=str(tmp_path / "data"), HEADSHOT_BASE_MODEL="tiny-sd", HEADSHOT_DEVICE="cpu",
                   HEADSHOT_IMAGES_PER_STYLE=per_style, HEADSHOT_MAX_IMAGES_PER_STYLE=most)
    apply_privacy_environment(environ)
    built = app.build_app(load_settings(environ))
    blocks = next(r.app.blocks for r in built.routes if hasattr(getattr(r, "app", None), "blocks"))
    count = next(c for c in blocks.blocks.values() if getattr(c, "elem_id", None) == "hs-count")
    assert count.value == int(per_style) and count.visible == (most != "1")
    assert count.maximum == max(2, int(most))
    will_get = next(c for c in blocks.blocks.values() if getattr(c, "elem_id", None) == "hs-will-get-box")
    assert f"You will get {per_style} headshot" in will_get.value
