"""Loading a base model: both families, auto device/dtype, SDPA, and a fast, explicit failure when offline."""

import json
import time

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0

from errors import ModelUnavailable
from pipeline.models import family_from_configs, family_from_index, load_base, pick_dtype


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


def test_sd2_style_model_gets_its_own_size_and_v_prediction(tmp_path, monkeypatch):
    import dataclasses

    from diffusers import DDPMScheduler

    import pipeline.train_lora
    from pipeline.styles import load_styles
    from pipeline.train_lora import train_lora
    from tests.pipeline.helpers import fast_config, noise_examples

    sd15 = load_base("tiny-sd", device="cpu")
    sd15.pipe.save_pretrained(tmp_path)
    scheduler_file = tmp_path / "scheduler" / "scheduler_config.json"
    scheduler_file.write_text(json.dumps(json.loads(scheduler_file.read_text()) | {"prediction_type": "v_prediction"}))
    base = load_base(str(tmp_path), device="cpu", offline=True)
    assert base.family == "sd2" and base.resolution == 64
    assert base.pipe.scheduler.config.prediction_type == "v_prediction"  # kept by the generation sampler
    assert DDPMScheduler.from_config(base.pipe.scheduler.config).config.prediction_type == "v_prediction"
    style = load_styles()["linkedin_classic"]
    assert style.size_for("sd2", resolution=768) == (768, 960)  # SD 2.x-768
    assert style.size_for("sd2", resolution=512) == style.size_for("sd15")  # SD 2.x-base
    types, loss = [], pipeline.train_lora._loss
    monkeypatch.setattr(pipeline.train_lora, "_loss", lambda *a: (types.append(a[3]), loss(*a))[1])
    adapter = train_lora(base, noise_examples(base.resolution), fast_config("sd2", steps=2))
    assert adapter.family == "sd2" and adapter.token_embeddings()
    assert types == ["v_prediction"] * 2  # the loss of every step predicts v...
    # ...and its target is v, not the noise: with plain MSE (no min-SNR) only the target tells them apart.
    plain = dataclasses.replace(fast_config("sd2", steps=2), snr_gamma=0.0)
    v, epsilon = (train_lora(b, noise_examples(base.resolution), plain) for b in (base, sd15))
    assert any(not torch.equal(v.state_dict[k], epsilon.state_dict[k]) for k in v.unet_state_dict())


# --- the fp16-safe VAE (HEADSHOT_FP16_VAE) -------------------------------------------------------
def save_tiny_vae(path, seed=1, **config):
    """A tiny VAE of another seed than the tiny bases' own, saved as a diffusers directory."""
    from diffusers import AutoencoderKL
    torch.manual_seed(seed)
    vae = AutoencoderKL(block_out_channels=(32, 64), in_channels=3, out_channels=3,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        latent_channels=4, sample_size=64, **config)
    vae.save_pretrained(path)
    return vae


@pytest.fixture(scope="module")
def sdxl_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-sdxl")
    load_base("tiny-sdxl", device="cpu").pipe.save_pretrained(path)
    return path


def in_fp16(monkeypatch):
    # A GPU without native bf16 (T4, V100): the base loads in fp16. Only weights are loaded here, no compute.
    import pipeline.models
    monkeypatch.setattr(pipeline.models, "pick_dtype", lambda device: torch.float16)


def test_an_fp16_sdxl_base_uses_the_fp16_safe_vae_from_its_directory_without_upcasting(sdxl_dir, tmp_path,
                                                                                          monkeypatch):
    fixed = save_tiny_vae(tmp_path / "vae")
    in_fp16(monkeypatch)
    base = load_base(str(sdxl_dir), device="cpu", fp16_vae=str(tmp_path / "vae"), offline=True)
    vae = base.pipe.vae
    assert base.dtype == vae.dtype == torch.float16 and base.vae_id == str(tmp_path / "vae")
    assert vae.config.force_upcast is False  # the SDXL pipeline then decodes in fp16, not fp32
    theirs = fixed.state_dict()
    assert all(torch.equal(v, theirs[k].half()) for k, v in vae.state_dict().items())  # its weights, not the base's
    own = load_base(str(sdxl_dir), device="cpu", offline=True).pipe.vae
    assert own.config.force_upcast is True  # what the setting is for: SDXL's own VAE upcasts in fp16


@pytest.mark.parametrize("source,dtype", [("tiny-sdxl-dir", None), ("tiny-sd-dir", torch.float16)])
def test_the_fp16_vae_is_not_even_read_outside_fp16_sdxl(sdxl_dir, tmp_path, monkeypatch, source, dtype):
    if dtype is not None:
        import pipeline.models
        monkeypatch.setattr(pipeline.models, "pick_dtype", lambda device: dtype)
    model = str(sdxl_dir)
    if source == "tiny-sd-dir":
        load_base("tiny-sd", device="cpu").pipe.save_pretrained(tmp_path / "sd")
        model = str(tmp_path / "sd")
    base = load_base(model, device="cpu", fp16_vae="nobody-here/no-such-vae", offline=True)
    assert base.vae_id == "" and base.pipe.vae.config.force_upcast is True  # bf16/fp32 and SD 1.5 need no fix


def test_an_fp16_vae_that_cannot_be_loaded_is_refused_before_the_base_naming_the_setting(sdxl_dir, monkeypatch):
    in_fp16(monkeypatch)
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as err:
        load_base(str(sdxl_dir), device="cpu", fp16_vae="nobody-here/no-such-vae", offline=True)
    assert time.monotonic() - started < 5
    message = str(err.value)
    assert "'nobody-here/no-such-vae' (HEADSHOT_FP16_VAE) is not available" in message
    assert "offline mode is on" in message and "leave it empty" in message


@pytest.mark.parametrize("broken,why", [("empty", "without config.json"), ("no-weights", "could not be loaded"),
                                        ("other-latents", "does not fit the base model's VAE")])
def test_a_directory_that_is_not_a_fitting_fp16_vae_is_refused_with_what_to_set(tmp_path, broken, why):
    from pipeline.models import load_fp16_vae
    path = tmp_path / "vae"
    path.mkdir()
    if broken == "no-weights":
        save_tiny_vae(path)
        (path / "diffusion_pytorch_model.safetensors").unlink()
    elif broken == "other-latents":
        save_tiny_vae(path, scaling_factor=0.5)  # e.g. an SD 1.5 VAE (0.18215) set for SDXL (0.13025)
    with pytest.raises(ModelUnavailable, match=why) as err:
        load_fp16_vae(str(path), offline=True, base_vae_config={"latent_channels": 4, "scaling_factor": 0.18215})
    assert "HEADSHOT_FP16_VAE" in str(err.value)


def test_a_whole_pipeline_directory_lends_its_vae(sdxl_dir):
    from pipeline.models import load_fp16_vae
    vae = load_fp16_vae(str(sdxl_dir), offline=True)
    assert vae.dtype == torch.float16 and vae.config.force_upcast is False
