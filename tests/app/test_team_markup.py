"""The member's share picker shows the headshots themselves (web.team_render.render_share_picker)."""

from __future__ import annotations

import re

from studio.runs import DeliveredHeadshot
from web.team_render import render_share_picker

SHOTS = [DeliveredHeadshot(f"{i:032x}", "linkedin_classic", i, 0.7, False) for i in range(2)]


def test_each_headshot_to_share_is_a_thumbnail_in_its_checkbox_label_named_as_the_gallery_names_it():
    html = render_share_picker(SHOTS, ["tok0", "tok1"], {"linkedin_classic": "LinkedIn classic"})
    labels = re.findall(r"<label class='hs-share-thumb'>(.*?)</label>", html)
    assert len(labels) == 2
    for i, (label, shot) in enumerate(zip(labels, SHOTS), start=1):
        assert f"value='{shot.blob_id}'" in label and f"<img src='media/tok{i - 1}'" in label
        assert f"<span>Headshot {i}, LinkedIn classic</span>" in label
    assert "<legend>Headshots to share</legend>" in html and "data-count='2'" in html


def test_no_headshots_yet_says_so_instead_of_an_empty_picker():
    html = render_share_picker([], [], {})
    assert "data-count='0'" in html and "<img" not in html and "once they are made" in html


def test_a_name_is_escaped_in_the_picker():
    html = render_share_picker(SHOTS[:1], ["t'><script>"], {"linkedin_classic": "<b>x</b>"})
    assert "<script>" not in html and "<b>" not in html
