"""faces/face_model.py: dlib detection, landmarks and embeddings on plain pixel arrays."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from faces.face_model import detect_faces, embedding_distance, face_embedding
from privacy.intake.ingest import IngestLimits, ingest
from settings import load_settings

LIMITS = IngestLimits.from_settings(load_settings({}))


@pytest.fixture(scope="module")
def pixels(faces_dir):
    return {n: ingest((faces_dir / n).read_bytes(), LIMITS).pixels
            for n in ["obama_1.jpg", "obama_4.jpg", "biden_2.jpg"]}


def test_boxes_from_the_downscaled_detection_copy_are_in_image_pixels(pixels):
    image = pixels["obama_1.jpg"]
    (face,) = detect_faces(image, threshold=0.5)
    # Twice the size: detection now runs on a downscaled copy, the box must still land on the face.
    double = cv2.resize(image, (image.shape[1] * 2, image.shape[0] * 2), interpolation=cv2.INTER_LINEAR)
    (big,) = detect_faces(double, threshold=0.5, max_side=800)
    assert np.allclose(np.array(big.box) / 2, face.box, atol=0.15 * (face.box[2] - face.box[0]))
    left, top, right, bottom = face.box
    assert ((face.landmarks[:, 0] > left) & (face.landmarks[:, 0] < right)).all()
    assert ((face.landmarks[:, 1] > top) & (face.landmarks[:, 1] < bottom)).all()


def test_embeddings_separate_people_at_dlibs_threshold(pixels):
    emb = {n: face_embedding(p, detect_faces(p, threshold=0.5)[0]) for n, p in pixels.items()}
    assert emb["obama_1.jpg"].shape == (128,)
    assert embedding_distance(emb["obama_1.jpg"], emb["obama_1.jpg"]) == 0.0
    assert embedding_distance(emb["obama_1.jpg"], emb["obama_4.jpg"]) < 0.6
    assert embedding_distance(emb["obama_1.jpg"], emb["biden_2.jpg"]) > 0.6


def test_concurrent_calls_give_the_same_answers(pixels):
    image = pixels["obama_4.jpg"]
    (face,) = detect_faces(image, threshold=0.5)
    expected = face_embedding(image, face)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: face_embedding(image, detect_faces(image, threshold=0.5)[0]), range(4)))
    for result in results:
        assert np.array_equal(result, expected)


def test_non_rgb_input_is_refused():
    with pytest.raises(TypeError):
        detect_faces(np.zeros((64, 64), np.uint8), threshold=0.5)
