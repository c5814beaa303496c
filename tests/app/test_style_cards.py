"""The style cards show each style as an honestly labelled illustration drawn from its own colours, safely escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from pipeline.styles import load_styles, resolve_style
from web.style_cards import ILLUSTRATION_NOTE, STYLE_CARDS_CSS, render_style_cards, variant_choices

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def styles():
    return load_styles()


@pytest.fixture(scope="module")
def page(styles):
    return render_style_cards(styles)


def _cards(markup: str) -> list[str]:
    return re.findall(r"<li class='hs-card'.*?</li>(?=<li class='hs-card'|</ul>$)", markup, flags=re.S)


def _art(card: str) -> ET.Element:
    """The card's illustration, parsed as XML (it must be well-formed to be parsed at all)."""
    [svg] = re.findall(r"<svg[^>]*class='hs-card-art'.*?</svg>", card, flags=re.S)
    return ET.fromstring(svg)


def _backdrop_colours(art: ET.Element) -> list[str]:
    """The backdrop's colour, or the stop colours of the gradient it is filled with."""
    [rect] = [el for el in art.iter(f"{SVG}rect") if el.get("class") == "hs-card-backdrop"]
    fill = rect.get("fill")
    if not fill.startswith("url(#"):
        return [fill]
    [gradient] = [el for el in art.iter() if el.get("id") == fill[5:-1]]
    return [stop.get("stop-color") for stop in gradient.iter(f"{SVG}stop")]


def test_every_style_gets_one_card_in_file_order(styles, page):
    cards = _cards(page)
    assert len(cards) == len(styles)
    assert [re.search(r"data-style='([^']*)'", c).group(1) for c in cards] == list(styles)
    for card, style in zip(cards, styles.values()):
        assert f"<p class='hs-card-name'>{style.name}</p>" in card
        assert style.description in card


def test_every_svg_in_the_output_is_well_formed_xml(page):
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert len(svgs) >= len(_cards(page))
    for svg in svgs:
        ET.fromstring(svg)


def test_the_backdrop_is_drawn_in_the_style_palette_colours(styles, page):
    for card, style in zip(_cards(page), styles.values()):
        expected = list(style.palette.backdrop)
        assert _backdrop_colours(_art(card)) == expected, style.id


def test_outfit_and_shirt_are_drawn_in_the_style_colours(styles, page):
    for card, style in zip(_cards(page), styles.values()):
        fills = {el.get("class"): el.get("fill") for el in _art(card).iter(f"{SVG}path")}
        assert fills["hs-card-outfit"] == style.palette.outfit, style.id
        assert fills["hs-card-shirt"] == style.palette.shirt, style.id


def test_a_variant_backdrop_is_drawn_in_its_own_colour(styles):
    variant = resolve_style(styles, "creative_studio:coral")
    [card] = _cards(render_style_cards({variant.id: variant}))
    assert _backdrop_colours(_art(card)) == ["#e5674c"]


def test_low_key_light_darkens_the_picture_and_soft_light_does_not(styles, page):
    by_id = dict(zip(styles, _cards(page)))
    vignettes = lambda card: [el for el in _art(card).iter() if el.get("class") == "hs-card-vignette"]  # noqa: E731
    assert vignettes(by_id["executive_dark"])
    assert not vignettes(by_id["linkedin_classic"])


def test_the_highlight_sits_on_the_key_light_side(styles, page):
    by_id = dict(zip(styles, _cards(page)))
    centre = lambda card: float(next(el for el in _art(card).iter(f"{SVG}radialGradient")  # noqa: E731
                                     if el.get("id").endswith("-light")).get("cx"))
    assert centre(by_id["corporate_grey"]) < 60 < centre(by_id["academic"])  # left, right
    assert centre(by_id["medical"]) == 60  # front


def test_each_variant_colour_appears_in_its_named_swatch(styles, page):
    for card, style in zip(_cards(page), styles.values()):
        swatches = re.findall(r"<li class='hs-swatch'>(.*?)</li>", card, flags=re.S)
        if not style.backgrounds:
            assert not swatches, style.id
            continue
        found = {re.search(r"<span>(.*?)</span>", s).group(1): re.search(r"fill='([^']*)'", s).group(1)
                 for s in swatches}
        assert found == {"Standard": style.palette.backdrop[0], **{b.name: b.colour for b in style.backgrounds}}


def test_the_illustration_says_it_is_an_illustration_not_a_headshot(styles, page):
    for card, style in zip(_cards(page), styles.values()):
        art = _art(card)
        assert art.get("role") == "img"
        assert art.get("aria-label").startswith(f"Illustration of the {style.name} style: ")
        assert style.background in art.get("aria-label")
        assert f"<figcaption class='hs-card-note'>{ILLUSTRATION_NOTE}</figcaption>" in card
    assert "not a generated headshot" in ILLUSTRATION_NOTE


