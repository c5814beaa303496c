"""A team's exact backdrop (issue 16): every background pixel is the team's hex, the person is left as generated.

The photos are the public-domain fixture portraits (tests/fixtures/faces/PROVENANCE.md), each cut along a
head-and-shoulders outline drawn inside the person and laid on a known, non-uniform background (a gradient with
stripes of colour and noise around a base colour), so which pixel is background is known exactly.
"""

from __future__ import annotations

import dataclasses
import io
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from PIL import Image

import pipeline.generate
from faces.face_model import detect_faces
from pipeline.backdrop import FEATHER_FRACTION, apply_backdrop, parse_colour, replace_backdrop
from pipeline.generate import render_styles
from pipeline.styles import load_styles, resolve_style, team_styles
from privacy.teams.team_look import checked_look

SIDE = 1024  # the size of a team's default look
NAVY, GREY = "#1f2a44", "#d9d9d9"
PHOTOS = ("biden_2.jpg", "obama_1.jpg", "biden_1.jpg")  # frontal, shoulders to the bottom of the frame


@dataclasses.dataclass
class Composite:
    image: Image.Image
    person: np.ndarray  # (H, W) bool: pixels taken from the photo
    face: tuple[int, int, int, int]  # the face box where the photo was laid (left, top, right, bottom)


def background(base: str, seed: int = 0) -> np.ndarray:
    """A backdrop near `base` but not it: a vertical gradient, coloured stripes across, and noise."""
    rgb = np.array(parse_colour(base), np.float32)
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) / SIDE
    shade = 40 * (y - 0.5)[..., None] + 25 * np.sin(6.3 * x)[..., None] * np.array([1, -0.5, 0.3], np.float32)
    noise = np.random.default_rng(seed).normal(0, 4, (SIDE, SIDE, 3))
    return np.clip(rgb + shade + noise, 0, 255).astype(np.uint8)


def composite(faces_dir, name: str, behind: np.ndarray) -> Composite:
    """The photo's person, scaled so the face is ~a quarter of the width, laid on `behind` as a generated
    headshot is framed (face in the upper middle, shoulders to the bottom edge)."""
    photo = Image.open(faces_dir / name).convert("RGB")
    left, top, right, bottom = detect_faces(np.asarray(photo), threshold=0.5)[0].box
    scale = 0.24 * SIDE / (right - left)
    photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS)
    left, top, right, bottom = (v * scale for v in (left, top, right, bottom))
    dx, dy = SIDE / 2 - (left + right) / 2, max(0.27 * SIDE - top, SIDE - photo.height)
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    placed = cv2.warpAffine(np.asarray(photo), shift, (SIDE, SIDE))
    covered = cv2.warpAffine(np.ones((photo.height, photo.width), np.uint8), shift, (SIDE, SIDE)) == 1
    left, top, right, bottom = left + dx, top + dy, right + dx, bottom + dy
    w, h, cx = right - left, bottom - top, (left + right) / 2
    # An outline inside the person (narrower than hair and shoulders), so nothing of the photo's own room is kept.
    outline = np.zeros((SIDE, SIDE), np.uint8)
    cv2.ellipse(outline, (round(cx), round(top + 0.4 * h)), (round(0.6 * w), round(0.85 * h)), 0, 0, 360, 1, -1)
    cv2.rectangle(outline, (round(cx - 0.3 * w), round(bottom - 0.2 * h)),
                  (round(cx + 0.3 * w), round(bottom + 0.5 * h)), 1, -1)
    torso = [(cx - 0.5 * w, bottom + 0.35 * h), (cx + 0.5 * w, bottom + 0.35 * h), (cx + 1.5 * w, bottom + 1.1 * h),
             (cx + 1.5 * w, SIDE), (cx - 1.5 * w, SIDE), (cx - 1.5 * w, bottom + 1.1 * h)]
    cv2.fillPoly(outline, [np.round(torso).astype(np.int32)], 1)
    person = (outline == 1) & covered
    image = np.where(person[..., None], placed, behind)
    return Composite(Image.fromarray(image), person, (round(left), round(top), round(right), round(bottom)))


def exactly(image: Image.Image, colour: str) -> np.ndarray:
    """(H, W) bool: the pixels that are `colour`, bit for bit."""
    return (np.asarray(image.convert("RGB")) == parse_colour(colour)).all(axis=2)


def unchanged(before: Image.Image, after: Image.Image) -> np.ndarray:
    return (np.asarray(before.convert("RGB")) == np.asarray(after)).all(axis=2)


def corners_and_top(mask: np.ndarray, fraction: float = 0.08) -> np.ndarray:
    """The four corner squares and the top band of a (H, W) mask, each `fraction` of the side."""
    n = round(fraction * mask.shape[0])
    return np.concatenate([mask[:n].ravel(), mask[-n:, :n].ravel(), mask[-n:, -n:].ravel()])


