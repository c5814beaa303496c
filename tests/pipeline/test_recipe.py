"""The likeness recipe: over-generate and keep the best by two face encoders, redraw the kept faces, mark them all.

Random tiny weights draw no face, so where a test needs one the text-to-image step is replaced by the fixture
photos (real faces, real dlib); everything after it (ranking, the face-detail img2img on the tiny model with the
run's model loaded, scoring, marking, sealing) is the studio's own code.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import pipeline.generate as generate_module
import pipeline.instant as instant_module
from errors import ModelUnavailable
from pipeline.generate import GeneratedImage
from pipeline.recipe.face_detail import face_square, redraw_face
from pipeline.recipe.ranking import REASON_RANKED_OUT, best_per_style, judge_for
from pipeline.score import ScoredHeadshot
from privacy.lifecycle.consent import Attestations
from settings import load_settings
from studio.service import Studio
from tests.pipeline.helpers import pipe_is_clean, save_tiny_sface, screen

CONSENT = Attestations(own_photos=True, adult=True, purpose=True)
# What the replaced text-to-image step "draws", in turn: the person (obama) and someone else (biden).
DRAWN = ("biden_1.jpg", "obama_2.jpg", "biden_2.jpg", "obama_3.jpg", "biden_1.jpg", "obama_4.jpg")


@pytest.fixture(scope="module")
def sface_file(tmp_path_factory):
    return save_tiny_sface(tmp_path_factory.mktemp("sface") / "face_recognition_sface_2021dec.onnx")


def _photo(faces_dir, name: str, width: int = 256) -> Image.Image:
    image = Image.open(faces_dir / name).convert("RGB")
    return image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)


@pytest.fixture
def drawn_faces(faces_dir, monkeypatch):
    """Text-to-image replaced by fixture photos, in DRAWN's order, per style; records how many were asked for."""
    asked: list[int] = []

    def render(base, styles, *, count, seed, subject="", pipe_kwargs=None, progress=None, cancel=None, **_):
        asked.append(count)
        return [GeneratedImage(image=_photo(faces_dir, DRAWN[i % len(DRAWN)]), style_id=style.id, seed=seed + i,
                               is_demo=base.is_demo) for style in styles for i in range(count)]

    monkeypatch.setattr(generate_module, "render_styles", render)
    monkeypatch.setattr(instant_module, "render_styles", render)
    return asked


def _studio(tmp_path_factory, **env: str) -> Studio:
    return Studio(load_settings({"HEADSHOT_DATA_DIR": str(tmp_path_factory.mktemp("recipe")),
                                 "HEADSHOT_BASE_MODEL": "tiny-sd", "HEADSHOT_DEVICE": "cpu",
                                 "HEADSHOT_MIN_PHOTOS": "1", "HEADSHOT_TRAIN_STEPS": "2",
                                 "HEADSHOT_LIKENESS_THRESHOLD": "0", **env}))


def _session(studio: Studio, face_bytes, names=("obama_1.jpg",)) -> str:
    session_id = studio.start_session()
    studio.give_consent(session_id, CONSENT)
    assert studio.upload(session_id, [face_bytes(n) for n in names]).acceptable
    return session_id


def test_a_real_run_makes_three_candidates_per_headshot_and_redraws_faces_by_default():
    real = load_settings({})
    assert real.candidates_per_headshot == 3 and real.face_detail and real.prior_preservation_weight == 0
    # The CPU demo's pictures are noise: nothing to rank or redraw, so it does not pay for either unless asked.
    demo = load_settings({"HEADSHOT_BASE_MODEL": "tiny-sd"})
    assert demo.candidates_per_headshot == 1 and not demo.face_detail
    asked = load_settings({"HEADSHOT_BASE_MODEL": "tiny-sd", "HEADSHOT_CANDIDATES_PER_HEADSHOT": "2"})
    assert asked.candidates_per_headshot == 2


def test_both_encoders_score_a_face_and_dlib_prefers_the_same_person(faces_dir, sface_file):
    references = [screen(faces_dir / "obama_1.jpg"), screen(faces_dir / "obama_4.jpg")]
    judge = judge_for([s.embedding for s in references], [(s.photo.pixels, s.face) for s in references],
                      same_person_distance=0.6, sface_model=sface_file)
    assert judge.names == ("dlib", "sface")
    same = judge.scores(np.asarray(_photo(faces_dir, "obama_2.jpg")))
    other = judge.scores(np.asarray(_photo(faces_dir, "biden_1.jpg")))
    assert set(same) == set(other) == {"dlib", "sface"}
    assert all(0.0 <= v <= 1.0 for v in [*same.values(), *other.values()])
    assert same["dlib"] > 0.5 > other["dlib"]  # dlib's own same-person boundary lands on 0.5
    assert judge.scores(np.zeros((128, 128, 3), np.uint8)) == {"dlib": 0.0, "sface": 0.0}  # no face: no likeness


def test_without_an_sface_file_dlib_ranks_alone(faces_dir):
    s = screen(faces_dir / "obama_1.jpg")
    judge = judge_for([s.embedding], [(s.photo.pixels, s.face)], same_person_distance=0.6, sface_model=None)
    assert judge.names == ("dlib",)


def test_a_file_that_is_not_sface_is_refused_naming_the_setting(tmp_path, faces_dir):
    bogus = tmp_path / "sface.onnx"
    bogus.write_bytes(b"not a model")
    s = screen(faces_dir / "obama_1.jpg")
    with pytest.raises(ModelUnavailable, match="HEADSHOT_SFACE_MODEL"):
        judge_for([s.embedding], [(s.photo.pixels, s.face)], same_person_distance=0.6, sface_model=bogus)


