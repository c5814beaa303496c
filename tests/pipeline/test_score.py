"""Likeness scoring with the dlib face model, unsafe-content scoring, and the hold-back rules."""

import numpy as np
import pytest
from PIL import Image

from pipeline.generate import GeneratedImage
from pipeline.safety import unsafe_probability
from pipeline.score import distance_to_score, likeness, rank_and_filter
from settings import load_settings

SAME = load_settings({}).same_person_distance  # dlib's 0.6, the running default


def test_same_person_threshold_maps_to_the_default_likeness_threshold():
    assert distance_to_score(0.6, SAME) == pytest.approx(0.5)
    assert distance_to_score(0.0, SAME) == 1.0 and distance_to_score(2.0, SAME) == 0.0


def test_a_photo_of_the_person_scores_above_and_another_person_below_the_threshold(screened_a, screened_b):
    references = [s.embedding for s in screened_a[1:]]
    assert likeness(screened_a[0].photo.pixels, references, same_person_distance=SAME) > 0.5
    assert likeness(screened_b[0].photo.pixels, references, same_person_distance=SAME) < 0.5


def test_an_image_without_a_face_scores_zero(screened_a):
    flat = np.full((128, 128, 3), 128, dtype=np.uint8)
    assert likeness(flat, [s.embedding for s in screened_a], same_person_distance=SAME) == 0.0


def test_unsafe_probability_is_low_for_a_portrait(screened_a):
    p = unsafe_probability(Image.fromarray(screened_a[0].photo.pixels))
    assert 0.0 <= p < 0.2


def as_generated(screened, seed):
    return GeneratedImage(image=Image.fromarray(screened.photo.pixels), style_id="academic", seed=seed, is_demo=False)


def test_outputs_are_ranked_and_weak_ones_held_back(screened_a, screened_b):
    references = [s.embedding for s in screened_a[1:]]
    images = [as_generated(screened_b[0], 1), as_generated(screened_a[0], 2)]
    scored = rank_and_filter(images, references, likeness_threshold=0.5, unsafe_threshold=0.5,
                             same_person_distance=SAME)
    assert [s.seed for s in scored] == [2, 1]  # best likeness first
    assert scored[0].kept and scored[0].reason is None
    assert not scored[1].kept and scored[1].reason == "low_likeness"
    assert all(0 <= s.unsafe < 0.5 for s in scored)


def test_unsafe_outputs_are_blocked_whatever_their_likeness(screened_a):
    references = [s.embedding for s in screened_a[1:]]
    scored = rank_and_filter([as_generated(screened_a[0], 1)], references, likeness_threshold=0.0,
                             same_person_distance=SAME,
                             unsafe_threshold=0.0)  # every image counts as unsafe at threshold 0
    assert scored[0].likeness > 0.5
    assert not scored[0].kept and scored[0].reason == "unsafe"
