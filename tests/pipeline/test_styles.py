"""Styles are validated data: at least eight professional looks, no free-text prompt."""

import copy
import json

import pytest

from pipeline.styles import DEFAULT_STYLES_PATH, MIN_STYLES, StyleError, load_styles, parse_styles

EXPECTED = {"linkedin_classic", "corporate_grey", "executive_dark", "realtor_warm_outdoor", "startup_casual",
            "academic", "medical", "creative_studio"}


@pytest.fixture
def raw():
    return json.loads(DEFAULT_STYLES_PATH.read_text())


def test_bundled_styles_validate_and_include_the_eight_professional_looks():
    styles = load_styles()
    assert len(styles) >= MIN_STYLES
    assert EXPECTED <= set(styles)
    for s in styles.values():
        assert s.background and s.outfit and s.lighting and s.negative_prompt()
        assert s.size_for("sdxl")[1] >= 1000 and s.size_for("sd15")[1] >= 600


def test_prompt_is_built_only_from_the_preset_around_the_subject():
    style = load_styles()["medical"]
    prompt = style.prompt("ohwx person")
    assert "ohwx person" in prompt
    for part in (style.background, style.outfit, style.lighting):
        assert part in prompt
    assert "nude" in style.negative_prompt()  # the common negatives are always appended


def test_demo_models_use_the_tiny_size():
    assert load_styles()["academic"].size_for("sdxl", is_demo=True) == (64, 64)


def test_duplicate_style_ids_are_rejected(raw):
    raw["styles"].append(copy.deepcopy(raw["styles"][0]))
    with pytest.raises(StyleError, match="twice"):
        parse_styles(raw)


def test_fewer_than_eight_styles_are_rejected(raw):
    raw["styles"] = raw["styles"][:7]
    with pytest.raises(StyleError, match="at least 8"):
        parse_styles(raw)


def test_unknown_field_such_as_a_free_prompt_is_rejected(raw):
    raw["styles"][0]["prompt"] = "anything at all"
    with pytest.raises(StyleError, match="unknown fields"):
        parse_styles(raw)


@pytest.mark.parametrize("size", [[512, 641], [16, 16], [512], "512x640"])
def test_bad_sizes_are_rejected(raw, size):
    raw["styles"][2]["sizes"]["sd15"] = size
    with pytest.raises(StyleError, match="size"):
        parse_styles(raw)


def test_empty_outfit_is_rejected(raw):
    raw["styles"][1]["outfit"] = "  "
    with pytest.raises(StyleError, match="outfit"):
        parse_styles(raw)
