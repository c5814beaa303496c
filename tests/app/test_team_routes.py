"""No route and no API endpoint gives a team admin key a member's selfie, photo check or unshared headshot (issue 16).

A member joins a team, uploads photos (screened, with previews), makes headshots and shares one of them.
Then the admin, holding the team's admin key in their page, calls every API endpoint of the page (every
dependency in its config: the same list a browser reads) with the page's default values and with the
member's headshot ids in every text field, fetches every `/media/` token any answer holds, and requests
every HTTP route of the app (FastAPI's and Gradio's, enumerated from a freshly built app) with its path
parameters filled with the member's media tokens. The only member image the admin can obtain is the one
they shared; no answer names any of the member's headshots, nor carries a photo preview or photo check.
"""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from tests.app.conftest import healthy
from tests.app.raw_gradio import RawBrowser
from tests.app.test_browser_teams import PHOTOS, create_team

TOKEN = re.compile(r"media/([A-Za-z0-9_-]{16,64})")
# Delete last: the enumeration must run against a live team. Unload releases the admin key: last but one.
LAST = ("unload", "unload_1", "delete_team")


def _call(browser: RawBrowser, api_name: str, data: list):
    """A call that waits out the per-browser request limit (the enumeration makes a few hundred on purpose)."""
    for _ in range(40):
        answer = browser.call(api_name, data)
        if answer.status != 429:
            return answer
        time.sleep(1)
    raise AssertionError(f"{api_name}: still rate limited")


def _defaults(config: dict, dep: dict) -> list:
    props = {c["id"]: c.get("props", {}) for c in config["components"]}
    return [None if props[i].get("value") is None else props[i]["value"] for i in dep["inputs"]]


def _probe(value, blob_id: str):
    """The member's headshot id in place of every text or list value (a dropdown, a code field, a name)."""
    if isinstance(value, list) or value is None:
        return [blob_id] if isinstance(value, list) else blob_id
    return blob_id if isinstance(value, str) else value


@pytest.fixture
def member_and_admins(server, faces_dir):
    team = create_team(server, "Routes Co")
    admins = [RawBrowser(server.url, address=f"127.0.0.{20 + i}") for i in range(4)]
    for admin in admins:
        admin.open_page()
        opened = _call(admin, "open_admin", [team["admin_code"]])
        assert opened.success and "Routes Co" in str(opened.data), opened.error
    made = _call(admins[0], "make_invite", ["routes", 1, 5, None])
    assert made.success, made.error
    invite = re.search(r"data-invite='([0-9A-Z-]+)'", made.data[0]).group(1)

    member = RawBrowser(server.url, address="127.0.0.30")
    member.open_page()
    assert member.consent().success
    joined = _call(member, "on_session", [invite, None, None])
    assert joined.success and "Routes Co" in joined.data[0], joined.error
    checked = member.upload_photos([faces_dir / name for name in PHOTOS])
    assert checked.success, checked.error
    previews = re.findall(r"data:image/jpeg;base64,([A-Za-z0-9+/=]{40,})", checked.data[0])
    assert previews  # the member's photo check shows their photos
    made = _call(member, "generate", [["linkedin_classic"], 2, None])
    assert made.success, made.error
    gallery = made.data[0]
    tokens = dict(re.findall(r"data-shot='([0-9a-f]+)'.*?<img src='media/([A-Za-z0-9_-]+)'", gallery))
    blob_ids = list(tokens)
    images = {blob_id: member.http.get(f"/media/{token}").content for blob_id, token in tokens.items()}
    assert len(images) == 4 and all(images.values())
    shared = _call(member, "share", [blob_ids[0], "Member One", None])  # the ticked thumbnails' ids
    assert shared.success, shared.error
    yield dict(admins=admins, member=member, blob_ids=blob_ids, images=images, member_tokens=list(tokens.values()),
               previews=[p[:60] for p in previews], photos=[(faces_dir / n).read_bytes() for n in PHOTOS],
               shared=images[blob_ids[0]])
    for browser in (*admins, member):
        browser.close()


