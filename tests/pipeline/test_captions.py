"""Captions name what varies and is not the person (background, light, framing, colour; a smile, glasses, the
clothes), from pixels, never who the person is."""

import dataclasses

import numpy as np
import pytest
from PIL import Image, ImageDraw

from faces.face_parts import face_landmarks_68
from pipeline.captions import BORDER, colour_name, describe, skin_colour
from pipeline.faces import crop_square, prepare_examples


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
                "beard", "bald", "hair", "age", "years"}
    examples = prepare_examples(screened_a, 64)
    for example in examples:
        details = example.caption.split(", ", 1)[1]
        assert not set(details.replace(",", " ").split()) & personal
    assert len({e.caption for e in examples}) >= 2  # they differ between photos


def details(examples) -> list[str]:
    return [e.caption.split(", ", 1)[1] for e in examples]


def test_a_smile_is_named_only_on_the_photos_that_smile(screened_a, screened_b):
    # The fixtures: obama_1 and biden_2 smile with teeth; obama_2 talks, obama_3 and 4 and biden_1 do not smile.
    smiling = ["smiling" in d.split(", ") for d in details(prepare_examples(screened_a + screened_b, 256))]
    assert smiling == [True, False, False, False, False, True]


def with_pixels(screened, paint):
    """The screened photo with `paint(image, landmarks68)` applied to a copy of its pixels (same face, same box)."""
    image = Image.fromarray(screened.photo.pixels.copy())
    paint(ImageDraw.Draw(image), face_landmarks_68(screened.photo.pixels, screened.face.box))
    photo = dataclasses.replace(screened.photo, pixels=np.asarray(image))
    return dataclasses.replace(screened, photo=photo)


def draw_glasses(draw, points):
    width = max(2, int(np.linalg.norm(points[45] - points[36]) / 40))
    for eye in (points[36:42], points[42:48]):
        (x0, y0), (x1, y1) = eye.min(axis=0), eye.max(axis=0)
        w = x1 - x0
        draw.rectangle([x0 - 0.3 * w, y0 - 0.5 * w, x1 + 0.3 * w, y1 + 0.5 * w], outline=(20, 20, 20), width=width)
    y = (points[39, 1] + points[42, 1]) / 2 - 0.1 * (points[42, 0] - points[39, 0])
    draw.line([points[39, 0] - 5, y, points[42, 0] + 5, y], fill=(20, 20, 20), width=width)


def test_glasses_are_named_when_a_frame_crosses_the_bridge_of_the_nose(screened_a):
    bare = details(prepare_examples(screened_a, 256))
    framed = details(prepare_examples([with_pixels(s, draw_glasses) for s in screened_a], 256))
    assert not any("glasses" in d.split(", ") for d in bare)
    assert all("glasses" in d.split(", ") for d in framed)


def paint_below_the_chin(colour):
    def paint(draw, points):
        chin, jaw = points[8], np.linalg.norm(points[14] - points[2])
        draw.rectangle([chin[0] - jaw, chin[1] + 0.02 * jaw, chin[0] + jaw, chin[1] + 3 * jaw], fill=colour)
    return paint


def test_the_clothing_colour_below_the_chin_is_named(screened_a, screened_b):
    green = prepare_examples([with_pixels(s, paint_below_the_chin((40, 150, 60))) for s in screened_a], 256)
    assert all("green" in d.split("wearing ")[1].split(",")[0] for d in details(green))
    # The fixtures' own clothes: a dark suit over a light shirt, named as worn.
    real = details(prepare_examples(screened_a + screened_b, 256))
    assert sum("dark blue" in d for d in real) >= 3 and all("wearing" in d for d in real)


def test_skin_or_backdrop_below_the_chin_is_not_named_as_clothing(screened_a):
    s = screened_a[3]  # obama_4: a grey backdrop
    [plain] = prepare_examples([s], 256)
    px = np.asarray(plain.image, dtype=np.float32)
    band = int(px.shape[0] * BORDER)
    backdrop = tuple(int(v) for v in px[:band].reshape(-1, 3).mean(axis=0))  # the crop's top band, as described
    square = crop_square(s.photo.pixels, s.face.landmarks, s.face.box)
    points = (face_landmarks_68(s.photo.pixels, s.face.box) - [square.left, square.top]) * 256 / square.side
    skin = tuple(int(v) for v in skin_colour(px, points))
    for colour in (backdrop, skin):
        [example] = prepare_examples([with_pixels(s, paint_below_the_chin(colour))], 256)
        assert "wearing" not in example.caption
