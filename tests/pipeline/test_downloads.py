"""Each headshot downloads in the sizes people need, and every size still says it is AI-made by this studio."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from errors import SessionGone, UnknownDownloadSize
from faces.face_model import detect_faces
from privacy.lifecycle.consent import Attestations
from privacy.marks.provenance import Provenance
from settings import load_settings
from studio import downloads
from studio.service import Studio

CONSENT = Attestations(own_photos=True, adult=True, purpose=True)
SIZES = {"1024": None, "600": (600, 600), "400": (400, 400)}


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    settings = load_settings({
        "HEADSHOT_DATA_DIR": str(tmp_path_factory.mktemp("downloads")),
        "HEADSHOT_BASE_MODEL": "tiny-sd", "HEADSHOT_DEVICE": "cpu",
        "HEADSHOT_MIN_PHOTOS": "1", "HEADSHOT_TRAIN_STEPS": "2", "HEADSHOT_LIKENESS_THRESHOLD": "0",
    })
    s = Studio(settings)
    yield s
    s.close()


@pytest.fixture(scope="module")
def made(studio, faces_dir):
    """One owner-sealed session with three tiny-model headshots (64 px, stored at 256 px)."""
    session_id = studio.start_session()
    studio.give_consent(session_id, CONSENT)
    owner_key = studio.issue_return_key(session_id).owner_key
    assert studio.upload(session_id, [(faces_dir / "obama_1.jpg").read_bytes()]).acceptable
    run = studio.make_headshots(session_id, ["linkedin_classic", "corporate_grey"], 2, owner_key=owner_key)
    assert len(run.delivered) == 4
    return session_id, owner_key, studio.headshots(session_id, owner_key)


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def test_every_size_has_its_pixels_and_verifies_as_ours(studio, made):
    session_id, owner_key, shots = made
    shot = shots[1]
    stored = studio.headshot_bytes(session_id, shot.blob_id, owner_key)
    full, name = studio.headshot_download(session_id, shot.blob_id, "full", owner_key)
    assert full == stored and name == f"headshot-02-{shot.style_id}.jpg"
    for size, expected in SIZES.items():
        data, name = studio.headshot_download(session_id, shot.blob_id, size, owner_key)
        width, height = size_of(data)
        if expected is None:
            assert max(width, height) == 1024  # a 256 px demo headshot is upscaled to it
        else:
            assert (width, height) == expected
        report = studio.provenance.verify_image(data)
        assert report.is_ours and report.c2pa_state == "trusted" and report.watermark_found, size
        assert report.watermark_payload["demo_model"] is True  # the original's demo flag, kept
        assert name.startswith("headshot-02-") and name.endswith(".jpg") and size in name


def test_a_download_stores_nothing_new(studio, made):
    session_id, owner_key, shots = made
    before = studio.vault.blobs(session_id)
    files_before = sorted(p.name for p in studio.vault.blob_dir.iterdir())
    studio.headshot_download(session_id, shots[0].blob_id, "400", owner_key)
    assert studio.vault.blobs(session_id) == before
    assert sorted(p.name for p in studio.vault.blob_dir.iterdir()) == files_before


def test_an_unknown_size_is_refused_in_words(studio, made):
    session_id, owner_key, shots = made
    with pytest.raises(UnknownDownloadSize, match="400 x 400") as refused:
        studio.headshot_download(session_id, shots[0].blob_id, "2000", owner_key)
    assert refused.value.code == "unknown_size"


def test_another_sessions_headshot_cannot_be_downloaded(studio, made):
    session_id, owner_key, shots = made
    stranger = studio.start_session()
    studio.give_consent(stranger, CONSENT)
    with pytest.raises(SessionGone):
        studio.headshot_download(stranger, shots[0].blob_id, "full")
    with pytest.raises(SessionGone):  # a blob of the session that is no headshot (its report) is refused alike
        studio.headshot_download(session_id, studio.vault.blobs(session_id, "report")[0].id, "full", owner_key)


def test_the_favourites_zip_holds_exactly_the_chosen_headshots_in_gallery_order(studio, made):
    session_id, owner_key, shots = made
    chosen = [shots[3].blob_id, "not-a-blob-of-this-session", shots[0].blob_id]
    with zipfile.ZipFile(io.BytesIO(studio.headshots_zip(session_id, owner_key, blob_ids=chosen))) as archive:
        names = archive.namelist()
        contents = [archive.read(n) for n in names]
    assert names == [f"headshot-01-{shots[0].style_id}.jpg", f"headshot-04-{shots[3].style_id}.jpg"]
    assert contents == [studio.headshot_bytes(session_id, s.blob_id, owner_key) for s in (shots[0], shots[3])]
    with zipfile.ZipFile(io.BytesIO(studio.headshots_zip(session_id, owner_key, blob_ids=[]))) as archive:
        assert archive.namelist() == []


# --- the square around the face, on a real photo (tiny models draw no face) ------------------------

@pytest.fixture(scope="module")
def provenance(tmp_path_factory):
    return Provenance.from_settings(load_settings({"HEADSHOT_DATA_DIR": str(tmp_path_factory.mktemp("prov"))}))


@pytest.mark.parametrize("size", ["600", "400"])
def test_the_square_is_centred_on_the_face_with_head_and_shoulders(provenance, faces_dir, size):
    photo = Image.open(faces_dir / "obama_1.jpg").convert("RGB")  # 910 x 1137, face in the upper middle
    stored = provenance.mark_headshot(photo, style_id="linkedin_classic", demo=False)
    data = downloads.download(stored, size, provenance=provenance, style_id="linkedin_classic", demo=False,
                              face_threshold=0.5)
    side = int(size)
    [face] = detect_faces(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), threshold=0.5)
    left, top, right, bottom = face.box
    assert abs((left + right) / 2 - side / 2) < 0.08 * side  # centred left to right
    assert 0.35 < (right - left) / side < 0.65  # the face fills about half: room for hair and shoulders
    assert top > 0.1 * side and bottom < 0.8 * side  # the crown inside, the shoulders below
    report = provenance.verify_image(data)
    assert report.is_ours and report.c2pa_state == "trusted" and report.watermark_found


def test_without_a_face_the_square_keeps_the_upper_part_of_a_portrait():
    portrait = Image.new("RGB", (300, 500), (128, 128, 128))
    square = downloads.face_square(portrait, face_threshold=0.5)
    assert (square.left, square.side) == (0, 300)
    assert square.top == round(200 * downloads.NO_FACE_TOP_SHARE)  # above the centre (100), below the top


def test_the_long_side_is_exactly_the_target_up_or_down():
    assert downloads.long_side(Image.new("RGB", (910, 1137)), 1024).size == (820, 1024)
    assert downloads.long_side(Image.new("RGB", (2000, 1000)), 1024).size == (1024, 512)
    assert downloads.long_side(Image.new("RGB", (256, 256)), 1024).size == (1024, 1024)


def test_the_derived_sizes_must_be_marked_again():
    """Why every size is re-marked: a crop resized to 400 px loses the original's watermark grid."""
    from privacy.marks import watermark
    photo = np.asarray(Image.open(io.BytesIO(_marked_noise())).convert("RGB"))
    crop = Image.fromarray(photo[40:460, 20:440]).resize((400, 400), Image.Resampling.LANCZOS)
    assert watermark.detect(np.asarray(crop)) is None