def test_the_best_of_each_style_are_kept_safe_first():
    def shot(style, likeness, reason=None):
        return ScoredHeadshot(image=None, style_id=style, seed=0, likeness=likeness, unsafe=0.0,
                              kept=reason is None, reason=reason)
    shots = [shot("a", 0.2), shot("a", 0.9, "unsafe"), shot("a", 0.6), shot("b", 0.1), shot("b", 0.3)]
    best, rest = best_per_style(shots, 1)
    assert best == [shots[2], shots[4]]
    assert rest == [shots[0], shots[1], shots[3]]


def test_the_face_detail_pass_redraws_only_the_square_around_the_face(base, faces_dir):
    image = _photo(faces_dir, "obama_2.jpg", width=320)
    with base.lock:
        out, redrawn = redraw_face(base, image, prompt="a photo of a person", negative_prompt="",
                                   strength=0.3, seed=0, steps=4)
    assert redrawn and out.size == image.size
    before, after = np.asarray(image).astype(int), np.asarray(out).astype(int)
    from faces.face_model import detect_faces
    [face] = detect_faces(np.asarray(image), threshold=0.0)[:1]
    square = face_square(face.box, *image.size)
    left, top, right, bottom = square.box
    inside = np.zeros(before.shape[:2], bool)
    inside[top:bottom, left:right] = True
    assert np.array_equal(before[~inside], after[~inside])  # outside the square: every pixel as it was
    centre = (slice(top + square.side // 3, bottom - square.side // 3), slice(left + square.side // 3,
                                                                           right - square.side // 3))
    redrawn_by = np.abs(before[centre] - after[centre]).mean()
    assert redrawn_by > 1.0  # the face itself was redrawn
    # Feathered: just inside the square's edge the new face has barely begun, so no seam shows.
    near_edge = slice(left + 8, right - 8)
    assert np.abs(before[top + 2, near_edge] - after[top + 2, near_edge]).mean() < 0.25 * redrawn_by
    assert pipe_is_clean(base.pipe)


def test_no_face_no_redraw(tiny_sd):
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8))
    with tiny_sd.lock:
        out, redrawn = redraw_face(tiny_sd, noise, prompt="p", negative_prompt="", strength=0.3, seed=0, steps=4)
    assert not redrawn and out is noise


def test_studio_run_over_generates_ranks_by_both_encoders_redraws_and_marks_only_the_best(
        tmp_path_factory, face_bytes, drawn_faces, sface_file):
    studio = _studio(tmp_path_factory, HEADSHOT_CANDIDATES_PER_HEADSHOT="3", HEADSHOT_FACE_DETAIL="true",
                     HEADSHOT_SFACE_MODEL=str(sface_file))
    try:
        session_id = _session(studio, face_bytes, ("obama_1.jpg", "obama_4.jpg"))
        run = studio.make_headshots(session_id, ["linkedin_classic", "corporate_grey"], 2, seed=10)
        assert drawn_faces == [6]  # 3 candidates for each of the 2 headshots per style
        # The gallery gets the best 2 of each style's 6: the person's own face, never the other man's.
        assert sorted(o.style_id for o in run.all_outputs) == ["corporate_grey"] * 2 + ["linkedin_classic"] * 2
        assert all(DRAWN[o.seed - 10].startswith("obama") for o in run.all_outputs)
        assert all(set(o.scores) == {"dlib", "sface"} and o.detailed for o in run.all_outputs)
        assert len(run.delivered) == 4 and len(studio.vault.blobs(session_id, "headshot")) == 4
        for shot in run.delivered:  # every kept output: C2PA, watermark, likeness score
            data = studio.headshot_bytes(session_id, shot.blob_id)
            assert studio.provenance.verify_image(data).is_ours
            assert 0.0 <= shot.likeness <= 1.0
        # The run's sealed report names every candidate with both scores; the dropped ones have no image anywhere.
        [report] = studio.vault.blobs(session_id, "report")
        entries = json.loads(studio.vault.open(session_id, report.id))
        assert len(entries) == 12 and all(set(e["scores"]) == {"dlib", "sface"} for e in entries)
        dropped = [e for e in entries if e["reason"] == REASON_RANKED_OUT]
        assert len(dropped) == 8 and all(e["blob"] is None and not e["kept"] for e in dropped)
        # Every candidate of the other man was dropped, in both styles.
        assert {(e["style"], e["seed"]) for e in dropped} >= {
            (style, 10 + i) for style in ("linkedin_classic", "corporate_grey")
            for i, name in enumerate(DRAWN) if name.startswith("biden")}
        assert pipe_is_clean(studio.base_model().pipe)
    finally:
        studio.close()


def test_instant_run_ranks_and_redraws_with_the_face_adapter_loaded(tmp_path_factory, face_bytes, drawn_faces,
                                                                   adapter_dir):
    studio = _studio(tmp_path_factory, HEADSHOT_CANDIDATES_PER_HEADSHOT="2", HEADSHOT_FACE_DETAIL="true",
                     HEADSHOT_FACE_ADAPTER=str(adapter_dir))
    try:
        session_id = studio.start_session()
        studio.give_consent(session_id, CONSENT)
        run = studio.instant.instant_headshots(session_id, [face_bytes("obama_1.jpg")], ["linkedin_classic"], 2,
                                               keep=False)
        assert drawn_faces == [4]
        assert len(run.unstored) == 2 and all(o.detailed and set(o.scores) == {"dlib"} for o in run.all_outputs)
        assert all(studio.provenance.verify_image(u.data).is_ours for u in run.unstored)
        assert not studio.vault.blobs(session_id, "headshot")  # "don't keep": nothing stored, dropped ones neither
    finally:
        studio.close()
