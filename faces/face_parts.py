"""dlib's 68-point landmarks (mouth, jaw, brows, eye contours) of one detected face, for caption words from pixels.

The 5-point model of faces/face_model.py places crops; what a caption says about the
face's parts (a smile, glasses) needs the mouth and the eyes' contours, which only the
68-point model (`shape_predictor_68_face_landmarks.dat`, shipped by face_recognition_models,
iBUG 300-W indexing) gives. Loaded lazily, once per process (~5 s, 99 MB, read from the
package); a call takes ~3-20 ms on one core, under a lock (as the 5-point predictor).
"""

from __future__ import annotations

import os
import threading
import warnings

import dlib
import numpy as np

from errors import ModelUnavailable

_predictor = None
_lock = threading.Lock()


def _fresh_lock_in_a_forked_child() -> None:
    global _lock  # a lock held by another thread at a fork (studio.gpu_call forks) would never be released
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_fresh_lock_in_a_forked_child)


def load() -> None:
    """Read the model now (~5 s) rather than at the first caption (studio.service loads it with the base model)."""
    with _lock:
        _load_locked()


def _load_locked():
    global _predictor
    if _predictor is None:
        with warnings.catch_warnings():  # the package imports pkg_resources, which warns on import
            warnings.simplefilter("ignore")
            import face_recognition_models as files
        try:
            _predictor = dlib.shape_predictor(files.pose_predictor_model_location())
        except RuntimeError as exc:
            raise ModelUnavailable(f"dlib's 68-point landmark model could not be loaded: {exc}. "
                                   "Reinstall face-recognition-models (see requirements.txt).") from None
    return _predictor


def face_landmarks_68(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """(68, 2) float x, y in `rgb`'s pixels for the face dlib detected at `box` (left, top, right, bottom)."""
    with _lock:
        predictor = _load_locked()
        left, top, right, bottom = (int(round(v)) for v in box)
        shape = predictor(np.ascontiguousarray(rgb, dtype=np.uint8), dlib.rectangle(left, top, right, bottom))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
