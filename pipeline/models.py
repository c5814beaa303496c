"""Load the base diffusion model (hub id, local directory, or a tiny demo model) onto the right device.

Families (`FAMILIES`), each with its own native size and prediction type, read from the
model's own configs (`model_index.json`, `unet/`, `vae/`, `scheduler/` config files):
  * sd15: `StableDiffusionPipeline`, epsilon prediction, 512 px;
  * sd2:  `StableDiffusionPipeline` with a 1024-wide OpenCLIP text encoder (SD 2.x),
          v-prediction at 768 px (2.x-768) or epsilon at 512 px (2.x-base);
  * sdxl: `StableDiffusionXLPipeline` with both text encoders, 1024 px.
Anything else is refused with `ModelUnavailable` naming these families: EDM-scheduled
models and VAEs with `latents_mean/std` (Playground v2.5: a different noise
formulation our DDPM loss would silently train wrongly), refiners (no first text
encoder), inpainting UNets (9 input channels), img2img classes, FLUX, SD3 and others.

Device and dtype are picked automatically: bf16 on CUDA only where the GPU has it
natively, fp16 elsewhere (T4, V100), fp32 on CPU. SDXL's VAE overflows in fp16, so its
pipeline runs it in fp32 there (`force_upcast`: +4.9 GB per 2 images decoded at
832x1024); with `fp16_vae` (settings.fp16_vae, e.g. madebyollin/sdxl-vae-fp16-fix, the
VAE finetuned to stay in fp16's range with the same latents) an fp16 SDXL base loads
that VAE instead, in fp16 with `force_upcast` off (`load_fp16_vae`). Attention uses PyTorch SDPA
(`AttnProcessor2_0`, set explicitly so a model whose config asks for something else
still gets it). Generation uses DPM++ 2M with Karras sigmas (`generation_scheduler`).

The default base model (settings.base_model) is SDXL base 1.0
(stabilityai/stable-diffusion-xl-base-1.0, ~6.9 GB of fp16 weights):
  * VRAM (estimates, not measured here; bench/bench_gpu.py measures them):
    generation at 1024 px needs ~10 GB in bf16; LoRA training (rank 32, batch 2,
    cached latents, pivotal tuning) is estimated at ~12-14 GB with gradient
    checkpointing and the encoders moved off the GPU; without, it peaked at 22.4 GiB
    on an H200 (bench/bench_gpu.py, ~16 GiB above the weights); the trainer
    picks from the measured free memory (pipeline/train_lora.py
    `needs_checkpointing`), so a 16 GB GPU is the practical minimum.
  * Time (estimated from published SDXL DreamBooth-LoRA runs, not measured
    here): the default 500-1500 steps at batch 2 take roughly 4-12 minutes on an
    A100/H100-class GPU, 20-40+ on a T4. Each 1024 px image takes ~3-5 s (28
    steps) on an A100, ~25 s on a T4.
SD1.5-family models need ~4 GB (generation) / ~8 GB (training) at 512 px.

When the hub cannot be reached and no local weights exist, `load_base` fails at
once with `ModelUnavailable` naming what to set; it never waits on the network for
long (`local_files_only` when offline, a short metadata timeout otherwise) and never
silently swaps in another model.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from diffusers import (
    AutoencoderKL,
    DiffusionPipeline,
    DPMSolverMultistepScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
)
from diffusers.models.attention_processor import AttnProcessor2_0

from errors import ModelUnavailable
from pipeline import tiny
from pipeline.embeddings import add_trigger_token
from pipeline.speed.options import SpeedOptions

FAMILY_PIPELINES = {"sd15": StableDiffusionPipeline, "sd2": StableDiffusionPipeline, "sdxl": StableDiffusionXLPipeline}
FAMILIES_TEXT = "Stable Diffusion 1.5, Stable Diffusion 2.x or SDXL base (text-to-image)"
# Config files read to tell the families apart (all small JSON; weights are not touched).
CONFIG_FILES = ("model_index.json", "unet/config.json", "vae/config.json", "scheduler/scheduler_config.json",
                "text_encoder/config.json")
HUB_METADATA_TIMEOUT_S = 5.0  # seconds to wait for the hub's answer on model_index.json
_FIX_HINT = ("Set HEADSHOT_BASE_MODEL to a local diffusers directory that holds the weights, "
             "or to tiny-sd / tiny-sdxl for the offline demo (random weights, demo output only).")
_VAE_HINT = ("Set HEADSHOT_FP16_VAE to a local diffusers VAE directory (e.g. a download of "
             "madebyollin/sdxl-vae-fp16-fix), or leave it empty to use the model's own VAE (run in fp32).")


@dataclass
class BaseModel:
    """A loaded base pipeline shared by all sessions; `lock` serialises use of `pipe` (LoRA in/out)."""

    pipe: DiffusionPipeline
    family: str  # "sd15" | "sd2" | "sdxl"
    resolution: int  # native square training resolution, pixels
    device: torch.device
    dtype: torch.dtype
    model_id: str
    is_demo: bool  # True for tiny random-weight models: outputs must be labelled "demo"
    vae_id: str = ""  # the fp16-safe VAE loaded in place of the model's own; "" = its own
    speed: SpeedOptions = field(default_factory=SpeedOptions)  # what pipeline.speed.apply_to_base turned on
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pick_dtype(device: torch.device) -> torch.dtype:
    # Half precision only on CUDA: CPU kernels for fp16/bf16 convolutions are slow or missing.
    # `including_emulation=False`: since torch 2.x `is_bf16_supported()` answers True on
    # T4/V100 because bf16 can be emulated, without tensor cores (many times slower than
    # fp16 there); those GPUs get fp16 with a GradScaler in training.
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    return torch.float32


def generation_scheduler(pipe: DiffusionPipeline):
    """DPM++ 2M Karras built from the model's own noise schedule (prediction type included).

    The sampler most portrait workflows use at 25-30 steps (diffusers' scheduler docs
    list it as "DPM++ 2M Karras"); unlike SD1.5's default PNDM it makes exactly one
    model call, and one step callback, per step.
    """
    return DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, algorithm_type="dpmsolver++",
                                                   solver_order=2, use_karras_sigmas=True)


def family_from_configs(configs: dict[str, dict]) -> str:
    """The family of a diffusers model from its config files (`CONFIG_FILES` -> parsed JSON; missing = {}).

    Raises ModelUnavailable, naming the supported families, for anything we cannot train correctly.
    """
    index = configs.get("model_index.json", {})
    unet, vae = configs.get("unet/config.json", {}), configs.get("vae/config.json", {})
    scheduler = configs.get("scheduler/scheduler_config.json", {})
    text = configs.get("text_encoder/config.json", {})
    name = index.get("_class_name", "")

    def refuse(what: str) -> ModelUnavailable:
        return ModelUnavailable(f"The base model is {what}; supported are {FAMILIES_TEXT}. {_FIX_HINT}")

    if "unet" not in index or "transformer" in index or name.startswith(("Flux", "StableDiffusion3")):
        raise refuse(f"a {name or 'non-UNet'} pipeline")
    if any(w in name for w in ("Img2Img", "Inpaint", "Refiner", "Upscale", "Depth", "InstructPix2Pix")):
        raise refuse(f"a {name}, not a text-to-image base")
    if _absent(index, "text_encoder"):  # SDXL's refiner lists it as [null, null]
        raise refuse("a refiner (it has no first text encoder)")
    if unet.get("in_channels", 4) != 4:
        raise refuse("an inpainting or image-conditioned model (its UNet takes extra input channels)")
    if "EDM" in str(index.get("scheduler", "")) or "EDM" in scheduler.get("_class_name", ""):
        raise refuse("trained with EDM noise scheduling")
    if vae.get("latents_mean") is not None or vae.get("latents_std") is not None:
        raise refuse("built on a VAE with latent mean/std normalisation (e.g. Playground v2.5)")
    if "XL" in name or "text_encoder_2" in index:
        if "StableDiffusionXLPipeline" not in (name, "") or "text_encoder_2" not in index:
            raise refuse(f"a {name}")
        return "sdxl"
    if name not in ("StableDiffusionPipeline", ""):
        raise refuse(f"a {name}")
    # SD 2.x swapped CLIP ViT-L (768 wide) for OpenCLIP ViT-H (1024 wide); its 768 px
    # checkpoints predict v, not the noise (the scheduler config says which).
    if text.get("hidden_size", 768) == 1024 or unet.get("cross_attention_dim") == 1024 \
            or scheduler.get("prediction_type") == "v_prediction":
        return "sd2"
    return "sd15"


def _absent(index: dict, component: str) -> bool:
    entry = index.get(component)
    return entry is None or (isinstance(entry, list) and bool(entry) and all(part is None for part in entry))


def family_from_index(index: dict) -> str:
    """The family from `model_index.json` alone (kept for callers that have only that file)."""
    return family_from_configs({"model_index.json": index})


class ModelLoader(Protocol):
    """What the studio calls to load its base model (`load_base`; tests pass fakes)."""

    def __call__(self, model_id: str, device: str, *, fp16_vae: str = "") -> BaseModel: ...


def load_base(model_id: str, device: str = "auto", *, fp16_vae: str = "", offline: bool | None = None) -> BaseModel:
    """Load `model_id` (hub id, local directory, "tiny-sd" or "tiny-sdxl") ready for training and generation.

    `fp16_vae` (hub id or local directory, "" = none) replaces an SDXL model's VAE when the
    model runs in fp16; it is not even read otherwise. `offline` defaults to
    huggingface_hub's own HF_HUB_OFFLINE flag (read by that library).
    """
    dev = resolve_device(device)
    if model_id in tiny.TINY_IDS:
        family = tiny.TINY_IDS[model_id]
        # Tiny models stay fp32 everywhere: random weights overflow easily in half precision.
        pipe = tiny.build_tiny_pipeline(family).to(dev)
        return wrap_pipeline(pipe, family, model_id, dev, torch.float32, is_demo=True)

    if offline is None:
        from huggingface_hub import constants
        offline = bool(constants.HF_HUB_OFFLINE)
    dtype = pick_dtype(dev)
    local = Path(model_id).expanduser()
    if local.is_dir():
        index_file = local / "model_index.json"
        if not index_file.is_file():
            raise ModelUnavailable("The base model directory has no model_index.json (not a diffusers model). "
                                   f"{_FIX_HINT}")
        configs = {name: json.loads((local / name).read_text()) for name in CONFIG_FILES if (local / name).is_file()}
        source, local_only = str(local), True
    else:
        configs = _hub_configs(model_id, offline)
        source, local_only = model_id, offline
    family = family_from_configs(configs)
    vae = None
    if fp16_vae and family == "sdxl" and dtype == torch.float16:
        # Before the base's weights: a wrong VAE id fails in seconds, not after a 7 GB load.
        vae = load_fp16_vae(fp16_vae, offline=offline, base_vae_config=configs.get("vae/config.json", {}))
    pipe = _from_pretrained(FAMILY_PIPELINES[family], source, dtype, local_only, vae=vae)
    base = wrap_pipeline(pipe.to(dev), family, model_id, dev, dtype, is_demo=False)
    base.vae_id = fp16_vae if vae is not None else ""
    return base


def load_fp16_vae(vae_id: str, *, offline: bool, base_vae_config: dict | None = None) -> AutoencoderKL:
    """The fp16-safe VAE `vae_id` (hub id or local directory), in fp16 with `force_upcast` off.

    `force_upcast=False` is what makes it pay: the SDXL pipeline (and `encode_images` in
    training) then keep it in fp16 instead of moving it to fp32 for every decode. Raises
    ModelUnavailable, naming HEADSHOT_FP16_VAE, when it cannot be loaded or does not share
    the base VAE's latent space (`base_vae_config`: channels and scaling factor).
    """
    what = f"The fp16 VAE {vae_id!r} (HEADSHOT_FP16_VAE)"
    local = Path(vae_id).expanduser()
    subfolder = None
    if local.is_dir():
        if not (local / "config.json").is_file() and (local / "vae" / "config.json").is_file():
            subfolder = "vae"  # a whole pipeline directory: take its VAE
        elif not (local / "config.json").is_file():
            raise ModelUnavailable(f"{what} is a directory without config.json (not a diffusers VAE). {_VAE_HINT}")
        source, local_only = str(local), True
    else:
        _hub_json(vae_id, "config.json", offline, what=what, hint=_VAE_HINT)
        source, local_only = vae_id, offline
    try:
        vae = AutoencoderKL.from_pretrained(source, subfolder=subfolder, dtype=torch.float16, force_upcast=False,
                                            local_files_only=local_only, use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"{what} could not be loaded ({type(exc).__name__}). {_VAE_HINT}") from exc
    expected = {k: (base_vae_config or {}).get(k) for k in ("latent_channels", "scaling_factor")}
    found = {k: vae.config.get(k) for k in expected}
    if any(v is not None and found[k] != v for k, v in expected.items()):
        raise ModelUnavailable(f"{what} does not fit the base model's VAE ({found} instead of {expected}): "
                               f"it would decode the latents wrongly. {_VAE_HINT}")
    return vae


def _hub_configs(model_id: str, offline: bool) -> dict[str, dict]:
    """model_index.json (required) and the component configs that exist, from the hub or its cache."""
    from huggingface_hub import hf_hub_download
    configs = {"model_index.json": _hub_json(model_id, "model_index.json", offline,
                                             what=f"Base model {model_id!r}", hint=_FIX_HINT)}
    for name in CONFIG_FILES[1:]:
        try:
            path = hf_hub_download(model_id, name, local_files_only=offline, etag_timeout=HUB_METADATA_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - an optional config: its absence only narrows the check
            continue
        configs[name] = json.loads(Path(path).read_text())
    return configs


def _hub_json(repo_id: str, filename: str, offline: bool, *, what: str, hint: str) -> dict:
    """A small JSON file of a hub repo (or its cache), fetched first so a bad id or no network fails fast."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled
    try:
        path = hf_hub_download(repo_id, filename, local_files_only=offline, etag_timeout=HUB_METADATA_TIMEOUT_S)
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        where = "offline mode is on (HF_HUB_OFFLINE=1)" if offline else "the Hugging Face Hub cannot be reached"
        raise ModelUnavailable(f"{what} is not available: {where} and no local copy "
                               f"of its weights exists. {hint}") from exc
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise ModelUnavailable(f"{what} could not be fetched from the Hugging Face Hub "
                               f"({type(exc).__name__}). Check the id and network, or: {hint}") from exc
    return json.loads(Path(path).read_text())


