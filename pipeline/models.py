"""Load the base diffusion model (hub id, local directory, or a tiny demo model) onto the right device.

Families: SD1.5-style (`StableDiffusionPipeline`) and SDXL-style
(`StableDiffusionXLPipeline`), chosen from the model's own `model_index.json`
(`_class_name`, or the presence of `text_encoder_2`). Device and dtype are picked
automatically: bf16 on CUDA when supported (fp16 otherwise), fp32 on CPU. Attention
uses PyTorch SDPA (`AttnProcessor2_0`, set explicitly so a model whose config asks for
something else still gets it).

The default base model (settings.base_model) is SDXL base 1.0
(stabilityai/stable-diffusion-xl-base-1.0, ~6.9 GB of fp16 weights):
  * VRAM: generation at 1024 px needs ~10 GB in bf16; LoRA training (rank 16,
    batch 1, gradient checkpointing, cached latents and text embeddings, text
    encoders and VAE moved off the GPU) peaks around 12-14 GB, so a 16 GB GPU
    is the practical minimum and a 24 GB GPU is comfortable.
  * Time (estimated from published SDXL DreamBooth-LoRA runs, not measured
    here): ~2-3 training steps/s at 1024 px on an A100/H100-class GPU, so the
    default 500-1000 steps take roughly 4-8 minutes; on a T4-class 16 GB GPU
    expect 1-1.5 s/step, i.e. 10-25 minutes. Each 1024 px image takes ~3-5 s
    (30 steps) on an A100, ~25 s on a T4.
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

import torch
from diffusers import DiffusionPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline
from diffusers.models.attention_processor import AttnProcessor2_0

from pipeline import tiny
from privacy.errors import ModelUnavailable

FAMILY_PIPELINES = {"sd15": StableDiffusionPipeline, "sdxl": StableDiffusionXLPipeline}
HUB_METADATA_TIMEOUT_S = 5.0  # seconds to wait for the hub's answer on model_index.json
_FIX_HINT = ("Set HEADSHOT_BASE_MODEL to a local diffusers directory that holds the weights, "
             "or to tiny-sd / tiny-sdxl for the offline demo (random weights, demo output only).")


@dataclass
class BaseModel:
    """A loaded base pipeline shared by all sessions; `lock` serialises use of `pipe` (LoRA in/out)."""

    pipe: DiffusionPipeline
    family: str  # "sd15" | "sdxl"
    resolution: int  # native square training resolution, pixels
    device: torch.device
    dtype: torch.dtype
    model_id: str
    is_demo: bool  # True for tiny random-weight models: outputs must be labelled "demo"
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pick_dtype(device: torch.device) -> torch.dtype:
    # Half precision only on CUDA: CPU kernels for fp16/bf16 convolutions are slow or missing.
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def family_from_index(index: dict) -> str:
    """The family of a diffusers `model_index.json`, or ModelUnavailable for anything else."""
    name = index.get("_class_name", "")
    if "XL" in name or "text_encoder_2" in index:
        if "Img2Img" in name or "Inpaint" in name or "Refiner" in name or "text_encoder" not in index:
            raise ModelUnavailable(f"The base model is a {name}; a text-to-image SDXL base is needed. {_FIX_HINT}")
        return "sdxl"
    if name in ("StableDiffusionPipeline", "") and "unet" in index and "text_encoder" in index:
        return "sd15"
    raise ModelUnavailable(f"The base model's pipeline class {name!r} is not supported; "
                           f"use a Stable Diffusion 1.5 or SDXL text-to-image model. {_FIX_HINT}")


def load_base(model_id: str, device: str = "auto", *, offline: bool | None = None) -> BaseModel:
    """Load `model_id` (hub id, local directory, "tiny-sd" or "tiny-sdxl") ready for training and generation.

    `offline` defaults to huggingface_hub's own HF_HUB_OFFLINE flag (read by that library).
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
            raise ModelUnavailable(f"The base model directory has no model_index.json (not a diffusers model). {_FIX_HINT}")
        index = json.loads(index_file.read_text())
        source, local_only = str(local), True
    else:
        index = _hub_index(model_id, offline)
        source, local_only = model_id, offline
    family = family_from_index(index)
    pipe = _from_pretrained(FAMILY_PIPELINES[family], source, dtype, local_only)
    return wrap_pipeline(pipe.to(dev), family, model_id, dev, dtype, is_demo=False)


def _hub_index(model_id: str, offline: bool) -> dict:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled
    try:
        path = hf_hub_download(model_id, "model_index.json", local_files_only=offline,
                               etag_timeout=HUB_METADATA_TIMEOUT_S)
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        where = "offline mode is on (HF_HUB_OFFLINE=1)" if offline else "the Hugging Face Hub cannot be reached"
        raise ModelUnavailable(f"Base model {model_id!r} is not available: {where} and no local copy "
                               f"of its weights exists. {_FIX_HINT}") from exc
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise ModelUnavailable(f"Base model {model_id!r} could not be fetched from the Hugging Face Hub "
                               f"({type(exc).__name__}). Check the id and network, or: {_FIX_HINT}") from exc
    return json.loads(Path(path).read_text())


def _from_pretrained(cls, source: str, dtype: torch.dtype, local_only: bool) -> DiffusionPipeline:
    # safety_checker=None: SD1.5 repos ship a CLIP safety checker that blacks out images;
    # our own classifier (pipeline/safety.py) scores every output instead.
    kwargs = dict(dtype=dtype, local_files_only=local_only, use_safetensors=True)
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
        raise ModelUnavailable(f"The base model's weights could not be loaded ({type(exc).__name__}). {_FIX_HINT}") from exc


def wrap_pipeline(pipe: DiffusionPipeline, family: str, model_id: str, dev: torch.device, dtype: torch.dtype,
                  *, is_demo: bool) -> BaseModel:
    """A `BaseModel` around a pipeline already on `dev`: SDPA attention, frozen weights, eval mode."""
    pipe.unet.set_attn_processor(AttnProcessor2_0())
    pipe.vae.set_attn_processor(AttnProcessor2_0())
    pipe.set_progress_bar_config(disable=True)
    for module in (pipe.unet, pipe.vae, pipe.text_encoder, getattr(pipe, "text_encoder_2", None)):
        if module is not None:
            module.requires_grad_(False)
            module.eval()
    resolution = pipe.unet.config.sample_size * pipe.vae_scale_factor
    return BaseModel(pipe=pipe, family=family, resolution=resolution, device=dev, dtype=dtype,
                     model_id=model_id, is_demo=is_demo)