def test_no_route_or_endpoint_gives_a_team_admin_a_members_selfie_check_or_unshared_headshot(
        server, member_and_admins, tmp_path):
    found = member_and_admins
    admins, blob_ids = found["admins"], found["blob_ids"]
    unshared = [found["images"][b] for b in blob_ids[1:]]
    config = admins[0].config
    deps = sorted(config["dependencies"], key=lambda d: d.get("api_name") in LAST)
    answers: list[tuple[str, str]] = []
    fetched: list[tuple[str, int, bytes]] = []
    for i, dep in enumerate(deps):
        admin = admins[i % len(admins)]
        name = dep["api_name"]
        if name == "open_admin":
            continue  # presented at the start, with the key
        for data in (_defaults(config, dep), [_probe(v, blob_ids[1]) for v in _defaults(config, dep)]):
            answer = _call(admin, name, data)
            text = f"{answer.data!r} {answer.error!r}"
            answers.append((name, text))
            for token in set(TOKEN.findall(text)):  # at once: the last calls release the key and delete the team
                # As it is, and as a favourites ZIP asking for the member's unshared headshots by id.
                for query in ("", "?ids=" + ",".join(blob_ids)):
                    response = admin.http.get(f"/media/{token}{query}")
                    fetched.append((name, response.status_code, response.content))

    assert len(answers) >= 2 * (len(deps) - 1) and {"share", "withdraw", "generate", "delete_team", "open_operator",
                                                     "create_team"} <= {name for name, _ in answers}

    # No answer names a member's headshot, or carries a photo preview or any inline image.
    for name, text in answers:
        # The probed id is the admin's own input (it may come back as an invite's label): the others may not.
        assert not any(blob_id in text for blob_id in blob_ids if blob_id != blob_ids[1]), name
        assert not any(preview in text for preview in found["previews"]), name
        assert "data:image" not in text and "hs-photo" not in text, name

    # Every media token any answer gave the admin opens a shared image, the team's ZIP or CSV: nothing else.
    assert any(body == found["shared"] for _, status, body in fetched)  # the admin does see what was shared
    for name, status, body in fetched:
        assert body not in unshared and body not in found["photos"], name
        assert not any(image in body for image in unshared), name  # not inside a ZIP either

    # Every HTTP route of the app, FastAPI's and Gradio's, with the member's media tokens as path parameters.
    admin = admins[0]
    routes = app_routes(tmp_path)
    assert ("GET", "/media/{token}") in routes and ("POST", "/gradio_api/queue/join") in routes
    assert ("GET", "/metrics") in routes  # Prometheus' counts: called like the rest, with the member's tokens
    for method, path in routes:
        for token in found["member_tokens"][:2]:
            url = re.sub(r"\{[^}]+\}", token, path)
            try:
                response = admin.http.request(method, url, timeout=3)
            except httpx.TimeoutException:
                continue  # an event stream with nothing to send to this browser
            if path == "/media/{token}":
                assert response.status_code == 404  # the member's own links are nothing to the admin's browser
            assert response.content not in unshared and not any(image in response.content for image in unshared), url
            assert not any(p in response.text for p in found["previews"]), url


def app_routes(tmp_path) -> list[tuple[str, str]]:
    """(method, path) of every route of a freshly built app: its own, and those of the Gradio app mounted in it."""
    import os

    from settings import apply_privacy_environment, load_settings
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HEADSHOT_", "GRADIO_"))}
    environ.update(HEADSHOT_DATA_DIR=str(tmp_path / "data"), HEADSHOT_BASE_MODEL="tiny-sd", HEADSHOT_DEVICE="cpu")
    apply_privacy_environment(environ)
    import app
    built = app.build_app(load_settings(environ))
    routes: list[tuple[str, str]] = []

    def walk(table, prefix: str = "") -> None:  # mounts and sub-routers, at any depth
        for route in table:
            path = prefix + (getattr(route, "path", "") or "")
            inner = (getattr(route, "routes", None) or getattr(getattr(route, "app", None), "routes", None)
                     or getattr(getattr(route, "original_router", None), "routes", None))  # FastAPI's included router
            if inner and not getattr(route, "methods", None):
                walk(inner, path)
                continue
            for method in sorted(getattr(route, "methods", None) or {"GET"}):
                if method in ("GET", "POST") and "heartbeat" not in path:  # a heartbeat only ever waits
                    routes.append((method, path or "/"))

    walk(built.routes)
    return routes


