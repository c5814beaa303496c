"""privacy/intake/screening.py: one face, whole, large enough, the same person in every photo (promises 13, 14)."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
from PIL import Image

from errors import PhotoRejected, PhotoSetRejected
from faces.face_model import detect_faces
from privacy.intake.ingest import CleanPhoto, IngestLimits, ingest
from privacy.intake.screening import ScreenedPhoto, ScreeningRules, screen_photo, screen_set, screen_uploads
from settings import load_settings

SETTINGS = load_settings({})
RULES = ScreeningRules.from_settings(SETTINGS)
LIMITS = IngestLimits.from_settings(SETTINGS)
# obama_partial_face.jpg is 491 px wide, below the default 512 px minimum that ingest
# enforces; screening is tested on it with a lower minimum.
LOW_MIN_SIDE = dataclasses.replace(LIMITS, min_side=256)


@pytest.fixture(scope="module")
def clean(faces_dir):
    """Ingested fixture photos, decoded once for the module."""
    names = ["obama_1.jpg", "obama_2.jpg", "obama_3.jpg", "obama_4.jpg", "biden_2.jpg", "two_people.jpg",
             "obama_partial_face.jpg"]
    return {name: ingest((faces_dir / name).read_bytes(), LOW_MIN_SIDE) for name in names}


@pytest.fixture(scope="module")
def screened(clean):
    """The fixtures that pass screening, screened once for the module."""
    return {name: screen_photo(clean[name], RULES)
            for name in ["obama_1.jpg", "obama_2.jpg", "obama_3.jpg", "obama_4.jpg", "biden_2.jpg"]}


def rejection(photo: CleanPhoto, rules: ScreeningRules = RULES) -> PhotoRejected:
    with pytest.raises(PhotoRejected) as info:
        screen_photo(photo, rules)
    return info.value


# --- one photo ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["obama_1.jpg", "obama_4.jpg", "biden_2.jpg"])
def test_portrait_of_one_person_is_accepted(screened, name):
    result = screened[name]
    assert isinstance(result, ScreenedPhoto)
    left, top, right, bottom = result.face.box
    assert 0 <= left < right <= result.photo.width and 0 <= top < bottom <= result.photo.height
    assert result.embedding.shape == (128,)


def test_photo_with_two_faces_is_rejected(clean):
    error = rejection(clean["two_people.jpg"])
    assert error.code == "several_faces"
    assert error.message == "Another person is in this photo. Crop them out or choose a photo of you alone."


def test_small_second_face_in_the_background_is_rejected(clean, screened):
    """A bystander whose face is ~7% of the photo's long side (80 px here) still rejects it."""
    portrait = clean["obama_1.jpg"]
    other = screened["biden_2.jpg"]
    left, top, right, bottom = other.face.box
    margin = (right - left) // 3
    crop = Image.fromarray(other.photo.pixels[top - margin:bottom + margin, left - margin:right + margin])
    scale = 80 / (right - left)
    crop = crop.resize((round(crop.width * scale), round(crop.height * scale)), Image.Resampling.LANCZOS)
    canvas = Image.fromarray(portrait.pixels.copy())
    canvas.paste(crop, (portrait.width - crop.width - 20, portrait.height - crop.height - 20))
    assert rejection(CleanPhoto.from_array(np.asarray(canvas))).code == "several_faces"


def test_face_cut_by_the_edge_is_rejected(clean):
    assert rejection(clean["obama_partial_face.jpg"]).code == "face_cut_off"


def test_face_too_small_in_the_frame_is_rejected(clean):
    # The same portrait with a wide border: the face becomes ~9% of the short side.
    portrait = clean["obama_1.jpg"].pixels
    h, w = portrait.shape[:2]
    framed = np.pad(portrait, ((h, h), (w, w), (0, 0)), constant_values=200)
    assert rejection(CleanPhoto.from_array(framed)).code == "face_too_small"


def test_full_length_fixture_is_judged_by_its_face_to_short_side_fraction(clean, screened):
    # Measured: obama_3's face is ~0.19 of the short side, above the default 0.12, so it
    # is accepted; a stricter setting rejects it.
    result = screened["obama_3.jpg"]
    fraction = (result.face.box[2] - result.face.box[0]) / min(result.photo.width, result.photo.height)
    assert 0.15 < fraction < 0.25
    strict = dataclasses.replace(RULES, min_face_fraction=0.25)
    assert rejection(clean["obama_3.jpg"], strict).code == "face_too_small"


