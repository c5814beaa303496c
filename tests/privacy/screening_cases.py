"""The photos whose screening verdicts must not change when screening gets faster, and how a verdict is read.

    python -m tests.privacy.screening_cases   # re-record tests/privacy/screening_verdicts.json

A verdict is the reason code plus every face the detector reports (box and score), so a
change in what is found — not only in the final code — shows up. The cases: every face
fixture (default limits, and a 256 px minimum side so the small ones reach screening),
every file of the hostile corpus, the 12-megapixel benchmark photo, and two sweeps that pin
down the detector's size limits on a full-size (1536x1152) stored photo: a bystander's face
pasted at 56..160 px beside a portrait (several_faces from the smallest size found), and one
face alone at 56..200 px (no_face below what the detector finds, face_too_small below
rules.min_face_fraction). Recorded with the code before detection was sped up (issue 13).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
FACES = ROOT / "tests" / "fixtures" / "faces"
RECORD = Path(__file__).with_name("screening_verdicts.json")
# Widths of the pasted face (dlib's box comes out ~1.2x wider).
BYSTANDER_WIDTHS = (56, 64, 68, 72, 80, 88, 96, 104, 120, 160)
LONE_FACE_WIDTHS = (56, 64, 70, 76, 82, 90, 100, 120, 140, 170, 200)


def _limits_and_rules():
    from privacy.intake.ingest import IngestLimits
    from privacy.intake.screening import ScreeningRules
    from settings import load_settings
    settings = load_settings({})
    return IngestLimits.from_settings(settings), ScreeningRules.from_settings(settings)


def cases(faces_dir: Path = FACES) -> Iterator[tuple[str, object]]:
    """(name, bytes or CleanPhoto) for every case, in a stable order."""
    from privacy.intake.ingest import CleanPhoto
    from tests.hardening.corpus import build_corpus
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_ingest import twelve_megapixel_jpeg

    for path in sorted(faces_dir.glob("*.jpg")):
        yield f"fixture/{path.name}", path.read_bytes()
    for case in build_corpus(faces_dir):
        yield f"corpus/{case.name}", case.data
    yield "bench/12mp.jpg", twelve_megapixel_jpeg()
    portrait, bystander = _face_crop(faces_dir / "obama_4.jpg"), _face_crop(faces_dir / "biden_2.jpg")
    for width in BYSTANDER_WIDTHS:
        canvas = _canvas()
        _paste_face(canvas, portrait, 300, (300, 250))
        _paste_face(canvas, bystander, width, (1536 - 3 * width, 1152 - 3 * width))
        yield f"sweep/bystander_{width}px", CleanPhoto.from_array(np.asarray(canvas))
    for width in LONE_FACE_WIDTHS:
        canvas = _canvas()
        _paste_face(canvas, portrait, width, (700, 450))
        yield f"sweep/lone_face_{width}px", CleanPhoto.from_array(np.asarray(canvas))


def _face_crop(path: Path) -> tuple[Image.Image, float]:
    """A head-and-shoulders crop around the fixture's face, and the face width as a fraction of the crop."""
    from faces.face_model import detect_faces
    rgb = np.asarray(Image.open(path).convert("RGB"))
    (face,) = detect_faces(rgb, threshold=0.5)
    left, top, right, bottom = face.box
    margin = right - left
    crop = Image.fromarray(rgb).crop((left - margin, top - margin, right + margin, bottom + margin))
    return crop, (right - left) / crop.width


def _canvas() -> Image.Image:
    """A plain, gently textured 1536x1152 background: the stored size of a 4:3 phone photo."""
    y, x = np.mgrid[0:1152, 0:1536]
    base = np.stack([150 + y // 20, 160 + x // 40, 170 - y // 30], axis=-1)
    noise = np.random.default_rng(7).integers(-6, 6, (1152, 1536, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def _paste_face(canvas: Image.Image, crop: tuple[Image.Image, float], face_width: int, at: tuple[int, int]) -> None:
    image, fraction = crop
    side = round(face_width / fraction)
    canvas.paste(image.resize((side, side), Image.Resampling.LANCZOS), at)


def verdict(item, limits, rules) -> dict:
    """The reason code and every face the detector reports, in stored-photo pixels."""
    from errors import PhotoRejected
    from faces.face_model import detect_faces
    from privacy.intake.ingest import CleanPhoto, ingest
    from privacy.intake.screening import screen_photo
    try:
        photo = item if isinstance(item, CleanPhoto) else ingest(item, limits)
    except PhotoRejected as exc:
        return {"code": exc.code, "faces": []}
    faces = detect_faces(photo.pixels, threshold=rules.face_detection_threshold)
    try:
        screen_photo(photo, rules)
        code = "accepted"
    except PhotoRejected as exc:
        code = exc.code
    return {"code": code, "size": [photo.width, photo.height],
            "faces": [{"box": list(f.box), "score": round(f.score, 3)} for f in faces]}


def record(faces_dir: Path = FACES) -> dict[str, dict]:
    limits, rules = _limits_and_rules()
    low = dataclasses.replace(limits, min_side=256)
    verdicts = {}
    for name, item in cases(faces_dir):
        verdicts[name] = verdict(item, limits, rules)
        if name.startswith("fixture/"):
            verdicts[name + "@min_side_256"] = verdict(item, low, rules)
    return verdicts


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    RECORD.write_text(json.dumps(record(), indent=1) + "\n")
    print(f"wrote {RECORD}")
