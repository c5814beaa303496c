"""Score every generated headshot for likeness and unsafe content, rank them, hold back the weak or unsafe.

Likeness (promise 15) uses the same dlib face model as screening: the largest face
in the output is embedded and compared with the mean of the person's reference
embeddings. dlib's distance d (0 = identical; dlib counts d < 0.6 as the same person)
maps linearly to a score

    likeness = clip(1 - d / (2 * same_person_distance), 0, 1)

so the same-person boundary d = 0.6 lands exactly on 0.5, the default
`likeness_threshold` in settings.py: "held back" then means "dlib would not call this
the same person". No face at all scores 0.0. With a second face encoder configured
(pipeline/recipe/ranking.py: SFace), likeness is the mean of both encoders' scores, each
with its own same-person boundary at 0.5, and both scores stay with the image (`scores`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from PIL import Image

from faces.face_model import detect_faces, embedding_distance, face_embedding
from pipeline.generate import GeneratedImage
from pipeline.recipe.ranking import FACE_THRESHOLD, Judge, dlib_judge, likeness_of
from pipeline.safety import unsafe_probability

REASON_LOW_LIKENESS = "low_likeness"
REASON_UNSAFE = "unsafe"


@dataclass
class ScoredHeadshot:
    image: Image.Image
    style_id: str
    seed: int
    likeness: float  # 0..1, see module docstring
    unsafe: float  # open_nsfw probability 0..1
    kept: bool
    reason: str | None  # None | "low_likeness" | "unsafe" | "ranked_out" (over-generation: never shown, no image)
    is_demo: bool = False
    scores: dict[str, float] = field(default_factory=dict)  # each face encoder's score ("dlib", "sface")
    detailed: bool = False  # the face-detail pass redrew its face (pipeline/recipe/face_detail.py)

    @property
    def blocked(self) -> bool:
        return self.reason == REASON_UNSAFE


def distance_to_score(distance: float, same_person_distance: float) -> float:
    return float(np.clip(1.0 - distance / (2.0 * same_person_distance), 0.0, 1.0))


def likeness(image_rgb: np.ndarray, reference_embeddings: Sequence[np.ndarray], *,
             threshold_face: float = FACE_THRESHOLD, same_person_distance: float) -> float:
    """Likeness in [0, 1] of the largest face in `image_rgb` (H, W, 3 uint8) to the reference person; 0.0 if no face."""
    if not len(reference_embeddings):
        raise ValueError("no reference embeddings")
    faces = detect_faces(image_rgb, threshold=threshold_face)
    if not faces:
        return 0.0
    face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    reference = np.mean(np.stack([np.asarray(e, dtype=np.float64) for e in reference_embeddings]), axis=0)
    distance = embedding_distance(face_embedding(image_rgb, face), reference)
    return distance_to_score(distance, same_person_distance)


def rank_and_filter(images: Sequence[GeneratedImage], reference_embeddings: Sequence[np.ndarray], *,
                    likeness_threshold: float, unsafe_threshold: float,
                    same_person_distance: float, judge: Judge | None = None) -> list[ScoredHeadshot]:
    """Score each image; rank by likeness (best first); mark unsafe ones blocked and weak ones held back.

    Unsafe wins over low likeness: a blocked image is never shown, whatever its likeness. `judge`: the face
    encoders to score with (default: dlib alone, against `reference_embeddings`).
    """
    judge = judge or dlib_judge(reference_embeddings, same_person_distance=same_person_distance)
    scored = [score_one(g, judge, likeness_threshold=likeness_threshold, unsafe_threshold=unsafe_threshold)
              for g in images]
    return sorted(scored, key=lambda s: -s.likeness)  # stable: equal scores keep generation order


def score_one(g: GeneratedImage, judge: Judge, *, likeness_threshold: float, unsafe_threshold: float,
              detailed: bool = False) -> ScoredHeadshot:
    """One image's scores by every encoder of `judge`, its unsafe probability, and whether it may be shown."""
    scores = judge.scores(np.asarray(g.image.convert("RGB")))
    like = likeness_of(scores)
    unsafe = unsafe_probability(g.image)
    reason = REASON_UNSAFE if unsafe >= unsafe_threshold else (
        REASON_LOW_LIKENESS if like < likeness_threshold else None)
    return ScoredHeadshot(image=g.image, style_id=g.style_id, seed=g.seed, likeness=like, unsafe=unsafe,
                          kept=reason is None, reason=reason, is_demo=g.is_demo, scores=scores, detailed=detailed)
