"""Where a face's square headshot crop lies in its photo: the one rule screening and the trainer share.

The square is placed from dlib's 5-point landmarks (two corners per eye, one under the
nose), not from the detector box, so every example frames the head the same way:
centred between the eye centre and the nose, side = `CROP_EYE_DISTANCES` times the
distance between the eyes (head plus a little of the shoulders, as in a headshot).

The square never leaves the photo. Padding it (reflection, as before) made close
selfies show mirrored hair, ears or shoulders in the border, which the adapter then
learned as part of the person. Where the ideal square does not fit it is shrunk around
the same centre until it does; below `MIN_FIT` of the ideal side the crop would be a
face close-up rather than a headshot, and screening refuses the photo (`face_near_edge`).
Screening also refuses a crop so small that training would upscale it more than the
operator's `max_crop_upscale` (`upscale_factor`), because the model learns softness
from upscaled pixels. Lives in privacy/ because screening (the lower layer) needs it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CROP_EYE_DISTANCES = 4.0  # crop side in inter-eye distances: ~2.5 is the face, the rest is margin
# Crop centre at 0.8 of the way from the eye centre to the nose (about half an eye
# distance below the eyes): the square then runs from just above the crown (~1.3 eye
# distances above the eyes) down to the neck (~2.5 below).
CENTRE_TOWARDS_NOSE = 0.8
# Smallest fitted side as a fraction of the ideal one. dlib's face box is ~0.6 of the
# ideal side, so a whole face always leaves a fit of ~0.6 or more; at 0.75 the square is
# still ~1.25x the face box (face, hairline, chin and a little neck); below it the crop
# is a close-up of the face alone and no longer a headshot.
MIN_FIT = 0.75


@dataclass(frozen=True)
class CropSquare:
    left: int  # pixels in the photo; the square lies wholly inside it
    top: int
    side: int
    ideal_side: float  # the side it would have had with room all around

    @property
    def fit(self) -> float:
        """Fitted side / ideal side: 1.0 when the photo had room, less when the square was shrunk."""
        return self.side / self.ideal_side if self.ideal_side > 0 else 1.0

    def upscale_to(self, resolution: int) -> float:
        """How much training at `resolution` enlarges this crop's pixels (1.0 or less: no upscaling)."""
        return resolution / max(self.side, 1)


def ideal_crop(landmarks: np.ndarray, box: tuple[int, int, int, int]) -> tuple[float, float, float]:
    """Centre x, centre y and side (pixels) of the square crop for one face, ignoring the frame."""
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


def fitted_crop(landmarks: np.ndarray, box: tuple[int, int, int, int], width: int, height: int, *,
                margin: float = 1.0) -> CropSquare:
    """The ideal square, shrunk around its centre until it lies inside a `width` x `height` photo.

    `margin` scales the ideal side around the same centre (studio/downloads.py frames profile pictures wider).
    """
    cx, cy, ideal = ideal_crop(landmarks, box)
    ideal *= margin
    cx, cy = float(np.clip(cx, 0, width)), float(np.clip(cy, 0, height))
    room = 2 * min(cx, width - cx, cy, height - cy)  # the largest square around (cx, cy) inside the photo
    side = max(1, int(np.floor(min(ideal, room))))
    left = int(np.clip(round(cx - side / 2), 0, width - side))
    top = int(np.clip(round(cy - side / 2), 0, height - side))
    return CropSquare(left=left, top=top, side=side, ideal_side=ideal)
