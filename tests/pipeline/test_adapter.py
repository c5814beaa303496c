"""Adapters travel as bytes (for the vault) with their token embeddings, and export for diffusers and kohya / A1111
UIs."""

import dataclasses

import numpy as np
import pytest
import torch
from safetensors.torch import load as st_load

from pipeline.adapter import (
    DIFFUSERS_LORA_FILE,
    EMBEDDINGS_FILE,
    KOHYA_LORA_FILE,
    USAGE_FILE,
    adapter_from_bytes,
    adapter_to_bytes,
    export_files,
)
from pipeline.embeddings import KOHYA_KEYS, export_tokens
from pipeline.generate import generate
from pipeline.models import load_base
from pipeline.styles import load_styles
from pipeline.train_lora import train_lora
from tests.pipeline.helpers import fast_config, noise_examples, pipe_is_clean

STYLE = load_styles()["corporate_grey"]


@pytest.fixture(scope="module")
def trained(base):
    return train_lora(base, noise_examples(base.resolution), fast_config(base.family, steps=2))


def test_adapter_round_trips_through_bytes_with_its_config_and_embeddings(trained):
    data = adapter_to_bytes(trained)
    assert isinstance(data, bytes)
    back = adapter_from_bytes(data)
    assert back.state_dict.keys() == trained.state_dict.keys()
    assert all(torch.equal(back.state_dict[k], trained.state_dict[k]) for k in trained.state_dict)
    assert back.token_embeddings().keys() == trained.token_embeddings().keys() and back.token_embeddings()
    assert (back.family, back.base_model_id, back.rank, back.alpha) == (
        trained.family, trained.base_model_id, trained.rank, trained.alpha)
    assert back.train_config == trained.train_config and back.train_config["steps"] == 2


def test_bytes_that_are_not_an_adapter_are_refused():
    for junk in (b"", b"\x00" * 16, b"\xff" * 64):
        with pytest.raises(ValueError):
            adapter_from_bytes(junk)


def test_lora_only_adapters_of_the_previous_format_still_load_and_generate(base, trained):
    old = dataclasses.replace(trained, state_dict=trained.unet_state_dict())
    back = adapter_from_bytes(adapter_to_bytes(old))
    assert back.token_embeddings() == {}
    assert generate(base, back, STYLE, count=1, seed=0, steps=1)
    assert pipe_is_clean(base.pipe)


def _theirs(pipe, subject: str):
    return pipe(prompt=STYLE.prompt(subject), negative_prompt=STYLE.negative_prompt(), width=64, height=64,
                num_inference_steps=2, guidance_scale=6.0, generator=[torch.Generator().manual_seed(3)]).images[0]


def _load_embeddings(pipe, family, emb_file: bytes):
    emb = st_load(emb_file)
    n = next(iter(emb.values())).shape[0]
    for name, key in KOHYA_KEYS[family].items():
        tokenizer = pipe.tokenizer_2 if name == "text_encoder_2" else pipe.tokenizer
        pipe.load_textual_inversion(emb[key], token=export_tokens(n), text_encoder=getattr(pipe, name),
                                    tokenizer=tokenizer)
    return "".join(export_tokens(n)) + " person"


def test_export_loads_in_diffusers_lora_plus_textual_inversion_and_matches_our_generation(base, trained, tmp_path):
    ours = generate(base, trained, STYLE, count=1, seed=3, steps=2)[0].image
    files = export_files(trained)
    assert set(files) == {DIFFUSERS_LORA_FILE, KOHYA_LORA_FILE, EMBEDDINGS_FILE, USAGE_FILE}
    (tmp_path / DIFFUSERS_LORA_FILE).write_bytes(files[DIFFUSERS_LORA_FILE])
    fresh = load_base(base.model_id, device="cpu").pipe
    fresh.load_lora_weights(str(tmp_path), weight_name=DIFFUSERS_LORA_FILE)
    assert not pipe_is_clean(fresh)
    subject = _load_embeddings(fresh, base.family, files[EMBEDDINGS_FILE])
    assert np.array_equal(np.asarray(ours), np.asarray(_theirs(fresh, subject)))
    # Without the embeddings the same LoRA gives another image: they are part of the model.
    fresh.unload_textual_inversion()
    assert not np.array_equal(np.asarray(ours), np.asarray(_theirs(fresh, "ohwx person")))


def test_kohya_export_has_the_a1111_layout_and_diffusers_reads_it_back(base, trained, tmp_path):
    files = export_files(trained)
    lora, emb = st_load(files[KOHYA_LORA_FILE]), st_load(files[EMBEDDINGS_FILE])
    assert all(k.startswith("lora_unet_") for k in lora)
    assert any(k.endswith(".lora_down.weight") for k in lora) and any(k.endswith(".alpha") for k in lora)
    assert set(emb) == set(KOHYA_KEYS[base.family].values())  # clip_l + clip_g (SDXL) or emb_params
    ours = generate(base, trained, STYLE, count=1, seed=3, steps=2)[0].image
    (tmp_path / KOHYA_LORA_FILE).write_bytes(files[KOHYA_LORA_FILE])
    fresh = load_base(base.model_id, device="cpu").pipe
    fresh.load_lora_weights(str(tmp_path), weight_name=KOHYA_LORA_FILE)
    subject = _load_embeddings(fresh, base.family, files[EMBEDDINGS_FILE])
    assert np.abs(np.asarray(ours, dtype=np.int16) - np.asarray(_theirs(fresh, subject), dtype=np.int16)).max() <= 1
    usage = files[USAGE_FILE].decode()
    assert "load_textual_inversion" in usage and EMBEDDINGS_FILE in usage and KOHYA_LORA_FILE in usage
