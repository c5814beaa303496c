"""Instant's face adapter sees the face, centred, not the headshot square with hair, shoulders and background."""

import numpy as np

from pipeline.faces import adapter_face_crop, adapter_face_square, crop_square
from pipeline.instant import face_crops


def test_the_adapters_crop_is_centred_on_the_detected_face_and_holds_all_of_it(screened_a, screened_b):
    for s in screened_a + screened_b:
        height, width = s.photo.pixels.shape[:2]
        left, top, right, bottom = s.face.box
        box_side = max(right - left, bottom - top)
        square = adapter_face_square(s.face.landmarks, s.face.box, width, height)
        centre = np.array([square.left + square.side / 2, square.top + square.side / 2])
        points = np.asarray(s.face.landmarks).reshape(5, 2)
        eye_line, nose = points[:4, 1].mean(), points[4, 1]
        assert abs(centre[0] - (left + right) / 2) < 0.05 * box_side  # left-right: on the face
        assert eye_line < centre[1] < nose  # up-down: between the eyes and the nose, the face's middle
        # The whole detected face (dlib's box runs from the brows to the chin) and every landmark inside...
        assert square.top < top and square.top + square.side > bottom
        assert (points >= [square.left, square.top]).all() and (points <= [square.left + square.side] * 2).all()
        # ...and little else: no shoulders, where the headshot square reaches (half an eye distance lower or more).
        eye_distance = np.linalg.norm(points[0:2].mean(axis=0) - points[2:4].mean(axis=0))
        headshot = crop_square(s.photo.pixels, s.face.landmarks, s.face.box)
        assert square.top + square.side < headshot.top + headshot.side - 0.5 * eye_distance


def test_instant_embeds_the_face_crop_not_the_headshot_crop(screened_a):
    crops = face_crops(screened_a, 32)
    for s, crop in zip(screened_a, crops):
        assert np.array_equal(np.asarray(crop), np.asarray(adapter_face_crop(s.photo.pixels, s.face.landmarks,
                                                                             s.face.box, 32)))
