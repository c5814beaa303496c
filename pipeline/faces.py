"""Turn screened photos (in memory) into face-centred, captioned training examples.

The crop is placed from dlib's 5-point landmarks (two corners per eye, one under the
nose), not from the detector box, so every example frames the head the same way:
centred between the eye centre and the nose, side = `CROP_EYE_DISTANCES` times the
distance between the eyes (head plus a little of the shoulders, as in a headshot).
Where the square leaves the photo it is filled by reflecting the edge, which keeps
the statistics of the background instead of teaching the model black borders.

Captions follow DreamBooth: "a photo of <rare token> <class word>". The rare token
("ohwx") has almost no prior meaning in CLIP, so training binds it to this person,
and the class word ("person") lets the model reuse what it knows about people.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
from PIL import Image

from pipeline.tiny import TRIGGER_WORD

if TYPE_CHECKING:  # the screening types are only annotations here
    from privacy.screening import ScreenedPhoto

TRIGGER = TRIGGER_WORD  # a single token in CLIP's and in the tiny tokenizer's vocabulary
CLASS_WORD = "person"
INSTANCE_PROMPT = f"a photo of {TRIGGER} {CLASS_WORD}"
CROP_EYE_DISTANCES = 4.0  # crop side in inter-eye distances: ~2.5 is the face, the rest is margin
# Crop centre at 0.8 of the way from the eye centre to the nose (about half an eye
# distance below the eyes): the square then runs from just above the crown (~1.3 eye
# distances above the eyes) down to the neck (~2.5 below).
CENTRE_TOWARDS_NOSE = 0.8


@dataclass
class TrainingExample:
    image: Image.Image  # square RGB at the model's resolution
    caption: str


def caption() -> str:
    return INSTANCE_PROMPT


def crop_box(landmarks: np.ndarray, box: tuple[int, int, int, int]) -> tuple[float, float, float]:
    """Centre x, centre y and side (pixels) of the square crop for one face."""
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    eye_a, eye_b, nose = pts[0:2].mean(axis=0), pts[2:4].mean(axis=0), pts[4]
    eye_distance = float(np.linalg.norm(eye_a - eye_b))
    left, top, right, bottom = box
    if eye_distance < 2.0:  # degenerate landmarks: fall back to the detector box
        return (left + right) / 2, (top + bottom) / 2, 2.0 * max(right - left, bottom - top, 1)
    eye_centre = (eye_a + eye_b) / 2
    # The head's centre lies below the eyes; moving along eye->nose follows a tilted head.
    centre = eye_centre + CENTRE_TOWARDS_NOSE * (nose - eye_centre)
    return float(centre[0]), float(centre[1]), CROP_EYE_DISTANCES * eye_distance


def face_crop(pixels: np.ndarray, landmarks: np.ndarray, box: tuple[int, int, int, int], size: int) -> Image.Image:
    """A `size` x `size` face-centred crop of `pixels` (H, W, 3 uint8), edges reflected where needed."""
    height, width = pixels.shape[:2]
    cx, cy, side = crop_box(landmarks, box)
    half = side / 2
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    x1, y1 = x0 + int(round(side)), y0 + int(round(side))
    pad_left, pad_top = max(0, -x0), max(0, -y0)
    pad_right, pad_bottom = max(0, x1 - width), max(0, y1 - height)
    if pad_left or pad_top or pad_right or pad_bottom:
        # numpy's reflect mode repeats the reflection when the pad exceeds the image.
        pixels = np.pad(pixels, ((pad_top, pad_bottom), (pad_left, pad_right), (0, 0)), mode="reflect")
    region = pixels[y0 + pad_top:y1 + pad_top, x0 + pad_left:x1 + pad_left]
    return Image.fromarray(np.ascontiguousarray(region)).convert("RGB").resize((size, size), Image.Resampling.LANCZOS)


def prepare_examples(screened: Sequence["ScreenedPhoto"], resolution: int) -> list[TrainingExample]:
    """One training example per screened photo: face crop at `resolution` plus the instance caption."""
    return [TrainingExample(image=face_crop(s.photo.pixels, s.face.landmarks, s.face.box, resolution),
                            caption=caption()) for s in screened]