def test_photo_without_a_face_is_rejected():
    grey = CleanPhoto.from_array(np.full((600, 800, 3), 128, np.uint8))
    assert rejection(grey).code == "no_face"
    # A "landscape": sky, hills and a sun, with texture.
    y, x = np.mgrid[0:600, 0:800]
    sky = np.stack([100 + y // 6, 150 + y // 8, 255 - y // 10], axis=-1)
    hills = (y > 380 + 40 * np.sin(x / 60)) [..., None] * np.array([-60, 40, -120])
    sun = ((x - 620) ** 2 + (y - 120) ** 2 < 50 ** 2)[..., None] * np.array([150, 100, -100])
    noise = np.random.default_rng(1).integers(-12, 12, (600, 800, 3))
    landscape = np.clip(sky + hills + sun + noise, 0, 255).astype(np.uint8)
    assert rejection(CleanPhoto.from_array(landscape)).code == "no_face"


def test_screened_photo_repr_shows_no_embedding(screened):
    text = repr(screened["obama_1.jpg"])
    assert "embedding" not in text and "pixels" not in text


def test_rules_come_from_settings():
    rules = ScreeningRules.from_settings(load_settings({"HEADSHOT_MIN_PHOTOS": "6", "HEADSHOT_MAX_PHOTOS": "9"}))
    assert (rules.min_photos, rules.max_photos) == (6, 9)
    assert rules.same_person_distance == SETTINGS.same_person_distance


# --- the set ------------------------------------------------------------------------------------

def test_set_with_another_person_names_that_photo(screened):
    photos = [screened[n] for n in ["obama_1.jpg", "obama_4.jpg", "obama_2.jpg", "biden_2.jpg", "obama_3.jpg"]]
    verdict = screen_set(photos, RULES)
    assert not verdict.acceptable
    assert [p.code for p in verdict.problems] == ["different_person"]
    assert verdict.problems[0].photos == (4,)
    assert verdict.rejected[4].message.startswith("Photo 4 looks like a different person from the others.")
    with pytest.raises(PhotoSetRejected) as info:
        verdict.raise_if_unacceptable()
    assert info.value.code == "different_person"


def test_odd_one_out_is_found_wherever_it_is(screened):
    photos = [screened[n] for n in ["obama_1.jpg", "biden_2.jpg", "obama_4.jpg", "obama_3.jpg", "obama_2.jpg"]]
    verdict = screen_set(photos, RULES)
    assert set(verdict.rejected) == {2}
    assert verdict.usable == (1, 3, 4, 5)


def test_photos_of_one_person_make_an_acceptable_set(screened):
    photos = [screened[n] for n in ["obama_1.jpg", "obama_2.jpg", "obama_3.jpg", "obama_4.jpg"]]
    verdict = screen_set(photos, RULES)
    assert verdict.acceptable and verdict.rejected == {} and verdict.usable == (1, 2, 3, 4)


def test_re_encoded_copy_is_flagged_as_near_duplicate(screened):
    original = screened["obama_1.jpg"]
    buf = io.BytesIO()
    Image.fromarray(original.photo.pixels).save(buf, "JPEG", quality=60)
    copy = screen_photo(ingest(buf.getvalue(), LIMITS), RULES)
    photos = [original, screened["obama_4.jpg"], screened["obama_2.jpg"], copy, screened["obama_3.jpg"]]
    verdict = screen_set(photos, RULES)
    assert verdict.rejected[4].code == "near_duplicate"
    assert verdict.rejected[4].message == ("Photo 4 is almost the same as photo 1; a different angle or expression "
                                           "helps more.")
    # The copy is left out; four different photos remain, which is enough.
    assert verdict.usable == (1, 2, 3, 5) and verdict.acceptable


def test_too_few_photos_is_a_set_problem(screened):
    verdict = screen_set([screened["obama_1.jpg"], screened["obama_4.jpg"]], RULES)
    assert [p.code for p in verdict.problems] == ["too_few_photos"]
    assert str(RULES.min_photos) in verdict.problems[0].message


def test_too_many_photos_is_a_set_problem(screened):
    photos = [screened[n] for n in ["obama_1.jpg", "obama_2.jpg", "obama_3.jpg", "obama_4.jpg"]]
    verdict = screen_set(photos, dataclasses.replace(RULES, min_photos=1, max_photos=3))
    assert [p.code for p in verdict.problems] == ["too_many_photos"]


# --- screen_uploads: what the app and the CLI call -----------------------------------------------

@pytest.fixture(scope="module")
def upload_report(faces_dir):
    names = ["obama_1.jpg", "obama_4.jpg", "two_people.jpg", "obama_2.jpg", "biden_2.jpg", "obama_3.jpg"]
    files = [(faces_dir / n).read_bytes() for n in names] + [b"<html>not a photo</html>"]
    return screen_uploads(files, LIMITS, RULES)


def test_each_upload_gets_a_verdict_by_position(upload_report):
    codes = [(item.index, item.code) for item in upload_report.items]
    assert codes == [(1, "accepted"), (2, "accepted"), (3, "several_faces"), (4, "accepted"),
                     (5, "different_person"), (6, "accepted"), (7, "unsupported_type")]
    for item in upload_report.items:
        assert item.accepted == (item.code == "accepted")
        assert (item.screened is not None) == item.accepted
        assert item.message and (item.advice or item.accepted)


def test_set_with_another_person_is_not_acceptable(upload_report):
    assert not upload_report.acceptable
    assert [p.code for p in upload_report.set_problems] == ["different_person"]
    assert "Photo 5" in upload_report.set_problems[0].message
    assert len(upload_report.accepted()) == 4
    with pytest.raises(PhotoSetRejected):
        upload_report.raise_if_unacceptable()


def test_report_json_has_no_pixels_embeddings_or_file_names(upload_report):
    text = upload_report.to_json()
    data = json.loads(text)
    assert set(data) == {"acceptable", "accepted", "photos", "set_problems"}
    assert set(data["photos"][0]) == {"index", "accepted", "code", "message", "advice"}
    assert "obama" not in text and "biden" not in text and ".jpg" not in text
    embedding = upload_report.accepted()[0].embedding
    assert f"{embedding[0]:.6f}"[:7] not in text and len(text) < 6000


def test_detector_finds_each_fixture_face_once(clean):
    # The measurements the default threshold (0.5) rests on: every fixture face scores well above it.
    for name in ["obama_1.jpg", "obama_3.jpg", "obama_4.jpg", "biden_2.jpg"]:
        faces = detect_faces(clean[name].pixels, threshold=RULES.face_detection_threshold)
        assert len(faces) == 1 and faces[0].score > 0.8, name


def test_an_oversized_batch_is_refused_before_any_photo_is_decoded(monkeypatch):
    import privacy.intake.screening as screening
    rules = ScreeningRules.from_settings(load_settings({"HEADSHOT_MIN_PHOTOS": "2", "HEADSHOT_MAX_PHOTOS": "3"}))
    limits = IngestLimits.from_settings(load_settings({}))

    def must_not_decode(*_args, **_kwargs):
        raise AssertionError("decoded a file of a batch that was going to be refused")

    monkeypatch.setattr(screening, "ingest", must_not_decode)
    with pytest.raises(PhotoSetRejected) as err:
        screen_uploads([b"x"] * 7, limits, rules)
    assert err.value.code == "too_many_files" and "at most 3" in err.value.message


def test_face_too_close_to_the_edge_for_a_headshot_crop_is_refused_with_a_message(clean, screened):
    # The portrait cut just left of the face (a twentieth of its width to spare): the face is
    # whole, but the headshot square around it would have to shrink to ~70% of its side
    # (we never pad it with invented pixels).
    photo = screened["obama_1.jpg"]
    left, _, right, _ = photo.face.box
    cut = int(left - 0.05 * (right - left))
    error = rejection(CleanPhoto.from_array(np.ascontiguousarray(photo.photo.pixels[:, cut:])))
    assert error.code == "face_near_edge"
    assert "too close to the edge" in error.message


def test_face_crop_that_would_be_upscaled_past_the_limit_is_refused_with_the_factor(clean):
    # obama_3's crop is ~326 px: 3.1x to 1024 px, within the default 4x, refused at 2x.
    strict = dataclasses.replace(RULES, max_crop_upscale=2.0)
    error = rejection(clean["obama_3.jpg"], strict)
    assert error.code == "low_resolution"
    assert "enlarged 3.1 times" in error.message and "at most 2 times" in error.message
    assert RULES.max_crop_upscale == SETTINGS.max_crop_upscale == 4.0


def test_photos_of_an_upload_are_screened_one_thread_per_core_by_default_at_most_four(monkeypatch):
    import privacy.intake.screening as screening
    monkeypatch.setattr(screening, "_usable_cores", lambda: 16)
    assert ScreeningRules.from_settings(load_settings({})).threads == 4
    monkeypatch.setattr(screening, "_usable_cores", lambda: 1)
    assert ScreeningRules.from_settings(load_settings({})).threads == 1
    assert ScreeningRules.from_settings(load_settings({"HEADSHOT_SCREENING_THREADS": "2"})).threads == 2
