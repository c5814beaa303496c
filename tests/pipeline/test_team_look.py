"""A team member's runs use the team's look (issue 16): one preset, the exact colour, the allowed outfits, the size.

The look a run starts with is recorded for it, so a change of look applies to new runs only; a member's own
delete-now takes back what they shared.
"""

from __future__ import annotations

import pytest

from pipeline.styles import load_styles, team_styles
from privacy.lifecycle.consent import Attestations
from privacy.teams.team_look import OUTFITS, checked_look
from settings import load_settings
from studio.service import Studio


@pytest.fixture
def studio(tmp_path):
    s = Studio(load_settings({"HEADSHOT_DATA_DIR": str(tmp_path), "HEADSHOT_BASE_MODEL": "tiny-sd"}))
    yield s
    s.close()


def member(studio: Studio, admin) -> str:
    session_id = studio.start_session()
    studio.give_consent(session_id, Attestations(True, True, True))
    studio.teams.redeem(session_id, admin.make_invite("all", 86400, 10).token)
    return session_id


def test_a_look_becomes_one_style_per_outfit_with_the_exact_colour_and_size_under_the_presets_id():
    styles = load_styles()
    look = checked_look("corporate_grey", "#1F2A44", ["shirt", "dark_suit"], 768)
    made = team_styles(styles, look)
    assert [s.id for s in made] == ["corporate_grey", "corporate_grey"]  # what a share may name
    assert [s.outfit for s in made] == [OUTFITS["dark_suit"], OUTFITS["shirt"]]
    for style in made:
        prompt = style.prompt("ohwx person")
        assert "#1f2a44" in prompt and styles["corporate_grey"].background not in prompt
        assert style.size_for("sdxl") == (768, 768) and style.palette.backdrop == ("#1f2a44",)
    assert team_styles(styles, checked_look("corporate_grey", "#000000", ["shirt"], 1024))[0].size_for("sd15") == \
        (768, 768)  # SD 1.5 is never asked for more than it was trained near


def test_a_members_run_uses_the_look_whatever_was_chosen_and_a_new_look_applies_to_new_runs_only(studio):
    created = studio.teams.create("Acme")
    admin = studio.teams.admin(created.admin_key)
    admin.set_look("academic", "#224466", ["blazer"], 512, 30)
    session_id = member(studio, admin)
    first = studio.run_styles(session_id, ["linkedin_classic", "executive_dark"])
    assert [s.id for s in first] == ["academic"] and "#224466" in first[0].prompt("x")
    admin.set_look("medical", "#ffffff", ["shirt", "knitwear"], 512, 30)
    second = studio.run_styles(session_id, ["linkedin_classic"])
    assert [s.id for s in second] == ["medical", "medical"]
    assert [look.version for look in admin.looks()] == [1, 2, 3]
    outsider = studio.start_session()
    studio.give_consent(outsider, Attestations(True, True, True))
    assert [s.id for s in studio.run_styles(outsider, ["linkedin_classic:white"])] == ["linkedin_classic:white"]


def test_a_members_delete_now_takes_back_every_share_before_the_session_goes(studio):
    admin = studio.teams.admin(studio.teams.create("Acme").admin_key)
    session_id = member(studio, admin)
    for name in ("Ada", "Ada L."):
        studio.teams.share(session_id, b"\xff\xd8\xff" + name.encode() * 100, "linkedin_classic", name)
    assert len(admin.shares()) == 2
    studio.delete_now(session_id)
    assert admin.shares() == [] and list(studio.teams.blob_dir.iterdir()) == []
    erased = [line for line in admin.csv_of_shares().splitlines()[1:]]
    assert len(erased) == 2 and all(line.startswith(",,") for line in erased)  # what remains: no name, no file
