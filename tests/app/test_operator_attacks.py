"""The operator tab (issue 16), attacked over raw HTTP: it creates a team for the operator key's holder, nobody else.

The server is `python app.py` on 127.0.0.1 (tests/app/conftest.py); the operator key is minted and
revoked with `python cli.py operator-link` on the server's own data, as an operator would. Every
visitor is a `RawBrowser` of its own, on an address of its own (127.0.7.N), so that the key limits
one test spends never reach another. After each attack the server still answers, and no team was
made for anyone but the operator.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from privacy.store.database import Database, TeamRow
from privacy.teams.operator_keys import OperatorKey
from settings import load_settings
from tests.app.conftest import ROOT, healthy, server_environment
from tests.app.test_browser_teams import create_team
from web.operator_render import render_new_team

REFUSED = "This operator link opens nothing here"
NOT_OPENED = "Open your operator link on this page first"
ADMIN_CODE = re.compile(r"data-admin='([0-9A-Z-]+)'")


def operator_link(server, *args: str) -> dict:
    """`python cli.py operator-link --json` against the running server's data (mint, or `--revoke`)."""
    done = subprocess.run([sys.executable, str(ROOT / "cli.py"), "operator-link", "--json", "--base-url", server.url,
                           *args], cwd=ROOT, env=server_environment(server.data_dir, 0), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def team_count(server) -> int:
    db = Database(load_settings({"HEADSHOT_DATA_DIR": str(server.data_dir)}).database)
    try:
        with db.session() as s:
            return s.scalar(select(func.count()).select_from(TeamRow))
    finally:
        db.dispose()


@pytest.fixture
def operator_code(server):
    """A freshly minted operator key's code; revoked again after the test, so no test leaves an operator behind."""
    yield operator_link(server)["operator_code"]
    operator_link(server, "--revoke")


def the_header(answer) -> str:
    """What `open_operator` put in the operator tab's header (its fourth output)."""
    assert answer.success, answer.error
    return str(answer.data[3])


# --- with no key minted there is no operator ---------------------------------------------------------------

def test_with_no_operator_key_minted_nothing_opens_and_nothing_is_created(server, browsers, clean_log):
    assert operator_link(server, "--revoke") is not None
    before = team_count(server)
    stranger = browsers("127.0.7.1")
    quiet = stranger.call("open_operator", [""])
    assert quiet.success and quiet.data[0] is None  # no link: no state, no tab, no word
    assert all(v.get("__type__") == "update" and "visible" not in v and "value" not in v for v in quiet.data[1:])
    assert REFUSED in the_header(stranger.call("open_operator", [OperatorKey.new().code]))
    created = stranger.call("create_team", ["Sneaky Co", None])
    assert not created.success and NOT_OPENED in created.error
    assert team_count(server) == before and healthy(server)


# --- the operator ------------------------------------------------------------------------------------------

def test_the_operator_creates_a_team_whose_admin_link_opens_it_and_sees_nothing_else(server, browsers, operator_code,
                                                                                    clean_log):
    operator = browsers("127.0.7.2")
    header = the_header(operator.call("open_operator", [f"{server.url}/#operator={operator_code}"]))
    assert "data-ready='true'" in header and "no person's data" in header
    made = operator.call("create_team", ["Operator Made Co", None])
    assert made.success, made.error
    new_team, name_field = made.data
    admin_code = ADMIN_CODE.search(new_team).group(1)
    assert "Operator Made Co" in new_team and name_field == ""
    # Only the team's own name and its admin code: no session, share, member or other team in the answer.
    assert new_team == render_new_team("Operator Made Co", admin_code)
    admin = browsers("127.0.7.3")
    opened = admin.call("open_admin", [admin_code])
    assert opened.success and "Operator Made Co" in str(opened.data) and "0 members" in str(opened.data)
    # A second team: another admin key; the first is not shown again.
    again = operator.call("create_team", ["Second Co", None]).data[0]
    assert admin_code not in again and ADMIN_CODE.search(again).group(1) != admin_code


def test_revoking_or_replacing_the_key_stops_an_operator_page_that_opened_with_it(server, browsers, operator_code):
    operator = browsers("127.0.7.4")
    the_header(operator.call("open_operator", [operator_code]))
    before = team_count(server)
    operator_link(server)  # replaced
    replaced = operator.call("create_team", ["After Replace Co", None])
    assert not replaced.success and REFUSED in replaced.error
    operator_link(server, "--revoke")
    assert REFUSED in the_header(browsers("127.0.7.5").call("open_operator", [operator_code]))
    assert team_count(server) == before


# --- strangers ---------------------------------------------------------------------------------------------

def test_operator_key_guesses_are_limited_like_other_keys_and_the_server_keeps_answering(server, browsers,
                                                                                         operator_code, clean_log):
    guesser = browsers("127.0.7.6")
    started = time.monotonic()
    answers = [guesser.call("open_operator", [OperatorKey.new().code]) for _ in range(11)]
    assert all(REFUSED in the_header(a) for a in answers[:10])
    assert not answers[10].success and "Too many attempts to open an operator link" in answers[10].error
    # The limit holds for the right key too: guessing and then presenting it from the same place waits.
    late = guesser.call("open_operator", [operator_code])
    assert not late.success and "Too many attempts" in late.error
    assert time.monotonic() - started < 30 and healthy(server)
    # A fresh cookie on the same address still meets the address's budget (30 at once).
    spent = 0
    for i in range(30):
        fresh = browsers("127.0.7.6")
        answer = fresh.call("open_operator", [OperatorKey.new().code])
        if not answer.success:
            assert "Too many attempts" in answer.error
            break
        spent += 1
    assert spent < 30 and healthy(server)


def test_nothing_but_the_operator_key_lets_a_caller_create_a_team(server, browsers, faces_dir, operator_code):
    before = team_count(server)
    team = create_team(server, "Someone Else's Co")  # the CLI: the operator's own way, counted below
    # A team admin's key, presented as an operator key, is nobody's operator key.
    admin = browsers("127.0.7.7")
    assert REFUSED in the_header(admin.call("open_operator", [team["admin_code"]]))
    assert REFUSED in the_header(admin.call("open_operator", [team["admin_link"].replace("team_admin", "operator")]))
    assert admin.call("open_admin", [team["admin_code"]]).success
    refused = admin.call("create_team", ["Admin Made Co", None])
    assert not refused.success and NOT_OPENED in refused.error
    # A member with a session of their own (consent given) is no operator either.
    member = browsers("127.0.7.8")
    assert member.consent().success
    refused = member.call("create_team", ["Member Made Co", None])
    assert not refused.success and NOT_OPENED in refused.error
    # The operator's own page, borrowed: the boundary refuses another browser's session hash outright.
    operator = browsers("127.0.7.9")
    the_header(operator.call("open_operator", [operator_code]))
    thief = browsers("127.0.7.10")
    stolen = thief.call("create_team", ["Thief Made Co", None], session_hash=operator.session_hash)
    assert not stolen.success and stolen.status == 403
    # The operator key sent straight to the create event, in place of the state, opens nothing.
    direct = thief.call("create_team", ["Direct Co", operator_code])
    assert not direct.success and NOT_OPENED in direct.error
    assert team_count(server) == before + 1 and healthy(server)


@pytest.mark.parametrize("route", ["/gradio_api/run/create_team", "/gradio_api/call/create_team",
                                   "/gradio_api/run/open_operator", "/gradio_api/call/open_operator",
                                   "/gradio_api/api/create_team", "/gradio_api/call/v2/create_team"])
def test_the_rest_routes_that_skip_the_queue_are_closed_to_the_operator_events(server, browsers, route):
    client = browsers("127.0.7.11")
    response = client.http.post(route, json={"data": ["REST Co", None]})
    assert response.status_code == 404
    follow = client.http.get(route + "/some-event-id")
    assert follow.status_code == 404


@pytest.mark.parametrize("name, words", [
    ("Acme\x00Corp", "no control or invisible characters"),
    ("\u202eoC emcA", "no control or invisible characters"),
    ("\x1b[2J", "no control or invisible characters"),
    ("A" * 121, "A team needs a name of 1 to 120 characters"),
    ("   ", "A team needs a name of 1 to 120 characters"),
])
def test_an_odd_team_name_is_refused_in_words_and_creates_nothing(server, browsers, operator_code, name, words):
    operator = browsers("127.0.7.12")
    the_header(operator.call("open_operator", [operator_code]))
    before = team_count(server)
    refused = operator.call("create_team", [name, None])
    assert not refused.success and words in refused.error
    assert team_count(server) == before


def test_markup_in_a_team_name_is_shown_as_text(server, browsers, operator_code):
    operator = browsers("127.0.7.13")
    the_header(operator.call("open_operator", [operator_code]))
    made = operator.call("create_team", ["<img src=x onerror=alert(1)>", None])
    assert made.success, made.error
    assert "<img src=x" not in made.data[0] and "&lt;img src=x onerror=alert(1)&gt;" in made.data[0]


def test_a_ten_megabyte_name_is_refused_at_the_door_and_the_server_keeps_answering(server, browsers, operator_code):
    operator = browsers("127.0.7.14")
    the_header(operator.call("open_operator", [operator_code]))
    before = team_count(server)
    started = time.monotonic()
    answer = operator.call("create_team", ["A" * (10 * 1024 * 1024), None])
    assert not answer.success and answer.status == 413
    assert time.monotonic() - started < 10 and healthy(server)
    # Just under the door's limit: refused in words by the name check, quickly.
    answer = operator.call("create_team", ["B" * 200_000, None])
    assert not answer.success and "A team needs a name of 1 to 120 characters" in answer.error
    assert team_count(server) == before and healthy(server)
