"""Judge likeness with every face encoder at hand, and keep the best of each style's candidates (over-generation).

Encoders, each with its own measure and its own same-person boundary mapped to a score of 0.5:

    dlib    128-d descriptor, Euclidean distance d;  score = clip(1 - d / (2 * same_person_distance), 0, 1)
    sface   OpenCV Zoo's SFace (Apache-2.0), cosine c, OpenCV's same-person boundary 0.363;
            score = clip(0.5 + (c - 0.363) / (2 * (1 - 0.363)), 0, 1)

A headshot's likeness is the mean of the scores of the encoders in use, so with dlib alone it is exactly the score
promise 15 has always used. Two encoders trained on different data fail on different faces; their mean ranks
candidates more steadily than either alone (FaceChain and EasyPhoto also rank by a face-recognition model).

SFace runs on the OpenCV the project already has (`cv2.FaceRecognizerSF`). No package on PyPI ships its model file
(alchemyface, moca-face-matcher, fast-face-python and similarfaces download it on first use; we never download),
so it is used when an operator points HEADSHOT_SFACE_MODEL at a local copy, and otherwise dlib ranks alone.
The face is found once, by dlib, and SFace's 112 px input is aligned from dlib's eye landmarks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, Sequence

import cv2
import numpy as np

from errors import ModelUnavailable
from faces.face_model import Face, detect_faces, embedding_distance, face_embedding

FACE_THRESHOLD = 0.0  # HOG score a face in a generated image needs; low: we look for the face we asked for
SFACE_SAME_PERSON_COSINE = 0.363  # OpenCV's documented cosine threshold for SFace
SFACE_SIZE = 112
# Where SFace's (ArcFace's) 112 x 112 template puts the eye centres, image-left eye first.
SFACE_EYES = np.array([[38.2946, 51.6963], [73.5318, 51.5014]], dtype=np.float64)
REASON_RANKED_OUT = "ranked_out"  # a candidate made and dropped: another of its style judged more like the person


class FaceEncoder(Protocol):
    name: str

    def embed(self, rgb: np.ndarray, face: Face) -> np.ndarray: ...

    def score(self, embedding: np.ndarray, reference: np.ndarray) -> float: ...

    def reference(self, embeddings: Sequence[np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class DlibEncoder:
    same_person_distance: float
    name: str = "dlib"

    def embed(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        return face_embedding(rgb, face)

    def reference(self, embeddings: Sequence[np.ndarray]) -> np.ndarray:
        return np.mean(np.stack([np.asarray(e, dtype=np.float64) for e in embeddings]), axis=0)

    def score(self, embedding: np.ndarray, reference: np.ndarray) -> float:
        distance = embedding_distance(embedding, reference)
        return float(np.clip(1.0 - distance / (2.0 * self.same_person_distance), 0.0, 1.0))


class SFaceEncoder:
    """OpenCV Zoo's SFace through `cv2.FaceRecognizerSF`, from a local model file."""

    name = "sface"

    def __init__(self, model_path: Path):
        try:
            self._recognizer = cv2.FaceRecognizerSF.create(str(model_path), "")
        except cv2.error:
            raise ModelUnavailable(f"HEADSHOT_SFACE_MODEL: {Path(model_path).name} could not be loaded as SFace's "
                                   "ONNX model (face_recognition_sface_2021dec.onnx from OpenCV Zoo).") from None

    def embed(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        aligned = cv2.cvtColor(align_for_sface(rgb, face), cv2.COLOR_RGB2BGR)
        feature = np.asarray(self._recognizer.feature(aligned), dtype=np.float64).reshape(-1)
        return feature / max(float(np.linalg.norm(feature)), 1e-12)

    def reference(self, embeddings: Sequence[np.ndarray]) -> np.ndarray:
        mean = np.mean(np.stack(embeddings), axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)

    def score(self, embedding: np.ndarray, reference: np.ndarray) -> float:
        cosine = float(np.dot(embedding, reference))
        return float(np.clip(0.5 + (cosine - SFACE_SAME_PERSON_COSINE) / (2 * (1 - SFACE_SAME_PERSON_COSINE)), 0, 1))


@functools.lru_cache(maxsize=2)
def sface_encoder(model_path: Path) -> SFaceEncoder:
    """One loaded SFace per model file per process (the file holds nothing of anyone)."""
    return SFaceEncoder(model_path)


def align_for_sface(rgb: np.ndarray, face: Face) -> np.ndarray:
    """SFace's 112 x 112 RGB input: the similarity transform that puts dlib's two eye centres on the template's."""
    points = np.asarray(face.landmarks, dtype=np.float64).reshape(5, 2)
    eyes = sorted([points[0:2].mean(axis=0), points[2:4].mean(axis=0)], key=lambda p: p[0])
    matrix, _ = cv2.estimateAffinePartial2D(np.array(eyes), SFACE_EYES)
    if matrix is None:  # degenerate landmarks (both eyes on one point): a plain resize of the face box
        left, top, right, bottom = (int(v) for v in face.box)
        box = rgb[max(top, 0):max(bottom, 1), max(left, 0):max(right, 1)]
        return cv2.resize(box if box.size else rgb, (SFACE_SIZE, SFACE_SIZE))
    return cv2.warpAffine(rgb, matrix, (SFACE_SIZE, SFACE_SIZE), borderMode=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class Judge:
    """The encoders in use and, for each, the person's reference embedding."""

    encoders: tuple[FaceEncoder, ...]
    references: dict[str, np.ndarray]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.encoders)

    def scores(self, rgb: np.ndarray) -> dict[str, float]:
        """Each encoder's score of the largest face in `rgb` (H, W, 3 uint8); 0.0 from each when there is none."""
        faces = detect_faces(rgb, threshold=FACE_THRESHOLD)
        if not faces:
            return {e.name: 0.0 for e in self.encoders}
        face = largest(faces)
        return {e.name: e.score(e.embed(rgb, face), self.references[e.name]) for e in self.encoders}


def likeness_of(scores: dict[str, float]) -> float:
    return float(np.mean(list(scores.values()))) if scores else 0.0


def largest(faces: Sequence[Face]) -> Face:
    return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))


