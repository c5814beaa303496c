"""LoRA training: learns, reports progress, can be cancelled, survives OOM, and leaves the shared base clean."""

import threading

import pytest
import torch

from pipeline.faces import prepare_examples
from pipeline.train_lora import TrainProgress, default_train_config, train_lora
from privacy.errors import Cancelled, OutOfMemory
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
        train_lora(base, noise_examples(base.resolution), fast_config(base.family, steps=5), step_hook=run_out_of_memory)
    assert err.value.code == "out_of_memory" and "memory" in err.value.message
    assert err.value.__context__ is None  # the OOM traceback (holding tensors) was dropped
    assert_base_untouched(base, before)


def test_training_is_reproducible_for_a_seed(tiny_sd):
    examples = noise_examples(tiny_sd.resolution)
    a, b = (train_lora(tiny_sd, examples, fast_config("sd15", steps=2, seed=7)) for _ in range(2))
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)


def test_default_config_scales_with_photos_and_is_documented_in_the_adapter():
    few, many = default_train_config(4, "sdxl"), default_train_config(20, "sdxl")
    assert few.steps == 400 and many.steps == 1500
    assert few.rank < many.rank and few.alpha == few.rank
    assert few.learning_rate == 1e-4
    assert few.gradient_checkpointing and not default_train_config(4, "sdxl", on_gpu=False).gradient_checkpointing
    assert default_train_config(4, "sd15", steps_override=7).steps == 7
    with pytest.raises(ValueError):
        default_train_config(0, "sd15")
