"""Generation: reproducible seeds, and adapters of different sessions never mix in the shared pipeline."""

import threading

import numpy as np
import pytest

from pipeline.generate import adapter_loaded, generate
from pipeline.styles import load_styles
from pipeline.train_lora import train_lora
from privacy.errors import Cancelled
from tests.pipeline.helpers import fast_config, noise_examples, pipe_is_clean

STYLE = load_styles()["linkedin_classic"]


@pytest.fixture(scope="module")
def two_sessions(base):
    """Adapters of two sessions trained on different photos (and seeds)."""
    a = train_lora(base, noise_examples(base.resolution, seed=1), fast_config(base.family, seed=1))
    b = train_lora(base, noise_examples(base.resolution, seed=2), fast_config(base.family, seed=2))
    return a, b


def pixels(images):
    return [np.asarray(g.image, dtype=np.int16) for g in images]


def test_adapters_of_two_sessions_never_mix(base, two_sessions):
    a, b = two_sessions
    b_alone = pixels(generate(base, b, STYLE, count=1, seed=11, steps=2))
    with_a = pixels(generate(base, a, STYLE, count=1, seed=11, steps=2))
    assert pipe_is_clean(base.pipe)  # A's layers are gone after its generation
    b_after_a = pixels(generate(base, b, STYLE, count=1, seed=11, steps=2))
    assert np.abs(with_a[0] - b_alone[0]).max() > 0  # the adapters really change the output
    assert np.array_equal(b_after_a[0], b_alone[0])  # nothing of A leaked into B's images


def test_seeds_are_reproducible_per_image(base, two_sessions):
    a, _ = two_sessions
    first = generate(base, a, STYLE, count=2, seed=20, steps=2)
    again = generate(base, a, STYLE, count=2, seed=20, steps=2)
    assert [g.seed for g in first] == [20, 21]
    assert all(g.style_id == STYLE.id and g.is_demo for g in first)
    assert all(np.array_equal(x, y) for x, y in zip(pixels(first), pixels(again)))
    assert not np.array_equal(*pixels(first))


def test_adapter_is_removed_even_when_generation_fails(base, two_sessions):
    with pytest.raises(RuntimeError, match="boom"):
        with adapter_loaded(base, two_sessions[0]):
            assert not pipe_is_clean(base.pipe)
            raise RuntimeError("boom")
    assert pipe_is_clean(base.pipe)


def test_cancelled_generation_stops_and_unloads_the_adapter(base, two_sessions):
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        cancel.set()  # cancel after the first denoising step

    with pytest.raises(Cancelled):
        generate(base, two_sessions[0], STYLE, count=3, seed=0, steps=3, progress=progress, cancel=cancel)
    assert len(seen) == 1
    assert pipe_is_clean(base.pipe)


def test_adapter_from_another_family_is_refused(base, two_sessions):
    import dataclasses
    other = dataclasses.replace(two_sessions[0], family="sdxl" if base.family == "sd15" else "sd15")
    with pytest.raises(ValueError, match="trained on"):
        generate(base, other, STYLE, count=1, seed=0, steps=1)
    assert pipe_is_clean(base.pipe)
