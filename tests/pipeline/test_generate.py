"""Generation: reproducible seeds, adapters of different sessions never mix, one load per run, honest progress, OOM."""

import threading

import numpy as np
import pytest
import torch

from errors import Cancelled, OutOfMemory
from pipeline.generate import adapter_loaded, generate, generate_styles
from pipeline.styles import load_styles
from pipeline.train_lora import train_lora
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


def test_generation_samples_with_dpm_pp_2m_karras(base):
    scheduler = base.pipe.scheduler
    assert type(scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert scheduler.config.use_karras_sigmas and scheduler.config.algorithm_type == "dpmsolver++"
    assert scheduler.config.solver_order == 2


def test_progress_never_passes_100_percent_even_with_pndm(tiny_sd, monkeypatch):
    from diffusers import PNDMScheduler
    a = train_lora(tiny_sd, noise_examples(tiny_sd.resolution), fast_config("sd15", steps=2))
    # SD1.5's stock scheduler calls back steps + 1 times ("3/2" was seen in the UI).
    pndm = PNDMScheduler.from_config(tiny_sd.pipe.scheduler.config, skip_prk_steps=True)  # SD1.5's config
    monkeypatch.setattr(tiny_sd.pipe, "scheduler", pndm)
    seen = []
    generate(tiny_sd, a, STYLE, count=2, seed=0, steps=3, progress=lambda done, total: seen.append((done, total)))
    assert len(seen) == 3 + 1  # one batch of both images: steps + 1 callbacks...
    assert all(done <= total for done, total in seen) and seen[-1] == (6, 6)  # ...but never past 100 %


def test_the_adapter_is_loaded_once_for_all_styles_of_a_run(base, two_sessions, monkeypatch):
    calls = []
    load = base.pipe.unet.load_lora_adapter
    monkeypatch.setattr(base.pipe.unet, "load_lora_adapter", lambda *a, **k: (calls.append(1), load(*a, **k))[1])
    styles = [load_styles()[s] for s in ("linkedin_classic", "corporate_grey", "executive_dark")]
    images = generate_styles(base, two_sessions[0], styles, count=1, seed=0, steps=1)
    assert [g.style_id for g in images] == [s.id for s in styles]
    assert len(calls) == 1
    assert pipe_is_clean(base.pipe)


def test_out_of_memory_during_generation_becomes_a_clear_error_and_unloads(base, two_sessions, monkeypatch):
    def run_out_of_memory(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(type(base.pipe), "__call__", run_out_of_memory)
    with pytest.raises(OutOfMemory) as err:
        generate(base, two_sessions[0], STYLE, count=1, seed=0, steps=1)
    assert err.value.code == "out_of_memory" and "memory" in err.value.message
    assert err.value.__context__ is None
    assert pipe_is_clean(base.pipe)


def test_trigger_embeddings_are_swapped_in_only_while_the_adapter_is_loaded(base, two_sessions):
    embedding = base.pipe.text_encoder.get_input_embeddings()
    with adapter_loaded(base, two_sessions[0]):
        assert embedding._forward_hooks
    assert not embedding._forward_hooks


def test_large_outputs_decode_in_tiles_and_every_output_one_image_at_a_time(base, two_sessions, monkeypatch):
    import dataclasses

    from PIL import Image
    seen = []

    def fake_pipe(self, *, width, height, prompt, **kwargs):  # records the VAE's mode, skips the compute
        seen.append((width, height, self.vae.use_slicing, self.vae.use_tiling))
        return type("Out", (), {"images": [Image.new("RGB", (width, height))] * len(prompt)})()

    monkeypatch.setattr(type(base.pipe), "__call__", fake_pipe)
    large = dataclasses.replace(STYLE, sizes=dict(STYLE.sizes, tiny=(1024, 1152)))
    generate_styles(base, two_sessions[0], [STYLE, large], count=1, seed=0, steps=1)
    assert seen == [(64, 64, True, False), (1024, 1152, True, True)]
