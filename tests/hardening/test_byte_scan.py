"""After a full journey and delete-now, no plaintext fragment of the upload is anywhere on disk (promises 5, 10).

Scanned: every file under the data root (vault, keys, Gradio's upload cache, the database and
its -wal/-shm), and the server's TMPDIR. Searched for: 64-byte runs from the middle of each
uploaded JPEG, and from the stripped pixels and the stored PNG the vault sealed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from privacy.intake.ingest import IngestLimits, ingest
from settings import load_settings
from tests.hardening.journey import run_visit


def _runs(data: bytes, n: int = 4) -> list[bytes]:
    return [data[i:i + 64] for i in (len(data) * k // (n + 1) for k in range(1, n + 1))]


@pytest.fixture(scope="module")
def scanned(studio, faces_dir):
    photos = [faces_dir / n for n in ("obama_1.jpg", "obama_4.jpg")]
    visit = run_visit(studio.url, photos)
    assert visit.accepted == 2 and "Everything is erased" in visit.receipt_html
    files = [p for root in (studio.data_dir, studio.temp_dir) for p in Path(root).rglob("*") if p.is_file()]
    return photos, files


def test_the_scan_covers_the_database_and_its_write_ahead_log(scanned):
    _, files = scanned
    names = {p.name for p in files}
    assert "studio.db" in names and any(n.endswith("-wal") for n in names)


def test_no_plaintext_fragment_of_the_upload_is_left_on_disk(scanned):
    photos, files = scanned
    limits = IngestLimits.from_settings(load_settings({}))
    needles = []
    for photo in photos:
        original = photo.read_bytes()
        clean = ingest(original, limits)
        needles += _runs(original) + _runs(clean.pixels.tobytes()) + _runs(clean.to_png_bytes()[64:])
    assert all(len(n) == 64 for n in needles)
    found = [(str(path), i) for path in files for i, needle in enumerate(needles) if needle in path.read_bytes()]
    assert found == []


def test_the_vault_and_the_upload_cache_are_empty_after_delete_now(scanned, studio):
    assert [p for p in (studio.data_dir / "vault").iterdir()] == []
    assert [p for p in (studio.data_dir / "gradio-tmp").rglob("*") if p.is_file()] == []
