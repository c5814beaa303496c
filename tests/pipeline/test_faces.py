"""Training crops are face-centred squares from the landmarks, never padded, captioned with the trigger and what
varies."""

import numpy as np
from PIL import Image

from pipeline.faces import CLASS_WORD, TRIGGER, crop_box, crop_square, face_crop, prepare_examples


def test_examples_are_square_at_model_resolution_with_trigger_caption_and_source_size(screened_a):
    examples = prepare_examples(screened_a, 64)
    assert len(examples) == len(screened_a)
    for ex, s in zip(examples, screened_a):
        assert ex.image.size == (64, 64) and ex.image.mode == "RGB"
        assert ex.caption.startswith(f"a photo of {TRIGGER} {CLASS_WORD}, ")
        assert "background" in ex.caption and "light" in ex.caption
        side = crop_square(s.photo.pixels, s.face.landmarks, s.face.box).side
        assert ex.original_size == (side, side)


def test_crop_is_centred_below_the_eyes_and_contains_the_whole_face_box(screened_a):
    for s in screened_a:
        cx, cy, side = crop_box(s.face.landmarks, s.face.box)
        eyes = s.face.landmarks[:4].mean(axis=0)
        left, top, right, bottom = s.face.box
        assert abs(cx - eyes[0]) < 0.15 * side  # horizontally on the face
        assert eyes[1] < cy < bottom  # vertically between the eyes and the chin
        assert cx - side / 2 <= left and right <= cx + side / 2
        assert cy - side / 2 <= top and bottom <= cy + side / 2


def test_crop_of_a_face_near_the_corner_is_shrunk_to_fit_never_padded():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    landmarks = np.array([[22.0, 20], [14, 20], [34, 20], [42, 20], [28, 28]])  # face near the top-left corner
    square = crop_square(pixels, landmarks, (10, 10, 46, 46))
    _, _, ideal = crop_box(landmarks, (10, 10, 46, 46))
    assert square.side < ideal  # the ideal square would leave the photo
    assert square.left >= 0 and square.top >= 0
    assert square.left + square.side <= 160 and square.top + square.side <= 120
    # Every pixel of the crop comes from the photo itself: it is exactly the region, resized.
    region = Image.fromarray(pixels[square.top:square.top + square.side, square.left:square.left + square.side])
    expected = np.asarray(region.resize((48, 48), Image.Resampling.LANCZOS))
    assert np.array_equal(np.asarray(face_crop(pixels, landmarks, (10, 10, 46, 46), 48)), expected)


def test_crop_follows_the_landmarks_not_the_frame():
    # A bright square "face" at a known place: the crop must be centred on it.
    pixels = np.zeros((200, 200, 3), dtype=np.uint8)
    pixels[70:110, 120:160] = 255
    landmarks = np.array([[135.0, 80], [130, 80], [150, 80], [145, 80], [140, 90]])
    crop = np.asarray(face_crop(pixels, landmarks, (120, 70, 160, 110), 64)).mean(axis=2)
    ys, xs = np.nonzero(crop > 128)
    assert abs(xs.mean() - 32) < 6 and abs(ys.mean() - 32) < 10
