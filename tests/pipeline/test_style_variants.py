"""Each style carries the colours of its illustration; some offer background variants, chosen by a style reference."""

from __future__ import annotations

import json

import pytest

from errors import PhotoSetRejected
from pipeline.styles import (
    DEFAULT_STYLES_PATH,
    MAX_REF_LENGTH,
    StyleError,
    UnknownStyle,
    load_styles,
    parse_styles,
    resolve_style,
)

# Styles whose backdrop is a photographed scene: a plain colour would not be that style any more.
SCENE_STYLES = {"realtor_warm_outdoor", "startup_casual", "academic", "medical"}


@pytest.fixture
def raw():
    return json.loads(DEFAULT_STYLES_PATH.read_text())


@pytest.fixture(scope="module")
def styles():
    return load_styles()


def _style(raw: dict, style_id: str) -> dict:
    return next(s for s in raw["styles"] if s["id"] == style_id)


# --- the file's palette and backgrounds -------------------------------------------------------------
def test_every_bundled_style_has_a_palette_and_scenes_offer_no_plain_backgrounds(styles):
    for style in styles.values():
        assert style.palette.backdrop and style.palette.outfit and style.palette.shirt
        assert style.palette.light.side in ("left", "right", "front")
    assert {s.id for s in styles.values() if not s.backgrounds} == SCENE_STYLES
    assert styles["executive_dark"].palette.light.quality == "low-key"  # "dramatic low-key lighting"


@pytest.mark.parametrize("colour", ["#FFF", "red", "#12345", "#1234567", "#gggggg", "url(#x)", "#FFFFFF", 0x112233,
                                    "#112233\n"])
def test_a_colour_not_written_as_lower_case_rrggbb_is_rejected_naming_the_style(raw, colour):
    _style(raw, "corporate_grey")["palette"]["outfit"] = colour
    with pytest.raises(StyleError, match=r"style 'corporate_grey': palette: 'outfit' must be a colour .*#rrggbb"):
        parse_styles(raw)


def test_a_gradient_backdrop_has_exactly_two_colours(raw):
    _style(raw, "academic")["palette"]["backdrop"] = ["#111111", "#222222", "#333333"]
    with pytest.raises(StyleError, match="style 'academic': palette: 'backdrop' must be one colour or a list of two"):
        parse_styles(raw)


def test_a_palette_with_an_unknown_key_is_rejected(raw):
    _style(raw, "medical")["palette"]["tie"] = "#aa0000"
    with pytest.raises(StyleError, match=r"style 'medical': palette: unknown fields \['tie'\]"):
        parse_styles(raw)


def test_a_style_without_a_palette_is_rejected(raw):
    del _style(raw, "medical")["palette"]
    with pytest.raises(StyleError, match=r"missing fields \['palette'\]"):
        parse_styles(raw)


@pytest.mark.parametrize("light, message", [
    ({"side": "top", "quality": "soft"}, "light 'side' must be one of left, right, front"),
    ({"side": "left", "quality": "moody"}, "light 'quality' must be one of soft, hard, low-key"),
    ({"side": "left"}, r"light: unknown fields \[\], missing fields \['quality'\]"),
    ("soft from the left", "light must be an object"),
])
def test_a_light_outside_the_known_words_is_rejected(raw, light, message):
    _style(raw, "linkedin_classic")["palette"]["light"] = light
    with pytest.raises(StyleError, match=f"style 'linkedin_classic': palette: {message}"):
        parse_styles(raw)


def test_a_background_variant_needs_exactly_id_name_colour_and_prompt(raw):
    _style(raw, "creative_studio")["backgrounds"][0]["negative"] = "grey"
    with pytest.raises(StyleError, match=r"style 'creative_studio': background #1: unknown fields \['negative'\]"):
        parse_styles(raw)


def test_a_background_variant_id_may_not_repeat_within_its_style(raw):
    variants = _style(raw, "creative_studio")["backgrounds"]
    variants.append(dict(variants[0]))
    with pytest.raises(StyleError, match=r"style 'creative_studio': background 'mustard' appears twice"):
        parse_styles(raw)


@pytest.mark.parametrize("variant_id", ["Navy", "a:b", "x", "navy\n", "n" * 41])
def test_a_background_variant_id_must_be_a_plain_id(raw, variant_id):
    _style(raw, "linkedin_classic")["backgrounds"][0]["id"] = variant_id
    with pytest.raises(StyleError, match="style 'linkedin_classic': background #1: id must be lower-case"):
        parse_styles(raw)