def _from_pretrained(cls, source: str, dtype: torch.dtype, local_only: bool,
                     vae: AutoencoderKL | None = None) -> DiffusionPipeline:
    # safety_checker=None: SD1.5 repos ship a CLIP safety checker that blacks out images;
    # our own classifier (pipeline/safety.py) scores every output instead.
    kwargs = dict(dtype=dtype, local_files_only=local_only, use_safetensors=True)
    if vae is not None:  # the model's own VAE weights are then not read at all
        kwargs["vae"] = vae
    if cls is StableDiffusionPipeline:
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    try:
        if dtype != torch.float32:
            try:  # half-precision weight files halve the download and load time where a repo has them
                return cls.from_pretrained(source, variant="fp16", **kwargs)
            except (OSError, ValueError):
                pass
        return cls.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"The base model's weights could not be loaded ({type(exc).__name__}). "
                               f"{_FIX_HINT}") from exc


def drop_diffusers_watermark(pipe: DiffusionPipeline) -> DiffusionPipeline:
    """Remove the invisible watermark diffusers puts on SDXL outputs; call it on every SDXL pipeline we build.

    diffusers gives each SDXL pipeline (text-to-image, img2img, `from_pipe` copies too) its own watermarker
    whenever the invisible-watermark package is installed (the studio no longer installs it; an operator's
    image may) and stamps it on every image of 256 px or more: on a flat studio backdrop it changes ~6 % of
    the pixels, some by 16+ levels (the coloured dots of diffusers issues #4014 and #7841). Our outputs
    carry our own marks (privacy/marks) and nothing else.
    """
    if getattr(pipe, "watermark", None) is not None:
        pipe.watermark = None
    return pipe


