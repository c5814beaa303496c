"""Teams (issue 16): invites say why they refuse, sharing is the member's act, and deleting a team leaves nothing."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from errors import (
    InviteExpired,
    InviteRefused,
    InviteRevoked,
    InviteUnknown,
    InviteUsedUp,
    NotInTeam,
    ShareGone,
    ShareRejected,
    TeamKeyRefused,
    TeamSettingRejected,
    UserError,
)
from privacy.lifecycle import retention
from privacy.lifecycle.erasure import erase_now
from privacy.lifecycle.residue import audit_residue
from privacy.records import audit
from privacy.records.receipts import verify_receipt
from privacy.store.database import (
    ErasureRow,
    TeamInviteRow,
    TeamLookRow,
    TeamMemberRow,
    TeamRow,
    TeamRunRow,
    TeamShareRow,
)
from privacy.teams import team_shares
from privacy.teams.team_look import MAX_RETENTION_DAYS, OUTFITS, SIZES, checked_look, style_ids
from privacy.teams.team_seal import AdminKey, InviteToken
from privacy.teams.team_shares import CSV_COLUMNS, share_dir
from privacy.teams.teams import InvitePeek, Teams
from tests.privacy.helpers import DAY, HOUR, MARKER, consented_session, fake_jpeg, files_under, make_env

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.databases("sqlite", "postgresql")  # teams self-host: both databases


@pytest.fixture
def teams(env):
    return Teams.from_context(env.ctx)


@pytest.fixture
def team(teams):
    """A team and its admin handle (made from the admin key, as every admin call is)."""
    created = teams.create("Acme")
    return created, teams.admin(created.admin_key)


def member(env, teams, admin, *, uses: int = 1) -> str:
    session_id = consented_session(env, photos=1, adapter=False)
    invite = admin.make_invite("engineering", 7 * DAY, uses)
    teams.redeem(session_id, invite.link("http://studio.example"))
    return session_id


def headshot(i: int) -> bytes:
    return fake_jpeg(MARKER + b"-shared-" + bytes([i]))


def table_count(env, table) -> int:
    with env.db.session() as s:
        return s.scalar(select(func.count()).select_from(table))


# --- the team and its admin key ---------------------------------------------------------------
def test_the_admin_key_opens_its_team_and_nothing_else_does(teams, team):
    created, admin = team
    assert admin.team_id == created.team_id and admin.name == "Acme"
    assert teams.admin(created.admin_link("https://studio.example")).team_id == created.team_id  # a pasted link
    assert teams.admin(created.admin_key.code.lower()).team_id == created.team_id  # a typed code
    for wrong in (AdminKey.new(), "", None, "not a key", InviteToken.new().code):
        with pytest.raises(TeamKeyRefused) as refused:
            teams.admin(wrong)
        assert "opens no team" in refused.value.message


def test_the_admin_link_carries_the_key_in_the_fragment_which_browsers_never_send(team):
    created, _ = team
    assert created.admin_link("http://127.0.0.1:7860/") == f"http://127.0.0.1:7860/#team_admin={created.admin_key.code}"
    assert repr(created.admin_key) == "AdminKey(…)"


def test_the_database_keeps_only_the_admin_keys_locator(env, team):
    created, _ = team
    with env.db.session() as s:
        row = s.get(TeamRow, created.team_id)
    assert row.admin_locator == created.admin_key.locator
    assert created.admin_key.raw not in row.wrapped_private_key and len(row.public_key) == 32


# --- the brand look -----------------------------------------------------------------------
def test_a_new_team_has_a_first_look_within_the_vocabulary(team):
    _, admin = team
    look = admin.look()
    assert look.version == 1 and look.style_id in style_ids() and look.size in SIZES
    assert set(look.outfits) <= OUTFITS.keys() and look.retention_days == 30


@pytest.mark.parametrize("change, code", [
    ({"style_id": "anime_hero"}, "look_style"),
    ({"background": "navy"}, "look_background"),
    ({"background": "#12345"}, "look_background"),
    ({"outfits": []}, "look_outfits"),
    ({"outfits": ["swimsuit"]}, "look_outfits"),
    ({"size": 999}, "look_size"),
    ({"retention_days": MAX_RETENTION_DAYS + 1}, "look_retention"),
    ({"retention_days": 0}, "look_retention"),
])
def test_a_look_outside_the_vocabulary_is_refused_in_words(change, code):
    chosen = {"style_id": sorted(style_ids())[0], "background": "#1F2A44", "outfits": ["blazer"], "size": 768,
              "retention_days": 30, **change}
    with pytest.raises(TeamSettingRejected) as refused:
        checked_look(**chosen)
    assert refused.value.code == code and refused.value.message.endswith(".")


def test_a_change_of_look_makes_a_new_version_and_applies_to_new_runs_only(env, teams, team):
    _, admin = team
    session_id = member(env, teams, admin)
    first = teams.start_run(session_id, "run-1")
    style = sorted(style_ids())[-1]
    second = admin.set_look(style, "#1F2A44", ["dark_suit", "blazer"], 512, 14)
    assert (first.version, second.version) == (1, 2) and second.background == "#1f2a44"
    assert teams.look_of_run("run-1") == first  # the run already started keeps its look
    assert teams.start_run(session_id, "run-2") == second == teams.look_of_run("run-2")
    assert [look.version for look in admin.looks()] == [1, 2]
    assert teams.start_run(consented_session(env, photos=0, adapter=False), "run-3") is None  # not in a team


# --- invites ------------------------------------------------------------------------------
def test_an_invite_token_is_stored_only_as_its_locator(env, team):
    _, admin = team
    invite = admin.make_invite("design", DAY, 3)
    with env.db.session() as s:
        row = s.get(TeamInviteRow, invite.invite_id)
    assert row.locator == invite.token.locator and invite.token.code not in json.dumps(row.label)
    assert [(i.label, i.uses, i.max_uses, i.status(env.clock())) for i in admin.invites()] == [("design", 0, 3, "open")]


def test_redeeming_an_invite_joins_the_session_with_the_current_look(env, teams, team):
    _, admin = team
    session_id = consented_session(env, photos=0, adapter=False)
    invite = admin.make_invite("sales", DAY, 2)
    joined = teams.redeem(session_id, invite.token.code)
    assert joined.team_name == "Acme" and joined.look == admin.look()
    assert teams.redeem(session_id, invite.link("http://x")) == joined  # opened again: no second use spent
    assert [i.uses for i in admin.invites()] == [1] and admin.members() == 1


@pytest.mark.parametrize("spoil, error, words", [
    ("expire", InviteExpired, "has expired"),
    ("use_up", InviteUsedUp, "used as many times as it allows"),
    ("revoke", InviteRevoked, "withdrawn by your team's admin"),
    ("unknown", InviteUnknown, "not valid"),
])
def test_an_unusable_invite_is_refused_saying_why(env, teams, team, spoil, error, words):
    _, admin = team
    invite = admin.make_invite("one person", HOUR, 1)
    token = invite.token
    if spoil == "expire":
        env.clock.advance(HOUR)
    elif spoil == "use_up":
        teams.redeem(consented_session(env, photos=0, adapter=False), token)
    elif spoil == "revoke":
        admin.revoke_invite(invite.invite_id)
    else:
        token = InviteToken.new()
    with pytest.raises(error) as before_consent:  # the peek says so too, in the same words, before consent
        teams.peek(token)
    session_id = consented_session(env, photos=0, adapter=False)
    with pytest.raises(error) as refused:
        teams.redeem(session_id, token)
    assert isinstance(refused.value, UserError) and words in refused.value.message
    assert before_consent.value.message == refused.value.message
    assert teams.membership(session_id) is None


def test_peeking_at_an_invite_names_the_team_and_its_retention_and_spends_no_use(env, teams, team):
    _, admin = team
    admin.set_look(admin.look().style_id, "#1f2a44", list(admin.look().outfits), admin.look().size, 45)
    invite = admin.make_invite("one person", DAY, 1)
    for _ in range(5):
        assert teams.peek(invite.link("http://studio.example")) == InvitePeek("Acme", 45)
    assert [i.uses for i in admin.invites()] == [0] and admin.members() == 0
    session_id = consented_session(env, photos=0, adapter=False)
    assert teams.redeem(session_id, invite.token).team_name == "Acme"  # the one use is still there
    with pytest.raises(InviteUsedUp):
        teams.peek(invite.token)  # now used up: said before the next person consents


def test_garbage_in_place_of_an_invite_is_refused_as_unknown_by_a_peek_too(teams):
    for text in ("", None, "https://studio.example/#team_invite=nope", "x" * 1000, 42, AdminKey.new().code):
        with pytest.raises(InviteUnknown):
            teams.peek(text)


def test_garbage_in_place_of_an_invite_is_refused_as_unknown(env, teams):
    session_id = consented_session(env, photos=0, adapter=False)
    for text in ("", None, "https://studio.example/#team_invite=nope", "x" * 1000):
        with pytest.raises(InviteUnknown):
            teams.redeem(session_id, text)


def test_eight_sessions_redeeming_a_one_use_invite_at_once_let_exactly_one_in(env, teams, team):
    _, admin = team
    invite = admin.make_invite("only one", DAY, 1)
    sessions = [consented_session(env, photos=0, adapter=False) for _ in range(8)]
    start, outcomes = threading.Barrier(8), []

    def redeem(session_id: str) -> None:
        start.wait()
        try:
            teams.redeem(session_id, invite.token)
            outcomes.append("joined")
        except InviteRefused as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=redeem, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["invite_used_up"] * 7 + ["joined"]
    assert [i.uses for i in admin.invites()] == [1] and table_count(env, TeamMemberRow) == 1


def test_a_session_in_one_team_cannot_join_another(env, teams, team):
    _, admin = team
    session_id = member(env, teams, admin)
    other = teams.admin(teams.create("Other Co").admin_key)
    with pytest.raises(InviteRefused) as refused:
        teams.redeem(session_id, other.make_invite("x", DAY, 5).token)
    assert refused.value.code == "already_in_team"


def test_erasing_the_session_erases_its_membership(env, teams, team):
    _, admin = team
    session_id = member(env, teams, admin)
    teams.start_run(session_id, "run-1")
    erase_now(env.ctx, session_id)
    assert teams.membership(session_id) is None and admin.members() == 0
    assert table_count(env, TeamRunRow) == 0


# --- sharing is the member's act ----------------------------------------------------------------
def test_the_admin_sees_exactly_what_members_shared(env, teams, team):
    _, admin = team
    alice, bob, carol = (member(env, teams, admin) for _ in range(3))
    style = admin.look().style_id
    teams.share(alice, headshot(1), style, "Alice  Example")
    teams.share(alice, headshot(2), style, "Alice Example")
    teams.share(bob, headshot(3), style, "Bob")
    shares = admin.shares()  # carol shared nothing: she is not there at all
    assert [(s.name, s.style_id) for s in shares] == [("Alice Example", style)] * 2 + [("Bob", style)]
    assert [[s.name for s in mine] for mine in admin.shares_by_member().values()] == [["Alice Example"] * 2, ["Bob"]]
    assert {admin.open_share(s.share_id) for s in shares} == {headshot(1), headshot(2), headshot(3)}
    assert [s.share_id for s in teams.my_shares(carol)] == []


def test_sharing_needs_a_team_a_name_and_a_preset_style(env, teams, team):
    _, admin = team
    loner = consented_session(env, photos=0, adapter=False)
    with pytest.raises(NotInTeam):
        teams.share(loner, headshot(1), admin.look().style_id, "Lone")
    session_id = member(env, teams, admin)
    for name, style, code in (("  ", admin.look().style_id, "share_name_missing"),
                              ("x" * 81, admin.look().style_id, "share_name_invalid"),
                              ("Bell\x07", admin.look().style_id, "share_name_invalid"),
                              ("Ann\u202egnp.exe", admin.look().style_id, "share_name_invalid"),
                              ("Ann", "free text prompt", "share_style")):
        with pytest.raises(ShareRejected) as refused:
            teams.share(session_id, headshot(1), style, name)
        assert refused.value.code == code
    for image in (b"", bytes(team_shares.MAX_SHARE_BYTES + 1)):
        with pytest.raises(ShareRejected) as refused:
            teams.share(session_id, image, admin.look().style_id, "Ann")
        assert refused.value.code == "share_size"
    assert files_under(share_dir(env.data_dir)) == [] and table_count(env, TeamShareRow) == 0


def test_withdrawing_a_share_erases_the_teams_copy_at_once(env, teams, team):
    _, admin = team
    session_id = member(env, teams, admin)
    kept = teams.share(session_id, headshot(1), admin.look().style_id, "Dana")
    taken_back = teams.share(session_id, headshot(2), admin.look().style_id, "Dana")
    teams.withdraw(session_id, taken_back)
    assert not (share_dir(env.data_dir) / taken_back).exists()
    assert [s.share_id for s in admin.shares()] == [kept]
    with pytest.raises(ShareGone):
        admin.open_share(taken_back)
    with pytest.raises(ShareGone):  # a second withdrawal says it is gone, no traceback
        teams.withdraw(session_id, taken_back)
    with env.db.session() as s:
        row = s.get(TeamShareRow, taken_back)
    assert (row.sealed_name, row.session_id, row.member_id, row.erased_by) == (None, None, None, "member")


def test_only_the_member_who_shared_can_withdraw(env, teams, team):
    _, admin = team
    owner, other = member(env, teams, admin), member(env, teams, admin)
    share_id = teams.share(owner, headshot(1), admin.look().style_id, "Eve")
    with pytest.raises(ShareGone):
        teams.withdraw(other, share_id)
    assert [s.share_id for s in admin.shares()] == [share_id]


def test_the_zip_holds_every_share_and_the_csv_names_them_and_the_erased_ones_without_a_name(env, teams, team):
    _, admin = team
    session_id = member(env, teams, admin)
    style = admin.look().style_id
    first = teams.share(session_id, headshot(1), style, "=HYPERLINK(\"http://evil\")")
    second = teams.share(session_id, headshot(2), style, "Zoë Müller")
    env.clock.advance(HOUR)
    teams.withdraw(session_id, first)
    with zipfile.ZipFile(io.BytesIO(admin.zip_of_shares())) as archive:
        assert [archive.read(n) for n in archive.namelist()] == [headshot(2)]
        assert archive.namelist() == [f"Zoe-Muller_{style}_{second[:8]}.jpg"]
    rows = list(csv.reader(io.StringIO(admin.csv_of_shares())))
    assert rows[0] == list(CSV_COLUMNS)
    assert rows[1] == ["Zoë Müller", f"Zoe-Muller_{style}_{second[:8]}.jpg", style, "2023-11-14T22:13:20Z", ""]
    assert rows[2] == ["", "", style, "2023-11-14T22:13:20Z", "2023-11-14T23:13:20Z"]  # erased: no name, no file
    assert "HYPERLINK" not in admin.csv_of_shares()


def test_the_favourites_zip_holds_exactly_the_starred_shares_opened_with_the_admin_key(env, teams, team):
    _, admin = team
    alice, bob = member(env, teams, admin), member(env, teams, admin)
    style = admin.look().style_id
    starred = [teams.share(alice, headshot(1), style, "Alice"), teams.share(bob, headshot(3), style, "Bob")]
    teams.share(alice, headshot(2), style, "Alice")  # not starred
    withdrawn = teams.share(bob, headshot(4), style, "Bob")
    teams.withdraw(bob, withdrawn)
    other_team = teams.create("Other Co")
    other_admin = teams.admin(other_team.admin_key)
    carol = member(env, teams, other_admin)
    elsewhere = teams.share(carol, headshot(5), other_admin.look().style_id, "Carol")
    # Starred ids, plus a withdrawn share, another team's share and junk: only this team's live starred ones.
    wanted = [*starred, withdrawn, elsewhere, "", "../../etc/passwd", "x" * 40]
    with zipfile.ZipFile(io.BytesIO(admin.zip_of_shares(wanted))) as archive:
        assert sorted(archive.read(n) for n in archive.namelist()) == [headshot(1), headshot(3)]
        names = {s.share_id: s.file for s in admin.shares()}
        assert sorted(archive.namelist()) == sorted(names[i] for i in starred)
    with zipfile.ZipFile(io.BytesIO(admin.zip_of_shares([]))) as archive:
        assert archive.namelist() == []  # no star: an empty archive, never all of them
    with zipfile.ZipFile(io.BytesIO(other_admin.zip_of_shares(wanted))) as archive:
        assert [archive.read(n) for n in archive.namelist()] == [headshot(5)]


def test_a_formula_as_a_name_is_written_as_text_in_the_csv(env, teams, team):
    _, admin = team
    session_id = member(env, teams, admin)
    teams.share(session_id, headshot(1), admin.look().style_id, "=1+1")
    teams.share(session_id, headshot(2), admin.look().style_id, "Mahsa\u200cZadeh")  # a ZWNJ belongs in the name
    assert [row[0] for row in csv.reader(io.StringIO(admin.csv_of_shares()))][1:] == ["'=1+1", "Mahsa\u200cZadeh"]


# Each starts with something other than a letter or a digit, so a spreadsheet might read it as a formula: a zero-width
# space then "=", a fullwidth "＝", the classic four, a tab, a carriage return, a bidi mark, a quote (issue 28).
FORMULA_LOOKALIKES = ["\u200b=1+1", "\uff1d1+1", "+1", "-1", "@SUM(1)", "\t=1", "\r=1", "\u200e=1", "\"=1"]


@pytest.mark.parametrize("name", FORMULA_LOOKALIKES)
def test_every_csv_cell_that_does_not_start_with_a_letter_or_digit_is_quoted_as_text(env, teams, team, name):
    _, admin = team
    session_id = member(env, teams, admin)
    teams.share(session_id, headshot(1), admin.look().style_id, name)
    rows = list(csv.reader(io.StringIO(admin.csv_of_shares())))
    for cell in rows[1]:
        assert cell == "" or cell[0].isalnum() or cell[0] == "'", cell


# --- retention ----------------------------------------------------------------------------------
def test_shares_are_erased_by_the_sweep_after_the_teams_retention(env, teams, team):
    _, admin = team
    admin.set_look(admin.look().style_id, "#ffffff", ["shirt"], 1024, 10)
    session_id = member(env, teams, admin)
    share_id = teams.share(session_id, headshot(1), admin.look().style_id, "Finn")
    env.clock.advance(10 * DAY - 1)
    assert retention.sweep(env.ctx, env.clock()).team_shares_erased == 0
    assert admin.open_share(share_id) == headshot(1)
    env.clock.advance(1)
    assert retention.sweep(env.ctx, env.clock()).team_shares_erased == 1
    assert admin.shares() == [] and files_under(share_dir(env.data_dir)) == []
    assert audit_residue(env.settings, env.db, env.vault, env.clock()).clean
    assert audit.events_for(env.db, admin._audit_id)[-1]["detail"] == {"by": "schedule", "count": 1}


def test_a_shorter_retention_shortens_existing_shares_too(env, teams, team):
    _, admin = team
    session_id = member(env, teams, admin)
    teams.share(session_id, headshot(1), admin.look().style_id, "Gus")
    env.clock.advance(3 * DAY)
    admin.set_look(admin.look().style_id, "#ffffff", ["shirt"], 1024, 2)
    assert retention.sweep(env.ctx, env.clock()).team_shares_erased == 1


def test_a_share_outlives_its_sessions_scheduled_erasure_until_the_teams_retention(env, teams, team):
    _, admin = team
    session_id = member(env, teams, admin)
    share_id = teams.share(session_id, headshot(1), admin.look().style_id, "Hal")
    env.clock.advance(2 * DAY)  # past the session's hard cap: the session is erased entirely
    result = retention.sweep(env.ctx, env.clock())
    assert result.sessions_erased == 1 and result.team_shares_erased == 0
    assert teams.membership(session_id) is None
    assert admin.open_share(share_id) == headshot(1)
    with env.db.session() as s:
        assert s.get(TeamShareRow, share_id).session_id is None  # no session id outlives the session


def test_a_members_delete_now_can_withdraw_every_share_first(env, teams, team):
    _, admin = team
    session_id = member(env, teams, admin)
    for i in range(2):
        teams.share(session_id, headshot(i), admin.look().style_id, "Ivy")
    assert teams.withdraw_all(session_id) == 2
    erase_now(env.ctx, session_id)
    assert admin.shares() == [] and files_under(share_dir(env.data_dir)) == []


# --- deleting the team ----------------------------------------------------------------------------
def test_deleting_the_team_leaves_nothing_of_it_and_the_receipt_verifies(env, teams, team):
    created, admin = team
    sessions = [member(env, teams, admin) for _ in range(2)]
    for i, session_id in enumerate(sessions):
        teams.start_run(session_id, f"run-{i}")
        teams.share(session_id, headshot(i), admin.look().style_id, f"Member {i}")
    teams.withdraw(sessions[0], teams.my_shares(sessions[0])[0].share_id)
    admin.make_invite("spare", DAY, 5)
    receipt = admin.delete_team()

    for table in (TeamRow, TeamLookRow, TeamInviteRow, TeamMemberRow, TeamRunRow, TeamShareRow):
        assert table_count(env, table) == 0, table.__tablename__
    assert files_under(share_dir(env.data_dir)) == []
    check = verify_receipt(receipt.to_json(), env.ctx.signer.public_pem)
    assert check.valid and check.receipt["by"] == "team_admin"
    assert check.receipt["categories"]["team"]["shared_headshot"]["count"] == 1
    assert check.receipt["identity_data_stored"] is False
    with env.db.session() as s:
        assert s.get(ErasureRow, receipt.payload["audit_id"]).receipt_digest == receipt.digest
    # The members' own sessions are theirs and stay; only the team's hold on them is gone.
    assert all(teams.membership(s) is None for s in sessions)
    with pytest.raises(NotInTeam):
        teams.share(sessions[1], headshot(9), "linkedin_classic", "Too late")
    assert audit_residue(env.settings, env.db, env.vault, env.clock()).clean


def test_after_deletion_the_admin_key_opens_nothing_and_a_repeat_returns_the_same_receipt(teams, team):
    created, admin = team
    receipt = admin.delete_team()
    with pytest.raises(TeamKeyRefused):
        teams.admin(created.admin_key)
    with pytest.raises(TeamKeyRefused):
        admin.shares()
    again = admin.delete_team()
    assert again.repeated and again.digest == receipt.digest
    assert teams.deletion_receipt(created.admin_key).digest == receipt.digest


def test_two_deletes_at_once_erase_once_and_return_the_same_receipt(env, teams, team):
    created, _ = team
    admins = [teams.admin(created.admin_key) for _ in range(4)]
    start, receipts = threading.Barrier(4), []

    def delete(admin) -> None:
        start.wait()
        receipts.append(admin.delete_team())

    threads = [threading.Thread(target=delete, args=(a,)) for a in admins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(receipts) == 4 and len({r.digest for r in receipts}) == 1
    assert sum(not r.repeated for r in receipts) == 1 and table_count(env, ErasureRow) == 1


def test_a_share_file_left_by_a_crash_is_removed_and_live_ones_are_kept(env, teams, team):
    _, admin = team
    session_id = member(env, teams, admin)
    live = teams.share(session_id, headshot(1), admin.look().style_id, "Lee")
    folder = share_dir(env.data_dir)
    (folder / ("cd" * 16)).write_bytes(b"HST1" + bytes(64))  # sealed, but its row never committed
    assert team_shares.recover(env.db, folder, unindexed_before=time.time() + 1) == 1
    assert [p.name for p in files_under(folder)] == [live] and admin.open_share(live) == headshot(1)


def test_team_audit_events_hold_counts_and_words_only(env, teams, team):
    created, admin = team
    session_id = member(env, teams, admin)
    share_id = teams.share(session_id, headshot(1), admin.look().style_id, "Jo Secret-Name")
    teams.withdraw(session_id, share_id)
    audit_id = admin._audit_id
    events = audit.events_for(env.db, audit_id)
    assert [e["event"] for e in events] == ["team_created", "team_member_joined", "team_shared", "team_share_erased"]
    dump = json.dumps(events)
    for secret in ("Jo Secret-Name", session_id, share_id, created.admin_key.code, created.team_id):
        assert secret not in dump


# --- the residue audit knows the team's files ---------------------------------------------------------
def test_the_residue_audit_finds_a_plain_file_an_orphan_and_a_missing_share(env, teams, team):
    _, admin = team
    session_id = member(env, teams, admin)
    share_id = teams.share(session_id, headshot(1), admin.look().style_id, "Kim")
    folder = share_dir(env.data_dir)
    (folder / share_id).unlink()
    (folder / ("ab" * 16)).write_bytes(headshot(2))
    report = audit_residue(env.settings, env.db, env.vault, env.clock())
    found = {(f.kind, f.where) for f in report.findings}
    assert ("dangling_index", f"team_shares/{share_id}") in found
    assert ("plaintext_image", f"team-shares/{'ab' * 16}") in found
    assert ("orphan_blob", f"team-shares/{'ab' * 16}") in found


# --- the command line ---------------------------------------------------------------------------
def test_cli_team_create_prints_an_admin_link_whose_key_the_studio_never_stored(tmp_path):
    data_dir = tmp_path / "data"
    done = subprocess.run([sys.executable, "cli.py", "team", "create", "--name", "Acme", "--json",
                           "--base-url", "https://studio.example/"],
                          cwd=ROOT, env={"HEADSHOT_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin",
                                         "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["admin_link"] == f"https://studio.example/#team_admin={out['admin_code']}"
    env = make_env(data_dir)
    try:
        admin = Teams.from_context(env.ctx).admin(out["admin_link"])
        assert admin.name == "Acme" and admin.look().version == 1
        key = AdminKey(admin._key.raw)
        everything = b"".join(p.read_bytes() for p in files_under(data_dir))
        for secret in (key.raw, key.code.encode(), key.code.replace("-", "").encode(), key.wrap_key):
            assert secret not in everything
    finally:
        env.close()


def test_cli_team_create_refuses_an_empty_name_in_words(tmp_path):
    done = subprocess.run([sys.executable, "cli.py", "team", "create", "--name", "   "], cwd=ROOT,
                          env={"HEADSHOT_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "A team needs a name" in done.stderr and "Traceback" not in done.stderr


def test_what_the_admin_view_lists_changes_its_digest_and_nothing_else_does(env, teams, team):
    """The open admin page redraws only when this digest changes (web.team_handlers.admin_tick)."""
    _, admin = team
    before = admin.changes()
    assert admin.changes() == before  # looking again changes nothing
    alice = member(env, teams, admin)
    joined = admin.changes()
    assert joined != before  # a member joined: the header counts members
    style = admin.look().style_id
    shared = teams.share(alice, headshot(1), style, "Alice")
    after_share = admin.changes()
    assert after_share != joined and len(after_share) == 16
    other_admin = teams.admin(teams.create("Other Co").admin_key)
    teams.share(member(env, teams, other_admin), headshot(2), other_admin.look().style_id, "Carol")
    assert admin.changes() == after_share  # another team's share is not this team's news
    teams.withdraw(alice, shared)
    assert admin.changes() == joined  # withdrawn: the list is as it was before the share