def test_admin_key_guesses_are_limited_like_return_keys_and_open_nothing(server):
    guesser = RawBrowser(server.url, address="127.0.0.40")
    guesser.open_page()
    answers = [_once(guesser, "open_admin", [f"team_admin=AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GG{i:02d}"]) for i in range(11)]
    assert all(a.success and "opens no team" in str(a.data) for a in answers[:10])
    assert not answers[10].success and "Too many attempts to open a team link" in answers[10].error
    assert not _once(guesser, "admin_view", [None]).success  # no state: nothing opened
    guesser.close()


def test_an_invite_used_up_or_revoked_says_so_in_words_and_joins_nobody(server):
    team = create_team(server, "Words Co")
    admin = RawBrowser(server.url, address="127.0.0.41")
    admin.open_page()
    assert _call(admin, "open_admin", [team["admin_code"]]).success
    made = _call(admin, "make_invite", ["one use", 1, 1, None]).data[0]
    one_use = re.search(r"data-invite='([0-9A-Z-]+)'", made).group(1)
    made = _call(admin, "make_invite", ["to revoke", 1, 5, None])
    revoked = re.search(r"data-invite='([0-9A-Z-]+)'", made.data[0]).group(1)
    choices = made.data[8]["choices"]  # the revoke choice: open invites, by label
    invite_id = next(value for label, value in choices if label.startswith("to revoke"))
    assert _call(admin, "revoke_invite", [invite_id, None]).success
    said = []
    for i, code in enumerate((one_use, one_use, revoked, "not-a-code")):
        member = RawBrowser(server.url, address=f"127.0.0.{50 + i}")
        member.open_page()
        assert member.consent().success
        said.append(_call(member, "on_session", [code, None, None]).data[0])
        member.close()
    assert "as a member of Words Co" in said[0]
    assert "used as many times as it allows" in said[1] and "withdrawn by your team&#x27;s admin" in said[2]
    assert "This invite link is not valid" in said[3]
    assert "1 member." in _call(admin, "admin_view", [None]).data[0]
    admin.close()


def _once(browser: RawBrowser, api_name: str, data: list):
    return browser.call(api_name, data)


def admin_with_invite(server, team_name: str, label: str, uses: int, address: str) -> tuple[RawBrowser, str]:
    """A new team (cli.py), its admin's page from `address`, and the code of one invite link it made."""
    team = create_team(server, team_name)
    admin = RawBrowser(server.url, address=address)
    admin.open_page()
    assert _call(admin, "open_admin", [team["admin_code"]]).success
    made = _call(admin, "make_invite", [label, 1, uses, None])
    return admin, re.search(r"data-invite='([0-9A-Z-]+)'", made.data[0]).group(1)


def test_an_invite_names_its_team_before_consent_and_peeking_spends_no_use(server):
    from privacy.teams.teams import InvitePeek
    from web.team_render import render_invite_pending
    admin, invite = admin_with_invite(server, "Peek Co", "one person", 1, "127.0.0.60")
    visitor = RawBrowser(server.url, address="127.0.0.61")
    visitor.open_page()
    # Before consent, as often as the page asks: the team's name, retention and what it never gets; nothing else.
    for _ in range(3):
        notice = _call(visitor, "on_session", [invite, None, None]).data[0]
        assert notice == render_invite_pending(InvitePeek("Peek Co", 30))
    view = _call(admin, "admin_view", [None]).data
    assert "0 members." in view[0] and "<td>0 of 1</td>" in view[6]  # no use spent, nobody joined
    assert visitor.consent().success
    assert "as a member of Peek Co" in _call(visitor, "on_session", [invite, None, None]).data[0]
    assert "<td>1 of 1</td>" in _call(admin, "admin_view", [None]).data[6]
    # The next person is told before consenting, in words, and so is the holder of a revoked link.
    late = RawBrowser(server.url, address="127.0.0.62")
    late.open_page()
    assert "used as many times as it allows" in _call(late, "on_session", [invite, None, None]).data[0]
    made = _call(admin, "make_invite", ["to revoke", 1, 5, None])
    revoked = re.search(r"data-invite='([0-9A-Z-]+)'", made.data[0]).group(1)
    invite_id = next(v for label, v in made.data[8]["choices"] if label.startswith("to revoke"))
    assert _call(admin, "revoke_invite", [invite_id, None]).success
    assert "withdrawn by your team&#x27;s admin" in _call(late, "on_session", [revoked, None, None]).data[0]
    for browser in (admin, visitor, late):
        browser.close()