def dlib_judge(reference_embeddings: Sequence[np.ndarray], *, same_person_distance: float) -> Judge:
    """dlib alone, from the person's stored dlib embeddings (what every run had before the recipe)."""
    if not len(reference_embeddings):
        raise ValueError("no reference embeddings")
    dlib = DlibEncoder(same_person_distance)
    return Judge((dlib,), {dlib.name: dlib.reference(reference_embeddings)})


def judge_for(reference_embeddings: Sequence[np.ndarray], photos: Sequence[tuple[np.ndarray, Face]], *,
              same_person_distance: float, sface_model: Path | None) -> Judge:
    """dlib from the stored embeddings, plus SFace from the photos themselves (in memory) when it is configured
    and the photos are at hand; otherwise dlib alone."""
    judge = dlib_judge(reference_embeddings, same_person_distance=same_person_distance)
    if sface_model is None or not photos:
        return judge
    sface = sface_encoder(Path(sface_model))
    reference = sface.reference([sface.embed(pixels, face) for pixels, face in photos])
    return replace(judge, encoders=judge.encoders + (sface,), references={**judge.references, sface.name: reference})


def best_per_style(scored: Sequence, keep_per_style: int) -> tuple[list, list]:
    """(the best `keep_per_style` of each style, the rest), each in generation order within its style.

    "Best": safe before unsafe, then the higher likeness; equal likeness keeps generation order. `scored` holds
    anything with `style_id`, `likeness` and `blocked` (pipeline.score.ScoredHeadshot).
    """
    order = sorted(range(len(scored)), key=lambda i: (scored[i].blocked, -scored[i].likeness, i))
    taken: dict[str, int] = {}
    chosen: set[int] = set()
    for i in order:
        style = scored[i].style_id
        if taken.get(style, 0) < keep_per_style:
            taken[style] = taken.get(style, 0) + 1
            chosen.add(i)
    return ([s for i, s in enumerate(scored) if i in chosen], [s for i, s in enumerate(scored) if i not in chosen])
