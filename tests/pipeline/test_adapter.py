"""Adapters travel as bytes (for the vault), and export in the standard diffusers LoRA format."""

import numpy as np
import pytest
import torch

from pipeline.adapter import adapter_from_bytes, adapter_to_bytes, to_diffusers_lora_bytes
from pipeline.generate import generate
from pipeline.models import load_base
from pipeline.styles import load_styles
from pipeline.train_lora import train_lora
from tests.pipeline.helpers import fast_config, noise_examples, pipe_is_clean


@pytest.fixture(scope="module")
def trained(base):
    return train_lora(base, noise_examples(base.resolution), fast_config(base.family, steps=2))


def test_adapter_round_trips_through_bytes_with_its_config(trained):
    data = adapter_to_bytes(trained)
    assert isinstance(data, bytes)
    back = adapter_from_bytes(data)
    assert back.state_dict.keys() == trained.state_dict.keys()
    assert all(torch.equal(back.state_dict[k], trained.state_dict[k]) for k in trained.state_dict)
    assert (back.family, back.base_model_id, back.rank, back.alpha) == (
        trained.family, trained.base_model_id, trained.rank, trained.alpha)
    assert back.train_config == trained.train_config and back.train_config["steps"] == 2


def test_bytes_that_are_not_an_adapter_are_refused():
    for junk in (b"", b"\x00" * 16, b"\xff" * 64):
        with pytest.raises(ValueError):
            adapter_from_bytes(junk)


def test_diffusers_export_loads_with_load_lora_weights_and_matches_our_generation(base, trained, tmp_path):
    style = load_styles()["corporate_grey"]
    ours = generate(base, trained, style, count=1, seed=3, steps=2)[0].image
    (tmp_path / "pytorch_lora_weights.safetensors").write_bytes(to_diffusers_lora_bytes(trained))
    fresh = load_base(base.model_id, device="cpu").pipe
    fresh.load_lora_weights(str(tmp_path), weight_name="pytorch_lora_weights.safetensors")
    assert not pipe_is_clean(fresh)
    theirs = fresh(prompt=style.prompt("ohwx person"), negative_prompt=style.negative_prompt(), width=64, height=64,
                   num_inference_steps=2, guidance_scale=6.0,
                   generator=[torch.Generator().manual_seed(3)]).images[0]
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))