def test_a_background_variant_colour_and_prompt_are_checked(raw):
    variant = _style(raw, "linkedin_classic")["backgrounds"][0]
    variant["colour"] = "blue"
    with pytest.raises(StyleError, match="background 'pale_blue': 'colour' must be a colour"):
        parse_styles(raw)
    variant["colour"], variant["prompt"] = "#c9d8e6", " "
    with pytest.raises(StyleError, match="background 'pale_blue': 'prompt' must be a non-empty string"):
        parse_styles(raw)


def test_backgrounds_must_be_a_short_list(raw):
    style = _style(raw, "linkedin_classic")
    first = style["backgrounds"][0]
    style["backgrounds"] = {"id": "white"}
    with pytest.raises(StyleError, match="'backgrounds' must be a list"):
        parse_styles(raw)
    style["backgrounds"] = [dict(first, id=f"v{i:02d}") for i in range(9)]
    with pytest.raises(StyleError, match="at most 8 variants"):
        parse_styles(raw)


def test_a_style_id_with_a_trailing_newline_is_rejected(raw):
    raw["styles"][0]["id"] = "linkedin_classic\n"
    with pytest.raises(StyleError, match="id must be lower-case"):
        parse_styles(raw)


# --- style references ---------------------------------------------------------------------------
def test_a_plain_reference_is_the_style_itself(styles):
    assert resolve_style(styles, "linkedin_classic") is styles["linkedin_classic"]


def test_a_variant_reference_swaps_the_background_and_keeps_the_rest(styles):
    base = styles["linkedin_classic"]
    variant = resolve_style(styles, "linkedin_classic:pale_blue")
    assert variant.id == "linkedin_classic:pale_blue"  # what jobs, reports and provenance carry
    assert variant.name == "LinkedIn classic · Pale blue"
    assert variant.background == "plain pale blue studio backdrop"
    assert variant.palette.backdrop == ("#c9d8e6",)
    assert (variant.outfit, variant.lighting, variant.sizes, variant.palette.outfit) == \
        (base.outfit, base.lighting, base.sizes, base.palette.outfit)
    assert variant.backgrounds == ()  # a chosen variant offers no further variants


def test_a_variant_prompt_holds_the_variant_background_and_not_the_original(styles):
    base = styles["creative_studio"]
    prompt = resolve_style(styles, "creative_studio:mustard").prompt("ohwx person")
    assert "bold mustard yellow painted studio wall" in prompt
    assert base.background not in prompt
    assert base.outfit in prompt and "ohwx person" in prompt
    assert resolve_style(styles, "creative_studio:mustard").negative_prompt() == base.negative_prompt()


def test_an_unknown_style_is_a_typed_error(styles):
    with pytest.raises(UnknownStyle, match="Unknown style 'cowboy'"):
        resolve_style(styles, "cowboy")
    assert issubclass(UnknownStyle, LookupError)


def test_a_variant_the_style_does_not_offer_is_a_typed_error(styles):
    with pytest.raises(UnknownStyle, match="'LinkedIn classic' has no background 'hot_pink'"):
        resolve_style(styles, "linkedin_classic:hot_pink")
    with pytest.raises(UnknownStyle, match="no background 'pale_blue'"):  # a scene style offers none at all
        resolve_style(styles, "academic:pale_blue")


@pytest.mark.parametrize("ref", [
    "", ":", "linkedin_classic:", ":pale_blue", "linkedin_classic:pale_blue:white", "linkedin_classic::white",
    "../linkedin_classic", "linkedin_classic/..", "..", "LinkedIn_Classic", "linkedin_classic ", "linkedin_classic\n",
    "linkedin_classïc", "linkedin_classic:pale_blue\x00", "linkedin_classic;drop", "😀" * 30,
    "linkedin_classic:" + "a" * 200, "x" * 100_000, None, 17, ["linkedin_classic"],
])
def test_hostile_references_are_unknown_styles_with_a_short_safe_message(styles, ref):
    with pytest.raises(UnknownStyle) as caught:
        resolve_style(styles, ref)
    message = str(caught.value)
    assert len(message) <= 60
    assert message.replace("…", "").isascii() and message.isprintable()
    assert "/" not in message and "<" not in message  # the quoted part keeps only id-like characters