def test_invite_peeks_are_limited_like_other_key_guesses(server):
    from privacy.teams.team_seal import InviteToken
    guesser = RawBrowser(server.url, address="127.0.0.63")
    guesser.open_page()
    answers = [_once(guesser, "on_session", [InviteToken.new().code, None, None]) for _ in range(11)]
    assert all(a.success and "This invite link is not valid" in a.data[0] for a in answers[:10])
    assert not answers[10].success and "Too many attempts to open a team link" in answers[10].error
    assert healthy(server)
    guesser.close()


def test_a_members_delete_now_makes_the_page_forget_the_invite_instead_of_spending_another_use(server):
    admin, invite = admin_with_invite(server, "Leave Co", "leavers", 5, "127.0.0.64")
    member = RawBrowser(server.url, address="127.0.0.65")
    member.open_page()
    assert member.consent().success
    assert "as a member of Leave Co" in _call(member, "on_session", [invite, None, None]).data[0]
    assert member.delete_now().success
    # The page's session changed to none, with the invite still in its field: the answer clears the field.
    left = _call(member, "on_session", [invite, None, None]).data
    assert "You are no longer in Leave Co" in left[0] and left[8] == ""
    # The cleared field's own change leaves the notice as it is; a new consent then joins nothing.
    kept = _call(member, "on_session", ["", None, None]).data[0]
    assert kept["__type__"] == "update" and "value" not in kept
    assert member.consent().success
    after = _call(member, "on_session", ["", None, None]).data
    assert after[0] == "" and "<td>1 of 5</td>" in _call(admin, "admin_view", [None]).data[6]
    member.close()
    admin.close()


def test_a_session_reopened_with_its_key_is_asked_before_an_invite_joins_it(server):
    """Consent given without an invite's notice in view never joins a team: a session reopened with its return key
    that reads an invite gets the question, and only `join_team` (the page's "Join <team>") spends a use."""
    admin, invite = admin_with_invite(server, "Reopen Co", "reopen", 5, "127.0.0.66")
    first = RawBrowser(server.url, address="127.0.0.67")
    first.open_page()
    consented = first.consent()
    [code] = re.findall(r"data-code='([^']+)'", json.dumps(consented.data).replace('\\"', "'"))
    back = RawBrowser(server.url, address="127.0.0.68")
    back.open_page()
    assert back.call("attach", [code]).success

    asked = _call(back, "on_session", [invite, None, None]).data
    assert "data-ask='true'" in asked[0] and "Nothing is joined until you choose" in asked[0]
    assert asked[10]["visible"] is True and asked[10]["value"] == "Join Reopen Co"
    assert "<td>0 of 5</td>" in _call(admin, "admin_view", [None]).data[6]

    joined = _call(back, "join_team", [invite, None, None]).data
    assert "as a member of Reopen Co" in joined[0] and joined[10]["visible"] is False
    assert "<td>1 of 5</td>" in _call(admin, "admin_view", [None]).data[6]
    assert "as a member of Reopen Co" in _call(back, "on_session", [invite, None, None]).data[0]  # no second use
    assert "<td>1 of 5</td>" in _call(admin, "admin_view", [None]).data[6]
    for browser in (admin, first, back):
        browser.close()
