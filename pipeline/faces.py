"""Turn screened photos (in memory) into face-centred, captioned training examples.

Where the crop lies is one rule shared with screening (`faces/headshot_crop.py`): a
landmark-placed square that never leaves the photo, so no border is ever invented
(reflection padding used to mirror hair, ears and shoulders into close selfies).

Captions follow DreamBooth, "a photo of <rare token> <class word>", plus what in the
photo varies and is not the person (`pipeline/captions.py`: background colour, light,
framing, black-and-white). The rare token ("ohwx") has almost no prior meaning in
CLIP, so training binds it to this person; its input embeddings are also trained
(pivotal tuning, pipeline/train_lora.py). The class word ("person") lets the model
reuse what it knows about people.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
from PIL import Image

from faces.face_parts import face_landmarks_68
from faces.headshot_crop import CropSquare, fitted_crop, ideal_crop
from pipeline.captions import describe
from pipeline.tiny import TRIGGER_WORD

if TYPE_CHECKING:  # the screening types are only annotations here
    from privacy.intake.screening import ScreenedPhoto

TRIGGER = TRIGGER_WORD  # one added token in every tokenizer (pipeline/embeddings.py add_trigger_token)
CLASS_WORD = "person"
INSTANCE_PROMPT = f"a photo of {TRIGGER} {CLASS_WORD}"
crop_box = ideal_crop  # the square before it is fitted into the frame (tests, bench)


@dataclass
class TrainingExample:
    image: Image.Image  # square RGB at the model's resolution
    caption: str
    # (height, width) in source pixels of the region the image was resized from: SDXL's
    # micro-conditioning `original_size` (diffusers' SDXL scripts record it before resizing).
    original_size: tuple[int, int] | None = None


def caption(details: str = "") -> str:
    """The instance prompt, followed by the photo's non-identity details when there are any."""
    return f"{INSTANCE_PROMPT}, {details}" if details else INSTANCE_PROMPT


def crop_square(pixels: np.ndarray, landmarks: np.ndarray, box: tuple[int, int, int, int]) -> CropSquare:
    height, width = pixels.shape[:2]
    return fitted_crop(landmarks, box, width, height)


def face_crop(pixels: np.ndarray, landmarks: np.ndarray, box: tuple[int, int, int, int], size: int) -> Image.Image:
    """A `size` x `size` face-centred crop of `pixels` (H, W, 3 uint8), wholly from inside the photo."""
    return _resize(pixels, crop_square(pixels, landmarks, box), size)


def _resize(pixels: np.ndarray, square: CropSquare, size: int) -> Image.Image:
    region = pixels[square.top:square.top + square.side, square.left:square.left + square.side]
    return Image.fromarray(np.ascontiguousarray(region)).convert("RGB").resize((size, size), Image.Resampling.LANCZOS)


# Instant's face adapter (IP-Adapter "plus-face") takes the FACE, not the headshot: h94 trained it on cropped
# faces, and the wide headshot square (hair, shoulders, background) would let clothing and backdrop leak into
# every style. Its square follows insightface's 112 px ArcFace alignment template, the usual face crop
# (eye centres 35.2 px apart at y = 51.6, the nose at 71.7): centre (56 - 51.6) / (71.7 - 51.6) of the way
# from the eye centre to the nose; side 112 / 35.2 = 3.2 eye distances, widened to 3.6 so the chin, which
# the 5 landmarks do not see, stays in (on the fixture photos it then ends below dlib's box, i.e. the chin).
ADAPTER_FACE_EYE_DISTANCES = 3.6
ADAPTER_FACE_TOWARDS_NOSE = 0.22


def adapter_face_square(landmarks: np.ndarray, box: tuple[int, int, int, int], width: int,
                        height: int) -> CropSquare:
    """The tight face square for the face adapter, shrunk around its centre until it lies inside the photo."""
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    eye_a, eye_b, nose = pts[0:2].mean(axis=0), pts[2:4].mean(axis=0), pts[4]
    eye_distance = float(np.linalg.norm(eye_a - eye_b))
    if eye_distance < 2.0:  # degenerate landmarks: the detector's box itself
        left, top, right, bottom = box
        cx, cy, ideal = (left + right) / 2, (top + bottom) / 2, float(max(right - left, bottom - top, 1))
    else:
        eye_centre = (eye_a + eye_b) / 2
        cx, cy = eye_centre + ADAPTER_FACE_TOWARDS_NOSE * (nose - eye_centre)
        ideal = ADAPTER_FACE_EYE_DISTANCES * eye_distance
    cx, cy = float(np.clip(cx, 0, width)), float(np.clip(cy, 0, height))
    side = max(1, int(np.floor(min(ideal, 2 * min(cx, width - cx, cy, height - cy)))))
    return CropSquare(left=int(np.clip(round(cx - side / 2), 0, width - side)),
                      top=int(np.clip(round(cy - side / 2), 0, height - side)), side=side, ideal_side=ideal)


def adapter_face_crop(pixels: np.ndarray, landmarks: np.ndarray, box: tuple[int, int, int, int],
                      size: int) -> Image.Image:
    """A `size` x `size` crop of the face alone (`adapter_face_square`), for the face adapter's image encoder."""
    height, width = pixels.shape[:2]
    return _resize(pixels, adapter_face_square(landmarks, box, width, height), size)


def prepare_examples(screened: Sequence["ScreenedPhoto"], resolution: int) -> list[TrainingExample]:
    """One training example per screened photo: face crop at `resolution`, its caption and source size."""
    examples = []
    for s in screened:
        square = crop_square(s.photo.pixels, s.face.landmarks, s.face.box)
        image = _resize(s.photo.pixels, square, resolution)
        # The face's 68 landmarks, found in the full photo and carried into the crop's pixels.
        points = (face_landmarks_68(s.photo.pixels, s.face.box) - [square.left, square.top]) * resolution / square.side
        examples.append(TrainingExample(image=image, caption=caption(describe(image, fit=square.fit, points=points)),
                                        original_size=(square.side, square.side)))
    return examples
