"""faces/face_descriptor.py: dlib's face-recognition network in numpy gives dlib's own descriptors."""

from __future__ import annotations

import warnings

import dlib
import numpy as np
import pytest

from errors import ModelUnavailable
from faces import face_descriptor
from faces.face_model import _shape, detect_faces, face_embedding
from privacy.intake.ingest import IngestLimits, ingest
from settings import load_settings

LIMITS = IngestLimits.from_settings(load_settings({}))
NAMES = ["obama_1.jpg", "obama_2.jpg", "obama_3.jpg", "obama_4.jpg", "biden_1.jpg", "biden_2.jpg"]

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import face_recognition_models as files


@pytest.fixture(scope="module")
def dlib_network():
    return dlib.face_recognition_model_v1(files.face_recognition_model_location())


@pytest.mark.parametrize("name", NAMES)
def test_descriptor_matches_dlibs_own_network_on_every_fixture_face(faces_dir, dlib_network, name):
    rgb = ingest((faces_dir / name).read_bytes(), LIMITS).pixels
    (face,) = detect_faces(rgb, threshold=0.5)
    expected = np.array(dlib_network.compute_face_descriptor(rgb, _shape(face), 0))
    ours = face_embedding(rgb, face)
    # float32 rounding only: ~1e-7 per component, where same-person decisions are made at 0.6
    # and near-duplicates at 0.12 of the descriptor distance.
    assert ours.dtype == np.float64 and ours.shape == (128,)
    assert np.abs(ours - expected).max() < 1e-5


def test_a_file_that_is_not_the_network_is_refused_as_an_unavailable_model(tmp_path):
    real = open(files.face_recognition_model_location(), "rb").read()
    for broken in (b"", real[:len(real) // 2], files_of_another_network()):
        path = tmp_path / "model.dat"
        path.write_bytes(broken)
        with pytest.raises(ModelUnavailable, match="face-recognition-models"):
            face_descriptor.load(path)


def files_of_another_network() -> bytes:
    """dlib's CNN face detector model: a dlib network file too, with other layers."""
    return open(files.cnn_face_detector_model_location(), "rb").read()


def test_the_chip_must_be_the_networks_input_size():
    network = face_descriptor.load(files.face_recognition_model_location())
    with pytest.raises(ValueError):
        network.descriptor(np.zeros((100, 100, 3), np.uint8))