def _marked_noise() -> bytes:
    rng = np.random.default_rng(3)
    pixels = rng.integers(60, 200, (512, 512, 3), dtype=np.uint8)
    from privacy.marks import watermark
    marked = watermark.embed(pixels, watermark.WatermarkPayload(demo=True))
    buffer = io.BytesIO()
    Image.fromarray(marked).save(buffer, "PNG")
    return buffer.getvalue()


def test_with_the_visible_label_on_each_size_shows_exactly_one(tmp_path, faces_dir):
    labelled = Provenance.from_settings(load_settings({"HEADSHOT_DATA_DIR": str(tmp_path),
                                                       "HEADSHOT_VISIBLE_MARK": "1"}))
    stored = labelled.mark_headshot(Image.open(faces_dir / "obama_1.jpg"), style_id="linkedin_classic", demo=False)
    original = Image.open(io.BytesIO(stored)).convert("RGB")

    def corner_change(size: str, plain: Image.Image) -> float:
        data = downloads.download(stored, size, provenance=labelled, style_id="linkedin_classic", demo=False,
                                  face_threshold=0.5)
        derived = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)
        corner = (slice(-derived.shape[0] // 12, None), slice(-derived.shape[1] // 4, None))
        return float(np.abs(derived[corner] - np.asarray(plain, dtype=np.float32)[corner]).mean())

    # 1024 px: the original's label, scaled, and no second one drawn over it.
    assert corner_change("1024", downloads.long_side(original, 1024)) < 4
    # A square away from the original's corner: a label of its own.
    square = downloads.face_square(original, face_threshold=0.5)
    crop = original.crop((square.left, square.top, square.left + square.side, square.top + square.side))
    assert corner_change("400", crop.resize((400, 400), Image.Resampling.LANCZOS)) > 10
