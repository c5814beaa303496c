"""Logs hold no file names, no session ids or paths with them, no image data, no embeddings (promise 19).

Everything the server process writes — every logger of every library at DEBUG, plus its raw
stdout and stderr — goes to one file during a full journey; then it is searched.
"""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from privacy.intake.ingest import IngestLimits, ingest
from privacy.intake.screening import ScreeningRules, screen_photo
from settings import load_settings
from tests.hardening.journey import run_visit

PHOTOS = ("obama_1.jpg", "obama_4.jpg")


def _fragments(data: bytes) -> list[str]:
    """Text forms image bytes would take in a log: hex and base64 (all three alignments) of runs from the middle."""
    found = []
    for start in (len(data) // 3, len(data) // 2, 2 * len(data) // 3):
        run = data[start:start + 30]
        found.append(run.hex())
        found += [base64.b64encode(run[i:i + 24]).decode()[:24] for i in range(3)]
    return found


# Metadata a person would not want in anyone's log: Pillow's EXIF parser logs such tags at DEBUG.
EXIF_SECRETS = {315: "Jane Examplewoman", 270: "12 Example Street, Springfield"}  # Artist, ImageDescription


def _with_exif(source: Path, out: Path) -> Path:
    with Image.open(source) as img:
        exif = Image.Exif()
        for tag, value in EXIF_SECRETS.items():
            exif[tag] = value
        img.save(out, "JPEG", quality=95, exif=exif.tobytes())
    return out


@pytest.fixture(scope="module")
def journey(studio, faces_dir, tmp_path_factory):
    ids = []
    exif_photo = _with_exif(faces_dir / PHOTOS[1], tmp_path_factory.mktemp("exif") / "with-exif.jpg")

    def remember_ids(visit):
        with sqlite3.connect(studio.data_dir / "studio.db") as conn:
            ids.extend(r[0] for r in conn.execute("SELECT id FROM sessions"))

    visit = run_visit(studio.url, [faces_dir / PHOTOS[0], exif_photo], on_uploaded=remember_ids)
    assert visit.accepted == 2 and "Everything is erased" in visit.receipt_html
    return visit, ids, studio.log_text()


def test_logs_were_captured_at_debug_level(journey):
    *_, log = journey
    assert " DEBUG " in log and " INFO " in log and "erased by user" in log


def test_logs_contain_no_photo_metadata_even_at_debug(journey):
    *_, log = journey
    for value in EXIF_SECRETS.values():
        assert value not in log and value.split(",")[0] not in log


def test_logs_contain_no_file_names(journey):
    *_, log = journey
    for name in PHOTOS:
        assert name not in log and name.rsplit(".", 1)[0] not in log


def test_logs_contain_no_session_ids_nor_paths_into_the_upload_cache(journey, studio):
    visit, ids, log = journey
    assert ids
    for secret in [*ids, visit.client.session_hash, str(studio.data_dir / "gradio-tmp") + "/"]:
        assert secret not in log


def test_logs_contain_no_image_bytes(journey, faces_dir):
    *_, log = journey
    limits = IngestLimits.from_settings(load_settings({}))
    for name in PHOTOS:
        original = (faces_dir / name).read_bytes()
        stored = ingest(original, limits)
        for fragment in _fragments(original) + _fragments(stored.to_png_bytes()) + _fragments(stored.pixels.tobytes()):
            assert fragment not in log


def test_logs_contain_no_embeddings(journey, faces_dir):
    *_, log = journey
    settings = load_settings({})
    limits, rules = IngestLimits.from_settings(settings), ScreeningRules.from_settings(settings)
    for name in PHOTOS:
        embedding = screen_photo(ingest((faces_dir / name).read_bytes(), limits), rules).embedding
        for value in embedding[:32]:
            assert f"{abs(float(value)):.7f}"[:9] not in log
