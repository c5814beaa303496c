"""LoRA training: learns, reports progress, can be cancelled, survives OOM, and leaves the shared base clean."""

import dataclasses
import threading

import pytest
import torch

from errors import Cancelled, OutOfMemory
from pipeline.embeddings import ENCODERS, initial_embeddings, trigger_ids
from pipeline.faces import prepare_examples
from pipeline.train_lora import (
    TrainProgress,
    _loss,
    default_train_config,
    encode_captions,
    encode_tokens,
    needs_checkpointing,
    tokenize_captions,
    train_lora,
)
from tests.pipeline.helpers import fast_config, noise_examples, pipe_is_clean


def unet_weights(base) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in base.pipe.unet.state_dict().items()}


def assert_base_untouched(base, before):
    assert pipe_is_clean(base.pipe)
    after = base.pipe.unet.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert not any(p.requires_grad for p in base.pipe.unet.parameters())
    assert not base.pipe.unet.training


def test_training_learns_an_adapter_and_reports_progress(base, screened_a):
    before = unet_weights(base)
    reports: list[TrainProgress] = []
    adapter = train_lora(base, prepare_examples(screened_a, base.resolution), fast_config(base.family, steps=4),
                         progress=reports.append)
    assert [r.step for r in reports] == [2, 4]  # every sync_every=2 steps, never per step
    assert all(r.total == 4 and r.loss > 0 and r.eta_seconds >= 0 for r in reports)
    assert reports[-1].eta_seconds == 0
    lora_b = [v for k, v in adapter.state_dict.items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: non-zero means it learned
    assert all(v.device.type == "cpu" for v in adapter.state_dict.values())
    assert adapter.family == base.family and adapter.train_config["steps"] == 4
    assert_base_untouched(base, before)


def test_cancellation_raises_and_leaves_the_base_clean(base):
    before = unet_weights(base)
    cancel = threading.Event()
    with pytest.raises(Cancelled):
        train_lora(base, noise_examples(base.resolution), fast_config(base.family, steps=50), cancel=cancel,
                   step_hook=lambda step: cancel.set() if step == 1 else None)
    assert_base_untouched(base, before)


def test_out_of_memory_becomes_a_clear_error_and_frees_everything(base):
    before = unet_weights(base)

    def run_out_of_memory(step):
        if step == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")

    with pytest.raises(OutOfMemory) as err:
        train_lora(base, noise_examples(base.resolution), fast_config(base.family, steps=5),
                   step_hook=run_out_of_memory)
    assert err.value.code == "out_of_memory" and "memory" in err.value.message
    assert err.value.__context__ is None  # the OOM traceback (holding tensors) was dropped
    assert_base_untouched(base, before)


def test_training_is_reproducible_for_a_seed(tiny_sd):
    examples = noise_examples(tiny_sd.resolution)
    a, b = (train_lora(tiny_sd, examples, fast_config("sd15", steps=2, seed=7)) for _ in range(2))
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)


def test_default_recipe_is_the_face_preset_scaled_with_photos():
    few, some, many = (default_train_config(4, "sdxl"), default_train_config(10, "sdxl"),
                       default_train_config(30, "sdxl"))
    assert (few.steps, some.steps, many.steps) == (500, 750, 1500)  # 75 per photo in [500, 1500]
    assert few.rank == few.alpha == 32 and few.batch_size == 2 and few.learning_rate == 1e-4
    assert few.pivotal_fraction == 0.5 and few.snr_gamma == 5.0 and few.noise_offset == 0.0
    assert default_train_config(4, "sd15", steps_override=7).steps == 7
    with pytest.raises(ValueError):
        default_train_config(0, "sd15")


def test_gradient_checkpointing_only_when_the_free_memory_needs_it_and_the_reason_is_saved(tiny_sd):
    gib = 2**30
    roomy, tight = default_train_config(4, "sdxl", free_memory_bytes=80 * gib), default_train_config(
        4, "sdxl", free_memory_bytes=16 * gib)
    assert not roomy.gradient_checkpointing and tight.gradient_checkpointing and tight.offload_encoders
    assert "only 16.0 GiB free: checkpointing on" in tight.memory_note
    assert "80.0 GiB free: checkpointing off" in roomy.memory_note
    cpu = default_train_config(4, "sdxl")
    assert not cpu.gradient_checkpointing and "no GPU" in cpu.memory_note
    assert needs_checkpointing("sd15", 2, 24 * gib)[0] is False
    adapter = train_lora(tiny_sd, noise_examples(tiny_sd.resolution), fast_config("sd15", steps=2))
    assert adapter.train_config["memory_note"] == cpu.memory_note
    assert adapter.train_config["gradient_checkpointing"] is False