@pytest.fixture(scope="module")
def shots(faces_dir) -> dict[str, tuple[Composite, Image.Image]]:
    """Each photo on a navy-ish backdrop, and the result of making it exactly navy."""
    made = {}
    for name in PHOTOS:
        c = composite(faces_dir, name, background(NAVY))
        made[name] = (c, apply_backdrop(c.image, NAVY))
    return made


@pytest.mark.parametrize("name", PHOTOS)
def test_every_corner_and_top_pixel_becomes_exactly_the_team_colour(shots, name):
    composite_, result = shots[name]
    assert exactly(composite_.image, NAVY).mean() < 0.01  # before: the backdrop is near the colour, not it
    assert corners_and_top(exactly(result, NAVY)).all()


@pytest.mark.parametrize("name", PHOTOS)
def test_the_face_is_left_as_generated(shots, name):
    composite_, result = shots[name]
    left, top, right, bottom = composite_.face
    same = unchanged(composite_.image, result)
    w, h = right - left, bottom - top
    # The middle of the face box: every pixel, bit for bit.
    assert same[top + h // 4:bottom - h // 4, left + w // 4:right - w // 4].all()
    # The whole face box, where it shows the person: all but its feathered edge (measured: 99.2 %).
    in_box = same[top:bottom, left:right][composite_.person[top:bottom, left:right]]
    assert in_box.mean() > 0.98
    # Painted over: a few boundary pixels of the scaled-up mask at most (measured: 7-8 of ~60 000).
    assert exactly(result, NAVY)[top:bottom, left:right][composite_.person[top:bottom, left:right]].mean() < 0.001


@pytest.mark.parametrize("name", PHOTOS)
def test_the_known_background_becomes_exact_and_the_person_stays(shots, name):
    composite_, result = shots[name]
    exact = exactly(result, NAVY)
    assert exact[~composite_.person].mean() > 0.99  # measured 99.7-99.9 %: a few px of the boundary are feathered
    assert 1 - exact[composite_.person].mean() > 0.99  # measured 99.9 %: the person is not painted over
    # So the share of exact pixels is the share of background, to within a percent.
    assert abs(exact.mean() - (~composite_.person).mean()) < 0.01


def test_the_edge_is_feathered_inward_only_and_narrowly(shots):
    composite_, result = shots["biden_2.jpg"]
    exact = exactly(result, NAVY)
    blended = ~exact & ~unchanged(composite_.image, result)
    feather = FEATHER_FRACTION * SIDE
    assert blended.sum() > 1000  # a soft edge along hair and shoulders, not a hard cut
    to_background = cv2.distanceTransform((~exact).astype(np.uint8), cv2.DIST_L2, 5)
    assert to_background[blended].max() <= feather + 1  # no blending farther in than the feather width


def test_two_members_photos_get_the_same_exact_colour(shots):
    first, second = (shots[name][1] for name in PHOTOS[:2])
    corners = [np.asarray(image)[:80, :80].reshape(-1, 3) for image in (first, second)]
    assert {tuple(p) for p in corners[0]} == {tuple(p) for p in corners[1]} == {parse_colour(NAVY)}


def test_a_backdrop_far_from_the_colour_is_replaced_too(faces_dir):
    """GrabCut, not the colour prior alone: a warm brown room behind the person still becomes exactly grey."""
    composite_ = composite(faces_dir, "obama_1.jpg", background("#8a6d4f"))
    result = replace_backdrop(composite_.image, GREY)
    exact = exactly(result.image, GREY)
    assert result.face_found and corners_and_top(exact).all()
    assert exact[~composite_.person].mean() > 0.99 and exact[composite_.person].mean() < 0.01


def test_the_same_image_gives_the_same_result_in_any_thread(shots):
    composite_, result = shots["obama_1.jpg"]
    with ThreadPoolExecutor(2) as pool:
        again = list(pool.map(lambda _: apply_backdrop(composite_.image, NAVY), range(2)))
    assert all(np.array_equal(np.asarray(result), np.asarray(image)) for image in again)


def upper_border(mask: np.ndarray, band: int) -> np.ndarray:
    """The top band and the upper half of both side bands: the border a head-and-shoulders shape never reaches."""
    half = mask.shape[0] // 2
    return np.concatenate([mask[:band].ravel(), mask[:half, :band].ravel(), mask[:half, -band:].ravel()])


def test_without_a_face_the_person_is_assumed_where_the_studio_frames_one():
    """Documented fallback: no face (here: noise, as the tiny demo model makes) means no GrabCut; the person is
    the default framing's head-and-shoulders shape, its border is exactly the colour, and it is deterministic."""
    noise = Image.fromarray(np.random.default_rng(3).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8))
    result = replace_backdrop(noise, GREY)
    assert not result.face_found
    exact = exactly(result.image, GREY)
    assert upper_border(exact, round(0.04 * SIDE)).all()
    assert 0.2 < result.background_fraction < 0.8 and exact.mean() == result.background_fraction
    kept = unchanged(noise, result.image)
    assert kept[SIDE * 3 // 10:SIDE * 4 // 10, SIDE * 45 // 100:SIDE * 55 // 100].all()  # where a face would be
    assert kept[-SIDE // 10:, SIDE * 4 // 10:SIDE * 6 // 10].all()  # and the shoulders below it
    assert np.array_equal(np.asarray(result.image), np.asarray(apply_backdrop(noise, GREY)))


def test_a_photo_of_a_room_without_anyone_still_ends_with_an_exact_top_border(faces_dir):
    """The assumed shoulders reach the bottom corners of a frame, so only the top and upper sides are promised."""
    room = Image.open(faces_dir / "obama_1.jpg").convert("RGB").crop((0, 0, 300, 300))  # curtains and a flag
    result = replace_backdrop(room, NAVY)
    exact = exactly(result.image, NAVY)
    assert not result.face_found and upper_border(exact, 6).all()


@pytest.mark.parametrize("colour", ["navy", "#12345", "#1234567", "1f2a44", "#1f2a4g", None])
def test_a_colour_not_written_as_hex_is_refused(colour):
    with pytest.raises(ValueError, match="#rrggbb"):
        apply_backdrop(Image.new("RGB", (64, 64)), colour)


def test_an_image_smaller_than_any_style_is_refused():
    with pytest.raises(ValueError, match="smaller"):
        apply_backdrop(Image.new("RGB", (16, 64)), NAVY)


def test_the_delivered_file_keeps_the_colour_to_within_the_watermarks_few_levels(shots, tmp_path):
    """What a member downloads is marked after this step (privacy/marks/provenance.py): the invisible watermark moves
    the chroma of every pixel a little and JPEG rings at edges, so the file's backdrop is the hex to within a few
    levels away from the person (measured: at most 3-5 of 255 per channel), not bit for bit; the mark still reads."""
    from privacy.marks.provenance import Provenance
    from settings import Settings
    composite_, result = shots["biden_2.jpg"]
    provenance = Provenance.from_settings(Settings(data_dir=tmp_path))
    delivered = provenance.mark_headshot(result, style_id="corporate_grey", demo=False)
    pixels = np.asarray(Image.open(io.BytesIO(delivered)).convert("RGB")).astype(np.int16)
    exact = exactly(result, NAVY)
    away = cv2.distanceTransform(exact.astype(np.uint8), cv2.DIST_L2, 5) >= 16  # px from the person's edge
    assert away.mean() > 0.5
    assert np.abs(pixels - np.int16(parse_colour(NAVY))).max(axis=2)[away].max() <= 8
    report = provenance.verify_image(delivered)
    assert report.watermark_found and report.c2pa_state == "trusted"


# --- in generation: team styles only ---------------------------------------------------------------------------
def team_style(colour: str = NAVY):
    return team_styles(load_styles(), checked_look("corporate_grey", colour, ["shirt"], 512))[0]


def test_only_a_teams_styles_carry_an_exact_backdrop():
    styles = load_styles()
    assert team_style("#1F2A44").exact_backdrop == NAVY
    assert all(style.exact_backdrop is None for style in styles.values())
    assert resolve_style(styles, "linkedin_classic:white").exact_backdrop is None


def test_a_team_run_through_the_tiny_model_has_an_exactly_coloured_border(tiny_sd):
    style = team_style()
    painted = render_styles(tiny_sd, [style], count=2, seed=5, steps=1)
    raw = render_styles(tiny_sd, [dataclasses.replace(style, exact_backdrop=None)], count=2, seed=5, steps=1)
    for team_image, plain in zip(painted, raw):
        exact = exactly(team_image.image, NAVY)
        side = exact.shape[0]
        assert upper_border(exact, 1).all()  # no face in the tiny model's noise: the default framing's border
        assert not exactly(plain.image, NAVY)[0].all()  # the model alone does not paint it
        # Everything else is the model's own pixels or a blend of them with the colour; the middle is untouched.
        assert unchanged(plain.image, team_image.image)[side * 3 // 10:side * 4 // 10, side // 2].all()
        assert team_image.seed == plain.seed and team_image.style_id == plain.style_id


def test_a_run_in_a_persons_own_style_never_reaches_the_backdrop_code(tiny_sd, monkeypatch):
    calls = []
    monkeypatch.setattr(pipeline.generate, "apply_backdrop", lambda image, colour: calls.append(colour) or image)
    render_styles(tiny_sd, [load_styles()["linkedin_classic"]], count=2, seed=0, steps=1)
    assert calls == []
    render_styles(tiny_sd, [team_style()], count=2, seed=0, steps=1)
    assert calls == [NAVY, NAVY]  # once per image of a team style
