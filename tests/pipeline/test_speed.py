"""The speed paths (pipeline/speed) keep every promise of the plain ones: the same images and losses within rounding,
the shared base bit-identical after a fused run whatever happens, no host read-back in the training step, and each
path off unless its setting turns it on."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pipeline.generate import generate, generate_styles
from pipeline.models import load_base
from pipeline.speed import SpeedOptions, apply_to_base, lora_fused
from pipeline.speed.layout import compiled_blocks
from pipeline.styles import load_styles
from pipeline.train_lora import train_lora
from settings import load_settings
from tests.pipeline.helpers import fast_config, noise_examples, pipe_is_clean

STYLE = load_styles()["linkedin_classic"]


@pytest.fixture(scope="module")
def trained(base):
    return train_lora(base, noise_examples(base.resolution, seed=1), fast_config(base.family, seed=1))


@pytest.fixture
def fused(base):
    """`base` with the fused-LoRA path on for one test."""
    plain = base.speed
    base.speed = dataclasses.replace(plain, fuse_lora=True)
    yield base
    base.speed = plain


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def bit_identical(before: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
    after = module.state_dict()
    return before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def pixels(images) -> list[np.ndarray]:
    return [np.asarray(g.image, dtype=np.int16) for g in images]


def test_speed_paths_are_off_unless_their_settings_turn_them_on():
    assert SpeedOptions.from_settings(load_settings({})) == SpeedOptions()
    on = SpeedOptions.from_settings(load_settings({"HEADSHOT_SPEED_FUSE_LORA": "true",
                                                   "HEADSHOT_SPEED_CHANNELS_LAST": "1",
                                                   "HEADSHOT_SPEED_COMPILE_UNET": "true"}))
    assert on.fuse_lora and on.channels_last and on.compile_blocks


def test_fused_generation_makes_the_unfused_images_and_leaves_the_base_bit_identical(base, trained, fused):
    unet_before, text_before = snapshot(base.pipe.unet), snapshot(base.pipe.text_encoder)
    with_fused = pixels(generate(base, trained, STYLE, count=2, seed=5, steps=2))
    assert bit_identical(unet_before, base.pipe.unet) and bit_identical(text_before, base.pipe.text_encoder)
    assert pipe_is_clean(base.pipe)
    base.speed = dataclasses.replace(base.speed, fuse_lora=False)
    with_peft = pixels(generate(base, trained, STYLE, count=2, seed=5, steps=2))
    plain = pixels(generate_styles(base, dataclasses.replace(trained, state_dict={}), [STYLE], count=2, seed=5,
                                   steps=2))
    for f, p, none in zip(with_fused, with_peft, plain):
        assert np.abs(f - p).max() <= 2  # the same image, up to rounding (x(W + BA) vs xW + xBA)
        assert np.abs(f - none).max() > 10  # and the LoRA really is in it


def test_fused_base_is_bit_identical_after_an_error_inside_the_run(base, trained):
    before = snapshot(base.pipe.unet)
    with pytest.raises(RuntimeError, match="boom"):
        with lora_fused(base, trained):
            assert not bit_identical(before, base.pipe.unet)  # the LoRA is folded in while the block runs
            raise RuntimeError("boom")
    assert bit_identical(before, base.pipe.unet)


def test_fused_adapters_of_two_sessions_never_mix(base, fused):
    a = train_lora(base, noise_examples(base.resolution, seed=3), fast_config(base.family, seed=3))
    b = train_lora(base, noise_examples(base.resolution, seed=4), fast_config(base.family, seed=4))
    b_alone = pixels(generate(base, b, STYLE, count=1, seed=11, steps=2))
    generate(base, a, STYLE, count=1, seed=11, steps=2)
    assert np.array_equal(pixels(generate(base, b, STYLE, count=1, seed=11, steps=2))[0], b_alone[0])


def test_fused_run_refuses_an_adapter_of_another_family_before_touching_the_base(base, trained):
    before = snapshot(base.pipe.unet)
    other = dataclasses.replace(trained, family="sdxl" if base.family == "sd15" else "sd15")
    with pytest.raises(ValueError, match="trained on"):
        with lora_fused(base, other):
            pass
    assert bit_identical(before, base.pipe.unet)


def _inside_optimizer_step(event) -> bool:
    while event is not None:
        if event.name.startswith("Optimizer.step#"):
            return True
        event = event.cpu_parent
    return False


def _count_reads(base, steps: int) -> int:
    """Host read-backs of a tensor's value (`.item()`, `bool(t)`: aten::_local_scalar_dense) in a training run,
    outside the optimizer step: on a CPU, AdamW keeps its step counters on the CPU and reads each one (a CPU
    read, no device to wait for); on CUDA it runs fused, counters on the device, with no read-back."""
    config = dataclasses.replace(fast_config(base.family, steps=steps), sync_every=10**6)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        train_lora(base, noise_examples(base.resolution), config)
    return sum(e.name == "aten::_local_scalar_dense" and not _inside_optimizer_step(e) for e in prof.events())


def test_training_steps_read_nothing_back_to_the_host_but_the_loss_every_sync_every_steps(base):
    # Twice the steps, the same read-backs: a step adds none (each would stall a GPU's queue); the loss is read
    # once, at the last step, when the reporting window is longer than the run.
    assert _count_reads(base, 2) == _count_reads(base, 4)


@pytest.fixture(scope="module")
def fresh_sd():
    """Its own tiny model: the layout changes below stay with the base they are applied to."""
    return load_base("tiny-sd", device="cpu")


def test_channels_last_trains_and_generates_the_same_within_rounding(fresh_sd):
    config = fast_config("sd15", seed=2)
    examples = noise_examples(fresh_sd.resolution, seed=2)
    plain_losses, losses = [], []
    plain_adapter = train_lora(fresh_sd, examples, config, progress=lambda p: plain_losses.append(p.loss))
    plain_images = pixels(generate(fresh_sd, plain_adapter, STYLE, count=1, seed=3, steps=2))
    apply_to_base(fresh_sd, SpeedOptions(channels_last=True))
    assert fresh_sd.speed.channels_last
    conv = next(m for m in fresh_sd.pipe.unet.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    adapter = train_lora(fresh_sd, examples, config, progress=lambda p: losses.append(p.loss))
    assert losses == pytest.approx(plain_losses, rel=1e-4)
    # Adam moves each weight by about the learning rate (1e-2) per step whatever the gradient's size, so the
    # convolutions' different rounding may show as 1e-4 here and there after 3 steps: within a tenth of a step.
    for key, value in plain_adapter.state_dict.items():
        torch.testing.assert_close(adapter.state_dict[key], value, rtol=0, atol=1e-3)
    images = pixels(generate(fresh_sd, adapter, STYLE, count=1, seed=3, steps=2))
    assert np.abs(images[0] - plain_images[0]).max() <= 2


def test_regional_compile_is_off_on_a_cpu_even_when_asked():
    base = load_base("tiny-sd", device="cpu")
    apply_to_base(base, SpeedOptions(compile_blocks=True))
    assert not base.speed.compile_blocks and compiled_blocks(base.pipe.unet) == 0


def _instant_images(base, screened, adapter_id: str, sources: list) -> list[np.ndarray]:
    from pipeline import instant
    from pipeline.generate import render_styles
    with instant.face_conditioning(base, screened, adapter_id=adapter_id, scale=0.7) as kwargs:
        images = render_styles(base, [STYLE], count=1, seed=0, steps=2, subject="person", pipe_kwargs=kwargs)
    assert base.pipe.image_encoder is None  # the pipeline is plain between requests, warm or not
    assert not any(instant.is_face_adapter_processor(p) for p in base.pipe.unet.attn_processors.values())
    return pixels(images)


def test_instant_runs_warm_from_weights_read_once_and_makes_the_same_images(tiny_sd, screened_a, adapter_dir,
                                                                           monkeypatch):
    from pipeline import instant
    from pipeline.speed import warm_adapter
    warm_adapter.forget(tiny_sd.pipe)
    instant._encoders.pop(tiny_sd.pipe, None)
    sources = []
    load = type(tiny_sd.pipe).load_ip_adapter

    def recorded(pipe, source, **kwargs):
        sources.append(type(source))
        return load(pipe, source, **kwargs)

    monkeypatch.setattr(type(tiny_sd.pipe), "load_ip_adapter", recorded)
    cold = _instant_images(tiny_sd, screened_a[:2], str(adapter_dir), sources)
    warm = _instant_images(tiny_sd, screened_a[:2], str(adapter_dir), sources)
    assert sources == [str, dict]  # the file once, then the weights kept in memory
    assert np.array_equal(cold[0], warm[0])
    # Bounded: one adapter's weights per pipeline; another adapter replaces them.
    _instant_images(tiny_sd, screened_a[:2], "tiny-ip-adapter", sources)
    assert warm_adapter.warm_weights(tiny_sd.pipe, str(adapter_dir)) is None
    assert warm_adapter.warm_weights(tiny_sd.pipe, "tiny-ip-adapter") is not None


def test_instant_image_encoder_stays_on_the_gpu_only_while_training_would_still_fit(tiny_sd, monkeypatch):
    from pipeline.speed import warm_adapter
    assert not warm_adapter.keep_on_device(tiny_sd, torch.nn.Linear(1, 1))  # a CPU: nothing to keep warm
    gpu = dataclasses.replace(tiny_sd, device=torch.device("cuda"))
    for free_gib, kept in ((80, True), (2, False)):  # SD1.5 training needs ~2.4 GiB above the weights
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device, f=free_gib: (f * 2**30, 80 * 2**30))
        assert warm_adapter.keep_on_device(gpu, torch.nn.Linear(1, 1)) is kept
