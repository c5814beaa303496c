"""Loading a base model: both families, auto device/dtype, SDPA, and a fast, explicit failure when offline."""

import time

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0

from pipeline.models import family_from_index, load_base, pick_dtype
from privacy.errors import ModelUnavailable


@pytest.mark.parametrize("model_id,family,cls", [("tiny-sd", "sd15", "StableDiffusionPipeline"),
                                                 ("tiny-sdxl", "sdxl", "StableDiffusionXLPipeline")])
def test_tiny_models_load_as_labelled_demo_of_their_family(model_id, family, cls):
    base = load_base(model_id, device="cpu")
    assert base.family == family and type(base.pipe).__name__ == cls
    assert base.is_demo is True
    assert base.resolution == 64 and base.dtype == torch.float32
    assert all(isinstance(p, AttnProcessor2_0) for p in base.pipe.unet.attn_processors.values())


def test_cpu_uses_fp32():
    assert pick_dtype(torch.device("cpu")) == torch.float32


def test_unreachable_hub_fails_fast_and_says_what_to_set():
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as err:
        load_base("nobody-here/no-such-model-xyz", device="cpu", offline=True)
    assert time.monotonic() - started < 5
    message = str(err.value)
    assert "HEADSHOT_BASE_MODEL" in message and "tiny-sd" in message


def test_directory_without_model_index_is_refused(tmp_path):
    with pytest.raises(ModelUnavailable, match="model_index.json"):
        load_base(str(tmp_path), device="cpu")


@pytest.mark.parametrize("model_id,family", [("tiny-sd", "sd15"), ("tiny-sdxl", "sdxl")])
def test_local_directory_family_is_read_from_its_own_config(tmp_path, model_id, family):
    load_base(model_id, device="cpu").pipe.save_pretrained(tmp_path)
    base = load_base(str(tmp_path), device="cpu", offline=True)
    assert base.family == family and base.is_demo is False
    assert len(base.pipe.tokenizer) > 256  # the saved vocab.json / merges.txt came back


def test_family_detection_rejects_non_text_to_image_pipelines():
    assert family_from_index({"_class_name": "StableDiffusionXLPipeline", "unet": [], "text_encoder": [],
                              "text_encoder_2": []}) == "sdxl"
    assert family_from_index({"_class_name": "StableDiffusionPipeline", "unet": [], "text_encoder": []}) == "sd15"
    with pytest.raises(ModelUnavailable):
        family_from_index({"_class_name": "StableDiffusionXLImg2ImgPipeline", "unet": [], "text_encoder_2": []})
    with pytest.raises(ModelUnavailable):
        family_from_index({"_class_name": "FluxPipeline", "transformer": []})