def test_the_checkpointing_decision_does_not_count_the_loaded_weights_twice():
    """The free memory is measured with the base loaded, so only what training adds is compared with it."""
    gib = 2**30
    # What `torch.cuda.mem_get_info` reports with SDXL's bf16 weights (6.46 GiB) and the CUDA context (~0.6 GiB)
    # resident: an A100 40 GB (39.6 GiB usable) has ~32.5 GiB free; an A10G 24 GB (22.0 usable) ~15 GiB.
    a100_free, a10g_free = (39.6 - 6.46 - 0.6) * gib, (22.0 - 6.46 - 0.6) * gib
    on_a100 = default_train_config(4, "sdxl", free_memory_bytes=int(a100_free))
    assert not on_a100.gradient_checkpointing and not on_a100.offload_encoders
    assert on_a100.memory_note == "needs ~15.9 GiB above the loaded weights, 32.5 GiB free: checkpointing off"
    on_a10g = default_train_config(4, "sdxl", free_memory_bytes=int(a10g_free))
    assert on_a10g.gradient_checkpointing and on_a10g.offload_encoders  # 15.9 GiB does not fit in 85 % of 14.9
    # SD1.5 in fp16 on a 16 GB T4 (14.6 GiB usable, 1.99 GiB of weights): never checkpointed.
    assert needs_checkpointing("sd15", 2, int((14.6 - 1.99 - 0.6) * gib))[0] is False


def test_pivotal_tuning_trains_the_trigger_embeddings_in_every_text_encoder(base):
    config = fast_config(base.family, steps=4)
    adapter = train_lora(base, noise_examples(base.resolution), config)
    vectors = adapter.token_embeddings()
    assert sorted(vectors) == sorted(ENCODERS[base.family])  # both encoders for SDXL, the one otherwise
    start = initial_embeddings(base.pipe, base.family, torch.Generator().manual_seed(config.seed))
    for name, v in vectors.items():
        assert v.shape == (len(trigger_ids(base.pipe, name)), getattr(base.pipe, name).config.hidden_size)
        assert v.dtype == torch.float32 and v.device.type == "cpu"
        assert not torch.allclose(v, start[name])  # they trained
    assert adapter.train_config["pivotal_steps"] == 2
    assert not any(m._forward_hooks for m in (base.pipe.text_encoder.get_input_embeddings(),))  # hooks removed


def test_without_pivotal_tuning_the_adapter_has_no_embeddings(tiny_sd):
    config = dataclasses.replace(fast_config("sd15", steps=2), pivotal_fraction=0.0)
    assert train_lora(tiny_sd, noise_examples(tiny_sd.resolution), config).token_embeddings() == {}


def test_caption_encoding_matches_the_pipelines_encode_prompt(base):
    captions = ["a photo of ohwx person, head and shoulders, white background, bright light", "a photo of ohwx person"]
    ours = encode_tokens(base, tokenize_captions(base, captions))
    theirs = encode_captions(base, captions)
    assert torch.allclose(ours[0], theirs[0], atol=1e-6)
    if base.family == "sdxl":
        assert torch.allclose(ours[1], theirs[1], atol=1e-6)


def test_sdxl_time_ids_carry_the_crops_source_size(tiny_sdxl, screened_a):
    examples = prepare_examples(screened_a[:2], tiny_sdxl.resolution)
    sides = [e.original_size[0] for e in examples]
    assert all(side > 300 for side in sides)  # crops of 300-500 px in the photos, resized to 64
    seen = []
    hook = tiny_sdxl.pipe.unet.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["added_cond_kwargs"]["time_ids"].clone()), with_kwargs=True)
    try:
        train_lora(tiny_sdxl, examples, fast_config("sdxl", steps=2))
    finally:
        hook.remove()
    rows = {tuple(int(x) for x in row) for ids in seen for row in ids}
    assert rows <= {(side, side, 0, 0, 64, 64) for side in sides} and rows


def test_min_snr_weighting_down_weights_easy_timesteps():
    pred, target = torch.zeros(2, 4, 2, 2), torch.ones(2, 4, 2, 2)
    alpha_bar = torch.tensor([0.99, 0.1])  # SNR 99 (almost clean) and 0.11 (almost noise)
    plain = _loss(pred, target, alpha_bar, "epsilon", 0.0)
    weighted = _loss(pred, target, alpha_bar, "epsilon", 5.0)
    assert plain == pytest.approx(1.0)
    assert weighted == pytest.approx((5 / 99 + 1.0) / 2)  # min(snr, 5) / snr per sample
    v = _loss(pred, target, alpha_bar, "v_prediction", 5.0)
    assert v == pytest.approx((5 / 100 + (0.1 / 0.9) / (0.1 / 0.9 + 1)) / 2)


def test_noise_offset_changes_what_is_learned(tiny_sd):
    examples = noise_examples(tiny_sd.resolution)
    plain = train_lora(tiny_sd, examples, fast_config("sd15", steps=2))
    offset = train_lora(tiny_sd, examples, dataclasses.replace(fast_config("sd15", steps=2), noise_offset=0.1))
    assert any(not torch.equal(plain.state_dict[k], offset.state_dict[k]) for k in plain.state_dict)