def test_references_longer_than_two_ids_are_refused_before_any_lookup(styles):
    class Spy(dict):
        def get(self, *args):
            raise AssertionError("a style was looked up for an over-long reference")

    with pytest.raises(UnknownStyle):
        resolve_style(Spy(styles), "a" * (MAX_REF_LENGTH + 1))


# --- the studio takes references ----------------------------------------------------------------
@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from settings import load_settings
    from studio.service import Studio
    s = Studio(load_settings({"HEADSHOT_DATA_DIR": str(tmp_path_factory.mktemp("variants")),
                              "HEADSHOT_BASE_MODEL": "tiny-sd", "HEADSHOT_DEVICE": "cpu"}))
    yield s
    s.close()


def test_the_studio_accepts_a_variant_reference(studio):
    style = studio.style("executive_dark:deep_navy")
    assert style.id == "executive_dark:deep_navy" and style.background == "dark navy blue background"
    assert studio.style("executive_dark") is studio.styles["executive_dark"]


@pytest.mark.parametrize("ref", ["cowboy", "executive_dark:hot_pink", "executive_dark:deep_navy:x", "<script>" * 1000])
def test_the_studio_rejects_a_bad_reference_as_unknown_style_without_echoing_it(studio, ref):
    with pytest.raises(PhotoSetRejected) as caught:
        studio.style(ref)
    assert caught.value.code == "unknown_style"
    assert "choose one of the listed styles" in str(caught.value)
    assert len(str(caught.value)) < 120 and "<" not in str(caught.value)


def test_admission_to_the_gpu_line_accepts_variant_references(studio):
    from privacy.lifecycle.consent import Attestations
    session_id = studio.start_session()
    studio.give_consent(session_id, Attestations(own_photos=True, adult=True, purpose=True))
    # The styles pass; what stops this session is that it has no photos yet.
    with pytest.raises(PhotoSetRejected) as caught:
        studio.check_ready_to_generate(session_id, ["linkedin_classic:white", "creative_studio:cobalt", "medical"])
    assert caught.value.code == "no_photos"
    with pytest.raises(PhotoSetRejected) as caught:
        studio.check_ready_to_generate(session_id, ["linkedin_classic:white", "medical:white"])
    assert caught.value.code == "unknown_style"


# --- an outfit on a person's own style (the team look's vocabulary, privacy.teams.team_look.OUTFITS) -------------
def test_an_outfit_reference_puts_the_outfit_words_in_the_prompt_in_place_of_the_styles_own(styles):
    from privacy.teams.team_look import OUTFITS
    base = styles["linkedin_classic"]
    chosen = resolve_style(styles, "linkedin_classic:white@knitwear")
    prompt = chosen.prompt("ohwx person")
    assert OUTFITS["knitwear"] in prompt and base.outfit not in prompt
    assert resolve_style(styles, "linkedin_classic:white").background in prompt  # the variant still applies
    assert chosen.id == "linkedin_classic:white@knitwear" and chosen.name == "LinkedIn classic · White · smart knitwear"
    plain = resolve_style(styles, "academic@dark_suit")  # a style without variants takes an outfit too
    assert plain.outfit == OUTFITS["dark_suit"] and plain.background == styles["academic"].background


@pytest.mark.parametrize("ref", ["linkedin_classic@hat", "linkedin_classic@blazer@blazer", "linkedin_classic@",
                                 "@blazer", "linkedin_classic:white@Blazer", "linkedin_classic@blazer:white"])
def test_an_outfit_outside_the_vocabulary_or_out_of_place_is_an_unknown_style(styles, ref):
    with pytest.raises(UnknownStyle):
        resolve_style(styles, ref)


def test_a_persons_outfit_choice_reaches_the_styles_their_job_renders(studio):
    from privacy.lifecycle.consent import Attestations
    from privacy.teams.team_look import OUTFITS
    session_id = studio.start_session()
    studio.give_consent(session_id, Attestations(own_photos=True, adult=True, purpose=True))
    rendered = studio.run_styles(session_id, ["executive_dark:deep_navy@blazer", "medical"])
    assert [s.id for s in rendered] == ["executive_dark:deep_navy@blazer", "medical"]
    assert OUTFITS["blazer"] in rendered[0].prompt("x") and "dark navy blue background" in rendered[0].prompt("x")
    assert studio.styles["medical"].outfit in rendered[1].prompt("x")
