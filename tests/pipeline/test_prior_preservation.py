"""Prior preservation: a class set the base model makes for itself, cached per base model, trained beside the person.

Off (the default), training is exactly what it was; on, each step adds the class loss, and nothing of a visitor
goes into the class set.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pipeline.adapter import adapter_from_bytes
from pipeline.recipe.prior_set import CLASS_PROMPT, prior_set
from pipeline.train_lora import train_lora
from settings import load_settings
from tests.pipeline.helpers import fast_config, noise_examples, pipe_is_clean


def test_the_class_set_is_made_by_the_base_model_from_the_class_prompt_once(base, monkeypatch):
    calls = []
    real_call = type(base.pipe).__call__

    def spying_call(pipe, *args, **kwargs):
        calls.append((kwargs["prompt"], pipe_is_clean(pipe)))
        return real_call(pipe, *args, **kwargs)

    monkeypatch.setattr(type(base.pipe), "__call__", spying_call)
    first = prior_set(base, 3)
    again = prior_set(base, 3)
    assert again is first and len(first) == 3  # cached with the base pipeline: made once
    # Only the fixed class prompt, on the bare base model (no person's LoRA loaded): never personal data.
    assert calls == [(CLASS_PROMPT, True)] * 3
    latent_side = base.resolution // base.pipe.vae_scale_factor
    assert first.latent_mean.shape == (3, base.pipe.vae.config.latent_channels, latent_side, latent_side)
    assert first.text_embeds.shape[0] == 1
    assert (first.pooled_embeds is not None) == (base.family == "sdxl") == (first.time_ids is not None)


def test_off_trains_exactly_as_before_and_on_changes_the_adapter(base):
    examples = noise_examples(base.resolution)
    config = fast_config(base.family, steps=4)
    prior = prior_set(base, 3)
    plain = train_lora(base, examples, config)
    off = train_lora(base, examples, config, prior=prior)  # handed the set, weight 0: not used
    on = train_lora(base, examples, dataclasses.replace(config, prior_loss_weight=1.0), prior=prior)
    keys = sorted(k for k in plain.state_dict if k.startswith("unet."))
    assert all(torch.equal(plain.state_dict[k], off.state_dict[k]) for k in keys)
    assert any(not torch.equal(plain.state_dict[k], on.state_dict[k]) for k in keys)
    assert off.train_config["prior_class_images"] == 0 and on.train_config["prior_class_images"] == 3
    assert on.train_config["prior_loss_weight"] == 1.0
    assert pipe_is_clean(base.pipe)


def test_a_weight_without_a_class_set_is_refused(tiny_sd):
    config = dataclasses.replace(fast_config("sd15", steps=1), prior_loss_weight=1.0)
    with pytest.raises(ValueError, match="class set"):
        train_lora(tiny_sd, noise_examples(tiny_sd.resolution), config)


def test_the_setting_turns_it_on_for_a_studio_run(tmp_path, face_bytes):
    from privacy.lifecycle.consent import Attestations
    from studio.service import Studio

    studio = Studio(load_settings({"HEADSHOT_DATA_DIR": str(tmp_path), "HEADSHOT_BASE_MODEL": "tiny-sd",
                                   "HEADSHOT_DEVICE": "cpu", "HEADSHOT_MIN_PHOTOS": "1",
                                   "HEADSHOT_TRAIN_STEPS": "2", "HEADSHOT_PRIOR_PRESERVATION_WEIGHT": "1",
                                   "HEADSHOT_PRIOR_CLASS_IMAGES": "2"}))
    assert load_settings({}).prior_preservation_weight == 0  # off unless asked
    try:
        session_id = studio.start_session()
        studio.give_consent(session_id, Attestations(own_photos=True, adult=True, purpose=True))
        studio.upload(session_id, [face_bytes("obama_1.jpg")])
        studio.make_headshots(session_id, ["linkedin_classic"], 1)
        [blob] = studio.vault.blobs(session_id, "adapter")
        adapter = adapter_from_bytes(studio.vault.open(session_id, blob.id))
        assert adapter.train_config["prior_class_images"] == 2
        assert np.isclose(adapter.train_config["prior_loss_weight"], 1.0)
    finally:
        studio.close()
