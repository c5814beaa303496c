"""dlib's face detector, 5-point landmarks and 128-d face embeddings, as pure functions on pixels.

Used by screening (one face, same person) and by pipeline/ (face crops, likeness
scores). The model files come from the `face_recognition_models` package, loaded by
path, lazily, once. Nothing is written to disk and no embedding leaves this module
except as a return value.

dlib's model objects keep scratch buffers and are not safe to call from several
threads at once (Gradio serves requests from a thread pool), so every call into them
holds one lock.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import dlib
import numpy as np

from privacy.errors import ModelUnavailable

# Detection runs on a copy whose long side is at most this many pixels. dlib's HOG
# window is 80x80, so at 1280 the smallest face found is ~6% of the photo's long side;
# the cost grows with the pixel count (~65 ms at 1280x960 on one core).
DEFAULT_DETECTION_SIDE = 1280


@dataclass(frozen=True, eq=False)
class Face:
    box: tuple[int, int, int, int]  # (left, top, right, bottom) in image pixels; may reach outside the image
    score: float  # HOG detector confidence; higher is surer
    landmarks: np.ndarray = field(repr=False)  # (5, 2) float x, y; dlib order: right eye corners, left eye corners, nose


class _Models(NamedTuple):
    detector: object
    predictor: object
    encoder: object


_models: _Models | None = None
_lock = threading.Lock()


def _loaded() -> _Models:
    """Load the three models on first use (about 0.3 s), exactly once."""
    global _models
    with _lock:
        if _models is None:
            with warnings.catch_warnings():  # the package imports pkg_resources, which warns on import
                warnings.simplefilter("ignore")
                import face_recognition_models as files
            try:
                _models = _Models(
                    detector=dlib.get_frontal_face_detector(),
                    predictor=dlib.shape_predictor(files.pose_predictor_five_point_model_location()),
                    encoder=dlib.face_recognition_model_v1(files.face_recognition_model_location()),
                )
            except RuntimeError as exc:
                raise ModelUnavailable(f"dlib face models could not be loaded from face_recognition_models: {exc}. "
                                       "Reinstall face-recognition-models (see requirements.txt).") from None
        return _models


def detect_faces(rgb: np.ndarray, *, threshold: float, upsample: int = 0,
                 max_side: int = DEFAULT_DETECTION_SIDE) -> list[Face]:
    """Faces with a detector score >= `threshold`, largest first, boxes in `rgb`'s pixel coordinates.

    Detection runs on a greyscale copy scaled down to `max_side` (faster, and HOG scores
    barely differ from colour); `upsample` doubles that copy's resolution that many times
    inside dlib to find smaller faces. Landmarks are placed on the full-resolution image.
    """
    _check_rgb(rgb)
    models = _loaded()
    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        grey = cv2.resize(grey, (max(1, round(width * scale)), max(1, round(height * scale))),
                          interpolation=cv2.INTER_AREA)
    with _lock:
        rects, scores, _ = models.detector.run(grey, upsample, threshold)
        faces = []
        for rect, score in zip(rects, scores):
            if score < threshold:
                continue
            box = (round(rect.left() / scale), round(rect.top() / scale),
                   round(rect.right() / scale), round(rect.bottom() / scale))
            shape = models.predictor(rgb, dlib.rectangle(*box))
            landmarks = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
            faces.append(Face(box=box, score=float(score), landmarks=landmarks))
    return sorted(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), reverse=True)


def face_embedding(rgb: np.ndarray, face: Face, *, jitters: int = 0) -> np.ndarray:
    """dlib's 128-d descriptor of `face` (float64). Distances below 0.6 mean "same person".

    `jitters` > 0 averages over that many randomly perturbed crops: slightly more stable,
    `jitters` times slower (~75 ms each on one core).
    """
    _check_rgb(rgb)
    models = _loaded()
    points = [dlib.point(int(round(x)), int(round(y))) for x, y in np.asarray(face.landmarks).reshape(5, 2)]
    shape = dlib.full_object_detection(dlib.rectangle(*[int(v) for v in face.box]), points)
    with _lock:
        descriptor = models.encoder.compute_face_descriptor(rgb, shape, jitters)
    return np.array(descriptor, dtype=np.float64)


def embedding_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two embeddings (dlib's same-person threshold: 0.6)."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise TypeError("expected an (H, W, 3) uint8 RGB array")
