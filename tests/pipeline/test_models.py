"""Loading a base model: both families, auto device/dtype, SDPA, and a fast, explicit failure when offline."""

import time

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0

import json

from pipeline.models import family_from_configs, family_from_index, load_base, pick_dtype
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


@pytest.mark.parametrize("native,expected", [(True, torch.bfloat16), (False, torch.float16)])
def test_bf16_only_where_the_gpu_has_it_natively(monkeypatch, native, expected):
    # T4/V100: torch reports bf16 "supported" by emulation; only the native answer counts.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                        lambda including_emulation=True: native or including_emulation)
    assert pick_dtype(torch.device("cuda")) == expected


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


SD_INDEX = {"_class_name": "StableDiffusionPipeline", "unet": [], "text_encoder": [], "vae": [],
            "scheduler": ["diffusers", "PNDMScheduler"]}
XL_INDEX = {"_class_name": "StableDiffusionXLPipeline", "unet": [], "text_encoder": [], "text_encoder_2": [],
            "vae": [], "scheduler": ["diffusers", "EulerDiscreteScheduler"]}


def test_sd2_is_told_from_sd15_by_its_text_encoder_and_prediction_type():
    assert family_from_configs({"model_index.json": SD_INDEX, "text_encoder/config.json": {"hidden_size": 768},
                                "scheduler/scheduler_config.json": {"prediction_type": "epsilon"}}) == "sd15"
    assert family_from_configs({"model_index.json": SD_INDEX, "text_encoder/config.json": {"hidden_size": 1024},
                                "scheduler/scheduler_config.json": {"prediction_type": "v_prediction"},
                                "unet/config.json": {"sample_size": 96, "cross_attention_dim": 1024}}) == "sd2"


@pytest.mark.parametrize("configs,why", [
    ({"model_index.json": dict(XL_INDEX, scheduler=["diffusers", "EDMDPMSolverMultistepScheduler"])}, "EDM"),
    ({"model_index.json": XL_INDEX, "vae/config.json": {"latents_mean": [0.0] * 4, "latents_std": [1.0] * 4}},
     "latent mean/std"),
    ({"model_index.json": {k: v for k, v in XL_INDEX.items() if k != "text_encoder"}}, "refiner"),
    ({"model_index.json": dict(XL_INDEX, text_encoder=[None, None])}, "refiner"),
    ({"model_index.json": SD_INDEX, "unet/config.json": {"in_channels": 9}}, "inpainting"),
    ({"model_index.json": dict(SD_INDEX, _class_name="StableDiffusionInpaintPipeline")}, "not a text-to-image"),
    ({"model_index.json": {"_class_name": "FluxPipeline", "transformer": [], "text_encoder": []}}, "Flux"),
    ({"model_index.json": {"_class_name": "StableDiffusion3Pipeline", "transformer": []}}, "StableDiffusion3"),
])
def test_unsupported_families_are_refused_naming_the_supported_ones(configs, why):
    with pytest.raises(ModelUnavailable) as err:
        family_from_configs(configs)
    message = str(err.value)
    assert why in message
    assert "Stable Diffusion 1.5, Stable Diffusion 2.x or SDXL" in message


def test_sd2_style_model_gets_its_own_size_and_v_prediction(tmp_path):
    from diffusers import DDPMScheduler

    from pipeline.styles import load_styles
    from pipeline.train_lora import train_lora
    from tests.pipeline.helpers import fast_config, noise_examples

    load_base("tiny-sd", device="cpu").pipe.save_pretrained(tmp_path)
    scheduler_file = tmp_path / "scheduler" / "scheduler_config.json"
    scheduler_file.write_text(json.dumps(json.loads(scheduler_file.read_text()) | {"prediction_type": "v_prediction"}))
    base = load_base(str(tmp_path), device="cpu", offline=True)
    assert base.family == "sd2" and base.resolution == 64
    assert base.pipe.scheduler.config.prediction_type == "v_prediction"  # kept by the generation sampler
    assert DDPMScheduler.from_config(base.pipe.scheduler.config).config.prediction_type == "v_prediction"
    style = load_styles()["linkedin_classic"]
    assert style.size_for("sd2", resolution=768) == (768, 960)  # SD 2.x-768
    assert style.size_for("sd2", resolution=512) == style.size_for("sd15")  # SD 2.x-base
    adapter = train_lora(base, noise_examples(base.resolution), fast_config("sd2", steps=2))
    assert adapter.family == "sd2" and adapter.token_embeddings()
