"""dlib's face detector, 5-point landmarks and 128-d face embeddings, as pure functions on pixels.

Used by screening (one face, same person) and by pipeline/ (face crops, likeness
scores). The model files come from the `face_recognition_models` package, loaded by
path, lazily, once. Nothing is written to disk and no embedding leaves this module
except as a return value. The 128-d descriptor network runs in numpy
(faces/face_descriptor.py: dlib's own weights, ~8x faster than our BLAS-less dlib).

Threads (Gradio's pool, and screening's own for the photos of one upload): dlib's
detector loads each image into scratch buffers of its own, so one detector serves one
call at a time; detection releases the GIL, so each concurrent call borrows its own
copy of the detector (a pickled copy: 4 ms, against 1.3 s to build one). The landmark
predictor is called under a lock (4 ms; dlib does not promise it is reentrant); the
descriptor network keeps no state and needs no lock.
"""

from __future__ import annotations

import os
import pickle
import queue
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple

import cv2
import dlib
import numpy as np

from errors import ModelUnavailable
from faces import face_descriptor

# Detection runs on a copy whose long side is at most this many pixels. dlib's HOG
# window is 80x80, so at 1280 the smallest face found is ~6% of the photo's long side
# (~87 px boxes on a 1536 px stored photo: tests/privacy/test_screening_verdicts.py pins
# it). The cost grows with the pixel count: ~110-160 ms at 1280x960 on one core, the
# largest part of a photo check. A smaller copy would be faster but miss bystanders that
# promise 14 refuses, and upsampling a smaller copy inside dlib costs more than this.
DEFAULT_DETECTION_SIDE = 1280


@dataclass(frozen=True, eq=False)
class Face:
    box: tuple[int, int, int, int]  # (left, top, right, bottom) in image pixels; may reach outside the image
    score: float  # HOG detector confidence; higher is surer
    # (5, 2) float x, y; dlib order: right eye corners, left eye corners, nose
    landmarks: np.ndarray = field(repr=False)


class _Models(NamedTuple):
    detector: bytes  # the pickled frontal face detector, from which each borrower's copy is made
    spare_detectors: "queue.SimpleQueue"  # copies no call is using right now
    predictor: object
    network: face_descriptor.DescriptorNetwork


_models: _Models | None = None
_lock = threading.Lock()  # guards loading
_predictor_lock = threading.Lock()


def _fresh_locks_in_a_forked_child() -> None:
    # A ZeroGPU worker is forked from the web process (studio.gpu_call) and scores faces: a lock or a spare
    # detector another thread held at the fork (screening an upload) would never come back in the child.
    global _lock, _predictor_lock, _models
    _lock, _predictor_lock = threading.Lock(), threading.Lock()
    if _models is not None:
        _models = _models._replace(spare_detectors=queue.SimpleQueue())


os.register_at_fork(after_in_child=_fresh_locks_in_a_forked_child)


def _loaded() -> _Models:
    """Load the models on first use (about 1.5 s, most of it dlib building its detector), exactly once."""
    global _models
    with _lock:
        if _models is None:
            with warnings.catch_warnings():  # the package imports pkg_resources, which warns on import
                warnings.simplefilter("ignore")
                import face_recognition_models as files
            try:
                detector = dlib.get_frontal_face_detector()
                predictor = dlib.shape_predictor(files.pose_predictor_five_point_model_location())
            except RuntimeError as exc:
                raise ModelUnavailable(f"dlib face models could not be loaded from face_recognition_models: {exc}. "
                                       "Reinstall face-recognition-models (see requirements.txt).") from None
            spare: queue.SimpleQueue = queue.SimpleQueue()
            spare.put(detector)
            _models = _Models(detector=pickle.dumps(detector), spare_detectors=spare, predictor=predictor,
                              network=face_descriptor.load(files.face_recognition_model_location()))
        return _models


@contextmanager
def _detector(models: _Models) -> Iterator[object]:
    """A detector no other call is using: a spare one, or a fresh copy (as many as calls run at once)."""
    try:
        detector = models.spare_detectors.get_nowait()
    except queue.Empty:
        detector = pickle.loads(models.detector)
    try:
        yield detector
    finally:
        models.spare_detectors.put(detector)


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
    with _detector(models) as detector:
        rects, scores, _ = detector.run(grey, upsample, threshold)
    faces = []
    for rect, score in zip(rects, scores):
        if score < threshold:
            continue
        box = (round(rect.left() / scale), round(rect.top() / scale),
               round(rect.right() / scale), round(rect.bottom() / scale))
        with _predictor_lock:
            shape = models.predictor(rgb, dlib.rectangle(*box))
        landmarks = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        faces.append(Face(box=box, score=float(score), landmarks=landmarks))
    return sorted(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), reverse=True)


def face_embedding(rgb: np.ndarray, face: Face) -> np.ndarray:
    """dlib's 128-d descriptor of `face` (float64). Distances below 0.6 mean "same person".

    What dlib's `compute_face_descriptor(rgb, shape)` returns, to float32 rounding: the
    same 150x150 chip, cut by dlib, through the same weights (~20-40 ms on one core).
    """
    _check_rgb(rgb)
    models = _loaded()
    chip = dlib.get_face_chip(rgb, _shape(face), face_descriptor.CHIP_SIZE, face_descriptor.CHIP_PADDING)
    return models.network.descriptor(chip).astype(np.float64)


def _shape(face: Face) -> "dlib.full_object_detection":
    points = [dlib.point(int(round(x)), int(round(y))) for x, y in np.asarray(face.landmarks).reshape(5, 2)]
    return dlib.full_object_detection(dlib.rectangle(*[int(v) for v in face.box]), points)


def embedding_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two embeddings (dlib's same-person threshold: 0.6)."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise TypeError("expected an (H, W, 3) uint8 RGB array")
