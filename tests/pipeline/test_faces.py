"""Training crops are face-centred squares from the landmarks, padded by reflection, captioned with the trigger."""

import numpy as np

from pipeline.faces import CLASS_WORD, TRIGGER, crop_box, face_crop, prepare_examples


def test_examples_are_square_at_model_resolution_with_trigger_caption(screened_a):
    examples = prepare_examples(screened_a, 64)
    assert len(examples) == len(screened_a)
    for ex in examples:
        assert ex.image.size == (64, 64) and ex.image.mode == "RGB"
        assert ex.caption == f"a photo of {TRIGGER} {CLASS_WORD}"


def test_crop_is_centred_below_the_eyes_and_contains_the_whole_face_box(screened_a):
    for s in screened_a:
        cx, cy, side = crop_box(s.face.landmarks, s.face.box)
        eyes = s.face.landmarks[:4].mean(axis=0)
        left, top, right, bottom = s.face.box
        assert abs(cx - eyes[0]) < 0.15 * side  # horizontally on the face
        assert eyes[1] < cy < bottom  # vertically between the eyes and the chin
        assert cx - side / 2 <= left and right <= cx + side / 2
        assert cy - side / 2 <= top and bottom <= cy + side / 2


def test_crop_of_a_face_at_the_corner_is_filled_by_reflection_not_black():
    rng = np.random.default_rng(0)
    pixels = rng.integers(100, 200, (120, 160, 3), dtype=np.uint8)  # no dark pixels anywhere
    landmarks = np.array([[12.0, 10], [4, 10], [24, 10], [32, 10], [18, 18]])  # face in the top-left corner
    crop = np.asarray(face_crop(pixels, landmarks, (0, 0, 36, 36), 48))
    assert crop.shape == (48, 48, 3)
    assert crop.min() >= 90  # a zero/constant pad would bring black in (resampling may overshoot a little)


def test_crop_follows_the_landmarks_not_the_frame():
    # A bright square "face" at a known place: the crop must be centred on it.
    pixels = np.zeros((200, 200, 3), dtype=np.uint8)
    pixels[70:110, 120:160] = 255
    landmarks = np.array([[135.0, 80], [130, 80], [150, 80], [145, 80], [140, 90]])
    crop = np.asarray(face_crop(pixels, landmarks, (120, 70, 160, 110), 64)).mean(axis=2)
    ys, xs = np.nonzero(crop > 128)
    assert abs(xs.mean() - 32) < 6 and abs(ys.mean() - 32) < 10