def wrap_pipeline(pipe: DiffusionPipeline, family: str, model_id: str, dev: torch.device, dtype: torch.dtype,
                  *, is_demo: bool) -> BaseModel:
    """A `BaseModel` around a pipeline already on `dev`: SDPA attention, frozen weights, eval mode, the trigger
    token."""
    pipe.unet.set_attn_processor(AttnProcessor2_0())
    pipe.vae.set_attn_processor(AttnProcessor2_0())
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = generation_scheduler(pipe)
    # Decode one image at a time: at 832x1024 in fp32 (the path SDXL's VAE takes on fp16
    # GPUs via force_upcast) a batch of 4 costs ~10 GB more than one image.
    pipe.vae.enable_slicing()
    drop_diffusers_watermark(pipe)  # here, not at `from_pretrained`, so every base (tiny, loaded) has none
    add_trigger_token(pipe, family)  # before the freeze below: a grown table must be frozen too
    for module in (pipe.unet, pipe.vae, pipe.text_encoder, getattr(pipe, "text_encoder_2", None)):
        if module is not None:
            module.requires_grad_(False)
            module.eval()
    resolution = pipe.unet.config.sample_size * pipe.vae_scale_factor
    return BaseModel(pipe=pipe, family=family, resolution=resolution, device=dev, dtype=dtype,
                     model_id=model_id, is_demo=is_demo)
