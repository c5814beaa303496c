"""The gallery is drawn with the session's stars, and a saved set is answered in words (web.visitor.favourites)."""

from __future__ import annotations

import re

from studio.runs import DeliveredHeadshot
from web.render import render_gallery
from web.visitor.favourites import saved_note

SHOTS = [DeliveredHeadshot(f"{i:032x}", "linkedin_classic", i, 0.7, False) for i in range(3)]


def stars(html: str) -> list[str]:
    return re.findall(r"data-hs-star aria-pressed='(true|false)'[^>]*>(.) Favourite", html)


def test_the_gallery_stars_the_sessions_favourites_and_only_those():
    html = render_gallery(SHOTS, ["t0", "t1", "t2"], "z", {}, favourites=[SHOTS[2].blob_id, "another-sessions-id"])
    assert stars(html) == [("false", "☆"), ("false", "☆"), ("true", "★")]
    assert "kept with your session" in html and "this browser only" not in html
    assert stars(render_gallery(SHOTS, ["t0", "t1", "t2"], "z", {})) == [("false", "☆")] * 3


def test_a_saved_set_is_answered_in_words():
    assert "2 favourites saved with your session" in saved_note(2, 0)
    assert "No favourites" in saved_note(0, 0)
    note = saved_note(1, 1)
    assert "1 favourite saved" in note and "1 starred headshot not in your gallery was left out" in note
    assert "role='status'" in note
