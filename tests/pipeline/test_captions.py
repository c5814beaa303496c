"""Captions name what varies and is not the person (background, light, framing, colour), from pixels, nothing
personal."""

import numpy as np
import pytest
from PIL import Image

from pipeline.captions import colour_name, describe
from pipeline.faces import prepare_examples


def portrait(background, face=(180, 140, 120), size=64) -> Image.Image:
    px = np.empty((size, size, 3), dtype=np.uint8)
    px[:] = background
    px[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = face  # a "face" in the middle
    px[2 * size // 3:, :] = (40, 40, 90)  # "clothes" at the bottom, never read as background
    return Image.fromarray(px)


@pytest.mark.parametrize("rgb,name", [((250, 250, 250), "white"), ((128, 128, 128), "grey"), ((10, 10, 10), "black"),
                                      ((30, 60, 160), "blue"), ((200, 40, 40), "red"), ((190, 220, 250), "light blue")])
def test_colours_get_plain_names(rgb, name):
    assert colour_name(np.array(rgb)) == name


def test_a_white_wall_is_named_as_the_background_not_learned_as_the_person():
    assert "white background" in describe(portrait((245, 245, 245)))
    assert "blue background" in describe(portrait((30, 60, 160)))


def test_light_is_described_as_bright_dim_warm_or_cool():
    assert "bright" in describe(portrait((240, 240, 240), face=(230, 210, 200)))
    assert "dim" in describe(portrait((30, 30, 30), face=(50, 40, 35)))
    assert "warm" in describe(portrait((200, 150, 90)))
    assert "cool" in describe(portrait((120, 150, 200)))


def test_black_and_white_photos_are_captioned_as_such():
    grey = portrait((200, 200, 200), face=(120, 120, 120)).convert("L").convert("RGB")
    assert describe(grey).endswith("black and white")
    assert "black and white" not in describe(portrait((200, 200, 200)))


def test_framing_follows_how_far_the_crop_had_to_shrink():
    assert describe(portrait((200, 200, 200))).startswith("head and shoulders")
    assert describe(portrait((200, 200, 200)), fit=0.8).startswith("close-up")


def test_captions_of_real_photos_carry_no_personal_attributes(screened_a):
    personal = {"man", "woman", "male", "female", "old", "young", "boy", "girl", "asian", "caucasian", "african",
                "smiling", "beard", "bald", "hair", "age", "years"}
    examples = prepare_examples(screened_a, 64)
    for example in examples:
        details = example.caption.split(", ", 1)[1]
        assert not set(details.replace(",", " ").split()) & personal
    assert len({e.caption for e in examples}) >= 2  # they differ between photos