def test_a_hostile_style_name_and_texts_are_escaped(styles):
    evil = replace(styles["corporate_grey"], id="corporate_grey'><script>", name="<script>alert(1)</script>",
                   description="\"onmouseover='x'", background="<img src=x onerror=alert(1)>")
    markup = render_style_cards({"evil": evil})
    assert "<script" not in markup and "<img" not in markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup
    assert "onmouseover='x'" not in markup
    ET.fromstring(re.search(r"<svg.*?</svg>", markup, flags=re.S).group(0))  # the label stays inside its attribute


def test_the_markup_needs_no_script_and_no_inline_style(page):
    assert "<script" not in page.lower()
    assert not re.search(r"\sstyle\s*=", page, flags=re.I)  # a strict CSP blocks style= attributes
    assert not re.search(r"(href|src)\s*=", page, flags=re.I)  # no external resources
    assert not re.search(r"\son[a-z]+\s*=", page, flags=re.I)


def test_the_cards_css_is_a_grid_that_cannot_push_the_page_sideways():
    assert "grid-template-columns: repeat(auto-fill, minmax(min(136px, 100%), 1fr))" in STYLE_CARDS_CSS
    for rule in (".hs-cards", ".hs-card ", ".hs-swatches"):
        block = STYLE_CARDS_CSS.split(rule, 1)[1].split("}", 1)[0]
        assert "min-width: 0" in block and "max-width: 100%" in block, rule
    art = STYLE_CARDS_CSS.split(".hs-card-art", 1)[1].split("}", 1)[0]
    assert "width: 100%" in art and "height: auto" in art
    assert "<" not in STYLE_CARDS_CSS  # it goes into a <style> element as is


def test_choices_list_every_style_then_its_variants_by_reference(styles):
    choices = variant_choices(styles)
    assert choices[:4] == [("LinkedIn classic", "linkedin_classic"),
                           ("LinkedIn classic · Pale blue", "linkedin_classic:pale_blue"),
                           ("LinkedIn classic · White", "linkedin_classic:white"),
                           ("LinkedIn classic · Warm beige", "linkedin_classic:warm_beige")]
    refs = [ref for _, ref in choices]
    assert len(refs) == len(set(refs)) == len(styles) + sum(len(s.backgrounds) for s in styles.values())
    assert all(resolve_style(styles, ref).name == label for label, ref in choices)
    assert ("Academic", "academic") in choices and not any(r.startswith("academic:") for r in refs)


def test_the_cards_are_where_styles_are_picked_one_checkbox_per_choice_named_as_the_studio_names_it(styles, page):
    boxes = re.findall(r"<input type='checkbox' class='hs-pick-box' id='([^']*)' data-hs-choice='([^']*)' "
                       r"aria-label='([^']*)'>", page)
    # Every choice the form offers, in the same order, each with the name resolve_style gives it.
    assert [(label, ref) for _, ref, label in boxes] == variant_choices(styles)
    assert len({box_id for box_id, _, _ in boxes}) == len(boxes)  # ids unique on the page
    for card, style in zip(_cards(page), styles.values()):
        inside = re.findall(r"data-hs-choice='([^']*)'", card)
        assert inside[0] == style.id and all(ref.startswith(f"{style.id}:") for ref in inside[1:])
        assert card.count("<label class='hs-pick'>") == len(inside)  # each checkbox inside its visible label


# --- the outfit on each card (a person's, not only a team admin's) -----------------------------------------------
def test_every_card_offers_the_styles_own_outfit_then_each_outfit_of_the_team_vocabulary(styles, page):
    from privacy.teams.team_look import OUTFITS
    cards = _cards(page)
    assert len(cards) == len(styles)
    for card, style in zip(cards, styles.values()):
        [select] = re.findall(r"<select id='(hs-outfit-\d+)' class='hs-outfit-pick' data-hs-outfit-of='([a-z_]+)'>",
                              card)
        assert select[1] == style.id and f"<label class='hs-outfit'>Outfit<select id='{select[0]}'" in card
        options = re.findall(r"<option value='([a-z_]*)'>([^<]*)</option>", card)
        assert options[0] == ("", f"As shown: {style.outfit}")
        assert options[1:] == list(OUTFITS.items())


def test_the_form_holds_every_style_in_every_outfit_named_as_the_studio_names_it(styles):
    from privacy.teams.team_look import OUTFITS
    from web.style_cards import look_count, style_choices
    choices = style_choices(styles)
    assert len(choices) == len(variant_choices(styles)) * (1 + len(OUTFITS)) and look_count(styles) == 20
    for label, ref in choices:
        assert label == resolve_style(styles, ref).name
    assert ("LinkedIn classic · White · blazer over a shirt", "linkedin_classic:white@blazer") in choices


def test_in_a_team_the_outfit_is_the_teams_so_the_cards_offer_none():
    assert "body:not(:has(#hs-styles)) .hs-outfit { display: none; }" in STYLE_CARDS_CSS.replace(
        "body:not(:has(#hs-styles)) #hs-will-get, ", "")
